import Foundation
import PolyadFileSystem
import XCTest

/// Roles, stored modes and the access log through a real `allow_other` mount, each request made by a process
/// of another uid (`setpriv --reuid/--regid/--groups`, numeric ids: no accounts needed but in the SIGHUP test,
/// which makes a group with `groupadd` and removes it after).
final class AccessTests: XCTestCase {
    // The test's users and groups (numeric).
    static let alice: UInt32 = 62001  // reader by name... by uid
    static let bob: UInt32 = 62002  // reader through the group 62100
    static let wendy: UInt32 = 62003  // writer by uid
    static let wade: UInt32 = 62004  // writer through the group 62200
    static let ada: UInt32 = 62005  // admin by uid
    static let mallory: UInt32 = 62009  // no role
    static let staff: UInt32 = 62100
    static let writers: UInt32 = 62200

    static func accessConfig(log: String, extra: String = "") -> String {
        """
        mount:
          allow_other: true
          settle_seconds: 3600
        access:
          default_role: none
          roles:
            admin: { users: ["\(ada)"] }
            writer: { users: ["\(wendy)"], groups: ["\(writers)"] }
            reader: { users: ["\(alice)"], groups: ["\(staff)"] }
        log:
          access: "\(log)"
        \(extra)
        """
    }

    /// Runs `command` as `uid` (its own gid, plus `groups`); the exit status and output.
    static func run(as uid: UInt32, groups: [UInt32] = [], _ command: [String]) -> (status: Int32, out: String) {
        let groupOption =
            groups.isEmpty ? "--clear-groups" : "--groups=" + groups.map(String.init).joined(separator: ",")
        return MountedStore.shell(["setpriv", "--reuid=\(uid)", "--regid=\(uid)", groupOption, "--"] + command)
    }

    /// The access log's lines, parsed.
    static func lines(_ path: String) -> [[String: Any]] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }

    /// Waits (up to 10 s: the log is flushed at least every second) for a line that `matches`.
    @discardableResult
    static func waitForLine(
        _ path: String,
        _ what: String,
        file: StaticString = #filePath,
        line: UInt = #line,
        where matches: ([String: Any]) -> Bool
    ) -> [String: Any]? {
        for _ in 0..<100 {
            if let hit = lines(path).first(where: matches) { return hit }
            usleep(100_000)
        }
        XCTFail("no access-log line for \(what)", file: file, line: line)
        return nil
    }

    /// The backed-up tree: files of several owners and modes.
    func makeSource(_ root: String) throws -> String {
        let src = root + "/src"
        let fm = FileManager.default
        try fm.createDirectory(atPath: src + "/alice", withIntermediateDirectories: true)
        func file(_ name: String, _ text: String, uid: UInt32, gid: UInt32, mode: Int) throws {
            let p = src + "/" + name
            XCTAssertTrue(fm.createFile(atPath: p, contents: Data(text.utf8)))
            XCTAssertEqual(chown(p, uid, gid), 0)
            XCTAssertEqual(chmod(p, mode_t(mode)), 0)
        }
        try file("pub.txt", "public\n", uid: 0, gid: 0, mode: 0o644)
        try file("shadow", "root:secret\n", uid: 0, gid: Self.staff, mode: 0o640)
        // Group members get the group's bits (none), others the others' (read): the kernel's rule.
        try file("not-for-staff", "others only\n", uid: 0, gid: Self.staff, mode: 0o604)
        try file("alice/notes.txt", "alice's notes\n", uid: Self.alice, gid: Self.alice, mode: 0o600)
        try file("alice/probe.txt", "probe\n", uid: Self.alice, gid: Self.alice, mode: 0o600)
        try file("alice/attr.txt", "attr\n", uid: Self.alice, gid: Self.alice, mode: 0o600)
        XCTAssertEqual(
            MountedStore.shell(["setfattr", "-n", "user.note", "-v", "hello", src + "/alice/attr.txt"]).status,
            0
        )
        XCTAssertEqual(chown(src + "/alice", Self.alice, Self.alice), 0)
        XCTAssertEqual(chmod(src + "/alice", 0o700), 0)
        return src
    }

    /// A mount of a snapshot of `makeSource`'s tree with the roles above, and the access log's path.
    func mountWithRoles(extra: String = "") throws -> (MountedStore, snapshot: String, log: String) {
        let fixture = try CLIFixture()
        // Other uids must reach the mount point.
        XCTAssertEqual(chmod(fixture.root, 0o711), 0)
        let log = fixture.root + "/access.log"
        try Data(
            ("backup:\n  local_dir: \"store\"\n  compression_level: 6\n" + Self.accessConfig(log: log, extra: extra))
                .utf8
        )
        .write(to: URL(fileURLWithPath: fixture.conf))
        XCTAssertEqual(chmod(fixture.conf, 0o600), 0)
        try fixture.expect(0, ["init"])
        let src = try makeSource(fixture.root)
        try fixture.expect(0, ["backup", src])
        let store = try MountedStore(fixture: fixture)
        try store.mount()
        return (store, try store.snapshotRoot() + src, log)
    }

    // MARK: The table

    func testRolesModesAndTheAccessLog() throws {
        let (store, snap, log) = try mountWithRoles()
        defer { store.unmount() }
        let mnt = store.mountpoint
        let alice = Self.alice
        let bob = Self.bob
        let ada = Self.ada
        let wendy = Self.wendy
        let wade = Self.wade

        struct Row {
            var uid: UInt32
            var groups: [UInt32] = []
            var command: [String]
            var allowed: Bool
            /// The access-log line the row leaves: its operation, result and the end of its path.
            var op: String
            var path: String
            var output: String? = nil
        }
        let rows: [Row] = [
            // Denied before anyone else looked there (nothing in the kernel's cache to answer for the daemon).
            Row(
                uid: bob,
                groups: [Self.staff],
                command: ["stat", snap + "/alice/probe.txt"],
                allowed: false,
                op: "lookup",
                path: "/alice/probe.txt"
            ),
            Row(
                uid: alice,
                command: ["cat", snap + "/pub.txt"],
                allowed: true,
                op: "open",
                path: "/pub.txt",
                output: "public\n"
            ),
            Row(
                uid: alice,
                command: ["stat", snap + "/alice/probe.txt"],
                allowed: true,
                op: "lookup",
                path: "/alice/probe.txt"
            ),
            Row(
                uid: alice,
                command: ["cat", snap + "/alice/notes.txt"],
                allowed: true,
                op: "open",
                path: "/alice/notes.txt",
                output: "alice's notes\n"
            ),
            Row(uid: alice, command: ["ls", snap + "/alice"], allowed: true, op: "readdir", path: "/alice"),
            Row(
                uid: alice,
                command: ["getfattr", "-n", "user.note", snap + "/alice/attr.txt"],
                allowed: true,
                op: "getxattr",
                path: "/alice/attr.txt"
            ),
            // The same files for bob (a reader through his group): the stored mode says no (at the walk, as the
            // kernel keeps no entry below alice/, or at the open).
            Row(
                uid: bob,
                groups: [Self.staff],
                command: ["cat", snap + "/alice/notes.txt"],
                allowed: false,
                op: "lookup|open",
                path: "/alice/notes.txt"
            ),
            Row(
                uid: bob,
                groups: [Self.staff],
                command: ["ls", snap + "/alice"],
                allowed: false,
                op: "readdir",
                path: "/alice"
            ),
            Row(
                uid: bob,
                groups: [Self.staff],
                command: ["getfattr", "-n", "user.note", snap + "/alice/attr.txt"],
                allowed: false,
                op: "lookup|getxattr",
                path: "/alice/attr.txt"
            ),
            // Group bits: bob is in the file's group (read), alice is not (others: nothing).
            Row(
                uid: bob,
                groups: [Self.staff],
                command: ["cat", snap + "/shadow"],
                allowed: true,
                op: "open",
                path: "/shadow",
                output: "root:secret\n"
            ),
            Row(uid: alice, command: ["cat", snap + "/shadow"], allowed: false, op: "open", path: "/shadow"),
            Row(
                uid: bob,
                groups: [Self.staff],
                command: ["cat", snap + "/not-for-staff"],
                allowed: false,
                op: "open",
                path: "/not-for-staff"
            ),
            Row(
                uid: alice,
                command: ["cat", snap + "/not-for-staff"],
                allowed: true,
                op: "open",
                path: "/not-for-staff"
            ),
            // Admins and root see everything.
            Row(
                uid: ada,
                command: ["cat", snap + "/alice/notes.txt"],
                allowed: true,
                op: "open",
                path: "/alice/notes.txt",
                output: "alice's notes\n"
            ),
            Row(
                uid: 0,
                command: ["cat", snap + "/alice/notes.txt"],
                allowed: true,
                op: "open",
                path: "/alice/notes.txt"
            ),
            // After alice, ada and root walked into alice/ (0700): the kernel keeps no entry below a folder
            // not everyone may search, so bob's walk still reaches the daemon and is refused.
            Row(
                uid: bob,
                groups: [Self.staff],
                command: ["stat", snap + "/alice/notes.txt"],
                allowed: false,
                op: "lookup",
                path: "/alice/notes.txt"
            ),
            Row(
                uid: bob,
                groups: [Self.staff],
                command: ["stat", snap + "/alice/probe.txt"],
                allowed: false,
                op: "lookup",
                path: "/alice/probe.txt"
            ),
            // /.polyad: status for readers, metrics for admins.
            Row(
                uid: alice,
                command: ["cat", mnt + "/.polyad/status"],
                allowed: true,
                op: "open",
                path: "/.polyad/status"
            ),
            Row(
                uid: alice,
                command: ["cat", mnt + "/.polyad/stats.json"],
                allowed: true,
                op: "open",
                path: "/.polyad/stats.json"
            ),
            Row(
                uid: alice,
                command: ["cat", mnt + "/.polyad/metrics"],
                allowed: false,
                op: "lookup",
                path: "/.polyad/metrics"
            ),
            Row(
                uid: ada,
                command: ["cat", mnt + "/.polyad/metrics"],
                allowed: true,
                op: "open",
                path: "/.polyad/metrics"
            ),
            // /incoming: writers only, each seeing their own.
            Row(
                uid: wendy,
                command: ["sh", "-c", "printf hello > \(mnt)/incoming/wendy.txt"],
                allowed: true,
                op: "create",
                path: "/incoming/wendy.txt"
            ),
            Row(
                uid: alice,
                command: ["sh", "-c", "printf x > \(mnt)/incoming/alice.txt"],
                allowed: false,
                op: "lookup",
                path: "/incoming"
            ),
            // (The kernel may hold wendy's entry: then the open is what the daemon refuses.)
            Row(
                uid: wade,
                groups: [Self.writers],
                command: ["cat", mnt + "/incoming/wendy.txt"],
                allowed: false,
                op: "lookup|open",
                path: "/incoming/wendy.txt"
            ),
            Row(
                uid: wade,
                groups: [Self.writers],
                command: ["sh", "-c", "printf mine > \(mnt)/incoming/wade.txt"],
                allowed: true,
                op: "create",
                path: "/incoming/wade.txt"
            ),
            Row(
                uid: wendy,
                command: ["cat", mnt + "/incoming/wendy.txt"],
                allowed: true,
                op: "open",
                path: "/incoming/wendy.txt",
                output: "hello"
            ),
            Row(
                uid: ada,
                command: ["cat", mnt + "/incoming/wendy.txt"],
                allowed: true,
                op: "open",
                path: "/incoming/wendy.txt",
                output: "hello"
            ),
        ]
        for (n, row) in rows.enumerated() {
            let r = Self.run(as: row.uid, groups: row.groups, row.command)
            let what = "row \(n): uid \(row.uid) \(row.command.joined(separator: " "))"
            XCTAssertEqual(r.status == 0, row.allowed, "\(what): exit \(r.status): \(r.out)")
            if !row.allowed {
                XCTAssertTrue(
                    r.out.contains("Permission denied") || r.out.contains("No such file"),
                    "\(what): \(r.out)"
                )
            }
            if let expected = row.output, row.allowed { XCTAssertEqual(r.out, expected, what) }
            let result = row.allowed ? "ok" : "denied"
            let hit = Self.waitForLine(log, what) { l in
                (l["uid"] as? Int) == Int(row.uid)
                    && row.op.split(separator: "|").contains { $0 == (l["op"] as? String ?? "") }
                    && (l["result"] as? String) == result && ((l["path"] as? String)?.hasSuffix(row.path) ?? false)
            }
            if let hit {
                XCTAssertNotNil(hit["time"] as? String, what)
                XCTAssertNotNil(hit["pid"] as? Int, what)
                XCTAssertNotNil(hit["process"] as? String, what)
                XCTAssertNotNil(hit["role"] as? String, what)
                if row.op == "open" || row.op == "create", row.allowed {
                    XCTAssertNotNil(hit["bytes"] as? Int, "\(what): an open's line has the bytes of its span")
                }
            }
        }
        // Each writer lists only their own, the admin everything.
        XCTAssertEqual(Self.run(as: wendy, ["ls", mnt + "/incoming"]).out, "wendy.txt\n")
        XCTAssertEqual(Self.run(as: wade, groups: [Self.writers], ["ls", mnt + "/incoming"]).out, "wade.txt\n")
        XCTAssertEqual(Self.run(as: ada, ["ls", mnt + "/incoming"]).out, "wade.txt\nwendy.txt\n")
        // A read's bytes are on its open's line.
        let read = Self.waitForLine(log, "alice's read of notes.txt with bytes") { l in
            (l["uid"] as? Int) == Int(alice) && (l["op"] as? String) == "open"
                && ((l["path"] as? String)?.hasSuffix("/alice/notes.txt") ?? false)
        }
        XCTAssertEqual(read?["bytes"] as? Int, "alice's notes\n".utf8.count)
        XCTAssertEqual(read?["role"] as? String, "reader")
        XCTAssertEqual(read?["process"] as? String, "cat")
        // The mount's own events.
        Self.waitForLine(log, "the mount event") { ($0["op"] as? String) == "mount" }
        // No secret in the log.
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertFalse(text.contains("test passphrase"))
        XCTAssertFalse(text.contains("alice's notes"), "file content in the access log")
        // Mode 0600.
        XCTAssertEqual(try FileSystem.stat(bytes(log)).mode & 0o777, 0o600)
        store.unmount()
        XCTAssertNotNil(Self.lines(log).last { ($0["op"] as? String) == "unmount" }, "the unmount line is written")
    }

    func testNoRoleGetsNothing() throws {
        let (store, snap, log) = try mountWithRoles()
        defer { store.unmount() }
        let mnt = store.mountpoint
        let m = Self.mallory
        let commands: [(String, [String])] = [
            ("readdir", ["ls", mnt]),
            ("lookup", ["stat", mnt + "/snapshots"]),
            ("lookup", ["ls", mnt + "/snapshots"]),
            ("lookup", ["cat", snap + "/pub.txt"]),
            ("lookup", ["cat", mnt + "/.polyad/status"]),
            ("lookup", ["sh", "-c", "echo x > \(mnt)/incoming/x"]),
        ]
        // A reader was there first: the kernel holds the entries, and the daemon still refuses.
        XCTAssertEqual(Self.run(as: Self.alice, ["cat", snap + "/pub.txt"]).status, 0)
        for (op, command) in commands {
            let r = Self.run(as: m, command)
            XCTAssertNotEqual(r.status, 0, "\(command) as a user with no role: \(r.out)")
            XCTAssertTrue(r.out.contains("Permission denied"), "\(command): \(r.out)")
            Self.waitForLine(log, "\(command) denied") { l in
                (l["uid"] as? Int) == Int(m) && (l["op"] as? String) == op && (l["result"] as? String) == "denied"
                    && (l["role"] as? String) == "none"
            }
        }
        // The mount point itself may be looked at (mount, df), nothing below it.
        XCTAssertEqual(Self.run(as: m, ["stat", mnt]).status, 0)
    }

    // MARK: Refusals at start-up

    func testAllowOtherWithoutAccessRefusesToMount() throws {
        let fixture = try CLIFixture(extraConfig: "mount:\n  allow_other: true\n")
        try fixture.expect(0, ["init"])
        let store = try MountedStore(fixture: fixture)
        let before = try FileManager.default.contentsOfDirectory(atPath: fixture.root + "/store").sorted()
        let o = try fixture.run([fixture.conf, store.mountpoint], executable: MountedStore.polyadfs)
        XCTAssertEqual(o.status, 2, o.stderr)
        XCTAssertTrue(o.stderr.contains("access:"), o.stderr)
        XCTAssertTrue(o.stderr.contains("allow_other"), o.stderr)
        XCTAssertFalse(store.isMounted)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fixture.root + "/store").sorted(), before)
        // `-o allow_other` on the command line is the same.
        fixture.writeConfig("  compression_level: 6\n")
        let o2 = try fixture.run(
            [fixture.conf, store.mountpoint, "-o", "allow_other"],
            executable: MountedStore.polyadfs
        )
        XCTAssertEqual(o2.status, 2, o2.stderr)
        XCTAssertFalse(store.isMounted)
    }

    func testUnknownUserInRulesRefusesToMount() throws {
        let fixture = try CLIFixture(
            extraConfig:
                "mount:\n  allow_other: true\naccess:\n  roles:\n    reader: { users: [polyad-no-such-user] }\n"
        )
        try fixture.expect(0, ["init"])
        let store = try MountedStore(fixture: fixture)
        let o = try fixture.run([fixture.conf, store.mountpoint], executable: MountedStore.polyadfs)
        XCTAssertEqual(o.status, 2, o.stderr)
        XCTAssertTrue(o.stderr.contains("access.roles.reader.users"), o.stderr)
        XCTAssertTrue(o.stderr.contains("polyad-no-such-user"), o.stderr)
        XCTAssertFalse(store.isMounted)
    }

    func testUnknownRoleIsAConfigError() throws {
        let fixture = try CLIFixture(extraConfig: "access:\n  default_role: raeder\n")
        let o = try fixture.expect(2, ["snapshots"])
        XCTAssertTrue(o.stderr.contains("access.default_role"), o.stderr)
        XCTAssertTrue(o.stderr.contains("did you mean 'reader'"), o.stderr)
    }

    // MARK: SIGHUP

    func testGroupChangesTakeEffectAfterSighup() throws {
        let group = "polyadt-staff\(getpid() % 10000)"
        let first: UInt32 = 62300
        let second: UInt32 = 62301
        _ = MountedStore.shell(["groupdel", group])
        XCTAssertEqual(MountedStore.shell(["groupadd", "-g", "\(first)", group]).status, 0)
        defer { _ = MountedStore.shell(["groupdel", group]) }
        let (store, snap, log) = try mountWithRoles()
        store.unmount()
        // The same store, now with the group's name in the rules.
        var text = try String(contentsOfFile: store.fixture.conf, encoding: .utf8)
        text = text.replacingOccurrences(of: "groups: [\"\(Self.staff)\"]", with: "groups: [\"\(group)\"]")
        try Data(text.utf8).write(to: URL(fileURLWithPath: store.fixture.conf))
        try store.mount()
        let user: UInt32 = 62010
        XCTAssertEqual(Self.run(as: user, groups: [first], ["cat", snap + "/pub.txt"]).status, 0)
        XCTAssertNotEqual(Self.run(as: user, groups: [second], ["cat", snap + "/pub.txt"]).status, 0)
        // The group gets another id: the mount keeps the one it resolved until SIGHUP.
        XCTAssertEqual(MountedStore.shell(["groupmod", "-g", "\(second)", group]).status, 0)
        XCTAssertEqual(Self.run(as: user, groups: [first], ["cat", snap + "/pub.txt"]).status, 0)
        let pid = try XCTUnwrap(store.daemonPID)
        XCTAssertEqual(kill(pid, SIGHUP), 0)
        Self.waitForLine(log, "the reload") { ($0["op"] as? String) == "reload" }
        XCTAssertTrue(store.isMounted, "SIGHUP does not end the mount")
        XCTAssertEqual(Self.run(as: user, groups: [second], ["cat", snap + "/pub.txt"]).status, 0)
        let r = Self.run(as: user, groups: [first], ["cat", snap + "/pub.txt"])
        XCTAssertNotEqual(r.status, 0, "the old id no longer gives the role: \(r.out)")
        store.unmount()
    }

    func testLogSurvivesRotationWithoutLosingALine() throws {
        let (store, snap, log) = try mountWithRoles()
        defer { store.unmount() }
        let pid = try XCTUnwrap(store.daemonPID)
        // 300 opens by alice, with a rotation (rename + SIGHUP, as logrotate does) in the middle.
        let script = "for i in $(seq 1 300); do cat \(snap)/pub.txt > /dev/null; done"
        let done = DispatchSemaphore(value: 0)
        let runner = Thread {
            _ = Self.run(as: Self.alice, ["sh", "-c", script])
            done.signal()
        }
        runner.start()
        usleep(300_000)
        XCTAssertEqual(rename(log, log + ".1"), 0)
        XCTAssertEqual(kill(pid, SIGHUP), 0)
        done.wait()
        store.unmount()
        let all = Self.lines(log + ".1") + Self.lines(log)
        let opens = all.filter {
            ($0["uid"] as? Int) == Int(Self.alice) && ($0["op"] as? String) == "open"
                && ($0["result"] as? String) == "ok"
        }
        let dropped = all.compactMap { $0["dropped"] as? Int }.reduce(0, +)
        XCTAssertEqual(opens.count, 300, "every open has its line, in the old file or the new (dropped: \(dropped))")
        XCTAssertFalse(Self.lines(log).isEmpty, "lines after the SIGHUP go to the new file")
        XCTAssertEqual(try FileSystem.stat(bytes(log)).mode & 0o777, 0o600)
    }

    func testFloodOfStatsLosesNoLine() throws {
        let (store, _, log) = try mountWithRoles()
        defer { store.unmount() }
        // `/snapshots` is looked up by the daemon on every path walk (the kernel keeps no entry of it).
        let count = 100_000
        let script = "import os\nfor i in range(\(count)): os.stat('\(store.mountpoint)/snapshots')\n"
        let r = Self.run(as: Self.alice, ["/usr/bin/python3", "-c", script])
        XCTAssertEqual(r.status, 0, r.out)
        store.unmount()
        let all = Self.lines(log)
        let lookups = all.filter {
            ($0["uid"] as? Int) == Int(Self.alice) && ($0["op"] as? String) == "lookup"
                && ($0["path"] as? String) == "/snapshots"
        }.count
        let dropped = all.filter { ($0["op"] as? String) == "dropped" }.compactMap { $0["dropped"] as? Int }
            .reduce(0, +)
        XCTAssertGreaterThanOrEqual(lookups + dropped, count, "every request is logged or counted as dropped")
        print("flood of \(count) stats: \(lookups) lines, \(dropped) dropped and reported")
    }

    // MARK: The CLI's runs

    func testCommandRunsAreLogged() throws {
        let fixture = try CLIFixture()
        let log = fixture.root + "/access.log"
        fixture.writeConfig("  compression_level: 6\nlog:\n  access: \"\(log)\"\n")
        try fixture.expect(0, ["init"])
        let src = fixture.root + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: src + "/a", contents: Data("a".utf8))
        try fixture.expect(0, ["backup", src])
        try fixture.expect(0, ["key", "add", "--label", "second"], environment: ["POLYAD_NEW_PASSWORD": "second pass"])
        try fixture.expect(12, ["snapshots"], environment: ["POLYAD_PASSWORD": "wrong"])
        let all = Self.lines(log)
        let ops = all.compactMap { $0["op"] as? String }
        XCTAssertEqual(ops, ["init", "backup", "key-add", "snapshots"], "\(all)")
        XCTAssertEqual(all.last?["result"] as? String, "error")
        XCTAssertEqual(all.last?["exit_code"] as? String, "12")
        XCTAssertEqual(all[2]["args"] as? String, "key add --label second")
        XCTAssertEqual(all.first?["uid"] as? Int, Int(getuid()))
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertFalse(text.contains("test passphrase"))
        XCTAssertFalse(text.contains("wrong"))
        XCTAssertFalse(text.contains("second pass"), "the new passphrase")
        XCTAssertEqual(try FileSystem.stat(bytes(log)).mode & 0o777, 0o600)
    }
}
