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

/// Appends `count` bytes to `output` that `body` writes in place, with no intermediate buffer.
///
/// `body` gets exactly `count` writable bytes (the base address is nil only when `count` is 0) and returns how
/// many it used (0...count), or nil on failure. On failure `output` keeps its count and contents (its capacity
/// may grow). An empty `output` without room gets fresh uninitialised storage; otherwise the new bytes are
/// zero-filled first (a memset, far cheaper than the cryptography that then overwrites them).
@inline(__always)
func appendInPlace(to output: inout [UInt8], count: Int, _ body: (UnsafeMutableRawBufferPointer) -> Int?) -> Bool {
    precondition(count >= 0)
    if output.isEmpty && output.capacity < count {
        var succeeded = true
        output = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let used = body(UnsafeMutableRawBufferPointer(buffer)) {
                precondition((0...count).contains(used))
                initialized = used
            } else {
                succeeded = false
                initialized = 0
            }
        }
        return succeeded
    }
    let start = output.count
    appendZeros(to: &output, count: count)
    let used = output.withUnsafeMutableBytes { body(UnsafeMutableRawBufferPointer(rebasing: $0[start...])) }
    guard let used else {
        output.removeLast(count)
        return false
    }
    precondition((0...count).contains(used))
    output.removeLast(count - used)
    return true
}

/// A block of zeros to grow arrays from: appending from a contiguous buffer is a `memcpy` even in debug builds,
/// where appending `repeatElement(0, count:)` runs a generic per-element loop (seconds per 8 MiB).
private let zeroBlock = [UInt8](repeating: 0, count: 1 << 16)

/// Appends `count` zero bytes to `output`, growing its storage geometrically like any append.
private func appendZeros(to output: inout [UInt8], count: Int) {
    zeroBlock.withUnsafeBytes { zeros in
        var left = count
        while left > 0 {
            let part = min(left, zeros.count)
            output.append(contentsOf: UnsafeRawBufferPointer(rebasing: zeros[..<part]))
            left -= part
        }
    }
}
