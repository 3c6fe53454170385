import ArgumentParser
internal import CSystemShim
import PolyadConfig
import PolyadFileSystem
import PolyadRepository
import PolyadService
import PolyadStorage

#if canImport(Glibc)
import Glibc
#endif

/// The `polyad` management CLI: a thin layer over `BackupManager`.
struct Polyad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "polyad",
        abstract: "Encrypted, compressed, deduplicated backups.",
        discussion: """
            The config file is found by -c/--config, then $POLYAD_CONFIG, then ./mount.conf, then \
            /etc/polyad/mount.conf. Exit codes: 0 ok, 1 fatal, 2 usage or config, 3 some sources unreadable, \
            10 no store, 11 locked, 12 wrong passphrase, 13 integrity error, 14 storage unreachable, \
            15 no space, 130 interrupted.
            """,
        version: PolyadVersion.string,
        subcommands: [
            InitCommand.self, BackupCommand.self, SnapshotsCommand.self, RestoreCommand.self,
            VerifyCommand.self, SyncCommand.self, ForgetCommand.self, PruneCommand.self, RepairCommand.self,
            UnlockCommand.self,
            StatsCommand.self,
            KeyCommand.self,
        ]
    )
}

@main
enum Main {
    static func main() {
        // Chunk-sized buffers (1-8 MiB) come and go on several threads: serve them with mmap always, so freed
        // buffers go back to the system instead of piling up in per-thread malloc arenas (peak memory).
        polyad_limit_malloc_caching()
        // The arguments as the kernel gave them: paths and patterns keep every byte (see PathText).
        let arguments = PathText.commandLineArguments()
        if let problem = Polyad.misplacedCommand(arguments) {
            FileHandleStream.standardError.write(
                "Error: \(problem)\nUsage: polyad <subcommand>\n  See 'polyad --help' for more information.\n"
            )
            exit(ExitCode.usage.rawValue)
        }
        // Keys and the passphrase are in this process's memory: no core dump of it.
        _ = polyad_disable_core_dumps()
        let operation = CommandAudit.operation(arguments)  // as the access log and the metrics name it
        do {
            var command = try Polyad.parseAsRoot(arguments)
            try command.run()
            CommandAudit.finish(arguments: arguments, operation: operation, exitCode: 0)
            MetricsExport.finish(operation: operation)
        } catch {
            let code = report(error)
            CommandAudit.finish(arguments: arguments, operation: operation, exitCode: code)
            MetricsExport.finish(operation: operation)
            exit(code)
        }
    }

    /// Prints one line for `error` and returns its exit code, which ``ExitCode/init(for:)`` decides (README
    /// "Exit codes").
    static func report(_ error: any Error) -> Int32 {
        let code = PolyadRepository.ExitCode(for: error)
        switch error {
        case let e as CommandFailure:
            if !e.message.isEmpty { Terminal.error(e.message) }
        case let e as RepositoryError:
            Terminal.error(e.message)
        case let e as ConfigError:
            Terminal.error(e.description)
        case let e as StorageError:
            Terminal.error(e.description)
        case let e as SystemError:
            Terminal.error(e.description)
        default:
            let message = Polyad.fullMessage(for: error)
            if Polyad.exitCode(for: error) == .success {  // help and --version arrive as errors: not failures
                if !message.isEmpty { print(message) }
                return 0
            }
            if code == .usage {  // the parser's own message, with its usage line
                FileHandleStream.standardError.write(message + "\n")
            } else {
                Terminal.error(message.isEmpty ? "\(error)" : message)
            }
        }
        return code.rawValue
    }
}

extension Polyad {
    /// Why `arguments` name no command although they are not a request for the overview (`polyad`, `--help`):
    /// `polyad -- …` (nothing after `--` is a command) or `polyad help NAME` for a command that does not exist.
    /// ArgumentParser would print the overview and exit 0 for both.
    static func misplacedCommand(_ arguments: [String]) -> String? {
        if arguments.first == "--" {
            return "`--` ends the options, but a command must come first: polyad COMMAND [OPTIONS] [-- ARGUMENTS]"
        }
        guard arguments.first == "help", arguments.count > 1 else { return nil }
        var level: [any ParsableCommand.Type] = configuration.subcommands
        for name in arguments.dropFirst() where !name.hasPrefix("-") {
            guard let next = level.first(where: { $0._commandName == name }) else {
                let names = level.map { $0._commandName }.joined(separator: ", ")
                return "there is no command '\(PathText.display(name))' to explain; the commands are: \(names)"
            }
            level = next.configuration.subcommands
        }
        return nil
    }
}

/// A command's own failure with a chosen exit code (the message is already printed when empty).
struct CommandFailure: ExitCodeCarrying {
    var code: PolyadRepository.ExitCode
    var message: String

    var exitCode: PolyadRepository.ExitCode { code }
}
