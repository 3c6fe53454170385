import Glibc
import PolyadFileSystem

/// Reads a byte range of an open file in large blocks and yields its content-defined chunks in order.
///
/// The reader owns one buffer (16 MiB by default, never less than two maximal chunks unless the range is
/// shorter) that it reuses for every block; each chunk is copied out of it once. It reads with `pread`, so the
/// descriptor's file offset is neither used nor changed. The caller keeps ownership of the descriptor and must
/// keep it open while reading.
public final class ChunkReader {
    private let fileDescriptor: Int32
    private let chunker: Chunker
    /// The file offset of the next byte to read into the buffer.
    private var readOffset: Int64
    /// Bytes of the range not yet read into the buffer.
    private var remaining: Int64
    /// True once the range is read completely or the file ended early.
    private var reachedEnd: Bool
    private let capacity: Int
    private var buffer: UnsafeMutableRawPointer?
    /// The unconsumed bytes are `buffer[start ..< end]`.
    private var start = 0
    private var end = 0

    /// The default block size: 16 MiB.
    public static let defaultBufferSize = 16 << 20

    /// Prepares to chunk `length` bytes of a file starting at `offset`.
    ///
    /// Reads until `length` bytes have been read, or to the end of the file if it shrank. Advises the kernel
    /// that the range is read sequentially (`posix_fadvise`).
    ///
    /// - Parameters:
    ///   - fileDescriptor: An open, readable descriptor; not closed by the reader.
    ///   - offset: The first byte to read.
    ///   - length: How many bytes to read at most.
    ///   - chunker: Decides the cut points.
    ///   - bufferSize: The block size; raised to `2 * maxSize` if smaller, lowered to `length` if larger.
    public init(
        fileDescriptor: Int32,
        offset: Int64,
        length: Int64,
        chunker: Chunker,
        bufferSize: Int = ChunkReader.defaultBufferSize
    ) {
        precondition(offset >= 0 && length >= 0, "ChunkReader: offset and length must not be negative")
        self.fileDescriptor = fileDescriptor
        self.chunker = chunker
        self.readOffset = offset
        self.remaining = length
        self.reachedEnd = length == 0
        let wanted = max(bufferSize, 2 * chunker.parameters.maxSize)
        self.capacity = Int(min(Int64(wanted), length))
        if length > 0 {
            _ = posix_fadvise(fileDescriptor, off_t(offset), off_t(length), Int32(POSIX_FADV_SEQUENTIAL))
        }
    }

    deinit {
        buffer?.deallocate()
    }

    /// The next chunk's bytes, or nil after the last chunk.
    ///
    /// - Throws: `SystemError` (operation "read at offset N", no path: the caller knows it) when `pread` fails.
    public func next() throws(SystemError) -> [UInt8]? {
        while true {
            if let buffer, end > start {
                let available = UnsafeRawBufferPointer(start: buffer + start, count: end - start)
                if let length = chunker.nextCut(in: available, isFinal: reachedEnd) {
                    let chunk = [UInt8](unsafeUninitializedCapacity: length) { storage, initialized in
                        storage.baseAddress!.initialize(
                            from: (buffer + start).assumingMemoryBound(to: UInt8.self),
                            count: length
                        )
                        initialized = length
                    }
                    start += length
                    return chunk
                }
            } else if reachedEnd {
                return nil
            }
            try fill()
        }
    }

    /// Moves the unconsumed bytes to the front of the buffer and reads as much as fits.
    private func fill() throws(SystemError) {
        let base: UnsafeMutableRawPointer
        if let buffer {
            base = buffer
        } else {
            base = UnsafeMutableRawPointer.allocate(byteCount: max(capacity, 1), alignment: 64)
            buffer = base
        }
        if start > 0 {
            if end > start {
                memmove(base, base + start, end - start)
            }
            end -= start
            start = 0
        }
        while end < capacity && remaining > 0 {
            let want = Int(min(Int64(capacity - end), remaining))
            let count: Int
            do {
                count = try FileSystem.pread(
                    fileDescriptor,
                    into: UnsafeMutableRawBufferPointer(start: base + end, count: want),
                    offset: readOffset
                )
            } catch {
                throw SystemError(errno: error.errno, operation: "read at offset \(readOffset)")
            }
            if count == 0 {
                // The file shrank since its size was taken: chunk what there is.
                remaining = 0
                break
            }
            end += count
            readOffset += Int64(count)
            remaining -= Int64(count)
        }
        if remaining == 0 {
            reachedEnd = true
        } else {
            // Ask the kernel to fetch the next block while this one is chunked and hashed, so that a cold
            // read overlaps with the work on the data already here.
            _ = posix_fadvise(
                fileDescriptor,
                off_t(readOffset),
                off_t(min(Int64(capacity), remaining)),
                Int32(POSIX_FADV_WILLNEED)
            )
        }
    }
}
