import Foundation
import PolyadFormat
import PolyadRepository
import PolyadService
import Synchronization

/// One turn at the store's writes within the mount: an `/incoming` commit and the cleanup take it, so that they
/// run one after the other rather than one failing on the other's lock.
final class StoreTurn: Sendable {
    private let mutex = Mutex(())

    func run<T>(_ body: () throws -> T) rethrows -> T { try mutex.withLock { _ in try body() } }
}

/// What `/.polyad/status` says about the automatic cleanup.
public struct CleanupStatus: Sendable, Codable {
    /// Seconds between runs (`backup.cleanup_interval`); 0 when off.
    public var intervalSeconds: Int
    public var runs = 0
    public var lastRunTime: String?
    /// What the last run did, or why it did nothing (another host held the store, no rule set).
    public var lastResult: String?
    public var lastError: String?
    public var snapshotsForgotten = 0
    public var bytesFreed: Int64 = 0
}

/// The mounted daemon's `polyad forget --prune`: every `backup.cleanup_interval` seconds the snapshots the
/// retention rules (`retention_days`, `retention:`) do not keep are forgotten and the data nothing uses any more
/// is pruned. A run that finds the store locked by another process (a backup, a prune elsewhere) skips, and
/// the next run tries again. The mount gives up its own read lock for the run; the chunks of files it has open
/// are kept (so a file open in a snapshot just forgotten reads to its end), and opening new files waits for the
/// run to end. Results go to the log, `/.polyad/status` and the statistics (`prune_runs`, `last_prune`).
final class StoreCleanup: Sendable {
    private let manager: BackupManager
    private let interval: Double
    private let readLock: StoreReadLock
    private let openChunks: @Sendable () -> [BlobID]
    /// Held for a run: no `/incoming` commit of this process runs beside it.
    private let turn: StoreTurn
    private let afterRun: @Sendable () -> Void
    private let log: @Sendable (String) -> Void
    private let event: MountEventSink
    private let state: Mutex<CleanupStatus>
    private let thread: PeriodicThread

    init(
        manager: BackupManager,
        interval: Double,
        readLock: StoreReadLock,
        openChunks: @escaping @Sendable () -> [BlobID],
        turn: StoreTurn,
        afterRun: @escaping @Sendable () -> Void,
        log: @escaping @Sendable (String) -> Void,
        event: @escaping MountEventSink = { _, _, _ in }
    ) {
        self.manager = manager
        self.interval = interval
        self.readLock = readLock
        self.openChunks = openChunks
        self.turn = turn
        self.afterRun = afterRun
        self.log = log
        self.event = event
        state = Mutex(CleanupStatus(intervalSeconds: Int(interval)))
        thread = PeriodicThread(interval: interval)
    }

    var status: CleanupStatus { state.withLock { $0 } }

    /// Starts the background thread (nothing when `interval` is 0).
    func start() {
        thread.start { [self] in
            runOnce()
            return true
        }
    }

    /// Stops the thread after the run under way, if any (a prune cut off halfway is safe, but leaves work for
    /// the next one).
    func stop() { thread.stop() }

    /// One forget + prune now.
    func runOnce() {
        var forgotten = 0
        var report: PruneReport?
        var failure: RepositoryError?
        var note: String?
        turn.run {
            readLock.withoutLock {
                do {
                    do {
                        forgotten = try manager.forget().forgotten.count
                    } catch let e as RepositoryError where e.code == .invalidArgument {
                        note = "no retention rule set: nothing forgotten"
                    }
                    report = try manager.prune(keeping: openChunks())
                } catch {
                    failure = error as? RepositoryError ?? RepositoryError(.io, "\(error)", cause: error)
                }
            }
        }
        afterRun()
        let now = TimeFormat.iso8601(PolyadRepository.Clock.now())
        let line: String
        if let failure {
            line =
                "\(failure.code == .locked ? "skipped" : "failed"): \(failure.message); next try in \(Int(interval)) s"
        } else {
            let r = report ?? PruneReport()
            let packs = r.unusedPacks + r.strayPacks + r.repackedPacks
            line =
                "forgot \(forgotten) snapshot\(forgotten == 1 ? "" : "s"), deleted \(packs) pack\(packs == 1 ? "" : "s")"
                + " (\(r.repackedPacks) repacked), freed \(max(0, r.bytesFreed)) bytes"
                + (note.map { "; \($0)" } ?? "")
        }
        log("cleanup: " + line)
        if let failure {
            event("prune", false, [("message", failure.message)])
        } else {
            event(
                "prune",
                true,
                [("forgotten", "\(forgotten)"), ("freed_bytes", "\(max(0, report?.bytesFreed ?? 0))")]
            )
        }
        state.withLock { s in
            s.runs += 1
            s.lastRunTime = now
            if let failure, failure.code != .locked { s.lastError = now + " " + failure.message }
            s.lastResult = line
            s.snapshotsForgotten += forgotten
            s.bytesFreed += max(0, report?.bytesFreed ?? 0)
        }
    }
}
