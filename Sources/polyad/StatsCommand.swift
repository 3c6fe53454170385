import ArgumentParser
import Foundation
import PolyadRepository

/// `polyad stats`: the store's statistics.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Show the store's statistics.")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        let s = try global.manager().backupStatistics()
        if json {
            try Terminal.printJSON(s)
            return
        }
        print("Snapshots:             \(s.snapshotCount)")
        print("Logical size (all):    \(Terminal.bytes(s.totalLogicalBytes))")
        print("Logical size (latest): \(Terminal.bytes(s.latestLogicalBytes))")
        print("Unique data:           \(Terminal.bytes(s.uniqueBytes)) in \(s.chunkCount) chunks")
        print("Stored size:           \(Terminal.bytes(s.storedBytes)) in \(s.packCount) packs")
        print("Deduplication ratio:   \(String(format: "%.2f", s.deduplicationRatio))")
        print("Compression ratio:     \(String(format: "%.2f", s.compressionRatio))")
        print(
            "Last backup:           \(s.lastBackupTime ?? "never")"
                + (s.lastBackupDurationSeconds.map { String(format: " (%.2f s)", $0) } ?? "")
        )
        print("Failed backups:        \(s.failedBackups)" + (s.lastFailure.map { " (last: \($0))" } ?? ""))
        print("Prunes here:           \(s.pruneRuns)" + (s.lastPrune.map { " (last: \($0))" } ?? ""))
        print("Partial backups:       \(s.partialBackups)")
    }
}
