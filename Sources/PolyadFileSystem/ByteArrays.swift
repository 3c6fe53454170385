/// Appends `count` bytes to `output` that `body` writes in place, with no intermediate buffer.
///
/// `body` gets exactly `count` writable bytes (the base address is nil only when `count` is 0) and returns how
/// many it used (0...count), or nil on failure. On failure `output` keeps its count and contents (its capacity
/// may grow). An empty `output` without room gets fresh uninitialised storage; otherwise the new bytes are
/// zero-filled first (a memset, far cheaper than the compression or cryptography that then overwrites them).
@inlinable
public func appendInPlace(to output: inout [UInt8], count: Int, _ body: (UnsafeMutableRawBufferPointer) -> Int?) -> Bool
{
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
@usableFromInline
let zeroBlock = [UInt8](repeating: 0, count: 1 << 16)

/// Appends `count` zero bytes to `output`, growing its storage geometrically like any append.
@usableFromInline
func appendZeros(to output: inout [UInt8], count: Int) {
    zeroBlock.withUnsafeBytes { zeros in
        var left = count
        while left > 0 {
            let part = min(left, zeros.count)
            output.append(contentsOf: UnsafeRawBufferPointer(rebasing: zeros[..<part]))
            left -= part
        }
    }
}

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` that keeps the body's typed error (the standard one rethrows `any Error`).
    public func withTypedBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var result: Result<R, E>?
        withUnsafeBytes { b in
            do throws(E) { result = .success(try body(b)) } catch { result = .failure(error) }
        }
        return try result!.get()
    }

    /// `withUnsafeMutableBytes` that keeps the body's typed error.
    public mutating func withTypedMutableBytes<R, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    )
        throws(E) -> R
    {
        var result: Result<R, E>?
        withUnsafeMutableBytes { b in
            do throws(E) { result = .success(try body(b)) } catch { result = .failure(error) }
        }
        return try result!.get()
    }
}
