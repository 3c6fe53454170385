import ArgumentParser
import PolyadMirror
import PolyadRepository

/// `polyad sync`: catches up the copy of a mirrored store that missed writes, and mends damaged copies.
struct SyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Bring both copies of a mirrored store (local_dir and s3_bucket) to the same objects.",
        discussion: """
            Every object one copy lacks (written while the other was down, with mirror.require_all: false) is \
            copied to it once its bytes match its name; snapshots go last. --read-data also reads and hashes both \
            copies of every object and rewrites a damaged one from the good one. Exit 13 if an object is damaged \
            on both copies, 14 if a copy cannot be reached.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(name: .customLong("read-data"), help: "Also read and hash both copies of every object.")
    var readData = false

    func run() throws {
        let manager = try global.manager()
        var progress: (@Sendable (Int, Int) -> Void)?
        if Terminal.progressEnabled && !global.quiet {
            progress = { done, total in Terminal.progress("compared \(done) of \(total) objects") }
        }
        guard let report = try manager.reconcileCopies(readData: readData, repair: true, progress: progress) else {
            throw CommandFailure(
                code: .usage,
                message: "this store is kept in one place; `polyad sync` needs both backup.local_dir and "
                    + "backup.s3_bucket in the config file"
            )
        }
        Terminal.clearProgress()
        try MirrorSummary.print(report, quiet: global.quiet, repairing: true)
    }
}

/// The lines `sync` and `verify` print for a comparison of the mirror's copies.
enum MirrorSummary {
    static func print(_ report: MirrorReport, quiet: Bool, repairing: Bool) throws {
        if !quiet {
            for p in report.problems { Swift.print(p.repaired ? "repaired: \(p)" : "damaged: \(p)") }
            let mended = report.problems.count - report.unrepaired.count
            Swift.print(
                "Compared \(report.objects) objects on both copies"
                    + (report.bytesRead > 0 ? " (read \(Terminal.bytes(UInt64(report.bytesRead))))" : "")
                    + (mended > 0 ? "; mended \(mended) (\(Terminal.bytes(UInt64(report.bytesCopied))) copied)" : "")
            )
        }
        let left = report.unrepaired
        guard left.isEmpty else {
            throw CommandFailure(
                code: .integrity,
                message: "\(left.count) object(s) missing or damaged on a copy"
                    + (repairing ? ": no good copy of them is left" : "; run `polyad verify --repair` to mend them")
            )
        }
    }
}
