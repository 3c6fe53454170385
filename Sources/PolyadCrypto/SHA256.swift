internal import CCryptoShim

/// SHA-256 (FIPS 180-4) in one call.
public enum SHA256 {
    /// Size of a digest in bytes.
    public static let digestSize = 32

    /// Returns the SHA-256 digest of `data`.
    ///
    /// The corresponding C function is `EVP_Digest`.
    public static func hash(_ data: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: digestSize) { buffer, initialized in
            var length: UInt32 = 0
            guard EVP_Digest(data.baseAddress, data.count, buffer.baseAddress, &length, algorithms.sha256, nil) == 1,
                length == digestSize
            else {
                fatalError("\(CryptoError.openssl("EVP_Digest(SHA-256): \(takeOpenSSLError())"))")
            }
            initialized = digestSize
        }
    }

    /// Returns the SHA-256 digest of `data`.
    public static func hash(_ data: [UInt8]) -> [UInt8] {
        data.withUnsafeBytes { hash($0) }
    }
}

/// SHA-256 over data that arrives in pieces (packs, restored files): `update` with each piece, then `finalize`.
///
/// Noncopyable: it owns an OpenSSL digest context, freed when the hasher goes away.
public struct SHA256Hasher: ~Copyable {
    private let context: OpaquePointer

    /// Starts a new hash.
    public init() {
        guard let context = EVP_MD_CTX_new() else {
            fatalError("\(CryptoError.openssl("EVP_MD_CTX_new: \(takeOpenSSLError())"))")
        }
        guard EVP_DigestInit_ex2(context, algorithms.sha256, nil) == 1 else {
            EVP_MD_CTX_free(context)
            fatalError("\(CryptoError.openssl("EVP_DigestInit_ex2(SHA-256): \(takeOpenSSLError())"))")
        }
        self.context = context
    }

    deinit {
        EVP_MD_CTX_free(context)
    }

    /// Adds `data` to the hash.
    ///
    /// The corresponding C function is `EVP_DigestUpdate`.
    public mutating func update(_ data: UnsafeRawBufferPointer) {
        guard data.count > 0 else { return }
        guard EVP_DigestUpdate(context, data.baseAddress, data.count) == 1 else {
            fatalError("\(CryptoError.openssl("EVP_DigestUpdate(SHA-256): \(takeOpenSSLError())"))")
        }
    }

    /// Adds `data` to the hash.
    public mutating func update(_ data: [UInt8]) {
        data.withUnsafeBytes { update($0) }
    }

    /// Returns the digest of everything added; the hasher is used up.
    ///
    /// The corresponding C function is `EVP_DigestFinal_ex`.
    public consuming func finalize() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: SHA256.digestSize) { buffer, initialized in
            var length: UInt32 = 0
            guard EVP_DigestFinal_ex(context, buffer.baseAddress, &length) == 1, length == SHA256.digestSize else {
                fatalError("\(CryptoError.openssl("EVP_DigestFinal_ex(SHA-256): \(takeOpenSSLError())"))")
            }
            initialized = SHA256.digestSize
        }
    }
}

/// A hasher has a single owner (it is noncopyable), so moving it to another thread shares no context.
extension SHA256Hasher: @unchecked Sendable {}
