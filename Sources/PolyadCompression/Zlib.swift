internal import PolyadFileSystem

/// zlib-format (RFC 1950) compression of chunks, with a size budget so that incompressible data costs little.
public enum Zlib {
    /// Compresses `input` at `level` and appends the zlib stream to `output`, if that stream is smaller than
    /// `input`.
    ///
    /// Deflate gets an output budget of `input.count - 1` bytes and stops as soon as it is used up, so data
    /// that does not compress costs little more than one pass. Level 0 (store) is never smaller, so it returns
    /// false at once.
    /// - Returns: true if the compressed stream was appended; false if it would not be smaller than `input`
    ///   (then `output` is left as it was).
    /// - Throws: ``CompressionError/invalidLevel`` for a level outside 0...9, or ``CompressionError/zlib``.
    ///
    /// The corresponding C functions are `deflateInit2` and `deflate`.
    public static func compress(
        _ input: UnsafeRawBufferPointer,
        level: Int32,
        appendingTo output: inout [UInt8]
    ) throws(CompressionError) -> Bool {
        guard (0...9).contains(level) else { throw CompressionError(code: .invalidLevel, detail: "\(level)") }
        let budget = input.count - 1
        guard level > 0, budget > 0 else { return false }
        let parameters = DeflateParameters(level: level, windowBits: 15, memLevel: 8)
        var failure: CompressionError?
        let appended = try DeflateStream.withStream(parameters) { stream in
            let appended = appendInPlace(to: &output, count: budget) { out in
                switch stream.run(input, into: out) {
                case .fitted(let used): return used
                case .tooLarge: return nil
                case .failed(let error):
                    failure = error
                    return nil
                }
            }
            return (appended, failure == nil)
        }
        if let failure { throw failure }
        return appended
    }

    /// Compresses `input` at `level`; returns the zlib stream, or nil if it would not be smaller than `input`.
    public static func compress(_ input: [UInt8], level: Int32) throws(CompressionError) -> [UInt8]? {
        var output: [UInt8] = []
        var result: Result<Bool, CompressionError> = .success(false)
        input.withUnsafeBytes { buffer in
            result = Result { () throws(CompressionError) in try compress(buffer, level: level, appendingTo: &output) }
        }
        return try result.get() ? output : nil
    }

    /// Inflates the zlib stream in `input`, which must hold exactly `expectedSize` bytes, and appends them to
    /// `output`.
    ///
    /// - Throws: ``CompressionError/corruptInput`` if the stream is damaged, truncated, or followed by other
    ///   bytes; ``CompressionError/sizeMismatch`` if it holds fewer or more than `expectedSize` bytes. `output`
    ///   is then left as it was.
    ///
    /// The corresponding C functions are `inflateInit2` and `inflate`.
    public static func decompress(
        _ input: UnsafeRawBufferPointer,
        expectedSize: Int,
        appendingTo output: inout [UInt8]
    ) throws(CompressionError) {
        guard expectedSize >= 0 else {
            throw CompressionError(code: .sizeMismatch, detail: "the expected size \(expectedSize) is negative")
        }
        // Deflate cannot beat about 1032:1, so a larger claim is damaged metadata; refuse before allocating.
        let (limit, overflow) = (input.count + 1).multipliedReportingOverflow(by: 1100)
        guard overflow || expectedSize <= limit else {
            throw CompressionError(
                code: .sizeMismatch,
                detail: "\(expectedSize) bytes were expected from \(input.count) compressed bytes, more than "
                    + "deflate can encode"
            )
        }
        var failure: CompressionError?
        try InflateStream.withStream { stream in
            _ = appendInPlace(to: &output, count: expectedSize) { out in
                let outcome: InflateOutcome
                if out.count == 0 {
                    var spare: UInt8 = 0  // zlib rejects a null output pointer, even with no room
                    outcome = withUnsafeMutableBytes(of: &spare) {
                        stream.run(input, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<0]))
                    }
                } else {
                    outcome = stream.run(input, into: out)
                }
                switch outcome {
                case .done: return out.count
                case .failed(let error):
                    failure = error
                    return nil
                }
            }
            return ((), true)  // a stream that failed on bad input is still sound after a reset
        }
        if let failure { throw failure }
    }

    /// Inflates the zlib stream in `input`, which must hold exactly `expectedSize` bytes.
    public static func decompress(_ input: [UInt8], expectedSize: Int) throws(CompressionError) -> [UInt8] {
        var output: [UInt8] = []
        var failure: CompressionError?
        input.withUnsafeBytes { buffer in
            do throws(CompressionError) {
                try decompress(buffer, expectedSize: expectedSize, appendingTo: &output)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return output
    }
}
