import Foundation
import PolyadService
import Synchronization

/// The mounted daemon's `polyad sync`: every `mirror.sync_interval` seconds, what one copy of a mirrored store
/// lacks (writes it missed while it was down, with `mirror.require_all: false`) is copied from the other, and a
/// copy set aside takes writes again once it is caught up. Objects are compared by listing and size, as
/// `polyad sync` without `--read-data` does; damage inside objects is found and mended on read, or by
/// `verify --repair`. Nothing runs for a store kept in one place.
public final class MirrorCatchUp: Sendable {
    private let manager: BackupManager
    private let interval: Double
    private let log: @Sendable (String) -> Void
    private let thread: PeriodicThread

    /// Catch-up runs every `interval` seconds for `manager`'s store; `log` gets one line per run that copied
    /// something or failed.
    public init(manager: BackupManager, interval: Double, log: @escaping @Sendable (String) -> Void) {
        self.manager = manager
        self.interval = interval
        self.log = log
        thread = PeriodicThread(interval: interval)
    }

    /// Starts the background thread (nothing when `interval` is 0).
    public func start() { thread.start { [self] in runOnce() } }

    /// Stops the thread, after the run under way (if any) has finished: objects are written whole, but a run
    /// cut off would leave its temporary files behind.
    public func stop() { thread.stop() }

    /// One catch-up run now; false when the store is not a mirror (nothing to do, ever).
    @discardableResult
    public func runOnce() -> Bool {
        do {
            guard let report = try manager.reconcileCopies(readData: false, repair: true) else { return false }
            let mended = report.problems.filter(\.repaired)
            if !mended.isEmpty {
                let bytes = ByteCountFormatter.string(fromByteCount: report.bytesCopied, countStyle: .file)
                log("mirror: caught up \(mended.count) object(s) (\(bytes)) missing or damaged on a copy")
            }
            for problem in report.unrepaired { log("mirror: \(problem)") }
        } catch {
            log("mirror: catch-up failed: \(error); next try in \(Int(interval)) s (mirror.sync_interval)")
        }
        return true
    }
}
