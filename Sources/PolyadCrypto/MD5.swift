internal import CCryptoShim

/// MD5, only where a protocol asks for it (S3's `Content-MD5`, a check against corruption in transit, not a
/// security property). Nil where OpenSSL offers no MD5 (a FIPS-only provider): then the header is left out.
public enum MD5 {
    /// Returns the MD5 digest of `data`, or nil if OpenSSL has no MD5.
    public static func hash(_ data: [UInt8]) -> [UInt8]? {
        guard let md5 = md5Algorithm.pointer else { return nil }
        return data.withUnsafeBytes { bytes in
            [UInt8](unsafeUninitializedCapacity: 16) { buffer, initialized in
                var length: UInt32 = 0
                initialized =
                    EVP_Digest(bytes.baseAddress, bytes.count, buffer.baseAddress, &length, md5, nil) == 1
                        && length == 16 ? 16 : 0
            }
        }.nilIfEmpty
    }
}

/// Fetched once, on first use; nil if the provider has none.
private let md5Algorithm = FetchedDigest(name: "MD5")

private struct FetchedDigest: @unchecked Sendable {
    // Safe to share: an EVP_MD fetched once is immutable and OpenSSL documents it as usable from any thread.
    let pointer: OpaquePointer?
    init(name: String) { pointer = EVP_MD_fetch(nil, name, nil) }
}

extension Array {
    fileprivate var nilIfEmpty: Self? { isEmpty ? nil : self }
}
