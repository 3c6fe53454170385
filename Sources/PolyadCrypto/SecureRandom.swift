internal import CCryptoShim

/// Cryptographically secure random bytes from OpenSSL's CSPRNG (`RAND_bytes`), for keys, salts and nonces.
public enum SecureRandom {
    /// Returns `count` random bytes. Stops the process if the random number generator is broken, since no
    /// key or nonce can be made safely then.
    public static func bytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0, "SecureRandom.bytes: negative count \(count)")
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(CryptoError) {
                try fill(UnsafeMutableRawBufferPointer(buffer))
            } catch {
                fatalError("\(error)")
            }
            initialized = count
        }
    }

    /// Fills `buffer` with random bytes in place.
    /// - Throws: ``CryptoError/randomFailed`` if the random number generator fails.
    ///
    /// The corresponding C function is `RAND_bytes`.
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) throws(CryptoError) {
        guard buffer.count > 0 else { return }
        guard polyad_random_bytes(buffer.baseAddress, buffer.count) == 1 else {
            throw .randomFailed(takeOpenSSLError())
        }
    }
}
