internal import CZlibShim
internal import Synchronization

/// How a deflate stream is set up; streams are pooled per setup (callers may use several levels).
struct DeflateParameters: Hashable, Sendable {
    /// 0...9.
    var level: Int32
    /// 9...15 for the zlib format, -15...-9 for raw deflate.
    var windowBits: Int32
    /// 1...9: memory for the match finder (8 is zlib's default).
    var memLevel: Int32
}

/// How one deflate run ended.
enum DeflateOutcome {
    /// The whole stream fitted in the output; this many bytes were written.
    case fitted(Int)
    /// The output filled up before the stream ended.
    case tooLarge
    case failed(CompressionError)
}

/// Owns one zlib deflate stream, reset and reused between runs (creating one costs ~270 KiB of allocations).
///
/// The `z_stream` lives on the heap because zlib keeps a pointer back to it and rejects a moved stream.
/// `@unchecked Sendable` is safe: a stream is used by one thread at a time, between `StreamPool.take` and
/// `StreamPool.giveBack` (or dropped), and the pool's mutex orders those hand-overs.
final class DeflateStream: @unchecked Sendable {
    let parameters: DeflateParameters
    private let stream: UnsafeMutablePointer<z_stream>

    init(_ parameters: DeflateParameters) throws(CompressionError) {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = polyad_deflate_init2(stream, parameters.level, parameters.windowBits, parameters.memLevel)
        guard status == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw CompressionError(code: .zlib, zlibStatus: status, detail: "deflateInit2")
        }
        self.parameters = parameters
        self.stream = stream
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Readies the stream for a new run; false if zlib refuses (then drop the stream).
    func reset() -> Bool { deflateReset(stream) == Z_OK }

    /// Compresses `input` (fed to zlib in parts of at most 4 GiB, its `uInt`) into `output`, stopping as soon
    /// as `output` is full. The stream must be fresh or reset; `output` must have room for at least one byte.
    ///
    /// The corresponding C function is `deflate`.
    func run(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> DeflateOutcome {
        let s = stream
        forgetBuffers(s)
        var handed = 0  // bytes of `input` given to zlib so far
        while true {
            if s.pointee.avail_in == 0 && handed < input.count {
                let part = min(input.count - handed, Int(UInt32.max))
                s.pointee.next_in = bytes(input.baseAddress! + handed)
                s.pointee.avail_in = UInt32(part)
                handed += part
            }
            if s.pointee.avail_out == 0 {
                let produced = Int(s.pointee.total_out)
                let room = output.count - produced
                guard room > 0 else { return .tooLarge }
                s.pointee.next_out = bytes(output.baseAddress! + produced)
                s.pointee.avail_out = UInt32(min(room, Int(UInt32.max)))
            }
            let status = deflate(s, handed == input.count ? Z_FINISH : Z_NO_FLUSH)
            switch status {
            case Z_STREAM_END:
                return .fitted(Int(s.pointee.total_out))
            case Z_OK:
                continue
            case Z_BUF_ERROR where s.pointee.avail_out == 0:
                continue  // the output is full: the check above gives more room or stops
            default:
                return .failed(CompressionError(code: .zlib, zlibStatus: status, detail: "deflate: \(message(s))"))
            }
        }
    }
}

/// How one inflate run ended.
enum InflateOutcome {
    case done
    case failed(CompressionError)
}

/// Owns one zlib inflate stream, reset and reused between runs. See ``DeflateStream`` for why it is heap
/// allocated and why `@unchecked Sendable` is safe.
final class InflateStream: @unchecked Sendable {
    private let stream: UnsafeMutablePointer<z_stream>

    init() throws(CompressionError) {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = polyad_inflate_init2(stream, 15)
        guard status == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw CompressionError(code: .zlib, zlibStatus: status, detail: "inflateInit2")
        }
        self.stream = stream
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Readies the stream for a new run; false if zlib refuses (then drop the stream).
    func reset() -> Bool { inflateReset(stream) == Z_OK }

    /// Inflates the zlib stream in `input` into exactly all of `output`; fails if the stream is corrupt, ends
    /// early, would produce more, or is followed by other bytes. `output.baseAddress` must not be nil.
    ///
    /// The corresponding C function is `inflate`.
    func run(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> InflateOutcome {
        let s = stream
        forgetBuffers(s)
        let expected = output.count
        while true {
            let consumed = Int(s.pointee.total_in)
            let produced = Int(s.pointee.total_out)
            if s.pointee.avail_in == 0 {
                let left = input.count - consumed
                s.pointee.next_in = left == 0 ? nil : bytes(input.baseAddress! + consumed)
                s.pointee.avail_in = UInt32(min(left, Int(UInt32.max)))
            }
            if s.pointee.avail_out == 0 {
                // When the output is full, next_out stays valid (zlib rejects a null next_out).
                s.pointee.next_out = bytes(output.baseAddress! + produced)
                s.pointee.avail_out = UInt32(min(expected - produced, Int(UInt32.max)))
            }
            let status = inflate(s, Z_NO_FLUSH)
            let totalIn = Int(s.pointee.total_in)
            let totalOut = Int(s.pointee.total_out)
            switch status {
            case Z_STREAM_END:
                if totalOut != expected {
                    return .failed(
                        CompressionError(
                            code: .sizeMismatch,
                            detail: "the stream holds \(totalOut) bytes, \(expected) were expected"
                        )
                    )
                }
                if totalIn != input.count {
                    return .failed(
                        CompressionError(
                            code: .corruptInput,
                            detail: "\(input.count - totalIn) unexpected bytes follow the end of the stream"
                        )
                    )
                }
                return .done
            case Z_OK:
                continue
            case Z_BUF_ERROR where totalIn == input.count:
                // Checked first: with the input used up, more output cannot be told from a cut-off trailer.
                return .failed(
                    CompressionError(
                        code: .corruptInput,
                        detail: "the stream is truncated after \(totalOut) of \(expected) bytes"
                    )
                )
            case Z_BUF_ERROR where totalOut == expected && s.pointee.avail_out == 0:
                return .failed(
                    CompressionError(
                        code: .sizeMismatch,
                        detail: "the stream holds more than the \(expected) bytes expected"
                    )
                )
            case Z_DATA_ERROR, Z_NEED_DICT:
                return .failed(
                    CompressionError(code: .corruptInput, zlibStatus: status, detail: "inflate: \(message(s))")
                )
            default:
                return .failed(CompressionError(code: .zlib, zlibStatus: status, detail: "inflate: \(message(s))"))
            }
        }
    }
}

/// Clears the buffer pointers a reset leaves behind, which point into the previous run's buffers; each run sets
/// its own.
@inline(__always)
private func forgetBuffers(_ stream: UnsafeMutablePointer<z_stream>) {
    stream.pointee.next_in = nil
    stream.pointee.avail_in = 0
    stream.pointee.next_out = nil
    stream.pointee.avail_out = 0
}

/// zlib takes non-const byte pointers, also for input it only reads.
@inline(__always)
private func bytes(_ pointer: UnsafeRawPointer) -> UnsafeMutablePointer<Bytef> {
    UnsafeMutablePointer(mutating: pointer.assumingMemoryBound(to: Bytef.self))
}

/// zlib's message for the last error on `stream`, if it set one.
private func message(_ stream: UnsafeMutablePointer<z_stream>) -> String {
    guard let text = stream.pointee.msg else { return "no message" }
    return String(cString: text)
}

/// A few idle streams kept for reuse, so that each call does not pay for zlib's allocations.
final class StreamPool<Stream: AnyObject & Sendable>: Sendable {
    private let idle = Mutex<[Stream]>([])
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Takes an idle stream for which `matches` is true, if there is one.
    func take(where matches: (Stream) -> Bool) -> Stream? {
        idle.withLock { streams in
            guard let index = streams.lastIndex(where: matches) else { return nil }
            return streams.remove(at: index)
        }
    }

    /// Keeps a stream, already reset, for reuse; drops it when the pool is full.
    func giveBack(_ stream: Stream) {
        idle.withLock { streams in
            if streams.count < limit { streams.append(stream) }
        }
    }
}

/// Idle deflate and inflate streams, shared by all threads.
let deflatePool = StreamPool<DeflateStream>(limit: 8)
let inflatePool = StreamPool<InflateStream>(limit: 8)

extension DeflateStream {
    /// Runs `body` with a ready stream for `parameters` from the pool (or a new one), then returns it.
    static func withStream<T>(
        _ parameters: DeflateParameters,
        _ body: (DeflateStream) -> (T, reusable: Bool)
    ) throws(CompressionError) -> T {
        let stream: DeflateStream
        if let idle = deflatePool.take(where: { $0.parameters == parameters }) {
            stream = idle
        } else {
            stream = try DeflateStream(parameters)
        }
        let (result, reusable) = body(stream)
        if reusable && stream.reset() { deflatePool.giveBack(stream) }
        return result
    }
}

extension InflateStream {
    /// Runs `body` with a ready stream from the pool (or a new one), then returns it.
    static func withStream<T>(_ body: (InflateStream) -> (T, reusable: Bool)) throws(CompressionError) -> T {
        let stream: InflateStream
        if let idle = inflatePool.take(where: { _ in true }) {
            stream = idle
        } else {
            stream = try InflateStream()
        }
        let (result, reusable) = body(stream)
        if reusable && stream.reset() { inflatePool.giveBack(stream) }
        return result
    }
}
