import Foundation
import PolyadFileSystem
import XCTest

/// Arguments are the bytes the kernel gave (names need not be UTF-8), empty values are errors, and the
/// command line's small corners exit as the README's "Exit codes" say.
final class ArgumentTests: XCTestCase {
    /// Runs `script` with `/bin/bash -c` in the fixture's folder, `$POLYAD` naming the binary. Foundation's
    /// Process can pass only UTF-8 arguments; the shell's printf makes the others.
    func shell(_ f: CLIFixture, _ script: String) throws -> CLIFixture.Output {
        try f.run(["-c", script], environment: ["POLYAD": CLIFixture.binary], executable: "/bin/bash")
    }

    func entries(_ path: String) throws -> Set<[UInt8]> {
        Set(try FileSystem.directoryEntries(bytes(path)))
    }

    func testNonUTF8PathsTargetsAndSubpathsKeepTheirBytes() throws {
        let f = try CLIFixture()
        try f.expect(0, ["init"])
        let latin1: [UInt8] = bytes("latin1-") + [0xE9, 0xFF]
        let folder: [UInt8] = bytes("dir") + [0xFF]
        try FileSystem.makeDirectories(bytes(f.root + "/src"), mode: 0o755)
        try FileSystem.makeDirectories(bytes(f.root + "/") + folder, mode: 0o755)
        for (path, content) in [
            (bytes(f.root + "/src/") + latin1, "one"), (bytes(f.root + "/") + folder + bytes("/f"), "two"),
        ] {
            let fd = try FileSystem.createExclusive(path, mode: 0o644)
            try FileSystem.writeAll(fd, bytes: bytes(content))
            FileSystem.close(fd)
        }
        // backup of a folder whose name is not UTF-8 (was: "does not exist").
        var o = try shell(f, #""$POLYAD" backup -q src "$(printf 'dir\377')""#)
        XCTAssertEqual(o.status, 0, o.stderr)

        // restore into tgt\xFF\xFE, not into tgt followed by two U+FFFD.
        o = try shell(f, #""$POLYAD" restore -q latest --target "$(printf 'tgt\377\376')""#)
        XCTAssertEqual(o.status, 0, o.stderr)
        let target = bytes("tgt") + [0xFF, 0xFE]
        XCTAssertTrue(try entries(f.root).contains(target))
        XCTAssertFalse(try entries(f.root).contains(bytes("tgt\u{FFFD}\u{FFFD}")))
        let restored = bytes(f.root + "/") + target + bytes(f.root + "/") + folder + bytes("/f")
        XCTAssertEqual(try FileSystem.contents(of: restored, limit: 100), bytes("two"))

        // SNAP:PATH with such a name (was: "not in this snapshot").
        o = try shell(f, #""$POLYAD" restore -q "latest:src/$(printf 'latin1-\351\377')" --target one"#)
        XCTAssertEqual(o.status, 0, o.stderr)
        XCTAssertEqual(try FileSystem.contents(of: bytes(f.root + "/one/") + latin1, limit: 100), bytes("one"))

        // Patterns keep their bytes too: excluding the name leaves only the other file.
        o = try shell(f, #""$POLYAD" restore -q latest --target ex --exclude "$(printf 'latin1-\351\377')""#)
        XCTAssertEqual(o.status, 0, o.stderr)
        XCTAssertEqual(try entries(f.root + "/ex" + f.root + "/src"), [])

        // A message shows such a name with \xNN, never a replacement character.
        o = try shell(f, #""$POLYAD" backup "$(printf 'nope\377')""#)
        XCTAssertEqual(o.status, 2)
        XCTAssertTrue(o.stderr.contains(#"nope\xFF does not exist"#), o.stderr)
    }

    /// A mount.conf in a folder whose name is not UTF-8 is found, and its relative `local_dir` and key file
    /// resolve inside that folder.
    func testConfigInANonUTF8Folder() throws {
        let f = try CLIFixture()
        let folder = bytes(f.root + "/conf") + [0xE9]
        try FileSystem.makeDirectories(folder, mode: 0o700)
        let fd = try FileSystem.open(folder + bytes("/mount.conf"), flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        try FileSystem.writeAll(fd, bytes: bytes("backup:\n  local_dir: \"store\"\n  encryption_key_file: \"key\"\n"))
        FileSystem.close(fd)
        var o = try shell(f, #"unset POLYAD_PASSWORD; "$POLYAD" init -c "$(printf 'conf\351')/mount.conf""#)
        XCTAssertEqual(o.status, 0, o.stderr)
        XCTAssertEqual(
            try FileSystem.directoryEntries(folder).sorted { $0.lexicographicallyPrecedes($1) },
            [bytes("key"), bytes("mount.conf"), bytes("store")]
        )
        o = try shell(f, #"unset POLYAD_PASSWORD; POLYAD_CONFIG="$(printf 'conf\351')/mount.conf" "$POLYAD" snapshots"#)
        XCTAssertEqual(o.status, 0, o.stderr)
        XCTAssertTrue(o.stdout.contains("0 snapshots"), o.stdout)
    }

    /// '' is not the current folder: each empty value is refused (exit 2, named) and nothing is written.
    func testEmptyValuesAreErrors() throws {
        let f = try CLIFixture()
        try f.expect(0, ["init"])
        let src = f.root + "/src"
        try FileSystem.makeDirectories(bytes(src), mode: 0o755)
        try f.expect(0, ["backup", "-q", src])
        let before = try entries(f.root)
        let snapshotsBefore = try entries(f.root + "/store/snapshots")

        let target = try f.expect(2, ["restore", "latest", "--target", ""])
        XCTAssertTrue(target.stderr.contains("--target is empty"), target.stderr)
        let backup = try f.expect(2, ["backup", ""])
        XCTAssertTrue(backup.stderr.contains("an empty path names no file"), backup.stderr)
        let config = try f.expect(2, ["snapshots", "-c", ""])
        XCTAssertTrue(config.stderr.contains("the config file's path is empty"), config.stderr)
        let exclude = try f.expect(2, ["backup", src, "--exclude", ""])
        XCTAssertTrue(exclude.stderr.contains("empty pattern"), exclude.stderr)

        XCTAssertEqual(try entries(f.root), before)
        XCTAssertEqual(try entries(f.root + "/store/snapshots"), snapshotsBefore)
    }

    /// `local_dir: "sto\0re"` made `init` write a partial store at `sto`, and a key file `abc\0def` got the
    /// passphrase at `abc`: now both are errors naming the key, and nothing is written.
    func testNULInAConfigValueWritesNothing() throws {
        let f = try CLIFixture()
        let before = try entries(f.root)
        for (line, key) in [
            ("  local_dir: \"sto\\0re\"\n", "backup.local_dir"),
            ("  local_dir: \"store\"\n  encryption_key_file: \"abc\\0def\"\n", "backup.encryption_key_file"),
        ] {
            f.writeConfig(line, storeLine: "")
            let o = try f.expect(2, ["init"])
            XCTAssertTrue(o.stderr.contains("\(key): contains a NUL character"), o.stderr)
            XCTAssertEqual(try entries(f.root), before)
        }
    }

    func testDoubleDashAndHelpForAnUnknownCommandExit2() throws {
        let f = try CLIFixture()
        let dash = try f.expect(2, ["--"])
        XCTAssertTrue(dash.stderr.contains("a command must come first"), dash.stderr)
        let help = try f.expect(2, ["help", "nosuch"])
        XCTAssertTrue(help.stderr.contains("there is no command 'nosuch'"), help.stderr)
        XCTAssertTrue(help.stderr.contains("init, backup"), help.stderr)
        try f.expect(2, ["help", "key", "nosuch"])
        try f.expect(0, ["help", "key", "list"])
        try f.expect(0, ["--help"])
    }

    /// `<(…)` is a pipe (/dev/fd/63): exclude and new-passphrase files are read as streams.
    func testExcludeFileAndNewPasswordFileFromAPipe() throws {
        let f = try CLIFixture()
        try f.expect(0, ["init"])
        let src = f.root + "/src"
        try FileSystem.makeDirectories(bytes(src), mode: 0o755)
        _ = FileManager.default.createFile(atPath: src + "/keep.txt", contents: Data("k".utf8))
        _ = FileManager.default.createFile(atPath: src + "/drop.log", contents: Data("d".utf8))
        var o = try shell(f, #""$POLYAD" backup -q src --exclude-file <(printf '# comment\n*.log\n')"#)
        XCTAssertEqual(o.status, 0, o.stderr)
        try f.expect(0, ["restore", "-q", "latest", "--target", "r"])
        XCTAssertEqual(try entries(f.root + "/r" + src), [bytes("keep.txt")])

        o = try shell(f, #""$POLYAD" key add --new-password-file <(printf 'second passphrase\n')"#)
        XCTAssertEqual(o.status, 0, o.stderr)
        try f.expect(0, ["snapshots"], environment: ["POLYAD_PASSWORD": "second passphrase"])
    }
}
