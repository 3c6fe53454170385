import ArgumentParser
import PolyadRepository

/// `polyad repair index`: rebuilds the index from the packs alone.
struct RepairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair",
        abstract: "Repair parts of the store.",
        subcommands: [IndexCommand.self]
    )

    struct IndexCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "index",
            abstract: "Rebuild the index from the packs' own headers (after an index file was lost or damaged).",
            discussion: """
                Every pack's header is read; new index files listing them are written, superseding every current \
                index file, which are deleted after. Packs whose header cannot be read are left out and named \
                (exit 13). Takes the exclusive lock.
                """
        )

        @OptionGroup var global: GlobalOptions

        func run() throws {
            let report = try global.manager().repairIndex()
            for problem in report.unreadable { print("left out: \(problem)") }
            print(
                "Indexed \(report.blobs) blobs in \(report.packs) packs; replaced \(report.indexFilesReplaced) index "
                    + "file(s)"
            )
            guard report.unreadable.isEmpty else {
                throw CommandFailure(
                    code: .integrity,
                    message: "\(report.unreadable.count) pack(s) could not be read and are not in the index; "
                        + "`polyad verify` names the snapshots they hurt"
                )
            }
        }
    }
}
