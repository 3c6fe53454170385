import Dispatch
import PolyadFormat
import Synchronization

/// Where a blob is stored.
public struct BlobLocation: Sendable, Hashable {
    public var pack: PackID
    public var type: BlobType
    public var offset: UInt32
    public var length: UInt32
    public var rawLength: UInt32
}

/// The in-memory union of all index files, plus the blobs reserved by writers of this process that are not
/// in a pack yet. Thread-safe; lookups take one short lock.
///
/// Memory: entries live in one array sorted by id (48 bytes each: the 32-byte id, pack number with the type
/// in its top bit, offset and lengths), so 1 M chunks take 48 MB and 100 M about 4.8 GB. Entries added since
/// the last merge (packs written by this process, index files read later) wait in a small hash table and are
/// merged into the array when it grows past an eighth of it. Packs are numbered so their ids are stored once.
public final class MasterIndex: Sendable {
    /// One entry of the sorted table.
    struct Record {
        var id: Hash256
        /// The pack's number; the top bit set for a tree blob.
        var packAndType: UInt32
        var offset: UInt32
        var length: UInt32
        var rawLength: UInt32

        static let treeBit: UInt32 = 1 << 31

        init(id: Hash256, pack: UInt32, entry e: PackEntry) {
            self.id = id
            packAndType = pack | (e.type == .tree ? Self.treeBit : 0)
            offset = e.offset
            length = e.length
            rawLength = e.rawLength
        }

        var pack: Int { Int(packAndType & ~Self.treeBit) }
        var type: BlobType { packAndType & Self.treeBit != 0 ? .tree : .data }
    }

    struct State {
        /// Sorted by `precedes` on the id, one record per id.
        var sorted: [Record] = []
        /// Added since the last merge (newer than `sorted` where both hold an id).
        var recent: [Hash256: Record] = [:]
        var packs: [PackID] = []
        var packNumbers: [PackID: UInt32] = [:]
        /// Per pack number: where its last indexed blob ends (the pack's header follows).
        var packEnds: [UInt32] = []
        var reserved: Set<Hash256> = []

        func find(_ id: Hash256) -> Record? {
            if let r = recent[id] { return r }
            var lo = 0
            var hi = sorted.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if MasterIndex.precedes(sorted[mid].id, id) { lo = mid + 1 } else { hi = mid }
            }
            return lo < sorted.count && sorted[lo].id == id ? sorted[lo] : nil
        }

        mutating func number(of pack: PackID) -> UInt32 {
            if let n = packNumbers[pack] { return n }
            let n = UInt32(packs.count)
            precondition(n < Record.treeBit, "more than 2^31 packs")
            packs.append(pack)
            packEnds.append(0)
            packNumbers[pack] = n
            return n
        }

        mutating func extend(_ number: UInt32, over entries: [PackEntry]) {
            for e in entries { packEnds[Int(number)] = max(packEnds[Int(number)], e.offset + e.length) }
        }

        /// Merges `recent` into `sorted` once it is large enough to pay for the pass (or when `force`).
        mutating func mergeIfDue(force: Bool = false) {
            guard !recent.isEmpty, force || recent.count > max(4096, sorted.count / 8) else { return }
            var incoming = Array(recent.values)
            recent = [:]
            incoming.sort { MasterIndex.precedes($0.id, $1.id) }
            var merged = [Record]()
            merged.reserveCapacity(sorted.count + incoming.count)
            var i = 0
            var j = 0
            while i < sorted.count || j < incoming.count {
                if j == incoming.count || (i < sorted.count && MasterIndex.precedes(sorted[i].id, incoming[j].id)) {
                    merged.append(sorted[i])
                    i += 1
                } else {
                    if i < sorted.count && sorted[i].id == incoming[j].id { i += 1 }  // the newer one wins
                    merged.append(incoming[j])
                    j += 1
                }
            }
            sorted = merged
        }
    }

    /// The table's order: by the id's words (a total order; cheaper than comparing bytes).
    static func precedes(_ a: Hash256, _ b: Hash256) -> Bool {
        if a.w0 != b.w0 { return a.w0 < b.w0 }
        if a.w1 != b.w1 { return a.w1 < b.w1 }
        if a.w2 != b.w2 { return a.w2 < b.w2 }
        return a.w3 < b.w3
    }

    private let state = Mutex(State())

    public init() {}

    /// Sorts records by id in place (quicksort with median-of-three pivots, insertion sort on short runs, heap
    /// sort past a depth limit): no memory beside the table, where `Array.sort` needs half of it again.
    static func introsort(_ a: UnsafeMutableBufferPointer<Record>) {
        func less(_ i: Int, _ j: Int) -> Bool { precedes(a[i].id, a[j].id) }
        func siftDown(_ start: Int, _ end: Int, base: Int) {
            var root = start
            while 2 * root + 1 < end {
                var child = 2 * root + 1
                if child + 1 < end && less(base + child, base + child + 1) { child += 1 }
                guard less(base + root, base + child) else { return }
                a.swapAt(base + root, base + child)
                root = child
            }
        }
        func heapsort(_ lo: Int, _ hi: Int) {
            let n = hi - lo
            for start in stride(from: n / 2 - 1, through: 0, by: -1) { siftDown(start, n, base: lo) }
            for end in stride(from: n - 1, to: 0, by: -1) {
                a.swapAt(lo, lo + end)
                siftDown(0, end, base: lo)
            }
        }
        func sort(_ lo: Int, _ hi: Int, depth: Int) {
            var lo = lo
            var depth = depth
            while hi - lo > 16 {
                if depth == 0 { return heapsort(lo, hi) }
                depth -= 1
                let mid = lo + (hi - lo) / 2
                if less(mid, lo) { a.swapAt(mid, lo) }
                if less(hi - 1, lo) { a.swapAt(hi - 1, lo) }
                if less(hi - 1, mid) { a.swapAt(hi - 1, mid) }
                a.swapAt(mid, hi - 1)  // the pivot (median of three) at the end
                var store = lo
                for i in lo..<(hi - 1) where less(i, hi - 1) {
                    a.swapAt(i, store)
                    store += 1
                }
                a.swapAt(store, hi - 1)
                // Recurse into the smaller side, loop on the larger (stack depth stays logarithmic).
                if store - lo < hi - store - 1 {
                    sort(lo, store, depth: depth)
                    lo = store + 1
                } else {
                    sort(store + 1, hi, depth: depth)
                    return sort(lo, store, depth: depth)
                }
            }
            guard hi - lo > 1 else { return }
            for i in (lo + 1)..<hi {
                var j = i
                while j > lo && less(j, j - 1) {
                    a.swapAt(j, j - 1)
                    j -= 1
                }
            }
        }
        var depth = 0
        var n = a.count
        while n > 1 {
            depth += 2
            n >>= 1
        }
        sort(0, a.count, depth: depth)
    }

    /// Adds every entry of `pack`.
    public func add(pack: PackID, entries: [PackEntry]) {
        state.withLock { s in
            let number = s.number(of: pack)
            s.extend(number, over: entries)
            for e in entries { s.recent[e.id.hash] = Record(id: e.id.hash, pack: number, entry: e) }
            if !s.reserved.isEmpty { for e in entries { s.reserved.remove(e.id.hash) } }
            s.mergeIfDue()
        }
    }

    /// Adds the packs of `count` index files in one pass (loading a store's index): `produce(i)` is called
    /// for every file on all cores, and its entries go straight into one new table, sorted once and merged.
    public func load(
        count: Int,
        estimatedEntries: Int,
        produce: @Sendable (Int) -> [(pack: PackID, entries: [PackEntry])]
    ) {
        let batch = Mutex<[Record]>([])
        batch.withLock { $0.reserveCapacity(estimatedEntries) }
        DispatchQueue.concurrentPerform(iterations: count) { i in
            let packs = produce(i)
            let numbers = state.withLock { s in
                packs.map { p in
                    let n = s.number(of: p.pack)
                    s.extend(n, over: p.entries)
                    return n
                }
            }
            var records = [Record]()
            records.reserveCapacity(packs.reduce(0) { $0 + $1.entries.count })
            for (k, (_, entries)) in packs.enumerated() {
                for e in entries { records.append(Record(id: e.id.hash, pack: numbers[k], entry: e)) }
            }
            batch.withLock { $0.append(contentsOf: records) }
        }
        var records = batch.withLock { b in
            defer { b = [] }
            return b
        }
        state.withLock { s in
            if !s.reserved.isEmpty { for r in records { s.reserved.remove(r.id) } }
            s.mergeIfDue(force: true)
            guard s.sorted.isEmpty else {
                for r in records { s.recent[r.id] = r }
                s.mergeIfDue(force: true)
                return
            }
            // A store's first load: sort in place; of equal ids (one blob in two packs) one is kept.
            // In place: the standard library's sort (stable) takes a buffer of half the table beside it.
            records.withUnsafeMutableBufferPointer { Self.introsort($0) }
            var kept = 0
            for i in records.indices {
                if kept > 0 && records[kept - 1].id == records[i].id {
                    records[kept - 1] = records[i]
                } else {
                    records[kept] = records[i]
                    kept += 1
                }
            }
            records.removeLast(records.count - kept)
            s.sorted = records
        }
    }

    /// The blob's location, if it is in a pack.
    public func lookup(_ blob: BlobID) -> BlobLocation? {
        let id = blob.hash
        return state.withLock { s in
            guard let r = s.find(id) else { return nil }
            return BlobLocation(
                pack: s.packs[r.pack],
                type: r.type,
                offset: r.offset,
                length: r.length,
                rawLength: r.rawLength
            )
        }
    }

    /// Where the blobs the index knows of in `pack` end: the length of its data region, the bytes a reader may
    /// fetch ahead of a blob without reaching the header.
    public func dataEnd(of pack: PackID) -> Int? {
        state.withLock { s in s.packNumbers[pack].map { Int(s.packEnds[Int($0)]) } }
    }

    /// True if the blob is stored or being stored.
    public func contains(_ blob: BlobID) -> Bool {
        let id = blob.hash
        return state.withLock { $0.find(id) != nil || $0.reserved.contains(id) }
    }

    /// Claims `id` for this writer: true if nobody has stored or claimed it yet (so the caller must store it).
    public func reserve(_ blob: BlobID) -> Bool {
        let id = blob.hash
        return state.withLock { s in
            if s.find(id) != nil { return false }
            return s.reserved.insert(id).inserted
        }
    }

    /// Forgets every entry and pack (claims stay), before the index is read again from other files.
    public func removeAll() {
        state.withLock { s in
            s.sorted = []
            s.recent = [:]
            s.packs = []
            s.packNumbers = [:]
            s.packEnds = []
        }
    }

    /// Forgets claims that were never stored (after a failed run).
    public func dropReservations() { state.withLock { $0.reserved.removeAll() } }

    /// Number of indexed blobs.
    public var count: Int {
        state.withLock { s in
            s.mergeIfDue(force: true)
            return s.sorted.count
        }
    }

    /// Every pack the index knows of.
    public var packs: [PackID] { state.withLock { $0.packs } }

    /// The table as it stands, shared with the index (no copy while neither changes): positions in it stay
    /// put, so a prune can mark blobs by position in a bit set instead of holding a set of ids.
    func frozen() -> IndexTable {
        state.withLock { s in
            s.mergeIfDue(force: true)
            return IndexTable(records: s.sorted, packs: s.packs)
        }
    }

    /// A snapshot of all entries, grouped by pack (for verify).
    public func entriesByPack() -> [PackID: [PackEntry]] {
        state.withLock { s in
            s.mergeIfDue(force: true)
            var out = [PackID: [PackEntry]]()
            for r in s.sorted {
                out[s.packs[r.pack], default: []].append(
                    PackEntry(
                        type: r.type,
                        id: BlobID(r.id),
                        offset: r.offset,
                        length: r.length,
                        rawLength: r.rawLength
                    )
                )
            }
            return out
        }
    }

    /// Sum of raw and stored lengths of data blobs.
    public func dataTotals() -> (raw: UInt64, stored: UInt64, count: Int) {
        state.withLock { s in
            s.mergeIfDue(force: true)
            var raw: UInt64 = 0
            var stored: UInt64 = 0
            var n = 0
            for r in s.sorted where r.type == .data {
                raw += UInt64(r.rawLength)
                stored += UInt64(r.length)
                n += 1
            }
            return (raw, stored, n)
        }
    }
}

/// A read-only view of the index's table at one moment (``MasterIndex/frozen()``): records sorted by id, one per
/// blob, and the packs their numbers refer to.
struct IndexTable {
    let records: [MasterIndex.Record]
    let packs: [PackID]

    var count: Int { records.count }

    /// The position of `id` in the table.
    func position(of id: Hash256) -> Int? {
        var lo = 0
        var hi = records.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if MasterIndex.precedes(records[mid].id, id) { lo = mid + 1 } else { hi = mid }
        }
        return lo < records.count && records[lo].id == id ? lo : nil
    }

    /// The pack number of the record at `position` (an index into `packs`).
    func pack(at position: Int) -> Int { records[position].pack }

    /// The record at `position` as a pack entry.
    func entry(at position: Int) -> PackEntry {
        let r = records[position]
        return PackEntry(type: r.type, id: BlobID(r.id), offset: r.offset, length: r.length, rawLength: r.rawLength)
    }
}
