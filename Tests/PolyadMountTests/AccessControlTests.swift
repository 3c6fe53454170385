import Foundation
import PolyadAudit
import PolyadConfig
import PolyadFileSystem
import PolyadService
import PolyadTestSupport
import XCTest

@testable import PolyadMount

/// The roles and the stored-mode rule of `AccessControl`, and the gate of `MountFileSystem` that applies them
/// to every request, on a real store without FUSE (callers made up: uid, gid, groups).
final class AccessControlTests: XCTestCase {
    private var temporary: TemporaryFolder!
    private var folder: String { temporary.path }

    override func setUpWithError() throws { temporary = try TemporaryFolder(prefix: "polyad-access-test") }
    override func tearDownWithError() throws { temporary.remove() }

    private func caller(_ uid: UInt32, gid: UInt32? = nil, groups: [UInt32] = []) -> Caller {
        Caller(uid: uid, gid: gid ?? uid, groups: groups, pid: 0)
    }

    // MARK: The kernel's rule

    func testModeRuleIsTheKernels() {
        func allows(_ want: AccessControl.Want, _ mode: UInt32, _ c: Caller) -> Bool {
            AccessControl.modeAllows(want, mode: mode, uid: 100, gid: 200, caller: c, groups: { c.groups })
        }
        let owner = caller(100)
        let member = caller(300, groups: [200])
        let primary = caller(300, gid: 200)
        let other = caller(300)
        XCTAssertTrue(allows(.read, 0o600, owner))
        XCTAssertFalse(allows(.read, 0o600, member))
        XCTAssertFalse(allows(.read, 0o060, owner), "the owner gets the owner's bits, not the group's")
        XCTAssertTrue(allows(.read, 0o640, member))
        XCTAssertTrue(allows(.read, 0o640, primary))
        XCTAssertFalse(allows(.read, 0o640, other))
        XCTAssertFalse(allows(.read, 0o604, member), "a group member gets the group's bits even when fewer")
        XCTAssertTrue(allows(.read, 0o604, other))
        XCTAssertTrue(allows([.read, .search], 0o755, other))
        XCTAssertFalse(allows(.search, 0o754, other))
        XCTAssertFalse(allows(.write, 0o644, other))
    }

    func testRolesFromUsersGroupsAndDefaults() throws {
        let settings = AccessSettings(
            defaultRole: .none,
            roles: [
                .admin: AccessPrincipals(users: ["5000"]),
                .writer: AccessPrincipals(groups: ["7000"]),
                .reader: AccessPrincipals(users: ["5001", "5002"], groups: ["7001"]),
                .none: AccessPrincipals(users: ["5002"]),
            ]
        )
        let access = try AccessControl(settings: settings, owner: 4000)
        XCTAssertEqual(access.role(of: caller(5000)), .admin)
        XCTAssertEqual(access.role(of: caller(5001)), .reader)
        XCTAssertEqual(access.role(of: caller(5002)), .reader, "the highest role a rule gives")
        XCTAssertEqual(access.role(of: caller(5003)), .none)
        XCTAssertEqual(access.role(of: caller(5003, gid: 7000)), .writer, "by the primary group")
        XCTAssertEqual(access.role(of: caller(5003, groups: [7001])), .reader, "by a supplementary group")
        XCTAssertEqual(access.role(of: caller(5001, groups: [7000])), .writer)
        XCTAssertEqual(access.role(of: caller(0)), .admin, "root")
        XCTAssertEqual(access.role(of: caller(4000)), .admin, "the mount's own user")
        var reading = settings
        reading.defaultRole = .reader
        XCTAssertEqual(try AccessControl(settings: reading, owner: 4000).role(of: caller(5003)), .reader)
        // Names resolve through the account database: root is uid 0 everywhere.
        let named = try AccessControl(settings: AccessSettings(roles: [.reader: AccessPrincipals(users: ["root"])]))
        XCTAssertEqual(named.role(of: caller(0)), .admin)
        XCTAssertThrowsError(
            try AccessControl(settings: AccessSettings(roles: [.writer: AccessPrincipals(groups: ["polyad-no-group"])]))
        ) { error in
            XCTAssertTrue("\(error)".contains("access.roles.writer.groups"), "\(error)")
            XCTAssertTrue("\(error)".contains("polyad-no-group"), "\(error)")
        }
        // Without an `access:` section nothing is checked: everyone who reaches the mount is its owner.
        XCTAssertEqual(AccessControl(ownerOnly: 4000).role(of: caller(5003)), .admin)
    }

    // MARK: The gate, request by request

    func testEveryRequestIsCheckedAndLogged() throws {
        let manager = try MountFileSystemTests.makeStore(in: folder)
        let source = folder + "/src"
        try FileManager.default.createDirectory(atPath: source + "/private", withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: source + "/open.txt", contents: Data("open".utf8)))
        XCTAssertTrue(
            FileManager.default.createFile(atPath: source + "/private/secret.txt", contents: Data("secret".utf8))
        )
        // Every folder above the files searchable by all, as in a real tree (the scratch folder is 0700).
        XCTAssertEqual(chmod(folder, 0o755), 0)
        XCTAssertEqual(chmod(source, 0o755), 0)
        XCTAssertEqual(chmod(source + "/private", 0o700), 0)
        XCTAssertEqual(chown(source + "/private", 5001, 5001), 0)
        _ = try manager.createBackup(paths: [source])
        let logPath = folder + "/access.log"
        let log = try AccessLog(path: Array(logPath.utf8))
        let fs = try MountFileSystem(
            manager: manager,
            repository: try manager.repository(),
            cacheBytes: 16 << 20,
            staging: try StagingArea(path: folder + "/staging"),
            settleSeconds: 3600,
            log: { _ in },
            access: try AccessControl(
                settings: AccessSettings(
                    roles: [
                        .reader: AccessPrincipals(users: ["5001", "5002"]),
                        .writer: AccessPrincipals(users: ["5003", "5004"]),
                    ]
                ),
                owner: 4000
            ),
            accessLog: log
        )
        fs.refreshSnapshots(interval: 0)
        let owner = caller(5001)
        let reader = caller(5002)
        let writer = caller(5003)
        let otherWriter = caller(5004)
        let nobody = caller(5009)

        func walk(_ path: String, as c: Caller) throws(FileSystemErrno) -> UInt64 {
            var at = FixedInode.root
            for part in path.split(separator: "/") {
                at = try fs.lookup(parent: at, name: Array(part.utf8), caller: c).inode
            }
            return at
        }
        func errno(_ work: () throws -> Void) -> Int32 {
            do { try work() } catch { return (error as? FileSystemErrno)?.code ?? -1 }
            return 0
        }
        let latest = try walk("snapshots/latest", as: owner)
        let snap = "snapshots/" + String(decoding: try fs.readLink(latest, caller: owner), as: UTF8.self) + source

        // No role: nothing but the root's attributes.
        XCTAssertEqual(errno { _ = try fs.attributes(FixedInode.root, caller: nobody) }, 0)
        XCTAssertEqual(
            errno { _ = try fs.readDirectory(FixedInode.root, caller: nobody) },
            0,
            "listing itself is not gated"
        )
        XCTAssertEqual(errno { _ = try fs.openFolder(FixedInode.root, caller: nobody) }, EACCES)
        XCTAssertEqual(errno { _ = try walk("snapshots", as: nobody) }, EACCES)
        XCTAssertEqual(errno { _ = try walk(".polyad/status", as: nobody) }, EACCES)
        // Readers: snapshots by the stored modes; `/incoming` is not theirs; metrics are the admins'.
        let secret = try walk(snap + "/private/secret.txt", as: owner)
        XCTAssertEqual(errno { _ = try fs.open(secret, caller: owner) }, 0)
        XCTAssertEqual(errno { _ = try fs.open(secret, caller: reader) }, EACCES, "0700 folder above it")
        XCTAssertEqual(errno { _ = try walk(snap + "/private/secret.txt", as: reader) }, EACCES)
        let privateFolder = try walk(snap + "/private", as: reader)
        XCTAssertEqual(errno { _ = try fs.openFolder(privateFolder, caller: reader) }, EACCES)
        XCTAssertEqual(errno { _ = try fs.openFolder(privateFolder, caller: owner) }, 0)
        XCTAssertEqual(errno { _ = try fs.open(try walk(snap + "/open.txt", as: reader), caller: reader) }, 0)
        XCTAssertEqual(errno { _ = try walk("incoming", as: reader) }, EACCES)
        XCTAssertEqual(errno { _ = try walk(".polyad/status", as: reader) }, 0)
        XCTAssertEqual(errno { _ = try walk(".polyad/metrics", as: reader) }, EACCES)
        XCTAssertEqual(errno { _ = try walk(".polyad/metrics", as: caller(0)) }, 0)
        // Writers: their own entries of `/incoming` only.
        let (_, file) = try fs.create(
            parent: FixedInode.incoming,
            name: Array("mine".utf8),
            mode: S_IFREG | 0o644,
            flags: O_WRONLY,
            caller: writer
        )
        _ = try Array("data".utf8).withUnsafeBytes { try fs.write(file.handle, $0, offset: 0, caller: writer) }
        try fs.flush(file.handle, caller: writer)
        fs.release(file.handle, caller: writer)
        XCTAssertEqual(errno { _ = try walk("incoming/mine", as: writer) }, 0)
        XCTAssertEqual(errno { _ = try walk("incoming/mine", as: otherWriter) }, ENOENT, "not shown to another writer")
        XCTAssertEqual(
            errno {
                try fs.remove(
                    parent: FixedInode.incoming,
                    name: Array("mine".utf8),
                    isFolder: false,
                    caller: otherWriter
                )
            },
            EACCES
        )
        XCTAssertEqual(
            errno {
                _ = try fs.create(
                    parent: FixedInode.incoming,
                    name: Array("mine".utf8),
                    mode: S_IFREG | 0o644,
                    flags: O_WRONLY,
                    caller: otherWriter
                )
            },
            EACCES,
            "another writer's file is not opened by a create of the same name"
        )
        XCTAssertEqual(
            try fs.readDirectory(FixedInode.incoming, caller: otherWriter).map {
                String(decoding: $0.name, as: UTF8.self)
            },
            [".", ".."]
        )
        XCTAssertEqual(
            try fs.readDirectory(FixedInode.incoming, caller: writer).map { String(decoding: $0.name, as: UTF8.self) },
            [".", "..", "mine"]
        )
        XCTAssertEqual(try fs.readDirectory(FixedInode.incoming, caller: caller(0)).count, 3, "admins see all")
        // The lines: each refusal, each answer, an open's bytes at its release.
        log.flush()
        let lines = (try String(contentsOfFile: logPath, encoding: .utf8)).split(separator: "\n")
            .compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        func has(_ uid: UInt32, _ op: String, _ result: String, _ pathEnd: String) -> Bool {
            lines.contains {
                ($0["uid"] as? Int) == Int(uid) && ($0["op"] as? String) == op && ($0["result"] as? String) == result
                    && (($0["path"] as? String)?.hasSuffix(pathEnd) ?? false)
            }
        }
        XCTAssertTrue(has(5009, "lookup", "denied", "/snapshots"))
        XCTAssertTrue(has(5002, "open", "denied", "/private/secret.txt"))
        XCTAssertTrue(has(5002, "readdir", "denied", "/private"))
        XCTAssertTrue(has(5001, "readdir", "ok", "/private"))
        XCTAssertTrue(has(5002, "lookup", "denied", "/incoming"))
        XCTAssertTrue(has(5004, "lookup", "denied", "/incoming/mine"))
        XCTAssertTrue(has(5004, "unlink", "denied", "/incoming/mine"))
        let created = lines.first { ($0["uid"] as? Int) == 5003 && ($0["op"] as? String) == "create" }
        XCTAssertEqual(created?["bytes"] as? Int, 4, "\(String(describing: created))")
        XCTAssertEqual(created?["role"] as? String, "writer")
        log.close()
        fs.finishBackgroundWork()
    }

    func testSecondsOpenHaveThreeDecimals() {
        XCTAssertEqual(RequestGate.milliseconds(0), "0.000")
        XCTAssertEqual(RequestGate.milliseconds(0.004), "0.004")
        XCTAssertEqual(RequestGate.milliseconds(1.2346), "1.235")
        XCTAssertEqual(RequestGate.milliseconds(0.0996), "0.100")
        XCTAssertEqual(RequestGate.milliseconds(12), "12.000")
        XCTAssertEqual(RequestGate.milliseconds(-1), "0.000")
    }

    // MARK: What the kernel may keep

    /// With roles the kernel keeps no entry of the root folder (unless `check_every_walk` is off), and no entry
    /// below a snapshot folder that not everyone may search; other entries keep their day-long cache.
    func testEntriesThatMustBeRecheckedAreNotCached() throws {
        let manager = try MountFileSystemTests.makeStore(in: folder)
        let source = folder + "/src"
        try FileManager.default.createDirectory(atPath: source + "/closed", withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: source + "/open.txt", contents: Data("o".utf8)))
        XCTAssertTrue(FileManager.default.createFile(atPath: source + "/closed/inside.txt", contents: Data("c".utf8)))
        XCTAssertEqual(chmod(folder, 0o755), 0)
        XCTAssertEqual(chmod(source, 0o755), 0)
        XCTAssertEqual(chmod(source + "/closed", 0o750), 0)
        _ = try manager.createBackup(paths: [source])
        let root = Caller(uid: 0, gid: 0, groups: [], pid: 0)

        func mounted(_ settings: AccessSettings?) throws -> MountFileSystem {
            let staging = folder + "/staging-\(UUID().uuidString.prefix(8))"
            let fs = try MountFileSystem(
                manager: manager,
                repository: try manager.repository(),
                cacheBytes: 16 << 20,
                staging: try StagingArea(path: staging),
                settleSeconds: 3600,
                log: { _ in },
                access: try settings.map { try AccessControl(settings: $0, owner: 4000) }
                    ?? AccessControl(
                        ownerOnly: 4000
                    )
            )
            fs.refreshSnapshots(interval: 0)
            return fs
        }
        func entrySeconds(_ fs: MountFileSystem, _ path: String) throws -> Double? {
            var at = FixedInode.root
            for part in path.split(separator: "/") {
                at = try fs.lookup(parent: at, name: Array(part.utf8), caller: root).inode
            }
            return try fs.entryAttributes(at).entrySeconds
        }
        func snapshotPath(_ fs: MountFileSystem) throws -> String {
            let latest = try fs.lookup(parent: FixedInode.snapshots, name: Array("latest".utf8), caller: root)
            return "snapshots/" + String(decoding: try fs.readLink(latest.inode, caller: root), as: UTF8.self)
                + source
        }

        let strict = try mounted(AccessSettings(roles: [.reader: AccessPrincipals(users: ["5001"])]))
        let snap = try snapshotPath(strict)
        XCTAssertEqual(try entrySeconds(strict, "snapshots"), 0, "the root's entries: every walk is checked")
        XCTAssertEqual(try entrySeconds(strict, ".polyad"), 0)
        XCTAssertNil(try entrySeconds(strict, snap + "/open.txt"), "below open folders: cached as always")
        XCTAssertNil(try entrySeconds(strict, snap + "/closed"), "a closed folder's own entry: its parent is open")
        XCTAssertEqual(try entrySeconds(strict, snap + "/closed/inside.txt"), 0, "below a folder not all may search")
        XCTAssertEqual(
            try strict.entryAttributes(
                try strict.lookup(parent: FixedInode.root, name: Array("snapshots".utf8), caller: root).inode
            ).cacheSeconds,
            0
        )
        strict.finishBackgroundWork()

        let cached = try mounted(
            AccessSettings(roles: [.reader: AccessPrincipals(users: ["5001"])], checkEveryWalk: false)
        )
        XCTAssertNil(try entrySeconds(cached, "snapshots"), "check_every_walk: false")
        XCTAssertEqual(try entrySeconds(cached, snap + "/closed/inside.txt"), 0, "the stored modes still hold")
        cached.finishBackgroundWork()

        let unchecked = try mounted(
            AccessSettings(roles: [.reader: AccessPrincipals(users: ["5001"])], filePermissions: false)
        )
        XCTAssertNil(try entrySeconds(unchecked, snap + "/closed/inside.txt"), "file_permissions: false")
        unchecked.finishBackgroundWork()

        let ownerOnly = try mounted(nil)
        XCTAssertNil(try entrySeconds(ownerOnly, "snapshots"), "no access: section, no rechecks")
        XCTAssertNil(try entrySeconds(ownerOnly, snap + "/closed/inside.txt"))
        ownerOnly.finishBackgroundWork()
    }
}
