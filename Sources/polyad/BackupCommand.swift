import ArgumentParser
import Foundation
import PolyadFileSystem
import PolyadRepository
import PolyadService

/// `polyad backup PATH...`: a new snapshot.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up files and folders into a new snapshot.",
        discussion: "Exits 3 if the snapshot was made but some sources could not be read (they are listed)."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Files and folders to back up.")
    var paths: [String]

    @Option(name: .long, help: "Tag the snapshot (repeatable).")
    var tag: [String] = []

    @Option(name: .long, help: "Host name to record (default: this machine's).")
    var host: String?

    @Option(name: [.short, .long], help: "Leave out paths matching this pattern (repeatable; see README).")
    var exclude: [String] = []

    @Option(name: .customLong("exclude-file"), help: "Read exclude patterns from a file, one per line (# comments).")
    var excludeFile: [String] = []

    @Flag(name: [.short, .customLong("one-file-system")], help: "Do not cross into other file systems.")
    var oneFileSystem = false

    @Option(name: .long, help: "Record this time instead of now: \"2026-01-02 03:04:05\" (local time).")
    var time: String?

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard !paths.isEmpty else { throw ValidationError("give at least one file or folder to back up") }
        if let time, TimeFormat.parseLocal(time) == nil {
            throw ValidationError("--time \(time) is not a time: give it as \"2026-01-02 03:04:05\" (local time)")
        }
        try PatternCheck.refuseEmpty(exclude)
        guard !paths.contains(where: \.isEmpty) else {
            throw ValidationError(
                "an empty path names no file; give the files and folders to back up (`.` for this folder)"
            )
        }
        for (name, value) in tag.map({ ("--tag", $0) }) + (host.map { [("--host", $0)] } ?? []) {
            guard !value.isEmpty else { throw ValidationError("\(name) is empty; give it a name") }
            guard !PathText.hasRawBytes(value) else {
                throw ValidationError(
                    "\(name) \(PathText.display(value)) is not UTF-8 text; snapshots store it as text"
                )
            }
        }
    }

    func run() throws {
        var patterns = exclude
        for file in excludeFile {
            let bytes: [UInt8]
            do {
                bytes = try FileSystem.contents(of: PathText.bytes(file), limit: 64 << 20)
            } catch {
                throw CommandFailure(
                    code: .usage,
                    message: "cannot read the exclude file \(PathText.display(file)): \(error.reason)"
                )
            }
            // Lines as the bytes they hold (a pattern may name a file that is not UTF-8); CRLF endings allowed.
            patterns += bytes.split(separator: 0x0A).map { line in
                PathText.string(line.last == 0x0D ? line.dropLast() : line)
            }.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty && !$0.hasPrefix("#") }
        }
        let manager = try global.manager()
        let signals = Interrupts.install(manager.cancellation)
        defer { for signal in signals { signal.cancel() } }
        var options = BackupOptions(paths: paths.map(PathText.bytes))
        options.tags = tag
        options.host = host
        options.excludes = patterns
        options.oneFileSystem = oneFileSystem
        options.time = time.flatMap { TimeFormat.parseLocal($0) }
        let showProgress = Terminal.progressEnabled && !global.quiet && !json
        var progress: (@Sendable (BackupProgress) -> Void)?
        if showProgress {
            progress = { p in
                Terminal.progress("[\(Terminal.duration(p.elapsed))] \(p.files) files, \(Terminal.bytes(p.bytes))")
            }
        }
        let result = try manager.createBackup(options: options, progress: progress)
        Terminal.clearProgress()
        for w in result.warnings { Terminal.warning("skipped: \(w)") }
        let s = result.snapshot.summary
        if json {
            try Terminal.printJSON(["id": result.id.hash.hex, "short_id": result.id.short] as [String: String])
        } else if !global.quiet {
            print("Files:   \(s.filesNew) new, \(s.filesChanged) changed, \(s.filesUnchanged) unchanged")
            print("Dirs:    \(s.directories), other entries: \(s.otherEntries)")
            print(
                "Added:   \(Terminal.bytes(s.addedBytes)) (\(Terminal.bytes(s.storedBytes)) stored after compression and encryption)"
            )
            print(
                "Total:   \(Terminal.bytes(s.totalBytes)) in \(Terminal.duration(s.durationSeconds)) (\(String(format: "%.2f", s.durationSeconds)) s)"
            )
            print("snapshot \(result.id.short) saved")
        }
        if !result.warnings.isEmpty {
            throw CommandFailure(
                code: .partial,
                message:
                    "\(result.warnings.count) source(s) could not be read and are not in snapshot \(result.id.short)"
            )
        }
    }
}
