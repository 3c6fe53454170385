import Foundation
import PolyadFileSystem
import XCTest

/// The exit codes of README "Exit codes" that can be provoked here, from the real binaries: each bad-input case
/// checks the code, the message, and that the store did not change. `ExitCode(for:)` decides every one of them,
/// for `polyad` and for `polyadfs`' startup errors (its table, per code: PolyadRepositoryTests/ErrorCauseTests).
///
/// Covered elsewhere, not repeated here: 2 for the argument parser's errors (ArgumentTests), 2 for a malformed
/// config's line and key (ErrorTests.testMalformedConfigNamesLineAndKey), 3 (ErrorTests.
/// testUnreadableSourceIsReportedAndExits3), 10 and 12 on `snapshots` (ErrorTests.
/// testMissingStoreAndWrongPassphrase), 13 for a damaged pack (ErrorTests.
/// testFlippedByteIsFoundByVerifyAndRefusedOnRestore), 15 for backup and restore on a full disk
/// (ErrorTests.testDiskFullFailsCleanly, testRestoreToAFullDiskExits15), 130 (InterruptionTests), and 12 from
/// polyadfs (MountTests.testDaemonModeAndStartupErrors). 11 and 14 cannot be provoked with a local store and
/// no second host; the mapping tests cover them.
final class ExitCodeTests: XCTestCase {
    static var polyadfs: String { CLIFixture.productsDirectory + "/polyadfs" }

    /// Every file under `path` with its bytes (folders as empty entries).
    func tree(_ path: String) -> [String: Data] {
        var out = [String: Data]()
        for p in FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? [] {
            out[p] = FileManager.default.contents(atPath: path + "/" + p) ?? Data()
        }
        return out
    }

    /// A store with one backup of `src/a.txt`.
    func storeWithABackup(_ f: CLIFixture) throws -> String {
        let src = f.root + "/src"
        try FileSystem.makeDirectories(bytes(src), mode: 0o755)
        _ = FileManager.default.createFile(atPath: src + "/a.txt", contents: Data("one".utf8))
        try f.expect(0, ["init"])
        try f.expect(0, ["backup", "-q", src])
        _ = FileManager.default.createFile(atPath: src + "/b.txt", contents: Data("two".utf8))  // something new
        return src
    }

    /// Runs polyadfs in the foreground (its startup errors come before anything is mounted).
    func polyadfs(
        _ f: CLIFixture,
        _ mountpoint: String,
        environment: [String: String] = [:]
    ) throws -> CLIFixture.Output {
        guard FileManager.default.isExecutableFile(atPath: Self.polyadfs) else {
            throw XCTSkip("polyadfs is not built at \(Self.polyadfs): run `swift build` first")
        }
        return try f.run([f.conf, mountpoint, "-f"], environment: environment, executable: Self.polyadfs)
    }

    func testExit2ABadConfigChangesNothing() throws {
        let f = try CLIFixture()
        let src = try storeWithABackup(f)
        let before = tree(f.root + "/store")
        let bad = "backup:\n  local_dir: \"store\"\n  compression_level: 42\n"
        _ = FileManager.default.createFile(
            atPath: f.conf,
            contents: Data(bad.utf8),
            attributes: [.posixPermissions: 0o600]
        )
        let o = try f.expect(2, ["backup", src])
        XCTAssertTrue(o.stderr.contains("mount.conf:3:"), o.stderr)
        XCTAssertTrue(o.stderr.contains("compression_level"), o.stderr)
        XCTAssertEqual(o.stderr.split(separator: "\n").count, 1, "one line: \(o.stderr)")
        XCTAssertEqual(tree(f.root + "/store"), before, "nothing changed")
        // polyadfs: the same error, the same code.
        try FileSystem.makeDirectories(bytes(f.root + "/mnt"), mode: 0o755)
        let fs = try polyadfs(f, f.root + "/mnt")
        XCTAssertEqual(fs.status, 2, fs.stderr)
        XCTAssertTrue(fs.stderr.contains("compression_level"), fs.stderr)
        XCTAssertEqual(tree(f.root + "/store"), before, "nothing changed")
    }

    func testExit10AMissingStoreIsNotCreated() throws {
        let f = try CLIFixture()
        let src = f.root + "/src"
        try FileSystem.makeDirectories(bytes(src), mode: 0o755)
        let o = try f.expect(10, ["backup", src])
        XCTAssertTrue(o.stderr.contains("no store at \(f.root)/store"), o.stderr)
        XCTAssertTrue(o.stderr.contains("polyad init"), o.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/store"), "no store made by backup")
        try FileSystem.makeDirectories(bytes(f.root + "/mnt"), mode: 0o755)
        let fs = try polyadfs(f, f.root + "/mnt")
        XCTAssertEqual(fs.status, 10, fs.stderr)
        XCTAssertTrue(fs.stderr.contains("polyad init"), fs.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/store"))
    }

    func testExit12AWrongPassphraseWritesNothing() throws {
        let f = try CLIFixture()
        let src = try storeWithABackup(f)
        let before = tree(f.root + "/store")
        for args in [["backup", src], ["key", "add"], ["verify"]] {
            let o = try f.expect(
                12,
                args,
                environment: ["POLYAD_PASSWORD": "not the one", "POLYAD_NEW_PASSWORD": "new one"]
            )
            XCTAssertTrue(o.stderr.contains("wrong passphrase"), o.stderr)
            XCTAssertFalse(o.stderr.contains("not the one"), "the passphrase is never printed")
            XCTAssertEqual(tree(f.root + "/store"), before, "\(args): nothing changed (no snapshot, lock or key)")
        }
    }

    /// A flipped byte in the only key slot: the slot is named and the code is 13, not "wrong passphrase" (12).
    func testExit13ADamagedOnlyKeySlotIsNamed() throws {
        let f = try CLIFixture()
        let src = try storeWithABackup(f)
        let keys = f.root + "/store/keys"
        let slot = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: keys).first)
        try flip(keys + "/" + slot, at: 30)
        let before = tree(f.root + "/store")
        for (args, passphrase) in [
            (["snapshots"], "test passphrase"), (["backup", src], "test passphrase"),
            (["snapshots"], "another passphrase"),
        ] {
            let o = try f.expect(13, args, environment: ["POLYAD_PASSWORD": passphrase])
            XCTAssertTrue(o.stderr.contains("damaged key slot keys/\(slot)"), o.stderr)
            XCTAssertFalse(o.stderr.contains("wrong passphrase"), o.stderr)
            XCTAssertEqual(o.stderr.split(separator: "\n").count, 1, "one line: \(o.stderr)")
            XCTAssertEqual(tree(f.root + "/store"), before, "\(args): nothing changed")
        }
        try FileSystem.makeDirectories(bytes(f.root + "/mnt"), mode: 0o755)
        let fs = try polyadfs(f, f.root + "/mnt")
        XCTAssertEqual(fs.status, 13, fs.stderr)
        XCTAssertTrue(fs.stderr.contains("keys/\(slot)"), fs.stderr)
        // Flipped back, the store opens again.
        try flip(keys + "/" + slot, at: 30)
        try f.expect(0, ["snapshots"])
    }

    /// Beside a slot that opens, a damaged slot does not stop the store from opening; verify reports it.
    func testADamagedSecondSlotDoesNotLockTheStoreOut() throws {
        let f = try CLIFixture()
        try f.expect(0, ["init"])
        let keys = f.root + "/store/keys"
        let first = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: keys).first)
        try f.expect(0, ["key", "add"], environment: ["POLYAD_NEW_PASSWORD": "second passphrase"])
        let second = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: keys).first { $0 != first })
        try flip(keys + "/" + second, at: 30)
        try f.expect(0, ["snapshots"])
        let damaged = try f.expect(13, ["snapshots"], environment: ["POLYAD_PASSWORD": "second passphrase"])
        XCTAssertTrue(damaged.stderr.contains("keys/\(second)"), damaged.stderr)
        let verify = try f.expect(13, ["verify"])
        XCTAssertTrue(verify.stdout.contains("keys/\(second)"), verify.stdout)
    }

    /// `key add` on a full disk: 15, and the store's keys are as they were. (Backup and restore on a full disk:
    /// ErrorTests.testDiskFullFailsCleanly and testRestoreToAFullDiskExits15.)
    func testExit15KeyAddOnAFullDiskAddsNoKey() throws {
        let f = try CLIFixture()
        let store = f.root + "/store"
        try FileSystem.makeDirectories(bytes(store), mode: 0o700)
        let unmount = try mountTmpfs(at: store, size: "1m")
        defer { unmount() }
        try f.expect(0, ["init"])
        let filler = store + "/filler"
        let fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let block = [UInt8](repeating: 0xA5, count: 4096)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        close(fd)
        let before = tree(store)
        let o = try f.expect(15, ["key", "add"], environment: ["POLYAD_NEW_PASSWORD": "second passphrase"])
        XCTAssertTrue(o.stderr.contains("no space left"), o.stderr)
        XCTAssertEqual(tree(store), before, "no key and no temporary file left")
        try FileSystem.unlink(bytes(filler))
        try f.expect(0, ["key", "add"], environment: ["POLYAD_NEW_PASSWORD": "second passphrase"])
    }

    /// Flips one bit of a file in place.
    func flip(_ path: String, at offset: Int) throws {
        chmod(path, 0o600)
        var content = [UInt8](try XCTUnwrap(FileManager.default.contents(atPath: path)))
        content[offset] ^= 0x01
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(content)))
        chmod(path, 0o400)
    }
}
