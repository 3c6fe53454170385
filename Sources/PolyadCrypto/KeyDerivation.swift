internal import CCryptoShim

/// Deriving keys: subkeys from a master key, and keys from passphrases.
public enum KeyDerivation {
    /// Returns a 32-byte subkey: `HMAC-SHA256(key, label bytes || context)`.
    ///
    /// Used to derive per-purpose keys (one label per purpose) and per-session keys (context). `label` is
    /// hashed as its UTF-8 bytes, directly followed by `context`, so labels should be fixed strings of which
    /// none is a prefix of another when contexts vary.
    public static func subkey(from key: [UInt8], label: String, context: [UInt8] = []) -> [UInt8] {
        key.withUnsafeBytes { subkey(from: $0, label: label, context: context) }
    }

    /// ``subkey(from:label:context:)`` with the key read in place (a key in ``LockedBytes``: no copy of it).
    public static func subkey(from key: UnsafeRawBufferPointer, label: String, context: [UInt8] = []) -> [UInt8] {
        var message = Array(label.utf8)
        message.append(contentsOf: context)
        return HMACSHA256(key: key).authenticationCode(for: message)
    }

    /// The most memory scrypt may use (4 GiB); more is almost surely a damaged parameter.
    public static let scryptMemoryLimit: UInt64 = 4 << 30

    /// Returns `length` bytes derived from `passphrase` and `salt` with scrypt (RFC 7914).
    ///
    /// Memory use is about `128 * r * n` bytes; time grows with `n * r * p`.
    /// - Parameters:
    ///   - n: CPU/memory cost, a power of two of at least 2.
    ///   - r: block size, at least 1.
    ///   - p: parallelism, at least 1, with `r * p` below 2^30.
    ///   - length: bytes to return, at least 1.
    /// - Throws: ``CryptoError/kdfFailed`` naming the bad parameter, or when OpenSSL fails.
    ///
    /// The corresponding C function is `EVP_PBE_scrypt`.
    public static func scrypt(
        passphrase: [UInt8],
        salt: [UInt8],
        n: UInt64,
        r: UInt64,
        p: UInt64,
        length: Int
    ) throws(CryptoError) -> [UInt8] {
        guard n >= 2, n & (n - 1) == 0 else {
            throw .kdfFailed("scrypt N = \(n) must be a power of two of at least 2")
        }
        guard r >= 1, p >= 1 else {
            throw .kdfFailed("scrypt r = \(r) and p = \(p) must both be at least 1")
        }
        let (rp, rpOverflow) = r.multipliedReportingOverflow(by: p)
        guard !rpOverflow, rp < 1 << 30 else {
            throw .kdfFailed("scrypt r * p (r = \(r), p = \(p)) must be below 2^30")
        }
        // RFC 7914: N must be less than 2^(128 * r / 8).
        guard r >= 4 || n < UInt64(1) << (16 * r) else {
            throw .kdfFailed("scrypt N = \(n) must be below 2^(16 * r) = 2^\(16 * r) for r = \(r)")
        }
        guard length >= 1 else {
            throw .kdfFailed("scrypt output length \(length) must be at least 1")
        }
        // OpenSSL's own limit test: 128 * r * (N + 2) bytes for V plus 128 * r * p for B.
        let (v, vOverflow) = (128 * r).multipliedReportingOverflow(by: n + 2)
        let (b, bOverflow) = (128 * r).multipliedReportingOverflow(by: p)
        let (memory, memoryOverflow) = v.addingReportingOverflow(b)
        guard !vOverflow, !bOverflow, !memoryOverflow, memory <= scryptMemoryLimit else {
            throw .kdfFailed(
                "scrypt N = \(n), r = \(r), p = \(p) needs more than the \(scryptMemoryLimit >> 30) GiB limit"
            )
        }
        var failure: String?
        let key = [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            let ok = passphrase.withUnsafeBytes { pass in
                salt.withUnsafeBytes { salt in
                    polyad_scrypt(
                        pass.baseAddress,
                        pass.count,
                        salt.baseAddress,
                        salt.count,
                        n,
                        r,
                        p,
                        memory + 4096,
                        buffer.baseAddress,
                        buffer.count
                    )
                }
            }
            if ok == 1 {
                initialized = length
            } else {
                failure = takeOpenSSLError()
                initialized = 0
            }
        }
        if let failure {
            throw .kdfFailed("scrypt N = \(n), r = \(r), p = \(p): \(failure)")
        }
        return key
    }
}
