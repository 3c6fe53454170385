import ArgumentParser
import PolyadFileSystem
import PolyadRepository

/// `polyad restore SNAPSHOT[:PATH] --target DIR`.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a snapshot, or one file or folder of it, into a folder.",
        discussion: """
            SNAPSHOT is `latest`, an id or a unique prefix of one. SNAPSHOT:PATH restores only PATH (relative to \
            the snapshot root, or to the folder that held a backed-up path) under its own name. Files already \
            present and identical are left as they are; others are written to a temporary name and renamed.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The snapshot (latest, ID or ID:PATH).")
    var snapshot: String

    @Option(name: [.short, .long], help: "The folder to restore into.")
    var target: String

    @Option(name: [.short, .long], help: "Restore only paths matching this pattern (repeatable).")
    var include: [String] = []

    @Option(name: [.short, .long], help: "Leave out paths matching this pattern (repeatable).")
    var exclude: [String] = []

    @Flag(name: .long, help: "Re-read every restored file and compare it with the snapshot.")
    var verify = false

    func validate() throws {
        guard !target.isEmpty else {
            throw ValidationError("--target is empty; give the folder to restore into (`--target .` for this one)")
        }
        try PatternCheck.refuseEmpty(include + exclude)
        guard !snapshot.isEmpty else { throw ValidationError("the snapshot is empty; give latest, an id or ID:PATH") }
    }

    func run() throws {
        let manager = try global.manager()
        let signals = Interrupts.install(manager.cancellation)
        defer { for signal in signals { signal.cancel() } }
        var id = snapshot
        var options = RestoreOptions(target: PathText.bytes(target))
        if let colon = snapshot.firstIndex(of: ":") {
            id = String(snapshot[..<colon])
            options.subpath = PathText.bytes(String(snapshot[snapshot.index(after: colon)...]))
        }
        options.includes = include
        options.excludes = exclude
        options.verify = verify
        if Terminal.progressEnabled && !global.quiet {
            options.progress = { files, bytes in Terminal.progress("\(files) files, \(Terminal.bytes(bytes)) restored")
            }
        }
        let result = try manager.restore(id, options: options)
        Terminal.clearProgress()
        for e in result.errors.prefix(50) { Terminal.error(e) }
        if result.errors.count > 50 { Terminal.error("… and \(result.errors.count - 50) more errors") }
        if !global.quiet {
            var line =
                "Restored \(result.files) files (\(Terminal.bytes(result.bytes))), \(result.directories) folders, \(result.otherEntries) other entries"
            if result.unchanged > 0 { line += "; \(result.unchanged) files were already identical" }
            if verify { line += "; \(result.verified) files verified" }
            print(line)
        }
        if !result.errors.isEmpty {
            let code: PolyadRepository.ExitCode = result.damaged ? .integrity : result.noSpace ? .noSpace : .fatal
            var message = "\(result.errors.count) entries could not be restored"
            if result.damaged { message += " because the store is damaged (run `polyad verify --read-data`)" }
            if result.noSpace {
                message +=
                    ": the target ran out of space; free some and run the restore again (finished files are kept)"
            }
            throw CommandFailure(code: code, message: message)
        }
    }
}
