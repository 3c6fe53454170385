import Foundation
import PolyadFileSystem
import XCTest

/// The trust rule for files that can run code or name secrets (mount.conf, the key file, the key command's
/// program and every folder above them), and the key command's sandbox: a time limit, `/dev/null` as input,
/// a minimal environment.
final class TrustTests: XCTestCase {
    /// The account files are handed to, to play "another user".
    static let nobody: UInt32 = 65534

    /// Skips (fails under CI) unless this runs as root: making files owned by another user needs it.
    func requireRoot() throws {
        guard geteuid() == 0 else {
            if underCI { XCTFail("the trust tests chown files to another user and need root under CI") }
            throw XCTSkip("not root: cannot make files owned by another user; trust tests skipped")
        }
    }

    /// The repro of the issue: a config file another user owns and can write, naming a key command. As root,
    /// polyad refuses it (exit 2, naming the file and the fix) and runs nothing.
    func testConfigAnotherUserCanWriteRunsNothing() throws {
        try requireRoot()
        let f = try CLIFixture()
        try f.expect(0, ["init"])
        let folder = f.root + "/x"
        try FileSystem.makeDirectory(bytes(folder), mode: 0o755)
        let conf = folder + "/mount.conf"
        let pwned = folder + "/pwned"
        let text =
            "backup:\n  local_dir: \"../store\"\n  encryption_key_command: \"id > \(pwned); echo 'test passphrase'\"\n"
        _ = FileManager.default.createFile(
            atPath: conf,
            contents: Data(text.utf8),
            attributes: [.posixPermissions: 0o666]
        )
        chmod(conf, 0o666)
        chown(conf, Self.nobody, Self.nobody)

        let owned = try f.expect(2, ["snapshots", "-c", conf])
        XCTAssertTrue(owned.stderr.contains("\(conf) is owned by nobody"), owned.stderr)
        XCTAssertTrue(owned.stderr.contains("chown root \(conf)"), owned.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pwned), "the key command must not have run")

        chown(conf, 0, 0)
        let writable = try f.expect(2, ["snapshots", "-c", conf])
        XCTAssertTrue(writable.stderr.contains("can be written by group or others (mode 0666)"), writable.stderr)
        XCTAssertTrue(writable.stderr.contains("chmod go-w \(conf)"), writable.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pwned))

        // A folder above it that others may write is as bad (they could swap the file), unless it is sticky.
        chmod(conf, 0o644)
        chmod(folder, 0o777)
        let folderOpen = try f.expect(2, ["snapshots", "-c", conf])
        XCTAssertTrue(
            folderOpen.stderr.contains("the folder \(folder) can be written by group or others"),
            folderOpen.stderr
        )
        XCTAssertTrue(folderOpen.stderr.contains("chmod go-w \(folder)"), folderOpen.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pwned))
        chmod(folder, 0o1777)
        try f.expect(0, ["snapshots", "-c", conf])
        XCTAssertTrue(FileManager.default.fileExists(atPath: pwned), "a trusted config's key command runs")
    }

    /// polyadfs (which runs as root from fstab) applies the same rule before it mounts anything.
    func testPolyadfsRefusesAnUntrustedConfig() throws {
        try requireRoot()
        let f = try CLIFixture()
        try f.expect(0, ["init"])
        let mountpoint = f.root + "/mnt"
        try FileSystem.makeDirectory(bytes(mountpoint), mode: 0o755)
        chown(f.conf, Self.nobody, Self.nobody)
        let o = try f.run([f.conf, mountpoint, "-f"], executable: MountTests.polyadfs)
        XCTAssertEqual(o.status, 2, o.stderr)
        XCTAssertTrue(o.stderr.contains("is owned by nobody"), o.stderr)
        XCTAssertTrue(try FileSystem.directoryEntries(bytes(mountpoint)).isEmpty)
    }

    func testUntrustedKeyFileIsRefused() throws {
        try requireRoot()
        let f = try CLIFixture(extraConfig: "  encryption_key_file: \"keys/pass\"\n")
        let keys = f.root + "/keys"
        try FileSystem.makeDirectory(bytes(keys), mode: 0o755)
        try f.expect(0, ["init"])  // writes the generated passphrase into keys/pass
        let key = keys + "/pass"
        try f.expect(0, ["snapshots"])

        chown(key, Self.nobody, Self.nobody)
        let owned = try f.expect(2, ["snapshots"])
        XCTAssertTrue(
            owned.stderr.contains("backup.encryption_key_file: the key file \(key) is owned by nobody"),
            owned.stderr
        )
        chown(key, 0, 0)
        chmod(keys, 0o777)
        let folder = try f.expect(2, ["snapshots"])
        XCTAssertTrue(folder.stderr.contains("the folder \(keys) can be written by group or others"), folder.stderr)
        chmod(keys, 0o755)
        try f.expect(0, ["snapshots"])
    }

    /// `polyad init` does not write a new passphrase into a folder others could read it from or swap.
    func testInitWritesNoKeyFileIntoAnUntrustedFolder() throws {
        try requireRoot()
        let f = try CLIFixture(extraConfig: "  encryption_key_file: \"keys/pass\"\n")
        let keys = f.root + "/keys"
        try FileSystem.makeDirectory(bytes(keys), mode: 0o777)
        chmod(keys, 0o777)
        let o = try f.expect(2, ["init"])
        XCTAssertTrue(o.stderr.contains("the folder \(keys) can be written by group or others"), o.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: keys + "/pass"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/store"))
    }

    func testKeyCommandProgramInAFolderOthersCanWriteIsRefused() throws {
        try requireRoot()
        let f = try CLIFixture()
        try f.expect(0, ["init"])
        let bin = f.root + "/bin"
        try FileSystem.makeDirectory(bytes(bin), mode: 0o777)
        chmod(bin, 0o777)
        let program = bin + "/print-key"
        let ran = f.root + "/ran"
        let script = "#!/bin/sh\ntouch \(ran)\necho 'test passphrase'\n"
        _ = FileManager.default.createFile(
            atPath: program,
            contents: Data(script.utf8),
            attributes: [.posixPermissions: 0o755]
        )
        f.writeConfig("  encryption_key_command: \"\(program) --quiet\"\n")
        let o = try f.expect(2, ["snapshots"])
        XCTAssertTrue(
            o.stderr.contains("backup.encryption_key_command: the folder \(bin) can be written by group or others"),
            o.stderr
        )
        XCTAssertTrue(o.stderr.contains("the key command's program \(program)"), o.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: ran))
        chmod(bin, 0o755)
        try f.expect(0, ["snapshots"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: ran))
    }

    /// The command's standard input is at its end, it sees neither POLYAD_PASSWORD nor other variables of the
    /// caller, and its PATH holds only system folders.
    func testKeyCommandGetsNoInputAndAMinimalEnvironment() throws {
        let f = try CLIFixture()
        try f.expect(0, ["init"])
        let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        let command =
            #"if read -r line; then echo \"read: $line\"; elif [ -n \"$POLYAD_PASSWORD$CALLER_SECRET\" ]; then echo leaked; elif [ \"$PATH\" != \"\#(path)\" ]; then echo path; else echo 'test passphrase'; fi"#
        f.writeConfig("  encryption_key_command: \"\(command)\"\n")
        let o = try f.run(
            ["snapshots"],
            environment: ["CALLER_SECRET": "x", "PATH": "/tmp:" + path],
            stdin: "typed ahead\n"
        )
        XCTAssertEqual(o.status, 0, o.stderr)
    }

    func testKeyCommandThatHangsIsStopped() throws {
        let f = try CLIFixture()
        try f.expect(0, ["init"])
        let marker = f.root + "/late"
        f.writeConfig(
            "  encryption_key_command: \"sleep 30; touch \(marker); echo 'test passphrase'\"\n"
                + "  encryption_key_command_timeout: 1\n"
        )
        let o = try f.expect(2, ["snapshots"])
        XCTAssertTrue(o.stderr.contains("did not finish within 1 s and was stopped"), o.stderr)
        XCTAssertTrue(o.stderr.contains("backup.encryption_key_command_timeout"), o.stderr)
        sleep(1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the whole process group is killed")
    }

    /// A FIFO as the config or key file is refused at once, not waited on.
    func testFifoConfigAndKeyFileAreRefused() throws {
        let f = try CLIFixture()
        try f.expect(0, ["init"])
        let fifo = f.root + "/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let config = try f.expect(2, ["snapshots", "-c", fifo])
        XCTAssertTrue(config.stderr.contains("\(fifo): is not a regular file"), config.stderr)
        f.writeConfig("  encryption_key_file: \"fifo\"\n")
        let key = try f.expect(2, ["snapshots"])
        XCTAssertTrue(key.stderr.contains("the key file \(fifo) is not a regular file"), key.stderr)
    }
}
