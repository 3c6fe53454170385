import Foundation
import PolyadFormat
import PolyadRepository
import PolyadService
import Synchronization

/// The snapshots the mount shows: read from the store at start-up and picked up again (at most every two
/// seconds) while mounted, with the day folder each belongs to and which is the newest.
final class SnapshotCatalog: Sendable {
    /// A snapshot and its day folder.
    struct Info: Sendable {
        var snapshot: Snapshot
        var day: String
    }

    private struct State {
        var snapshots: [SnapshotID: Info] = [:]
        var lastRefresh = 0.0
        /// When the set of snapshots last changed: the modification time of `/snapshots` and its day folders,
        /// so that the kernel's cached listings of them are dropped when it changes.
        var changedAt = Timestamp(seconds: Int64(Date().timeIntervalSince1970), nanoseconds: 0)
    }

    private let state = Mutex(State())
    private let repository: Repository
    /// Called on a request's thread before it waits for the store.
    private let willBlock: @Sendable () -> Void

    init(repository: Repository, willBlock: @escaping @Sendable () -> Void) {
        self.repository = repository
        self.willBlock = willBlock
    }

    /// Picks up snapshots written since the last look, and lets go of those forgotten since (by any process),
    /// at most every `interval` seconds. A forgotten snapshot leaves `/snapshots`; its files already open read on.
    func refresh(interval: Double = 2) {
        let now = ProcessInfo.processInfo.systemUptime
        let due = state.withLock { s -> Bool in
            guard now - s.lastRefresh >= interval else { return false }
            s.lastRefresh = now
            return true
        }
        guard due else { return }
        willBlock()
        guard let ids = try? repository.snapshotIDs() else { return }
        let known = state.withLock { Set($0.snapshots.keys) }
        let new = ids.filter { !known.contains($0) }
        let gone = known.subtracting(ids)
        guard !new.isEmpty || !gone.isEmpty else { return }
        // Their index entries are read when a lookup first misses (Repository.location(of:)).
        var loaded = [(SnapshotID, Info)]()
        for id in new {
            guard let snap = try? repository.loadSnapshot(id) else { continue }
            loaded.append((id, Info(snapshot: snap, day: Self.day(of: snap.time))))
        }
        let changed = Date().timeIntervalSince1970
        state.withLock { s in
            for (id, info) in loaded { s.snapshots[id] = info }
            for id in gone { s.snapshots[id] = nil }
            s.changedAt = Timestamp(
                seconds: Int64(changed),
                nanoseconds: Int64(changed.truncatingRemainder(dividingBy: 1) * 1e9)
            )
        }
    }

    /// The snapshot's day in this machine's time zone: `YYYY-MM-DD`.
    static func day(of t: Timestamp) -> String { TimeFormat.localDay(t) }

    func info(_ id: SnapshotID) -> Info? { state.withLock { $0.snapshots[id] } }

    /// How many snapshots the mount shows.
    var count: Int { state.withLock { $0.snapshots.count } }

    /// When the set of snapshots last changed.
    var changedAt: Timestamp { state.withLock { $0.changedAt } }

    /// The day folders, in order.
    func days() -> [String] { state.withLock { Set($0.snapshots.values.map(\.day)) }.sorted() }

    /// The snapshots of day folder `day`.
    func snapshots(on day: String) -> [SnapshotID] {
        state.withLock { s in s.snapshots.filter { $0.value.day == day }.map(\.key) }
    }

    /// Whether a snapshot the catalog knows satisfies `matches`.
    func contains(where matches: (Snapshot) -> Bool) -> Bool {
        state.withLock { s in s.snapshots.values.contains { matches($0.snapshot) } }
    }

    /// The newest snapshot (by time, then id).
    func latest() -> (SnapshotID, Info)? {
        state.withLock { s in
            s.snapshots.max { ($0.value.snapshot.time, $0.key.hash) < ($1.value.snapshot.time, $1.key.hash) }
        }
    }

    /// `<day>/<short id>`: where `latest` points while `id` is the newest snapshot.
    func target(of id: SnapshotID) -> [UInt8] {
        guard let info = info(id) else { return [] }
        return Array("\(info.day)/\(id.short)".utf8)
    }

    /// Where `latest` points now (empty while there is no snapshot).
    func latestTarget() -> [UInt8] {
        guard let (id, _) = latest() else { return [] }
        return target(of: id)
    }
}
