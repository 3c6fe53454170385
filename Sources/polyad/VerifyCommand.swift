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

    @Flag(name: .long, help: "Print the report as JSON (see README: JSON output); the exit code is the same.")
    var json = false

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
            do { try MirrorSummary.print(copies, quiet: global.quiet || json, repairing: repair) } catch {
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
        if json {
            try Terminal.printJSON(VerifyJSON(report, mirrorProblems: mirrorProblems))
            if !report.isClean {
                throw CommandFailure(code: .integrity, message: "\(report.damaged.count) damaged object(s) found")
            }
            if mirrorProblems > 0 {
                throw CommandFailure(
                    code: .integrity,
                    message: "\(mirrorProblems) object(s) missing or damaged on one copy"
                )
            }
            return
        }
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

/// `polyad verify --json`.
struct VerifyJSON: Encodable {
    struct Damage: Encodable {
        var object: String
        var problem: String
    }
    var clean: Bool
    var snapshotsChecked, treesChecked, packsChecked, packsRead, blobsRead: Int
    var bytesRead: UInt64
    var damaged: [Damage]
    var affected: [String]
    var affectedSnapshots: [String]
    var unreferencedPacks, duplicatePacks: Int
    /// Objects missing or damaged on one copy of a mirrored store and not repaired (0 for one copy).
    var mirrorProblems: Int

    init(_ r: VerifyReport, mirrorProblems: Int) {
        clean = r.isClean && mirrorProblems == 0
        snapshotsChecked = r.snapshotsChecked
        treesChecked = r.treesChecked
        packsChecked = r.packsChecked
        packsRead = r.packsRead
        blobsRead = r.blobsRead
        bytesRead = r.bytesRead
        damaged = r.damaged.map { Damage(object: $0.object, problem: $0.problem) }
        affected = r.affected
        affectedSnapshots = r.affectedSnapshots.map { "\($0)" }
        unreferencedPacks = r.unreferencedPacks
        duplicatePacks = r.duplicatePacks
        self.mirrorProblems = mirrorProblems
    }

    enum CodingKeys: String, CodingKey {
        case clean, damaged, affected
        case snapshotsChecked = "snapshots_checked"
        case treesChecked = "trees_checked"
        case packsChecked = "packs_checked"
        case packsRead = "packs_read"
        case blobsRead = "blobs_read"
        case bytesRead = "bytes_read"
        case affectedSnapshots = "affected_snapshots"
        case unreferencedPacks = "unreferenced_packs"
        case duplicatePacks = "duplicate_packs"
        case mirrorProblems = "mirror_problems"
    }
}
