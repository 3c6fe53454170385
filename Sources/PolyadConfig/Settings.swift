/// Where the store's passphrase comes from. Its descriptions and reflection never show the secret.
public enum PassphraseSource: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// `backup.encryption_key`: the passphrase itself, written in the config file.
    case inline(String)
    /// `backup.encryption_key_file`: an absolute path to a file holding the passphrase.
    case file(String)
    /// `backup.encryption_key_command`: a shell command whose first line of output is the passphrase. It may run
    /// for ``Configuration/keyCommandTimeout`` seconds (`backup.encryption_key_command_timeout`).
    case command(String)
    /// The `POLYAD_PASSWORD` environment variable.
    case environment
    /// Nothing in the config file; ``Configuration/passphrase(environment:)`` still tries `POLYAD_PASSWORD`.
    case none

    /// Which source this is, without the secret (and without the command, which may embed one).
    public var description: String {
        switch self {
        case .inline: return "backup.encryption_key (in the config file)"
        case .file(let path): return "backup.encryption_key_file \(path)"
        case .command: return "backup.encryption_key_command"
        case .environment: return "POLYAD_PASSWORD"
        case .none: return "none"
        }
    }

    /// Same as ``description``: the secret stays hidden from `debugPrint` and string interpolation too.
    public var debugDescription: String { description }

    /// No children: `dump` and debuggers show only the case's description.
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .enum) }
}

/// The `s3:` section. `secret_access_key` is never shown by descriptions or reflection.
public struct S3Settings: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The service's URL, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`; `nil` for AWS.
    public var endpoint: String?
    /// The region, e.g. `us-east-1`.
    public var region: String?
    /// A key prefix inside the bucket under which the store lives.
    public var prefix: String?
    /// The access key id (not secret on its own).
    public var accessKeyID: String?
    /// The secret access key; a config file holding it must be mode 0600.
    public var secretAccessKey: String?
    /// Path-style requests (`endpoint/bucket/key`), needed by MinIO, Ceph RGW and Garage. Default `false`.
    public var pathStyle: Bool
    /// `s3.retry_seconds`: how long a failing request (5xx, 429, SlowDown, timeouts, cut connections) is retried
    /// with backoff before the store counts as unreachable (exit 14). Default 900 (15 minutes, as restic).
    public var retrySeconds: Int
    /// `s3.connections`: transfers in flight at once (uploads of packs, reads of the mount). Default 4.
    public var connections: Int
    /// `s3.multipart_mib`: objects larger than this go up as a multipart upload, in parts of this size. Default 64.
    public var multipartMiB: Int
    /// `s3.timeout_seconds`: the longest one request may take before it is cut and retried. Default 300.
    public var timeoutSeconds: Int

    /// Creates S3 settings; all default to unset and virtual-host-style requests.
    public init(
        endpoint: String? = nil,
        region: String? = nil,
        prefix: String? = nil,
        accessKeyID: String? = nil,
        secretAccessKey: String? = nil,
        pathStyle: Bool = false,
        retrySeconds: Int = 900,
        connections: Int = 4,
        multipartMiB: Int = 64,
        timeoutSeconds: Int = 300
    ) {
        self.endpoint = endpoint
        self.region = region
        self.prefix = prefix
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.pathStyle = pathStyle
        self.retrySeconds = retrySeconds
        self.connections = connections
        self.multipartMiB = multipartMiB
        self.timeoutSeconds = timeoutSeconds
    }

    /// The settings with the secret access key shown as `<redacted>`.
    public var description: String {
        let secret = secretAccessKey == nil ? "nil" : "<redacted>"
        return "S3Settings(endpoint: \(endpoint ?? "nil"), region: \(region ?? "nil"), prefix: \(prefix ?? "nil"), "
            + "accessKeyID: \(accessKeyID ?? "nil"), secretAccessKey: \(secret), pathStyle: \(pathStyle), "
            + "retrySeconds: \(retrySeconds), connections: \(connections), multipartMiB: \(multipartMiB), "
            + "timeoutSeconds: \(timeoutSeconds))"
    }

    /// Same as ``description``.
    public var debugDescription: String { description }

    /// Reflection with the secret access key redacted.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "endpoint": endpoint as Any, "region": region as Any, "prefix": prefix as Any,
                "accessKeyID": accessKeyID as Any,
                "secretAccessKey": secretAccessKey == nil ? "nil" : "<redacted>", "pathStyle": pathStyle,
                "retrySeconds": retrySeconds, "connections": connections, "multipartMiB": multipartMiB,
                "timeoutSeconds": timeoutSeconds,
            ],
            displayStyle: .struct
        )
    }
}

/// The `mirror:` section: how a store with both `local_dir` and `s3_bucket` treats its two copies.
public struct MirrorSettings: Sendable, Equatable {
    /// One of the two copies.
    public enum Target: String, Sendable {
        case local, s3
    }

    /// `mirror.require_all`: a backup succeeds only once both copies hold it (`true`, the default; a target that
    /// is down fails the run with exit 14). With `false` it finishes on the copy that is up, and `polyad sync`
    /// (or the mounted daemon) catches the other up later.
    public var requireAll: Bool
    /// `mirror.prefer`: the copy reads go to first (`local`, the default); the other serves what it lacks or
    /// what does not verify there.
    public var prefer: Target
    /// `mirror.sync_interval`: seconds between the mounted daemon's catch-up runs (as `polyad sync` without
    /// `--read-data`: what a copy lacks is copied from the other). Default 600; 0 turns them off.
    public var syncInterval: Int

    /// Creates mirror settings with the defaults.
    public init(requireAll: Bool = true, prefer: Target = .local, syncInterval: Int = 600) {
        self.requireAll = requireAll
        self.prefer = prefer
        self.syncInterval = syncInterval
    }
}

/// The `mount:` section.
public struct MountSettings: Sendable, Equatable {
    /// Seconds `/incoming` must be quiet (no file open for writing) before it becomes a snapshot. Default 5.
    public var settleSeconds: Int
    /// `mount.staging_dir`: the private folder where `/incoming` keeps what is written to it until it is
    /// committed (absolute). Default: see `Configuration.stagingDirectory`.
    public var stagingDirectory: String?
    /// Size of the decrypted chunk cache of the mount in MiB. Default 64 (sequential reads need only the
    /// read-ahead window; more helps random access to the same files).
    public var cacheMiB: Int
    /// Whether users other than the mounting one may use the mount (then `access:` decides). Default `false`.
    public var allowOther: Bool
    /// `mount.sync_on_close`: whether a `close` of a file written under `/incoming` returns only once the file
    /// (and every folder changed since) is on the staging disk (`true`, the default), or only `fsync`,
    /// `fdatasync` and `fsyncdir` wait for that, as on a local disk (`false`: faster for many small files;
    /// `kill -9` of polyadfs still loses nothing, a power cut may lose what was closed and not synced).
    public var syncOnClose: Bool

    /// Creates mount settings with the defaults.
    public init(
        settleSeconds: Int = 5,
        stagingDirectory: String? = nil,
        cacheMiB: Int = 64,
        allowOther: Bool = false,
        syncOnClose: Bool = true
    ) {
        self.settleSeconds = settleSeconds
        self.stagingDirectory = stagingDirectory
        self.cacheMiB = cacheMiB
        self.allowOther = allowOther
        self.syncOnClose = syncOnClose
    }
}

/// The `retention:` section: how many of the newest snapshots to keep per period (restic's `--keep-*`), applied
/// beside `backup.retention_days`. `nil` means the rule is not used.
public struct RetentionPolicy: Sendable, Equatable {
    /// Keep the newest N snapshots.
    public var keepLast: Int?
    /// Keep the newest snapshot of each of the last N hours that have one.
    public var keepHourly: Int?
    /// Keep the newest snapshot of each of the last N days that have one.
    public var keepDaily: Int?
    /// Keep the newest snapshot of each of the last N weeks that have one.
    public var keepWeekly: Int?
    /// Keep the newest snapshot of each of the last N months that have one.
    public var keepMonthly: Int?
    /// Keep the newest snapshot of each of the last N years that have one.
    public var keepYearly: Int?
    /// Keep every snapshot taken within this span before the group's newest one.
    public var keepWithin: RetentionSpan?
    /// Keep every snapshot carrying one of these tags.
    public var keepTags: [String]

    /// Creates a policy; every rule defaults to unused.
    public init(
        keepLast: Int? = nil,
        keepHourly: Int? = nil,
        keepDaily: Int? = nil,
        keepWeekly: Int? = nil,
        keepMonthly: Int? = nil,
        keepYearly: Int? = nil,
        keepWithin: RetentionSpan? = nil,
        keepTags: [String] = []
    ) {
        self.keepLast = keepLast
        self.keepHourly = keepHourly
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
        self.keepMonthly = keepMonthly
        self.keepYearly = keepYearly
        self.keepWithin = keepWithin
        self.keepTags = keepTags
    }

    /// Whether no rule is set.
    public var isEmpty: Bool { self == RetentionPolicy() }
}

/// A span of calendar time as restic writes it for `--keep-within`: `1y6m`, `30d`, `2d12h` (years, months, days,
/// hours; each part optional, in that order).
public struct RetentionSpan: Sendable, Equatable, CustomStringConvertible {
    public var years = 0
    public var months = 0
    public var days = 0
    public var hours = 0

    public init(years: Int = 0, months: Int = 0, days: Int = 0, hours: Int = 0) {
        self.years = years
        self.months = months
        self.days = days
        self.hours = hours
    }

    /// Parses `1y6m3d12h`; nil for anything else (an empty text, an unknown unit, a part out of order).
    public init?(_ text: String) {
        var rest = Substring(text)
        var seen = ""
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 6, let value = Int(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let unit = rest.first, "ymdh".contains(unit), !seen.contains(unit),
                seen.last.map({ "ymdh".firstIndex(of: $0)! < "ymdh".firstIndex(of: unit)! }) ?? true
            else { return nil }
            seen.append(unit)
            rest = rest.dropFirst()
            switch unit {
            case "y": years = value
            case "m": months = value
            case "d": days = value
            default: hours = value
            }
        }
    }

    public var description: String {
        let parts = [(years, "y"), (months, "m"), (days, "d"), (hours, "h")].filter { $0.0 > 0 }
        return parts.isEmpty ? "0h" : parts.map { "\($0.0)\($0.1)" }.joined()
    }
}

/// Log levels, the same names as swift-log's `Logger.Level` (so `Logger.Level(rawValue:)` converts).
public enum LogLevel: String, Sendable, CaseIterable {
    /// Everything, including per-request tracing.
    case trace
    /// Debugging detail.
    case debug
    /// Normal operation (the default).
    case info
    /// Noteworthy events.
    case notice
    /// Problems that did not stop the work.
    case warning
    /// Failures.
    case error
    /// Failures that stop the program.
    case critical
}

/// The `log:` section.
public struct LogSettings: Sendable, Equatable {
    /// The lowest level written. Default ``LogLevel/info``.
    public var level: LogLevel
    /// An absolute path to write the log to (relative paths in the file are resolved against its folder);
    /// `nil` for standard error.
    public var file: String?
    /// The access log (JSON lines, `log.access`): every request of the mount and every CLI run that changes or
    /// reads the store; `nil` for none.
    public var access: String?

    /// Creates log settings; defaults to `info` on standard error, no access log.
    public init(level: LogLevel = .info, file: String? = nil, access: String? = nil) {
        self.level = level
        self.file = file
        self.access = access
    }
}

/// What a caller of the mount may do, from least to most (`access:` in mount.conf).
public enum AccessRole: String, Sendable, Equatable, Comparable, CaseIterable {
    /// Nothing: every request but the mount point's own `stat` is refused (EACCES), the root folder's listing
    /// too.
    case none
    /// Browse and read snapshots, and read `/.polyad/status` and `/.polyad/stats.json`.
    case reader
    /// A reader who may also create and write under `/incoming` (and there sees only what they wrote).
    case writer
    /// Everything: every file of every snapshot whatever its stored mode, all of `/incoming`, `/.polyad/metrics`.
    case admin

    private var rank: Int {
        switch self {
        case .none: 0
        case .reader: 1
        case .writer: 2
        case .admin: 3
        }
    }

    public static func < (a: AccessRole, b: AccessRole) -> Bool { a.rank < b.rank }
}

/// The users and groups a role is given to, as written in mount.conf: names or numeric ids (as text),
/// resolved to ids when the mount starts and on SIGHUP.
public struct AccessPrincipals: Sendable, Equatable {
    public var users: [String]
    public var groups: [String]

    public init(users: [String] = [], groups: [String] = []) {
        self.users = users
        self.groups = groups
    }
}

/// The `access:` section: who may use a mount shared with other users (`mount.allow_other`).
public struct AccessSettings: Sendable, Equatable {
    /// The role of a caller no rule names. Default ``AccessRole/none``.
    public var defaultRole: AccessRole
    /// The users and groups of each role (a caller named by several rules gets the highest).
    public var roles: [AccessRole: AccessPrincipals]
    /// Whether readers and writers open files and list folders of a snapshot only where its stored owner, group
    /// and mode would have let them (the default); root and admins see everything.
    public var filePermissions: Bool
    /// Whether every path walk into the mount reaches the access check (the default): the kernel keeps no
    /// entry of the root folder, so a caller with no role is refused even where another user's walk left
    /// entries in the kernel's cache. `false` lets the kernel keep them for a second, as without roles: a
    /// walk costs one request less, and a caller with no role may then `stat` (never open, read or list)
    /// entries another user walked to within that second.
    public var checkEveryWalk: Bool

    public init(
        defaultRole: AccessRole = .none,
        roles: [AccessRole: AccessPrincipals] = [:],
        filePermissions: Bool = true,
        checkEveryWalk: Bool = true
    ) {
        self.defaultRole = defaultRole
        self.roles = roles
        self.filePermissions = filePermissions
        self.checkEveryWalk = checkEveryWalk
    }
}
