import ArgumentParser
import Foundation
import PolyadRepository

/// `polyad backup PATH...`: a new snapshot.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up files and folders into a new snapshot.",
        discussion: "Exits 3 if the snapshot was made but some sources could not be read (they are listed).")

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

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard !paths.isEmpty else { throw ValidationError("give at least one file or folder to back up") }
    }

    func run() throws {
        var patterns = exclude
        for file in excludeFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw CommandFailure(code: .usage, message: "cannot read the exclude file \(file)")
            }
            patterns += text.split(separator: "\n").map { String($0) }
                .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty && !$0.hasPrefix("#") }
        }
        let manager = try global.manager()
        let signals = Interrupts.install(manager.cancellation)
        defer { signals.forEach { $0.cancel() } }
        var options = BackupOptions(paths: paths.map { Array($0.utf8) })
        options.tags = tag
        options.host = host
        options.excludes = patterns
        options.oneFileSystem = oneFileSystem
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
            print("Added:   \(Terminal.bytes(s.addedBytes)) (\(Terminal.bytes(s.storedBytes)) stored after compression and encryption)")
            print("Total:   \(Terminal.bytes(s.totalBytes)) in \(Terminal.duration(s.durationSeconds)) (\(String(format: "%.2f", s.durationSeconds)) s)")
            print("snapshot \(result.id.short) saved")
        }
        if !result.warnings.isEmpty {
            throw CommandFailure(code: .partial,
                                 message: "\(result.warnings.count) source(s) could not be read and are not in snapshot \(result.id.short)")
        }
    }
}
