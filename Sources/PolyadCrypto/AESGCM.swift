internal import CCryptoShim
internal import PolyadFileSystem

/// AES-256-GCM authenticated encryption (NIST SP 800-38D) with 12-byte nonces and 16-byte tags.
///
/// Each call uses its own OpenSSL context, so one value can seal and open from many threads at once. A nonce
/// must never be used twice with the same key.
public struct AESGCM: Sendable {
    /// Key size in bytes (AES-256).
    public static let keySize = 32
    /// Nonce size in bytes.
    public static let nonceSize = 12
    /// Authentication tag size in bytes, appended to the ciphertext.
    public static let tagSize = 16

    private let key: [UInt8]

    /// Prepares AES-256-GCM with a 32-byte `key`.
    public init(key: [UInt8]) {
        precondition(key.count == Self.keySize, "AES-256-GCM needs a \(Self.keySize)-byte key, got \(key.count)")
        self.key = key
    }

    /// Encrypts `plaintext` and appends ciphertext || tag (`plaintext.count + 16` bytes) to `output`.
    ///
    /// - Parameters:
    ///   - nonce: 12 bytes, unique for this key.
    ///   - aad: additional data that is authenticated but not encrypted (may be empty).
    ///
    /// The corresponding C functions are `EVP_EncryptUpdate` and `EVP_EncryptFinal_ex`.
    public func seal(
        _ plaintext: UnsafeRawBufferPointer,
        nonce: [UInt8],
        aad: [UInt8],
        appendingTo output: inout [UInt8]
    ) {
        precondition(nonce.count == Self.nonceSize, "AES-GCM needs a \(Self.nonceSize)-byte nonce")
        let sealed = appendInPlace(to: &output, count: plaintext.count + Self.tagSize) { out in
            let ok = key.withUnsafeBytes { key in
                nonce.withUnsafeBytes { nonce in
                    aad.withUnsafeBytes { aad in
                        polyad_aes_gcm_seal(
                            algorithms.aes256GCM,
                            key.baseAddress,
                            nonce.baseAddress,
                            nonce.count,
                            aad.baseAddress,
                            aad.count,
                            plaintext.baseAddress,
                            plaintext.count,
                            out.baseAddress,
                            out.baseAddress! + plaintext.count
                        )
                    }
                }
            }
            return ok == 1 ? out.count : nil
        }
        guard sealed else {
            fatalError("\(CryptoError.openssl("AES-256-GCM encryption: \(takeOpenSSLError())"))")
        }
    }

    /// Encrypts `plaintext` and returns ciphertext || tag.
    public func seal(_ plaintext: [UInt8], nonce: [UInt8], aad: [UInt8] = []) -> [UInt8] {
        var output: [UInt8] = []
        plaintext.withUnsafeBytes { seal($0, nonce: nonce, aad: aad, appendingTo: &output) }
        return output
    }

    /// Decrypts ciphertext || tag and appends the plaintext (`sealed.count - 16` bytes) to `output`.
    ///
    /// - Throws: ``CryptoError/authenticationFailed`` if the tag does not match (the data, nonce or `aad` were
    ///   changed, or the key is wrong); `output` is then left as it was.
    ///
    /// The corresponding C functions are `EVP_DecryptUpdate` and `EVP_DecryptFinal_ex`.
    public func open(
        _ sealed: UnsafeRawBufferPointer,
        nonce: [UInt8],
        aad: [UInt8],
        appendingTo output: inout [UInt8]
    ) throws(CryptoError) {
        precondition(nonce.count == Self.nonceSize, "AES-GCM needs a \(Self.nonceSize)-byte nonce")
        guard sealed.count >= Self.tagSize else {
            throw CryptoError(
                code: .authenticationFailed,
                detail: "sealed data of \(sealed.count) bytes is shorter than the \(Self.tagSize)-byte tag"
            )
        }
        let ciphertextCount = sealed.count - Self.tagSize
        var status: Int32 = 0
        _ = appendInPlace(to: &output, count: ciphertextCount) { out in
            status = key.withUnsafeBytes { key in
                nonce.withUnsafeBytes { nonce in
                    aad.withUnsafeBytes { aad in
                        polyad_aes_gcm_open(
                            algorithms.aes256GCM,
                            key.baseAddress,
                            nonce.baseAddress,
                            nonce.count,
                            aad.baseAddress,
                            aad.count,
                            sealed.baseAddress,
                            ciphertextCount,
                            out.baseAddress,
                            sealed.baseAddress! + ciphertextCount
                        )
                    }
                }
            }
            return status == 1 ? out.count : nil
        }
        switch status {
        case 1: return
        case 0: throw .authenticationFailed
        default: throw .openssl("AES-256-GCM decryption: \(takeOpenSSLError())")
        }
    }

    /// Decrypts ciphertext || tag and returns the plaintext.
    /// - Throws: ``CryptoError/authenticationFailed`` if the tag does not match.
    public func open(_ sealed: [UInt8], nonce: [UInt8], aad: [UInt8] = []) throws(CryptoError) -> [UInt8] {
        var output: [UInt8] = []
        var failure: CryptoError?
        sealed.withUnsafeBytes { buffer in
            do throws(CryptoError) {
                try open(buffer, nonce: nonce, aad: aad, appendingTo: &output)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return output
    }
}
