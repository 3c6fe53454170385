import Dispatch
import PolyadFormat
import PolyadStorage
import Synchronization

/// Read-ahead for stores where each read is a round trip (S3): a blob read there fetches the window of
/// `spanLength` bytes of its pack that holds it (windows aligned on `spanLength`, never past the pack's last
/// blob) and keeps that span, so the blobs around it come from memory. A backup writes a file's chunks, and the files of a folder, into packs in order, so a
/// restore or a mount reading files in order wants those blobs next: one request then serves many blobs.
///
/// Readers of a span being fetched wait for it instead of asking for the same bytes again. A miss also starts
/// the pack's next window in the background, and `prefetch` lets a reader that knows what it will want (the
/// restorer, for the files it has queued) start windows early, so several transfers run at once; at most
/// `maxAhead` such fetches run at a time. At most `capacity` bytes of spans are kept, the least recently used
/// dropped first. A span is raw sealed bytes: every
/// blob cut from it is still authenticated by the caller, and a pack found damaged is forgotten.
final class PackSpans: Sendable {
    /// One fetched (or being fetched) range of a pack.
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

        /// The span's bytes, once fetched.
        func bytes() throws(StorageError) -> [UInt8] {
            fetched.wait()
            return try result.withLock { $0! }.get()
        }
    }

    /// Reads a range of a pack from the store: `(offset, length)`.
    typealias Fetch = @Sendable (Int, Int) throws(StorageError) -> [UInt8]

    let spanLength: Int
    let capacity: Int
    /// Fetches started ahead of any reader at most at once (by `prefetch`, and the next window after a miss).
    let maxAhead: Int
    /// Most recently used last.
    private let spans = Mutex<[Span]>([])
    private let ahead = Atomic<Int>(0)
    private let background = DispatchQueue(label: "polyad.pack-spans", attributes: .concurrent)

    init(spanLength: Int = 8 << 20, capacity: Int = 96 << 20, maxAhead: Int = 4) {
        self.spanLength = spanLength
        self.capacity = capacity
        self.maxAhead = maxAhead
    }

    /// The `length` bytes at `offset` of `pack`, whose blobs end at `dataEnd`: from a kept span, or from a new
    /// span that `fetch` reads; a new span's next window is then fetched ahead in the background. `location`
    /// names the store in errors.
    func read(
        pack: PackID,
        location: String,
        offset: Int,
        length: Int,
        dataEnd: Int,
        fetch: @escaping Fetch
    ) throws(StorageError) -> [UInt8] {
        let (span, isNew) = claim(pack: pack, offset: offset, length: length, dataEnd: dataEnd)
        if isNew {
            fill(span, fetch)
            if span.range.upperBound < dataEnd {
                prefetch(pack: pack, offset: span.range.upperBound, length: 1, dataEnd: dataEnd, fetch: fetch)
            }
        }
        let bytes = try span.bytes()
        let start = offset - span.range.lowerBound
        guard start + length <= bytes.count else {
            throw StorageError(
                code: .damaged,
                handle: ObjectHandle(kind: .data, name: pack.hash.hex),
                location: location,
                message: "the pack is shorter than the index says; run `polyad verify`"
            )
        }
        return Array(bytes[start..<(start + length)])
    }

    /// Starts fetching the window that holds the range in the background, so that a reader coming to it later
    /// finds it read or under way: unless a kept span holds it, or `maxAhead` fetches are under way already.
    func prefetch(pack: PackID, offset: Int, length: Int, dataEnd: Int, fetch: @escaping Fetch) {
        guard ahead.add(1, ordering: .relaxed).newValue <= maxAhead else {
            ahead.subtract(1, ordering: .relaxed)
            return
        }
        let (span, isNew) = claim(pack: pack, offset: offset, length: length, dataEnd: dataEnd)
        guard isNew else {
            ahead.subtract(1, ordering: .relaxed)
            return
        }
        background.async { [self] in
            fill(span, fetch)
            ahead.subtract(1, ordering: .relaxed)
        }
    }

    /// The kept span that holds the range (now the most recently used), or a new one to fill (`true`).
    private func claim(pack: PackID, offset: Int, length: Int, dataEnd: Int) -> (Span, Bool) {
        let wanted = offset..<(offset + length)
        return spans.withLock { list -> (Span, Bool) in
            if let i = list.lastIndex(where: { $0.pack == pack && $0.range.contains(wanted) }) {
                let found = list.remove(at: i)
                list.append(found)
                return (found, false)
            }
            // Windows aligned on `spanLength`, not starting at the blob: readers that go backwards through a
            // pack (a tree walk from the root, which is written after its subtrees) still find their blobs in
            // the window already read.
            let start = offset - offset % spanLength
            let end = max(wanted.upperBound, min(dataEnd, start + spanLength))
            let new = Span(pack: pack, range: start..<end)
            list.append(new)
            var kept = list.reduce(0) { $0 + $1.range.count }
            while kept > capacity, list.count > 1 {
                kept -= list.removeFirst().range.count
            }
            return (new, true)
        }
    }

    /// Fetches a new span's bytes; a failed fetch is not kept (the next reader tries again).
    private func fill(_ span: Span, _ fetch: Fetch) {
        let r = Result { () throws(StorageError) in try fetch(span.range.lowerBound, span.range.count) }
        span.fulfil(r)
        if case .failure = r { forget(span) }
    }

    /// Drops every kept span of `pack` (its bytes were found damaged, or it was rewritten).
    func forget(_ pack: PackID) {
        spans.withLock { $0.removeAll { $0.pack == pack } }
    }

    private func forget(_ span: Span) {
        spans.withLock { $0.removeAll { $0 === span } }
    }
}

extension Range where Bound == Int {
    fileprivate func contains(_ other: Range<Int>) -> Bool {
        lowerBound <= other.lowerBound && other.upperBound <= upperBound
    }
}
