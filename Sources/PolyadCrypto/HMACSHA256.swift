internal import CCryptoShim

/// HMAC-SHA256 (RFC 2104) with a fixed key: keyed chunk ids and subkeys.
///
/// The key is set up once, in `init`; each call works on its own copy of that keyed state, so one value can be
/// used from many threads at once.
public struct HMACSHA256: Sendable {
    /// Size of an authentication code in bytes.
    public static let codeSize = 32

    private let keyed: KeyedMACContext

    /// Prepares HMAC-SHA256 with `key` (any length; 32 random bytes is usual).
    public init(key: [UInt8]) {
        keyed = key.withUnsafeBytes { KeyedMACContext(key: $0) }
    }

    /// Prepares HMAC-SHA256 with the key in `key` (read once, here: OpenSSL keeps its own keyed state).
    public init(key: UnsafeRawBufferPointer) {
        keyed = KeyedMACContext(key: key)
    }

    /// Returns the 32-byte HMAC-SHA256 of `data`.
    ///
    /// The corresponding C functions are `EVP_MAC_CTX_dup`, `EVP_MAC_update` and `EVP_MAC_final`.
    public func authenticationCode(for data: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Self.codeSize) { buffer, initialized in
            let status = polyad_hmac_compute(
                keyed.context,
                data.baseAddress,
                data.count,
                buffer.baseAddress,
                buffer.count
            )
            guard status == 1 else {
                fatalError("\(CryptoError.openssl("HMAC-SHA256: \(takeOpenSSLError())"))")
            }
            initialized = Self.codeSize
        }
    }

    /// Returns the 32-byte HMAC-SHA256 of `data`.
    public func authenticationCode(for data: [UInt8]) -> [UInt8] {
        data.withUnsafeBytes { authenticationCode(for: $0) }
    }
}

/// Owns an OpenSSL HMAC context keyed once, used only as a template that each call duplicates.
///
/// `@unchecked Sendable` is safe: after `init` the context is only read (`EVP_MAC_CTX_dup` takes a const
/// pointer and copies it), and it is freed only in `deinit`, when no call can be using it.
final class KeyedMACContext: @unchecked Sendable {
    let context: OpaquePointer

    init(key: UnsafeRawBufferPointer) {
        guard let made = polyad_hmac_sha256_new(key.baseAddress, key.count) else {
            fatalError("\(CryptoError.openssl("HMAC-SHA256 setup: \(takeOpenSSLError())"))")
        }
        context = made
    }

    deinit {
        EVP_MAC_CTX_free(context)
    }
}
