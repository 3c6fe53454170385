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
            crash at any point leaves a whole store. Packs partly in use are repacked (their used blobs copied \
            into new packs, the most wasteful packs first) until the unused bytes left are within --max-unused. \
            Takes the exclusive lock (exit 11 while another process holds a lock). --dry-run says what it would \
            free.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(name: [.short, .customLong("dry-run")], help: "Say what would be deleted; delete nothing.")
    var dryRun = false

    @OptionGroup var repacking: RepackOptions

    @Flag(name: .long, help: "Print the report as JSON (see README: JSON output).")
    var json = false

    func run() throws {
        let report = try global.manager().prune(dryRun: dryRun, maxUnused: repacking.limit, lastUse: true)
        if json { try Terminal.printJSON(PruneJSON(report)) } else { PruneSummary.print(report) }
    }
}

/// `polyad prune --json`: the report's counts, under snake_case keys.
struct PruneJSON: Encodable {
    var packs, unusedPacks, strayPacks, repackedPacks, newPacks, partlyUsedPacks, indexFilesReplaced: Int
    var bytesRepacked, unusedBytesKept, usedBytes, bytesFreed: Int64
    var dryRun: Bool

    init(_ r: PruneReport) {
        packs = r.packs
        unusedPacks = r.unusedPacks
        strayPacks = r.strayPacks
        repackedPacks = r.repackedPacks
        newPacks = r.newPacks
        partlyUsedPacks = r.partlyUsedPacks
        indexFilesReplaced = r.indexFilesReplaced
        bytesRepacked = r.bytesRepacked
        unusedBytesKept = r.unusedBytesKept
        usedBytes = r.usedBytes
        bytesFreed = r.bytesFreed
        dryRun = r.dryRun
    }

    enum CodingKeys: String, CodingKey {
        case packs
        case unusedPacks = "unused_packs"
        case strayPacks = "stray_packs"
        case repackedPacks = "repacked_packs"
        case newPacks = "new_packs"
        case partlyUsedPacks = "partly_used_packs"
        case indexFilesReplaced = "index_files_replaced"
        case bytesRepacked = "bytes_repacked"
        case unusedBytesKept = "unused_bytes_kept"
        case usedBytes = "used_bytes"
        case bytesFreed = "bytes_freed"
        case dryRun = "dry_run"
    }
}

/// `--max-unused`, for `prune` and `forget --prune`.
struct RepackOptions: ParsableArguments {
    @Option(
        name: .customLong("max-unused"),
        help: ArgumentHelp(
            "Unused data to tolerate in packs still partly in use: a percentage of the used data, a size (500M, 2G) or unlimited (never repack).",
            valueName: "limit"
        )
    )
    var maxUnused = "5%"

    var limit: UnusedLimit { UnusedLimit(maxUnused) ?? .default }

    func validate() throws {
        guard UnusedLimit(maxUnused) != nil else {
            throw ValidationError(
                "--max-unused \(maxUnused): give a percentage below 100 (5%), a size (500M) or unlimited"
            )
        }
    }
}

/// The lines `prune` and `forget --prune` print.
enum PruneSummary {
    static func print(_ r: PruneReport) {
        let gone = r.unusedPacks + r.strayPacks + r.repackedPacks
        Swift.print(
            "\(r.packs) packs: \(r.unusedPacks) unused, \(r.strayPacks) listed by no index, "
                + "\(r.repackedPacks) to repack (\(Terminal.bytes(UInt64(r.bytesRepacked))) in use in them), "
                + "\(r.partlyUsedPacks) partly used kept (\(Terminal.bytes(UInt64(r.unusedBytesKept))) unused in them)"
        )
        if r.repackedPacks > 0 && !r.dryRun {
            Swift.print(
                "Repacked \(Terminal.bytes(UInt64(r.bytesRepacked))) into \(r.newPacks) new pack\(r.newPacks == 1 ? "" : "s")"
            )
        }
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
