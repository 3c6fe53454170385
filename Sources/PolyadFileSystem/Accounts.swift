import Glibc
import Synchronization

/// User and group names and ids from the system's account database, cached for the life of the process.
///
/// Lookups go through NSS (`getpwuid_r`, `getgrgid_r`, `getpwnam_r`, `getgrnam_r`), which may be slow (LDAP),
/// so each answer, including "not found", is cached. Safe to call from any thread.
public enum Accounts {
    /// Cached answers; nil values record names or ids that do not exist.
    private struct Cache {
        var userNames: [UInt32: String?] = [:]
        var groupNames: [UInt32: String?] = [:]
        var uids: [String: UInt32?] = [:]
        var gids: [String: UInt32?] = [:]
    }

    private static let cache = Mutex(Cache())

    /// Forgets every cached answer, so that the next lookups ask the account database again (a mount's SIGHUP:
    /// users and groups made or renamed since).
    public static func forgetCachedNames() { cache.withLock { $0 = Cache() } }

    /// The name of a user id, or nil if it has no entry.
    public static func userName(uid: UInt32) -> String? {
        if let cached = cache.withLock({ $0.userNames[uid] }) { return cached }
        let name = lookUp(
            { getpwuid_r(uid_t(uid), $0, $1, $2, $3) },
            read: { (entry: passwd) in
                String(decoding: PathBytes.bytes(ofCString: entry.pw_name), as: UTF8.self)
            }
        )
        cache.withLock { $0.userNames[uid] = .some(name) }
        return name
    }

    /// The name of a group id, or nil if it has no entry.
    public static func groupName(gid: UInt32) -> String? {
        if let cached = cache.withLock({ $0.groupNames[gid] }) { return cached }
        let name = lookUp(
            { getgrgid_r(gid_t(gid), $0, $1, $2, $3) },
            read: { (entry: group) in
                String(decoding: PathBytes.bytes(ofCString: entry.gr_name), as: UTF8.self)
            }
        )
        cache.withLock { $0.groupNames[gid] = .some(name) }
        return name
    }

    /// The user id of a user name, or nil if there is no such user.
    public static func uid(forUserName name: String) -> UInt32? {
        if let cached = cache.withLock({ $0.uids[name] }) { return cached }
        let id = lookUp({ getpwnam_r(name, $0, $1, $2, $3) }, read: { (entry: passwd) in UInt32(entry.pw_uid) })
        cache.withLock { $0.uids[name] = .some(id) }
        return id
    }

    /// The group id of a group name, or nil if there is no such group.
    public static func gid(forGroupName name: String) -> UInt32? {
        if let cached = cache.withLock({ $0.gids[name] }) { return cached }
        let id = lookUp({ getgrnam_r(name, $0, $1, $2, $3) }, read: { (entry: group) in UInt32(entry.gr_gid) })
        cache.withLock { $0.gids[name] = .some(id) }
        return id
    }

    /// This machine's host name (`gethostname`), or "localhost" if it cannot be read.
    public static var hostName: String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let result = buffer.withUnsafeMutableBytes { raw in
            gethostname(raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count - 1)
        }
        guard result == 0, let end = buffer.firstIndex(of: 0), end > 0 else { return "localhost" }
        return String(decoding: buffer[..<end], as: UTF8.self)
    }

    /// The name of the effective user, or its numeric id as text if it has no entry (as in some containers).
    public static var currentUserName: String {
        let uid = UInt32(geteuid())
        return userName(uid: uid) ?? String(uid)
    }

    /// Runs a reentrant NSS lookup, growing its string buffer on `ERANGE`, and reads the record with `read`
    /// while the buffer its strings point into is alive. Returns nil if there is no such entry.
    private static func lookUp<Entry, Result>(
        _ call: (
            UnsafeMutablePointer<Entry>, UnsafeMutablePointer<CChar>, Int,
            UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>
        ) -> Int32,
        read: (Entry) -> Result
    ) -> Result? {
        var size = max(1024, sysconf(Int32(_SC_GETPW_R_SIZE_MAX)))
        // The record is a plain C struct that the call fills in; it needs no initialization or cleanup.
        let entry = UnsafeMutablePointer<Entry>.allocate(capacity: 1)
        defer { entry.deallocate() }
        while size <= 1 << 24 {
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
            defer { buffer.deallocate() }
            var result: UnsafeMutablePointer<Entry>?
            var code: Int32
            repeat {
                code = call(entry, buffer, size, &result)
            } while code == EINTR
            if code == ERANGE {
                size *= 2
                continue
            }
            guard code == 0, let found = result else { return nil }
            return read(found.pointee)
        }
        return nil
    }
}
