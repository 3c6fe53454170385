import ArgumentParser
import PolyadRepository

/// `polyad verify`: structure, hashes and (with --read-data) every byte.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the store's integrity; exit 13 if anything is damaged.",
        discussion: """
            Always: every key slot, snapshot, index and tree is read, hashed and authenticated, every referenced \
            blob must be indexed and every indexed pack present with a matching header. --read-data also reads \
            every data pack: its SHA-256 name, every blob decrypted, authenticated, decompressed and re-identified.             A mirrored store (local_dir and s3_bucket) has both copies compared first, object by object (hashed             with --read-data); --repair rewrites a copy that is missing or damaged from the good one.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(name: .customLong("read-data"), help: "Read and check every byte of every pack.")
    var readData = false

    @Option(name: .customLong("read-data-subset"), help: "Read this share of the packs, chosen at random (e.g. 10%).")
    var subset: String?

    @Flag(help: "Rewrite a damaged or missing copy of a mirrored store from the good one.")
    var repair = false

    func validate() throws {
        if let subset {
            let text = subset.hasSuffix("%") ? String(subset.dropLast()) : subset
            guard let v = Double(text), v > 0, v <= 100 else {
                throw ValidationError("--read-data-subset takes a percentage between 0 and 100, e.g. 10%")
            }
        }
    }

    func run() throws {
        let manager = try global.manager()
        var mirrorProblems = 0
        if let copies = try manager.reconcileCopies(readData: readData, repair: repair) {
            do { try MirrorSummary.print(copies, quiet: global.quiet, repairing: repair) } catch {
                mirrorProblems = copies.unrepaired.count
            }
        } else if repair {
            throw CommandFailure(
                code: .usage,
                message: "--repair needs a second copy to repair from: set both backup.local_dir and backup.s3_bucket"
            )
        }
        var options = VerifyOptions(readData: readData)
        if let subset {
            options.readDataSubset = (Double(subset.hasSuffix("%") ? String(subset.dropLast()) : subset) ?? 0) / 100
        }
        if Terminal.progressEnabled && !global.quiet {
            options.progress = { done, total in Terminal.progress("checked \(done) of \(total) packs") }
        }
        let report = try manager.verify(options: options)
        Terminal.clearProgress()
        if !global.quiet {
            print(
                "Checked \(report.snapshotsChecked) snapshots, \(report.treesChecked) trees, \(report.packsChecked) packs"
                    + (report.packsRead > 0
                        ? "; read \(report.packsRead) packs (\(report.blobsRead) blobs, \(Terminal.bytes(report.bytesRead)))"
                        : "")
            )
            if report.unreferencedPacks > 0 {
                print(
                    "\(report.unreferencedPacks) packs are not referenced by any index (left by an interrupted backup); they do no harm"
                )
            }
            if report.duplicatePacks > 0 {
                print(
                    "\(report.duplicatePacks) packs hold only blobs stored in other packs too (two backups wrote them at once); they do no harm"
                )
            }
        }
        guard report.isClean else {
            for d in report.damaged { print("damaged: \(d)") }
            for a in report.affected { print("affected: \(a)") }
            let advice =
                report.affectedSnapshots.isEmpty
                ? "restore them from another copy of the store (no snapshot references a damaged blob)"
                : "restore them from another copy of the store, or `polyad forget "
                    + report.affectedSnapshots.map(\.short).joined(separator: " ") + "` (the affected snapshots)"
            throw CommandFailure(
                code: .integrity,
                message: "\(report.damaged.count) damaged object(s) found: \(advice)"
            )
        }
        if mirrorProblems > 0 {
            throw CommandFailure(
                code: .integrity,
                message: "\(mirrorProblems) object(s) missing or damaged on one copy (the other serves them): run "
                    + "`polyad verify --repair`" + (readData ? " --read-data" : "")
            )
        }
        if !global.quiet { print("no errors found") }
    }
}
