import Glibc

/// The settings of `mount.conf`: where the store is, how it is written, and how it is mounted and kept.
///
/// Read a file with ``load(file:)`` (which also refuses secrets in a file others can read), or text with
/// ``parse(_:file:)``. Every key has the meaning the seed's `mount.conf` block gives it:
/// ```yaml
/// backup:
///   local_dir: "backup"            # local store directory (relative to the config file's folder)
///   s3_bucket: "polyad-backups"    # S3 bucket; with local_dir too, both are written (mirror)
///   retention_days: 30             # snapshots older than this are forgotten (the newest is always kept)
///   cleanup_interval: 86400        # seconds between automatic retention + prune runs of a mounted store
///   compression_level: 9           # zlib level 0-9 (0 = store)
///   encryption_key: "your-encryption-key"
///   verify_integrity: true         # verify what was written after each backup, and data on read
/// ```
/// Its `description` never shows a secret.
public struct Configuration: Sendable {
    /// The absolute path of the config file (empty for a configuration built in code).
    public var file: String
    /// `backup.local_dir`, absolute (a relative value is resolved against the config file's folder).
    public var localDirectory: String?
    /// `backup.s3_bucket`. With ``localDirectory`` too, both stores are written (a mirror).
    public var s3Bucket: String?
    /// `backup.retention_days`: snapshots older than this many days are forgotten; the newest is always kept.
    public var retentionDays: Int?
    /// `backup.cleanup_interval`: seconds between automatic retention and prune runs of a mounted store;
    /// 0 turns them off. Default 86400.
    public var cleanupInterval: Int
    /// `backup.compression_level`: zlib level 0–9, 0 stores uncompressed. Default 6.
    public var compressionLevel: Int
    /// `backup.verify_integrity`: verify what was written after each backup, and data on read. Default `true`.
    public var verifyIntegrity: Bool
    /// `backup.pack_size_mib`: the target size of a pack, 4–128 MiB. Default 16.
    public var packSizeMiB: Int
    /// Where the passphrase comes from; see ``passphrase(environment:)``.
    public var passphraseSource: PassphraseSource
    /// `backup.encryption_key_command_timeout`: seconds the key command (``PassphraseSource/command(_:)``) may
    /// run before it is killed, 1–3600. Default 30.
    public var keyCommandTimeout: Int
    /// The `s3:` section.
    public var s3: S3Settings
    /// The `mirror:` section (used when both `local_dir` and `s3_bucket` are set).
    public var mirror: MirrorSettings
    /// The `mount:` section.
    public var mount: MountSettings
    /// The `retention:` section.
    public var retention: RetentionPolicy
    /// The `log:` section.
    public var log: LogSettings
    /// `metrics.textfile`: where each CLI run writes the store's metrics for node-exporter's textfile
    /// collector (Prometheus text format, replaced atomically); `nil` for none.
    public var metricsTextfile: String?
    /// The `access:` section; `nil` when there is none (then a mount serves only its owner, and refuses to
    /// start with `mount.allow_other`).
    public var access: AccessSettings?

    /// Where each secret key sits in the file, for the permission check and its message.
    var secretLocations: [SourceLocation] = []
    /// Where the passphrase key sits in the file, for messages about it.
    var passphraseLocation: SourceLocation?

    /// The default for ``cleanupInterval``: one day.
    public static let defaultCleanupInterval = 86_400
    /// The default for ``compressionLevel``.
    public static let defaultCompressionLevel = 6
    /// The default for ``packSizeMiB``.
    public static let defaultPackSizeMiB = 16
    /// The allowed range of ``packSizeMiB``.
    public static let packSizeRange = 4...128
    /// The default for ``keyCommandTimeout``, in seconds.
    public static let defaultKeyCommandTimeout = 30
    /// The allowed range of ``keyCommandTimeout``, in seconds: at least one, at most an hour.
    public static let keyCommandTimeoutRange = 1...3600
    /// The environment variable holding the passphrase when the config file names none.
    public static let passwordVariable = "POLYAD_PASSWORD"
    /// The environment variable naming the config file.
    public static let configVariable = "POLYAD_CONFIG"
    /// The system-wide config file, the last place searched.
    public static let systemConfigFile = "/etc/polyad/mount.conf"

    /// Creates a configuration in code, with the same defaults as an empty `backup:` section.
    public init(
        file: String = "",
        localDirectory: String? = nil,
        s3Bucket: String? = nil,
        retentionDays: Int? = nil,
        cleanupInterval: Int = Configuration.defaultCleanupInterval,
        compressionLevel: Int = Configuration.defaultCompressionLevel,
        verifyIntegrity: Bool = true,
        packSizeMiB: Int = Configuration.defaultPackSizeMiB,
        passphraseSource: PassphraseSource = .none,
        keyCommandTimeout: Int = Configuration.defaultKeyCommandTimeout,
        s3: S3Settings = S3Settings(),
        mirror: MirrorSettings = MirrorSettings(),
        mount: MountSettings = MountSettings(),
        retention: RetentionPolicy = RetentionPolicy(),
        log: LogSettings = LogSettings(),
        access: AccessSettings? = nil
    ) {
        self.file = file
        self.localDirectory = localDirectory
        self.s3Bucket = s3Bucket
        self.retentionDays = retentionDays
        self.cleanupInterval = cleanupInterval
        self.compressionLevel = compressionLevel
        self.verifyIntegrity = verifyIntegrity
        self.packSizeMiB = packSizeMiB
        self.passphraseSource = passphraseSource
        self.keyCommandTimeout = keyCommandTimeout
        self.s3 = s3
        self.mirror = mirror
        self.mount = mount
        self.retention = retention
        self.log = log
        self.access = access
    }

    /// Where `/incoming` stages what is written to it: `mount.staging_dir`; by default beside a local store
    /// (`<local_dir>.staging`), else `$XDG_STATE_HOME/polyad/staging` (`~/.local/state/polyad/staging`), or
    /// `/var/lib/polyad/staging` for root.
    public func stagingDirectory(environment: [String: String]) -> String {
        if let given = mount.stagingDirectory { return given }
        if let localDirectory {
            let trimmed =
                localDirectory.hasSuffix("/") && localDirectory.count > 1
                ? String(localDirectory.dropLast()) : localDirectory
            return trimmed + ".staging"
        }
        if getuid() == 0 { return "/var/lib/polyad/staging" }
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") { return state + "/polyad/staging" }
        return (environment["HOME"] ?? "/tmp") + "/.local/state/polyad/staging"
    }

    /// Parses `text` as the config file `file` (used for messages and to resolve relative paths; a relative
    /// `file` is taken from the current directory). Touches no file.
    ///
    /// - Throws: ``ConfigError`` naming the line, column and key of the first problem: YAML syntax, an unknown
    ///   key (with a suggestion), a value of the wrong type or out of range, or a missing store location.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> Configuration {
        let absolute = Paths.absolute(file)
        return try ConfigParser(file: file, folder: Paths.parent(of: absolute)).parse(text, absoluteFile: absolute)
    }
}

/// A line and column in the config file (1-based) and the key found there.
struct SourceLocation: Sendable {
    var line: Int?
    var column: Int?
    var key: String
}

extension Configuration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// A summary of the settings; secrets are never included.
    public var description: String {
        var parts = ["file: \(file)"]
        if let localDirectory { parts.append("localDirectory: \(localDirectory)") }
        if let s3Bucket { parts.append("s3Bucket: \(s3Bucket)") }
        if let retentionDays { parts.append("retentionDays: \(retentionDays)") }
        parts += [
            "cleanupInterval: \(cleanupInterval)", "compressionLevel: \(compressionLevel)",
            "verifyIntegrity: \(verifyIntegrity)", "packSizeMiB: \(packSizeMiB)",
            "passphrase: \(passphraseSource)", "keyCommandTimeout: \(keyCommandTimeout)", "s3: \(s3)",
            "mirror: \(mirror)", "mount: \(mount)", "retention: \(retention)", "log: \(log)",
            "access: \(access.map { "\($0)" } ?? "none")", "metricsTextfile: \(metricsTextfile ?? "none")",
        ]
        return "Configuration(" + parts.joined(separator: ", ") + ")"
    }

    /// Same as ``description``.
    public var debugDescription: String { description }

    /// The public settings (the secrets inside redacted by their own mirrors).
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "file": file, "localDirectory": localDirectory as Any, "s3Bucket": s3Bucket as Any,
                "retentionDays": retentionDays as Any, "cleanupInterval": cleanupInterval,
                "compressionLevel": compressionLevel, "verifyIntegrity": verifyIntegrity, "packSizeMiB": packSizeMiB,
                "passphraseSource": passphraseSource, "keyCommandTimeout": keyCommandTimeout, "s3": s3,
                "mirror": mirror, "mount": mount, "retention": retention, "log": log,
                "access": access as Any,
            ],
            displayStyle: .struct
        )
    }
}
