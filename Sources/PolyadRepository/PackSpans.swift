import Dispatch
import Foundation
import PolyadFormat
import PolyadStorage
import Synchronization

/// Read-ahead for stores where each read is a round trip (S3). A pack is read in windows of `spanLength` bytes,
/// aligned on `spanLength` and never past the pack's last blob; a blob read fetches the window (or, for a blob
/// that crosses a window's end, the windows) that hold it and keeps them, so the blobs around it come from
/// memory. A backup writes a file's chunks, and the files of a folder, into packs in order, so a restore or a
/// mount reading files in order wants those blobs next, and a tree walk from the root (written after its
/// subtrees) goes backwards through the same windows: one request serves many blobs.
///
/// Readers of a window being fetched wait for it instead of asking for the same bytes again. A miss also starts
/// the pack's next window ahead, and `prefetch` lets a reader that knows what it will want (the restorer, for
/// the files it has queued) start windows early, so several transfers run at once; at most `maxAhead` fetches
/// run ahead at a time, each on a thread of its own (not a dispatch queue: the readers waiting for it may hold
/// every thread of the dispatch pool). At most `capacity` bytes of windows are kept, the least recently used
/// dropped first. A window is raw sealed bytes: every blob cut from it is still authenticated by the caller, and
/// a pack found damaged is forgotten.
final class PackSpans: Sendable {
    /// One fetched (or being fetched) window of a pack.
    private final class Span: Sendable {
        let pack: PackID
        let range: Range<Int>
        private let fetched = DispatchGroup()
        private let result = Mutex<Result<[UInt8], StorageError>?>(nil)

        init(pack: PackID, range: Range<Int>) {
            self.pack = pack
            self.range = range
            fetched.enter()
        }

        func fulfil(_ r: Result<[UInt8], StorageError>) {
            result.withLock { $0 = r }
            fetched.leave()
        }

        /// The window's bytes, once fetched.
        func bytes() throws(StorageError) -> [UInt8] {
            fetched.wait()
            return try result.withLock { $0! }.get()
        }
    }

    /// Reads a range of a pack from the store: `(offset, length)`.
    typealias Fetch = @Sendable (Int, Int) throws(StorageError) -> [UInt8]

    let spanLength: Int
    let capacity: Int
    /// Fetches running ahead of any reader at most at once.
    let maxAhead: Int
    /// Windows of the same pack fetched ahead after a miss.
    let windowsAhead = 2
    /// Most recently used last.
    private let spans = Mutex<[Span]>([])
    private let ahead = Atomic<Int>(0)

    init(spanLength: Int = 8 << 20, capacity: Int = 96 << 20, maxAhead: Int = 4) {
        self.spanLength = spanLength
        self.capacity = capacity
        self.maxAhead = maxAhead
    }

    /// The `length` bytes at `offset` of `pack`, whose blobs end at `dataEnd`: cut from kept windows, or from
    /// new ones that `fetch` reads (the window after a new one is then fetched ahead). `location` names the
    /// store in errors.
    func read(
        pack: PackID,
        location: String,
        offset: Int,
        length: Int,
        dataEnd: Int,
        fetch: @escaping Fetch
    ) throws(StorageError) -> [UInt8] {
        let end = offset + length
        func short() -> StorageError {
            StorageError(
                code: .damaged,
                handle: ObjectHandle(kind: .data, name: pack.hash.hex),
                location: location,
                message: "the pack is shorter than the index says; run `polyad verify`"
            )
        }
        guard length > 0, end <= dataEnd else { throw short() }
        var out = [UInt8]()
        for window in (offset / spanLength)...((end - 1) / spanLength) {
            let (span, isNew) = claim(pack: pack, window: window, dataEnd: dataEnd)
            if isNew {
                fill(span, fetch)
                for next in (window + 1)...(window + windowsAhead) where next * spanLength < dataEnd {
                    prefetch(pack: pack, window: next, dataEnd: dataEnd, fetch)
                }
            }
            let bytes = try span.bytes()
            let lo = max(offset, span.range.lowerBound) - span.range.lowerBound
            let hi = min(end, span.range.upperBound) - span.range.lowerBound
            guard hi <= bytes.count else { throw short() }
            if lo == 0 && hi == length && out.isEmpty { return Array(bytes[lo..<hi]) }  // one window, one copy
            out += bytes[lo..<hi]
        }
        guard out.count == length else { throw short() }
        return out
    }

    /// Starts fetching the window that holds `offset` ahead of any reader, so that the reader coming to it
    /// finds it read or under way; unless it is kept already or `maxAhead` fetches are running.
    func prefetch(pack: PackID, offset: Int, dataEnd: Int, fetch: @escaping Fetch) {
        guard offset < dataEnd else { return }
        prefetch(pack: pack, window: offset / spanLength, dataEnd: dataEnd, fetch)
    }

    private func prefetch(pack: PackID, window: Int, dataEnd: Int, _ fetch: @escaping Fetch) {
        guard ahead.add(1, ordering: .relaxed).newValue <= maxAhead else {
            ahead.subtract(1, ordering: .relaxed)
            return
        }
        let (span, isNew) = claim(pack: pack, window: window, dataEnd: dataEnd)
        guard isNew else {
            ahead.subtract(1, ordering: .relaxed)
            return
        }
        Thread.detachNewThread { [self] in
            fill(span, fetch)
            ahead.subtract(1, ordering: .relaxed)
        }
    }

    /// The kept window `window` of `pack` (now the most recently used), or a new one to fill (`true`).
    private func claim(pack: PackID, window: Int, dataEnd: Int) -> (Span, Bool) {
        let start = window * spanLength
        return spans.withLock { list -> (Span, Bool) in
            if let i = list.lastIndex(where: { $0.pack == pack && $0.range.lowerBound == start }) {
                let found = list.remove(at: i)
                list.append(found)
                return (found, false)
            }
            let new = Span(pack: pack, range: start..<max(start, min(dataEnd, start + spanLength)))
            list.append(new)
            var kept = list.reduce(0) { $0 + $1.range.count }
            while kept > capacity, list.count > 1 {
                kept -= list.removeFirst().range.count
            }
            return (new, true)
        }
    }

    /// Fetches a new window's bytes; a failed fetch is not kept (the next reader tries again).
    private func fill(_ span: Span, _ fetch: Fetch) {
        let r = Result { () throws(StorageError) in try fetch(span.range.lowerBound, span.range.count) }
        span.fulfil(r)
        if case .failure = r { forget(span) }
    }

    /// Drops every kept window of `pack` (its bytes were found damaged, or it was rewritten).
    func forget(_ pack: PackID) {
        spans.withLock { $0.removeAll { $0.pack == pack } }
    }

    private func forget(_ span: Span) {
        spans.withLock { $0.removeAll { $0 === span } }
    }
}
