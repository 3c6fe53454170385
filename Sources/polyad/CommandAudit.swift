import ArgumentParser
import Foundation
import PolyadAudit
import PolyadFileSystem
import Synchronization

/// Who ran which command, appended to the access log (`log.access`) when the config names one: one line per
/// run, with its outcome and exit code. The arguments are recorded (they hold paths and snapshot ids, never
/// a passphrase: none is taken on the command line).
enum CommandAudit {
    /// The access log of the config the command loaded, if any.
    private static let logPath = Mutex<[UInt8]?>(nil)

    /// Called when a command has read its config.
    static func configured(accessLog: String?) {
        logPath.withLock { $0 = accessLog.map(PathText.bytes) }
    }

    /// Appends the line for this run; a log that cannot be written is reported on standard error and does not
    /// change the exit code.
    static func finish(arguments: [String], operation: String, exitCode: Int32) {
        guard let path = logPath.withLock({ $0 }) else { return }
        let uid = getuid()
        let event = AccessEvent(
            uid: uid,
            user: Accounts.userName(uid: uid),
            pid: getpid(),
            process: "polyad",
            op: operation,
            result: exitCode == 0 ? .ok : .failed,
            fields: [
                ("exit_code", "\(exitCode)"),
                ("args", arguments.map { PathBytes.display(PathText.bytes($0)) }.joined(separator: " ")),
            ]
        )
        do { try AccessLog.append([event], to: path) } catch {
            FileHandleStream.standardError.write("polyad: the access log was not written: \(error)\n")
        }
    }

    /// The command as the log names it: `backup`, `key-add`, `repair-index`; the first argument naming a
    /// command wherever it stands (`polyad -c FILE backup …`), and for a command with subcommands the next one
    /// naming one of those. `polyad` when none does.
    static func operation(_ arguments: [String]) -> String {
        var commands: [any ParsableCommand.Type] = Polyad.configuration.subcommands
        var words: [String] = []
        for argument in arguments {
            guard let command = commands.first(where: { $0._commandName == argument }) else { continue }
            words.append(argument)
            commands = command.configuration.subcommands
            if commands.isEmpty { break }
        }
        return words.isEmpty ? "polyad" : words.joined(separator: "-")
    }
}
