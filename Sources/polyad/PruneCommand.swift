import ArgumentParser
import PolyadRepository

/// `polyad prune`: gives back the space of data no snapshot uses.
struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete the packs no snapshot uses (after `forget`), and leftovers of interrupted backups.",
        discussion: """
            Every snapshot's trees are walked to mark what is in use; a new index that no longer lists the \
            unused packs is written first, then the old index files and the unused packs are deleted, so a \
            crash at any point leaves a whole store. Packs with some blobs in use are kept whole for now. Takes \
            the exclusive lock (exit 11 while another process holds a lock). --dry-run says what it would free.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(name: [.short, .customLong("dry-run")], help: "Say what would be deleted; delete nothing.")
    var dryRun = false

    func run() throws {
        let report = try global.manager().prune(dryRun: dryRun)
        PruneSummary.print(report)
    }
}

/// The lines `prune` and `forget --prune` print.
enum PruneSummary {
    static func print(_ r: PruneReport) {
        let gone = r.unusedPacks + r.strayPacks
        Swift.print(
            "\(r.packs) packs: \(r.unusedPacks) unused, \(r.strayPacks) listed by no index, "
                + "\(r.partlyUsedPacks) partly used (\(Terminal.bytes(UInt64(r.unusedBytesKept))) unused in them, kept)"
        )
        if r.dryRun {
            Swift.print(
                "Would delete \(gone) pack\(gone == 1 ? "" : "s"), freeing \(Terminal.bytes(UInt64(r.bytesFreed))) (dry run: nothing deleted)"
            )
        } else {
            Swift.print(
                "Deleted \(gone) pack\(gone == 1 ? "" : "s"), freed \(Terminal.bytes(UInt64(r.bytesFreed)))"
                    + (gone > 0 ? "; \(r.indexFilesReplaced) index file(s) replaced" : "")
            )
        }
    }
}
