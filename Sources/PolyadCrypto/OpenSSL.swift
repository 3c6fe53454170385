internal import CCryptoShim

/// The algorithms PolyadCrypto uses, fetched once from OpenSSL's default provider.
///
/// Fetching (`EVP_MD_fetch`, `EVP_CIPHER_fetch`) looks the algorithm up under a lock; doing it once avoids that
/// on every call. `@unchecked Sendable` is safe: the pointers never change after `init`, and OpenSSL documents
/// fetched algorithm objects as shareable between threads. They live for the whole process and are never freed.
final class FetchedAlgorithms: @unchecked Sendable {
    let sha256: OpaquePointer
    let aes256GCM: OpaquePointer

    init() {
        guard let sha256 = EVP_MD_fetch(nil, "SHA256", nil) else {
            fatalError("OpenSSL has no SHA-256: \(takeOpenSSLError()). Install OpenSSL 3 (libssl3).")
        }
        guard let aes256GCM = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil) else {
            fatalError("OpenSSL has no AES-256-GCM: \(takeOpenSSLError()). Install OpenSSL 3 (libssl3).")
        }
        self.sha256 = sha256
        self.aes256GCM = aes256GCM
    }
}

/// Fetched once, on first use (Swift initialises globals lazily and thread-safely).
let algorithms = FetchedAlgorithms()

/// Takes the oldest error off this thread's OpenSSL error queue as text, and clears the queue.
func takeOpenSSLError() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    let found = buffer.withUnsafeMutableBufferPointer { polyad_take_error($0.baseAddress, $0.count) }
    guard found != 0 else { return "no OpenSSL error reported" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
