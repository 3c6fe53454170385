import Synchronization
import PolyadFormat

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
/// Memory: one entry is a 32-byte id plus 20 bytes (pack number, offset, lengths, type) in a hash table, so
/// 100 M chunks need about 8 GiB; packs are numbered so their ids are stored once.
public final class MasterIndex: Sendable {
    struct Entry {
        var pack: UInt32
        var type: BlobType
        var offset: UInt32
        var length: UInt32
        var rawLength: UInt32
    }

    struct State {
        var entries: [Hash256: Entry] = [:]
        var packs: [PackID] = []
        var packNumbers: [PackID: UInt32] = [:]
        var reserved: Set<Hash256> = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Adds every entry of `pack`.
    public func add(pack: PackID, entries: [PackEntry]) {
        add([(pack, entries)])
    }

    /// Adds every entry of each pack, in one pass (the table grows once).
    public func add(_ packs: [(pack: PackID, entries: [PackEntry])]) {
        state.withLock { s in
            s.entries.reserveCapacity(s.entries.count + packs.reduce(0) { $0 + $1.entries.count })
            for (pack, entries) in packs { Self.add(pack: pack, entries: entries, to: &s) }
        }
    }

    private static func add(pack: PackID, entries: [PackEntry], to s: inout State) {
        let number: UInt32
        if let n = s.packNumbers[pack] {
            number = n
        } else {
            number = UInt32(s.packs.count)
            s.packs.append(pack)
            s.packNumbers[pack] = number
        }
        for e in entries {
            s.entries[e.id] = Entry(pack: number, type: e.type, offset: e.offset, length: e.length, rawLength: e.rawLength)
        }
        if !s.reserved.isEmpty { for e in entries { s.reserved.remove(e.id) } }
    }

    /// The blob's location, if it is in a pack.
    public func lookup(_ id: Hash256) -> BlobLocation? {
        state.withLock { s in
            guard let e = s.entries[id] else { return nil }
            return BlobLocation(pack: s.packs[Int(e.pack)], type: e.type, offset: e.offset, length: e.length,
                                rawLength: e.rawLength)
        }
    }

    /// True if the blob is stored or being stored.
    public func contains(_ id: Hash256) -> Bool {
        state.withLock { $0.entries[id] != nil || $0.reserved.contains(id) }
    }

    /// Claims `id` for this writer: true if nobody has stored or claimed it yet (so the caller must store it).
    public func reserve(_ id: Hash256) -> Bool {
        state.withLock { s in
            if s.entries[id] != nil { return false }
            return s.reserved.insert(id).inserted
        }
    }

    /// Forgets claims that were never stored (after a failed run).
    public func dropReservations() { state.withLock { $0.reserved.removeAll() } }

    /// Number of indexed blobs.
    public var count: Int { state.withLock { $0.entries.count } }

    /// Every pack the index knows of.
    public var packs: [PackID] { state.withLock { $0.packs } }

    /// A snapshot of all entries, grouped by pack (for verify).
    public func entriesByPack() -> [PackID: [PackEntry]] {
        state.withLock { s in
            var out = [PackID: [PackEntry]]()
            for (id, e) in s.entries {
                out[s.packs[Int(e.pack)], default: []].append(
                    PackEntry(type: e.type, id: id, offset: e.offset, length: e.length, rawLength: e.rawLength))
            }
            return out
        }
    }

    /// Sum of raw and stored lengths of data blobs.
    public func dataTotals() -> (raw: UInt64, stored: UInt64, count: Int) {
        state.withLock { s in
            var raw: UInt64 = 0, stored: UInt64 = 0, n = 0
            for e in s.entries.values where e.type == .data {
                raw += UInt64(e.rawLength)
                stored += UInt64(e.length)
                n += 1
            }
            return (raw, stored, n)
        }
    }
}
