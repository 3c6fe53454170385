import Foundation
import PolyadAudit
import PolyadConfig
import PolyadFileSystem
import Synchronization

/// A line for the access log about the mount's own work (a commit, a cleanup): the operation, whether it
/// succeeded, and its fields.
typealias MountEventSink = @Sendable (_ operation: String, _ succeeded: Bool, _ fields: [(String, String)]) -> Void

/// The operations of the mount as the access log names them.
enum AccessOperation: String, Sendable {
    case lookup, getattr, readlink, open, readdir, getxattr, listxattr, access
    case create, mkdir, mknod, symlink, link, unlink, rmdir, rename, setattr, setxattr, removexattr
}

/// A request let through, for its access-log line once it is answered.
struct AdmittedRequest: Sendable {
    var caller: Caller
    var role: AccessRole
    var details: CallerDetails?
    var operation: AccessOperation
    var path: [UInt8]
}

/// An open file's span, for its one access-log line at release: the bytes read or written meanwhile.
final class OpenSpan: Sendable {
    let request: AdmittedRequest
    let opened = Date()
    let bytes = Atomic<UInt64>(0)

    init(_ request: AdmittedRequest) { self.request = request }
}

/// Where every request of the mount is decided and logged: `MountFileSystem` asks here before it hands a
/// request to a provider, and reports the answer after. The rules:
///
/// - **none**: nothing but the mount point's own `stat` (the root folder's listing is refused too).
/// - **reader**: `/snapshots` (inside a snapshot, with `file_permissions`, only what the stored owner, group
///   and mode allow: search on every folder above, read to open a file, list a folder or read its `user.`
///   attributes), and `/.polyad`'s `status`, `status.json` and `stats.json`.
/// - **writer**: a reader who also creates and writes under `/incoming`, where they see only what they own.
/// - **admin** (and root, and the mount's own user): everything, `/.polyad/metrics` too.
///
/// Without an `access:` section nothing is checked here (the mount serves its owner alone); with a
/// `log.access` every request is still logged.
final class RequestGate: Sendable {
    let control: AccessControl
    let log: AccessLog?
    private let table: InodeTable
    private let incoming: IncomingFolder
    private let spans = Mutex<[UInt64: OpenSpan]>([:])
    /// Whether anything is checked or logged: otherwise every call here returns at once.
    let active: Bool

    init(control: AccessControl, log: AccessLog?, table: InodeTable, incoming: IncomingFolder) {
        self.control = control
        self.log = log
        self.table = table
        self.incoming = incoming
        active = control.enforced || log != nil
    }

    /// The provider index of each part of the tree (see `MountFileSystem.providers`).
    private enum Part: Int {
        case root = 0
        case snapshots, incoming, control
    }

    /// Decides whether `caller` may do `operation` on `inode` (with `name`: on that entry of the folder
    /// `inode`), wanting `want` of the stored mode. Refused: logged and thrown (EACCES; ENOENT for another
    /// writer's entry of `/incoming`, which is not shown). Let through: what the log line needs, or nil when
    /// nothing is logged.
    func admit(
        _ operation: AccessOperation,
        _ inode: Inode,
        name: [UInt8]? = nil,
        caller: Caller,
        want: AccessControl.Want = []
    ) throws(FileSystemErrno) -> AdmittedRequest? {
        guard active else { return nil }
        let role = control.role(of: caller)
        if control.enforced, let refusal = refusal(operation, inode, name: name, role: role, caller: caller, want: want)
        {
            record(describe(operation, inode, name: name, caller: caller, role: role), .denied)
            throw FileSystemErrno(refusal)
        }
        return log == nil ? nil : describe(operation, inode, name: name, caller: caller, role: role)
    }

    /// The errno that refuses the request, or nil if it may go on.
    private func refusal(
        _ operation: AccessOperation,
        _ inode: Inode,
        name: [UInt8]?,
        role: AccessRole,
        caller: Caller,
        want: AccessControl.Want
    ) -> Int32? {
        if role == .admin { return nil }
        if role == .none {
            return operation == .getattr && inode.number == FixedInode.root ? nil : EACCES
        }
        switch Part(rawValue: inode.owner.index) {
        case .root:
            // The root's children: `/incoming` is the writers'.
            if name == Array("incoming".utf8), role < .writer { return EACCES }
            return nil
        case .control:
            let file = name.map { n in ControlFilesProvider.File.allCases.first { $0.name == n } } ?? nil
            if let file, file.adminOnly { return EACCES }
            if name == nil,
                ControlFilesProvider.File.allCases.first(where: { $0.inode == inode.number })?.adminOnly == true
            {
                return EACCES
            }
            return nil
        case .incoming:
            guard role >= .writer else { return EACCES }
            if let owner = incoming.stagedOwner(of: inode), owner != caller.uid { return ENOENT }
            if let name, let owner = incoming.stagedOwner(of: name, in: inode), owner != caller.uid {
                return operation == .lookup ? ENOENT : EACCES
            }
            return nil
        case .snapshots:
            guard control.filePermissions, caller.uid != 0 else { return nil }
            return mayReach(inode, searching: name != nil, caller: caller, want: want) ? nil : EACCES
        case nil:
            return EACCES
        }
    }

    /// Whether every folder of the snapshot's tree above `inode` (and `inode` itself when `searching` a name
    /// in it) lets `caller` search it, and `inode` gives what `want` asks, by the stored modes.
    private func mayReach(_ inode: Inode, searching: Bool, caller: Caller, want: AccessControl.Want) -> Bool {
        var groups: [UInt32]?
        let groupsOnce = { () -> [UInt32] in
            if let groups { return groups }
            let g = self.control.details(of: caller).groups
            groups = g
            return g
        }
        func allows(_ i: Inode, _ w: AccessControl.Want) -> Bool {
            guard let stored = SnapshotTreeProvider.storedOwnership(i) else { return true }
            return AccessControl.modeAllows(
                w,
                mode: stored.mode,
                uid: stored.uid,
                gid: stored.gid,
                caller: caller,
                groups: groupsOnce
            )
        }
        var own = want
        if searching { own.insert(.search) }
        if !own.isEmpty, !allows(inode, own) { return false }
        return allFolders(above: inode) { allows($0, .search) }
    }

    /// Whether `test` holds for every folder of the snapshot tree above `inode`, nearest first (it stops at the
    /// first that fails; at most 4096 levels).
    private func allFolders(above inode: Inode, _ test: (Inode) -> Bool) -> Bool {
        var at = inode.parent
        var steps = 0
        while at > FixedInode.snapshots, steps < 4096, let folder = try? table.inode(at) {
            guard test(folder) else { return false }
            at = folder.parent
            steps += 1
        }
        return true
    }

    /// Whether a snapshot entry sits below a folder (its own folder or one above) that some caller may not
    /// search by the stored mode: then a path walk to it must reach ``admit`` every time, not the kernel's
    /// cache. Only with `file_permissions`: without it every reader may reach every entry.
    func isBehindAClosedFolder(_ inode: Inode) -> Bool {
        guard control.filePermissions, Part(rawValue: inode.owner.index) == .snapshots else { return false }
        return !allFolders(above: inode) { folder in
            SnapshotTreeProvider.storedOwnership(folder).map { $0.mode & 0o111 == 0o111 } ?? true
        }
    }

    /// Whether `caller` sees the entry `inode` of an `/incoming` folder listing (writers see only their own).
    func shows(_ inode: UInt64, caller: Caller) -> Bool {
        guard control.enforced, control.role(of: caller) < .admin, let i = try? table.inode(inode) else { return true }
        guard let owner = incoming.stagedOwner(of: i) else { return true }
        return owner == caller.uid
    }

    /// Whether listings of `inode`'s folder differ by caller (then the kernel must not keep one for all).
    func listingsDiffer(_ inode: Inode) -> Bool { control.enforced && inode.owner.index == Part.incoming.rawValue }

    /// Checks a second name a request touches (the target of a rename in `/incoming`).
    func admitTarget(_ folder: Inode, name: [UInt8], caller: Caller) throws(FileSystemErrno) {
        guard control.enforced, folder.owner.index == Part.incoming.rawValue else { return }
        let role = control.role(of: caller)
        guard role < .admin else { return }
        if let owner = incoming.stagedOwner(of: folder), owner != caller.uid {
            record(describe(.rename, folder, name: name, caller: caller, role: role), .denied)
            throw FileSystemErrno(ENOENT)
        }
        if let owner = incoming.stagedOwner(of: name, in: folder), owner != caller.uid {
            record(describe(.rename, folder, name: name, caller: caller, role: role), .denied)
            throw FileSystemErrno(EACCES)
        }
    }

    // MARK: The log

    private func describe(
        _ operation: AccessOperation,
        _ inode: Inode,
        name: [UInt8]?,
        caller: Caller,
        role: AccessRole
    ) -> AdmittedRequest {
        var path = table.pathBytes(of: inode.number)
        if let name { path += (path == [0x2F] ? [] : [0x2F]) + name }
        return AdmittedRequest(
            caller: caller,
            role: role,
            details: log == nil ? nil : control.details(of: caller),
            operation: operation,
            path: path
        )
    }

    /// Logs the answer to an admitted request.
    func finish(_ request: AdmittedRequest?, _ result: AccessResult) {
        if let request { record(request, result) }
    }

    private func record(
        _ request: AdmittedRequest,
        _ result: AccessResult,
        bytes: UInt64? = nil,
        extra: [(String, String)] = []
    ) {
        guard let log else { return }
        let d = request.details
        log.record(
            AccessEvent(
                uid: request.caller.uid,
                user: d?.user,
                pid: request.caller.pid,
                process: d?.process,
                role: request.role.rawValue,
                op: request.operation.rawValue,
                path: request.path,
                result: result,
                bytes: bytes,
                fields: extra
            )
        )
    }

    // MARK: Open files (one line per open, at release)

    /// Keeps an opened file's request until its release.
    func opened(_ handle: UInt64, _ request: AdmittedRequest?) {
        guard let request else { return }
        let span = OpenSpan(request)
        spans.withLock { $0[handle] = span }
    }

    /// Counts bytes read or written through `handle`.
    func transferred(_ handle: UInt64, _ count: Int) {
        guard log != nil, count > 0, let span = spans.withLock({ $0[handle] }) else { return }
        span.bytes.add(UInt64(count), ordering: .relaxed)
    }

    /// The file's last descriptor closed: its line, with the bytes of the whole span.
    func released(_ handle: UInt64) {
        guard log != nil, let span = spans.withLock({ $0.removeValue(forKey: handle) }) else { return }
        record(
            span.request,
            .ok,
            bytes: span.bytes.load(ordering: .relaxed),
            extra: [("seconds_open", Self.milliseconds(Date().timeIntervalSince(span.opened)))]
        )
    }

    /// Seconds with three decimals (`0.004`), without Foundation's `String(format:)`, which costs several
    /// microseconds a call (it showed in profiles of a read of every file).
    static func milliseconds(_ seconds: Double) -> String {
        let ms = UInt64(max(0, seconds) * 1000 + 0.5)
        let fraction = String(ms % 1000)
        return "\(ms / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    /// An event of the mount itself (mount, unmount, commit, cleanup), by the daemon's own user.
    func event(_ operation: String, result: AccessResult = .ok, fields: [(String, String)] = []) {
        log?.record(
            AccessEvent(
                uid: getuid(),
                user: Accounts.userName(uid: getuid()),
                pid: getpid(),
                process: "polyadfs",
                op: operation,
                result: result,
                fields: fields
            )
        )
    }
}
