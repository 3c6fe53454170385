import Foundation
import PolyadConfig
import PolyadFileSystem
import Synchronization

/// What the access log and the checks know of a caller beyond `fuse_req_ctx`: the user's name, the process
/// name and the supplementary groups, from `/proc/TID/status` (one read, kept for a second).
public struct CallerDetails: Sendable {
    public var user: String?
    public var process: String?
    public var groups: [UInt32]
}

/// The `access:` rules with every user and group name resolved to its id (at start-up and on SIGHUP).
struct ResolvedAccessRules: Sendable {
    var defaultRole: AccessRole
    var users: [UInt32: AccessRole] = [:]
    var groups: [UInt32: AccessRole] = [:]
    var filePermissions: Bool

    /// The highest role any group rule gives: supplementary groups are fetched only when they could raise a
    /// caller above what the uid and primary gid give.
    var highestGroupRole: AccessRole { groups.values.max() ?? .none }
}

/// A name in `access:` that does not resolve to a user or group on this machine.
public struct AccessRuleError: Error, Sendable, CustomStringConvertible {
    public var key: String
    public var name: String
    public var description: String {
        let kind = key.hasSuffix("users") ? "user" : "group"
        return "\(key): no \(kind) '\(name)' on this machine; create it, give its number instead, or remove it"
    }
}

/// Who may do what through the mount: the role of each caller (none, reader, writer, admin) and, inside
/// snapshots, the stored owner, group and mode (`access.file_permissions`). One instance per mount, asked by
/// `MountFileSystem` before every request reaches a provider.
///
/// Root (uid 0) and the mount's own user are admins whatever the rules say: both can read the store's key
/// material already. Without an `access:` section the mount serves only its owner (the kernel refuses other
/// users unless `allow_other`), every request is allowed and nothing is checked here.
public final class AccessControl: Sendable {
    /// Whether the rules are enforced here (an `access:` section); otherwise the kernel's
    /// `default_permissions` and the owner-only mount decide.
    public let enforced: Bool
    private let settings: AccessSettings
    private let rules: Mutex<ResolvedAccessRules>
    private let owner: UInt32
    private let details = Mutex<[Int32: (time: Double, details: CallerDetails)]>([:])
    /// How long a caller's groups and process name are kept (seconds).
    static let detailsLifetime = 1.0

    /// The rules of an `access:` section, every name resolved now.
    /// - Throws: `AccessRuleError` if a named user or group does not exist.
    public init(settings: AccessSettings, owner: UInt32 = getuid()) throws(AccessRuleError) {
        enforced = true
        self.settings = settings
        self.owner = owner
        rules = Mutex(try Self.resolve(settings, strict: true).rules)
    }

    /// A mount without an `access:` section: only its owner (and root) reach it, and nothing is checked here.
    public init(ownerOnly owner: UInt32 = getuid()) {
        enforced = false
        settings = AccessSettings(defaultRole: .admin, filePermissions: false)
        self.owner = owner
        rules = Mutex(ResolvedAccessRules(defaultRole: .admin, filePermissions: false))
    }

    /// Resolves the names again (SIGHUP: a user or group made, renamed or given another id since), and
    /// forgets the callers' cached groups. A name that no longer resolves grants nothing; the messages say
    /// which.
    public func reload() -> [String] {
        Accounts.forgetCachedNames()
        let (resolved, problems) = (try? Self.resolve(settings, strict: false)) ?? (rules.withLock { $0 }, [])
        rules.withLock { $0 = resolved }
        details.withLock { $0.removeAll() }
        return problems.map(\.description)
    }

    private static func resolve(
        _ settings: AccessSettings,
        strict: Bool
    ) throws(AccessRuleError) -> (rules: ResolvedAccessRules, problems: [AccessRuleError]) {
        var r = ResolvedAccessRules(defaultRole: settings.defaultRole, filePermissions: settings.filePermissions)
        var problems: [AccessRuleError] = []
        // Lowest first, so that a name in two roles ends with the higher.
        for role in AccessRole.allCases {
            guard let principals = settings.roles[role] else { continue }
            // A number is an id as it is; a name is looked up in the account database.
            func give(
                _ names: [String],
                _ key: String,
                _ lookUp: (String) -> UInt32?,
                to ids: inout [UInt32: AccessRole]
            ) throws(AccessRuleError) {
                for name in names {
                    guard let id = UInt32(name) ?? lookUp(name) else {
                        let e = AccessRuleError(key: "access.roles.\(role.rawValue).\(key)", name: name)
                        if strict { throw e }
                        problems.append(e)
                        continue
                    }
                    ids[id] = max(ids[id] ?? .none, role)
                }
            }
            try give(principals.users, "users", { Accounts.uid(forUserName: $0) }, to: &r.users)
            try give(principals.groups, "groups", { Accounts.gid(forGroupName: $0) }, to: &r.groups)
        }
        return (r, problems)
    }

    /// The role of `caller`: the highest its uid, primary gid or supplementary groups are given, else the
    /// default role.
    public func role(of caller: Caller) -> AccessRole {
        guard enforced else { return .admin }
        if caller.uid == 0 || caller.uid == owner { return .admin }
        let r = rules.withLock { $0 }
        var role = max(r.users[caller.uid] ?? r.defaultRole, r.groups[caller.gid] ?? .none)
        if role < r.highestGroupRole {
            for g in details(of: caller).groups {
                if let given = r.groups[g], given > role { role = given }
            }
        }
        return role
    }

    /// Whether readers and writers are held to the stored modes inside snapshots.
    var filePermissions: Bool { enforced && rules.withLock { $0.filePermissions } }

    /// Whether the kernel is kept from caching the root folder's entries (`access.check_every_walk`).
    var checkEveryWalk: Bool { enforced && settings.checkEveryWalk }

    /// The caller's name, process name and supplementary groups (cached for a second per thread id).
    public func details(of caller: Caller) -> CallerDetails {
        // Groups the caller came with (a test, or work on someone's behalf) are taken as they are.
        if !caller.groups.isEmpty || caller.pid <= 0 {
            return CallerDetails(user: Accounts.userName(uid: caller.uid), process: nil, groups: caller.groups)
        }
        let now = Date().timeIntervalSinceReferenceDate
        if let kept = details.withLock({ $0[caller.pid] }), now - kept.time < Self.detailsLifetime {
            return kept.details
        }
        var d = CallerDetails(user: Accounts.userName(uid: caller.uid), process: nil, groups: [])
        if let fd = try? FileSystem.open(Array("/proc/\(caller.pid)/status".utf8), flags: O_RDONLY | O_CLOEXEC, mode: 0)
        {
            defer { FileSystem.close(fd) }
            let text = String(decoding: (try? FileSystem.readToEnd(fd, limit: 1 << 16)) ?? [], as: UTF8.self)
            for line in text.split(separator: "\n") {
                if line.hasPrefix("Name:") {
                    d.process = String(line.dropFirst(5).drop { $0 == " " || $0 == "\t" })
                } else if line.hasPrefix("Groups:") {
                    d.groups = line.dropFirst(7).split { $0 == " " || $0 == "\t" }.compactMap { UInt32($0) }
                }
            }
        }
        details.withLock { cache in
            if cache.count >= 4096 { cache.removeAll() }
            cache[caller.pid] = (now, d)
        }
        return d
    }

    // MARK: The stored modes (file_permissions)

    /// What a check asks for, as `access(2)`'s mask bits.
    struct Want: OptionSet, Sendable {
        let rawValue: Int32
        static let read = Want(rawValue: R_OK)
        static let write = Want(rawValue: W_OK)
        static let search = Want(rawValue: X_OK)
    }

    /// The kernel's rule (`generic_permission` without capabilities): the owner's bits if the caller owns
    /// the file, else the group's if it is in the file's group (primary or supplementary), else the others'.
    /// POSIX ACLs stored with the file are not consulted (see the README's "Access control").
    static func modeAllows(
        _ want: Want,
        mode: UInt32,
        uid: UInt32,
        gid: UInt32,
        caller: Caller,
        groups: () -> [UInt32]
    ) -> Bool {
        let bits: UInt32
        let groupBits = (mode >> 3) & 7
        let otherBits = mode & 7
        if caller.uid == uid {
            bits = (mode >> 6) & 7
        } else if caller.gid == gid {
            bits = groupBits
        } else if groupBits != otherBits, groups().contains(gid) {
            // The supplementary groups are read only when they decide.
            bits = groupBits
        } else {
            bits = otherBits
        }
        return UInt32(want.rawValue) & ~bits == 0
    }
}
