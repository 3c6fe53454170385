import Foundation
import PolyadFileSystem
import XCTest

/// Bad input gets one clear line and the exit code the README's "Exit codes" give, and loses nothing.
final class ErrorTests: XCTestCase {
    func testMissingStoreAndWrongPassphrase() throws {
        let f = try CLIFixture()
        let missing = try f.expect(10, ["snapshots"])
        XCTAssertTrue(missing.stderr.contains("polyad init"), missing.stderr)
        try f.expect(0, ["init"])
        let wrong = try f.expect(12, ["snapshots"], environment: ["POLYAD_PASSWORD": "not it"])
        XCTAssertTrue(wrong.stderr.contains("wrong passphrase"), wrong.stderr)
        XCTAssertFalse(wrong.stderr.contains("not it"), "the passphrase is never printed")
        XCTAssertEqual(wrong.stderr.split(separator: "\n").count, 1, "one line, no stack trace")
        try f.expect(2, ["init"])  // a second init refuses and changes nothing
        try f.expect(0, ["snapshots"])
    }

    func testMalformedConfigNamesLineAndKey() throws {
        let f = try CLIFixture()
        let text = "backup:\n  local_dir: \"store\"\n  compresion_level: 9\n"
        _ = FileManager.default.createFile(atPath: f.conf, contents: Data(text.utf8))
        let o = try f.expect(2, ["snapshots"])
        XCTAssertTrue(o.stderr.contains("mount.conf:3:"), o.stderr)
        XCTAssertTrue(o.stderr.contains("compresion_level"), o.stderr)
        XCTAssertTrue(o.stderr.contains("compression_level"), "did-you-mean: \(o.stderr)")
        _ = FileManager.default.createFile(atPath: f.conf, contents: Data("backup:\n  local_dir: [\n".utf8))
        let syntax = try f.expect(2, ["snapshots"])
        XCTAssertTrue(syntax.stderr.contains("mount.conf:"), syntax.stderr)
    }

    func testConfigWithReadableSecretIsRefused() throws {
        let f = try CLIFixture()
        let text = "backup:\n  local_dir: \"store\"\n  encryption_key: \"hunter2-secret\"\n"
        _ = FileManager.default.createFile(
            atPath: f.conf,
            contents: Data(text.utf8),
            attributes: [.posixPermissions: 0o644]
        )
        let o = try f.expect(2, ["init"])
        XCTAssertTrue(o.stderr.contains("chmod 600"), o.stderr)
        XCTAssertFalse(o.stderr.contains("hunter2"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/store/config"))
        chmod(f.conf, 0o600)
        try f.expect(0, ["init"], environment: ["POLYAD_PASSWORD": ""])
    }

    func testFlippedByteIsFoundByVerifyAndRefusedOnRestore() throws {
        let f = try CLIFixture()
        let src = f.root + "/src"
        try FileSystem.makeDirectories(bytes(src), mode: 0o755)
        _ = FileManager.default.createFile(
            atPath: src + "/photo.jpg",
            contents: Data((0..<2_000_000).map { UInt8(truncatingIfNeeded: ($0 &* 7919) >> 5 ^ $0) })
        )
        try f.expect(0, ["init"])
        try f.expect(0, ["backup", src])
        try f.expect(0, ["verify", "--read-data"])
        let data = f.root + "/store/data"
        let packs = try FileManager.default.subpathsOfDirectory(atPath: data).filter { $0.count > 60 }
            .map { data + "/" + $0 }
            .sorted {
                (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int) ?? 0
                    > (try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0
            }
        let pack = try XCTUnwrap(packs.first)
        chmod(pack, 0o600)
        var content = [UInt8](try XCTUnwrap(FileManager.default.contents(atPath: pack)))
        content[4096] ^= 0x01
        _ = FileManager.default.createFile(atPath: pack, contents: Data(content))
        try f.expect(0, ["verify"])  // structure and metadata are intact; only --read-data reads data packs
        let verify = try f.expect(13, ["verify", "--read-data"])
        XCTAssertTrue(verify.stdout.contains((pack as NSString).lastPathComponent), verify.stdout)
        XCTAssertTrue(verify.stdout.contains("photo.jpg"), "names the file it hurts: \(verify.stdout)")
        let restore = try f.expect(13, ["restore", "latest", "--target", f.root + "/out"])
        XCTAssertTrue(restore.stderr.contains("photo.jpg"), restore.stderr)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: f.root + "/out" + src + "/photo.jpg"),
            "no wrong bytes restored"
        )
    }

    func testDiskFullFailsCleanly() throws {
        let f = try CLIFixture()
        let store = f.root + "/store"
        try FileSystem.makeDirectories(bytes(store), mode: 0o700)
        let unmount = try mountTmpfs(at: store, size: "3m")
        defer { unmount() }
        try f.expect(0, ["init"])
        let src = f.root + "/src"
        try FileSystem.makeDirectories(bytes(src), mode: 0o755)
        let random = randomBytes(6_000_000, seed: 88_172_645_463_325_252)
        _ = FileManager.default.createFile(atPath: src + "/big.bin", contents: Data(random))
        let o = try f.expect(15, ["backup", src])
        XCTAssertTrue(o.stderr.lowercased().contains("space"), o.stderr)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: store + "/tmp"),
            [],
            "no temporary files left"
        )
        XCTAssertTrue(try FileManager.default.contentsOfDirectory(atPath: store + "/snapshots").isEmpty)
        XCTAssertTrue(try FileManager.default.contentsOfDirectory(atPath: store + "/locks").isEmpty)
        try f.expect(0, ["verify", "--read-data"])  // what is there is whole
        try FileSystem.unlink(bytes(src + "/big.bin"))
        _ = FileManager.default.createFile(atPath: src + "/small.txt", contents: Data("fits".utf8))
        try f.expect(0, ["backup", src])  // and the store takes the next backup
    }

    func testRestoreToAFullDiskExits15() throws {
        let f = try CLIFixture()
        let src = f.root + "/src"
        try FileSystem.makeDirectories(bytes(src), mode: 0o755)
        for (i, name) in ["a.bin", "b.bin"].enumerated() {
            _ = FileManager.default.createFile(
                atPath: src + "/" + name,
                contents: Data(randomBytes(3_000_000, seed: 0x9E37 + UInt64(i)))
            )
        }
        try f.expect(0, ["init"])
        try f.expect(0, ["backup", src])
        let target = f.root + "/small"
        try FileSystem.makeDirectories(bytes(target), mode: 0o700)
        let unmount = try mountTmpfs(at: target, size: "4m")
        defer { unmount() }
        let o = try f.expect(15, ["restore", "latest", "--target", target])
        XCTAssertTrue(o.stderr.contains("space"), o.stderr)
        let leftovers = (FileManager.default.enumerator(atPath: target)?.allObjects as? [String] ?? [])
            .filter { ($0 as NSString).lastPathComponent.hasPrefix(".polyad-restore-") }
        XCTAssertEqual(leftovers, [], "no temporary files left behind")
    }

    func testKeyAddRemovePasswd() throws {
        let f = try CLIFixture(passphrase: "first")
        try f.expect(0, ["init"])
        let add = try f.expect(0, ["key", "add"], environment: ["POLYAD_NEW_PASSWORD": "second"])
        let added = String(try XCTUnwrap(add.stdout.split(separator: " ").last).prefix(8))
        let list = try f.expect(0, ["key", "list"])
        XCTAssertEqual(list.stdout.split(separator: "\n").count, 4, list.stdout)  // header, rule, two slots
        try f.expect(0, ["snapshots"], environment: ["POLYAD_PASSWORD": "second"])
        try f.expect(2, ["key", "remove", added], environment: ["POLYAD_PASSWORD": "second"])  // the slot in use
        try f.expect(0, ["key", "remove", added])
        try f.expect(12, ["snapshots"], environment: ["POLYAD_PASSWORD": "second"])
        try f.expect(0, ["key", "passwd"], environment: ["POLYAD_NEW_PASSWORD": "third"])
        try f.expect(12, ["snapshots"])
        try f.expect(0, ["snapshots"], environment: ["POLYAD_PASSWORD": "third"])
    }

    func testUnreadableSourceIsReportedAndExits3() throws {
        let f = try CLIFixture()
        let src = f.root + "/src"
        try FileSystem.makeDirectories(bytes(src), mode: 0o755)
        _ = FileManager.default.createFile(atPath: src + "/ok.txt", contents: Data("fine".utf8))
        _ = FileManager.default.createFile(atPath: src + "/secret.txt", contents: Data("no".utf8))
        chmod(src + "/secret.txt", 0o000)
        try f.expect(0, ["init"])
        var prefix = [String]()
        if getuid() == 0 {
            // root reads everything: run as nobody, owning the fixture.
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
                if underCI { return XCTFail("setpriv (util-linux) is missing") }
                throw XCTSkip("setpriv is missing: cannot drop root to test an unreadable source")
            }
            let chown = Process()
            chown.executableURL = URL(fileURLWithPath: "/bin/chown")
            chown.arguments = ["-R", "65534:65534", f.root]
            try chown.run()
            chown.waitUntilExit()
            chmod(f.root, 0o755)
            prefix = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", CLIFixture.binary]
        }
        let args = prefix.isEmpty ? ["backup", src] : Array(prefix.dropFirst()) + ["backup", src]
        let o: CLIFixture.Output
        if prefix.isEmpty {
            o = try f.run(args)
        } else {
            o = try f.run(args, executable: prefix[0])
        }
        XCTAssertEqual(o.status, 3, o.stdout + o.stderr)
        XCTAssertTrue(o.stderr.contains("secret.txt"), o.stderr)
        XCTAssertTrue(o.stdout.contains("snapshot "), "the snapshot is made without it: \(o.stdout)")
    }
}

/// Interrupted and killed backups leave a store that verifies and takes the next backup.
final class InterruptionTests: XCTestCase {
    private func makeSource(_ f: CLIFixture) throws -> String {
        let src = f.root + "/src"
        try FileSystem.makeDirectories(bytes(src), mode: 0o755)
        for i in 0..<12 {
            _ = FileManager.default.createFile(
                atPath: src + "/part\(i).bin",
                contents: Data(randomBytes(4_000_000, seed: 0x2545_F491 + UInt64(i)))
            )
        }
        return src
    }

    private func start(_ f: CLIFixture, _ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLIFixture.binary)
        p.arguments = args
        p.environment = f.environment
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Waits until the backup has stored its first pack (or has ended).
    private func waitForFirstPack(_ f: CLIFixture, _ p: Process) {
        for _ in 0..<2000 where p.isRunning {
            let packs =
                (try? FileManager.default.subpathsOfDirectory(atPath: f.root + "/store/data"))?.filter { $0.count > 60 }
                ?? []
            if !packs.isEmpty { return }
            usleep(5000)
        }
    }

    /// Starts a backup of 48 MB, sends `signal` once its first pack is stored, waits for it to end.
    private func backupStopped(by signal: Int32) throws -> (CLIFixture, String, Process) {
        let f = try CLIFixture(extraConfig: "  pack_size_mib: 4\n")
        let src = try makeSource(f)
        try f.expect(0, ["init"])
        let p = try start(f, ["backup", src])
        waitForFirstPack(f, p)
        kill(p.processIdentifier, signal)
        p.waitUntilExit()
        return (f, src, p)
    }

    func testSigintStopsCleanly() throws {
        let (f, src, p) = try backupStopped(by: SIGINT)
        if p.terminationStatus == 0 { throw XCTSkip("the backup finished before the signal arrived") }
        XCTAssertEqual(p.terminationStatus, 130)
        XCTAssertTrue(try FileManager.default.contentsOfDirectory(atPath: f.root + "/store/snapshots").isEmpty)
        XCTAssertTrue(
            try FileManager.default.contentsOfDirectory(atPath: f.root + "/store/locks").isEmpty,
            "lock released"
        )
        try f.expect(0, ["verify", "--read-data"])
        try f.expect(0, ["backup", src])
        try f.expect(0, ["restore", "latest", "--target", f.root + "/out", "--verify"])
    }

    func testKilledBackupLeavesAUsableStore() throws {
        let (f, src, _) = try backupStopped(by: SIGKILL)
        try f.expect(0, ["verify", "--read-data"])
        try f.expect(0, ["backup", src])  // the dead process's lock does not block it
        try f.expect(0, ["verify", "--read-data"])
        XCTAssertTrue(try FileManager.default.contentsOfDirectory(atPath: f.root + "/store/locks").isEmpty)
    }
}
