import ArgumentParser
import Foundation
import PolyadConfig
import PolyadFileSystem
import PolyadRepository
import PolyadService

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: [.customShort("c"), .long],
        help: "The config file (default: $POLYAD_CONFIG, ./mount.conf, /etc/polyad/mount.conf)."
    )
    var config: String?

    @Flag(name: [.short, .long], help: "Print less.")
    var quiet = false

    @Option(
        name: .customLong("retry-lock"),
        help: ArgumentHelp(
            "While another process holds a conflicting lock, keep trying this long (30s, 5m, 1h) before exit 11.",
            valueName: "duration"
        )
    )
    var retryLock: String?

    func validate() throws {
        if let retryLock, Self.seconds(retryLock) == nil {
            throw ValidationError("--retry-lock \(retryLock): give a duration such as 30s, 5m or 1h")
        }
    }

    /// `90`, `90s`, `5m`, `1h` in seconds.
    static func seconds(_ text: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3_600]
        var number = Substring(text)
        var scale = 1.0
        if let last = number.last, let u = units[last] {
            scale = u
            number = number.dropLast()
        }
        guard let n = Double(number), n.isFinite, n >= 0 else { return nil }
        return n * scale
    }

    /// The environment, with a passphrase read from the terminal when no other source gives one.
    func environment(for configuration: Configuration, confirm: Bool = false) throws -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        if case .none = configuration.passphraseSource, env[Configuration.passwordVariable] == nil,
            Terminal.isInteractive
        {
            env[Configuration.passwordVariable] = try Terminal.readPassphrase(confirm: confirm)
        }
        if let wait = retryLock.flatMap(Self.seconds) { env[LockTiming.waitVariable] = String(wait) }
        return env
    }

    func loadConfiguration() throws -> Configuration {
        var environment = ProcessInfo.processInfo.environment
        // The config's path as the kernel gave it (Foundation would repair bytes that are not UTF-8).
        environment[Configuration.configVariable] = PathText.environment(Configuration.configVariable)
        let configuration = try Configuration.load(explicit: config, environment: environment)
        CommandAudit.configured(accessLog: configuration.log.access)
        return configuration
    }

    /// The manager for the configured store.
    func manager() throws -> BackupManager {
        let configuration = try loadConfiguration()
        let manager = BackupManager(config: configuration, environment: try environment(for: configuration))
        MetricsExport.opened(manager)
        return manager
    }
}

/// Checks of pattern options made before anything is opened, so a bad one changes nothing.
enum PatternCheck {
    /// An empty pattern (`--exclude ''`) matches nothing: refused, as PathFilter would refuse it later.
    static func refuseEmpty(_ patterns: [String]) throws {
        guard !patterns.contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            throw ValidationError("an empty pattern matches nothing; remove it")
        }
    }
}
