import ArgumentParser
import Foundation
import PolyadConfig
import PolyadRepository

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .long], help: "The config file (default: $POLYAD_CONFIG, ./mount.conf, /etc/polyad/mount.conf).")
    var config: String?

    @Flag(name: [.short, .long], help: "Print less.")
    var quiet = false

    /// The environment, with a passphrase read from the terminal when no other source gives one.
    func environment(for configuration: Configuration, confirm: Bool = false) throws -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        if case .none = configuration.passphraseSource, env[Configuration.passwordVariable] == nil,
           Terminal.isInteractive {
            env[Configuration.passwordVariable] = try Terminal.readPassphrase(confirm: confirm)
        }
        return env
    }

    func loadConfiguration() throws -> Configuration {
        try Configuration.load(explicit: config, environment: ProcessInfo.processInfo.environment)
    }

    /// The manager for the configured store.
    func manager() throws -> BackupManager {
        let configuration = try loadConfiguration()
        if configuration.s3Bucket != nil, !quiet {
            Terminal.warning("\(configuration.file): s3_bucket is set, but this version writes only to local_dir (S3 mirroring is not built yet)")
        }
        return BackupManager(config: configuration, environment: try environment(for: configuration))
    }
}
