import Foundation
import PolyadMetrics
import PolyadService
import Synchronization

/// The node-exporter textfile (`metrics.textfile`), rewritten after each run of a command that changes or
/// checks the store (backup, verify, forget, prune), whether it succeeded or not: cron jobs and systemd timers
/// have no daemon to scrape.
enum MetricsExport {
    /// The manager of this run, once a command made one (the store it opened is reused: no second unlock).
    private static let manager = Mutex<BackupManager?>(nil)

    /// The commands after which the file is written.
    static let commands: Set<String> = ["backup", "verify", "forget", "prune"]

    static func opened(_ m: BackupManager) { manager.withLock { $0 = m } }

    /// Writes the file if the config names one and `operation` (as the access log names it) is one of
    /// ``commands``. A failure is reported on standard error and does not change the exit code.
    static func finish(operation: String) {
        guard commands.contains(operation), let m = manager.withLock({ $0 }),
            let path = m.configuration.metricsTextfile
        else { return }
        do {
            try MetricsTextfile.write(try StoreMetrics.of(m).text(), to: path)
        } catch {
            FileHandleStream.standardError.write("polyad: metrics.textfile \(path) was not written: \(error)\n")
        }
    }
}
