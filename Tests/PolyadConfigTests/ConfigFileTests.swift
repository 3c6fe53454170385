import Foundation
import Glibc
import PolyadConfig
import PolyadTestSupport
import XCTest

final class ConfigFileTests: XCTestCase {
    private var temporary: TemporaryFolder!
    private var folder: String { temporary.path }

    override func setUpWithError() throws {
        temporary = try TemporaryFolder(prefix: "polyad-config-test")
    }

    override func tearDown() {
        temporary.remove()
    }

    func testLoadResolvesAgainstTheFilesFolder() throws {
        let path = try write("mount.conf", seedBlock, mode: 0o600)
        let config = try Configuration.load(file: path)
        XCTAssertEqual(config.file, path)
        XCTAssertEqual(config.localDirectory, folder + "/backup")
        XCTAssertEqual(config.compressionLevel, 9)
        XCTAssertEqual(try config.passphrase(environment: [:]), Array("your-encryption-key".utf8))
    }

    func testSecretInAFileOthersCanRead() throws {
        let path = try write("mount.conf", seedBlock, mode: 0o644)
        XCTAssertThrowsError(try Configuration.load(file: path)) { error in
            guard let error = error as? ConfigError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.key, "backup.encryption_key")
            XCTAssertEqual(error.line, 7)
            XCTAssertEqual(error.column, 3)
            XCTAssertTrue(error.message.contains("chmod 600 \(path)"), error.description)
            XCTAssertTrue(error.message.contains("0644"), error.description)
            XCTAssertFalse(error.description.contains("your-encryption-key"), error.description)
        }
        for mode: mode_t in [0o640, 0o604, 0o610, 0o601] {
            XCTAssertEqual(chmod(path, mode), 0)
            XCTAssertThrowsError(try Configuration.load(file: path), "mode \(String(mode, radix: 8))")
        }
        XCTAssertEqual(chmod(path, 0o600), 0)
        XCTAssertNoThrow(try Configuration.load(file: path))
        XCTAssertEqual(chmod(path, 0o400), 0)
        XCTAssertNoThrow(try Configuration.load(file: path))

        let s3Secret = try write(
            "s3.conf",
            "backup:\n  s3_bucket: bkt\ns3:\n  secret_access_key: abc\n",
            mode: 0o640
        )
        XCTAssertThrowsError(try Configuration.load(file: s3Secret)) { error in
            XCTAssertEqual((error as? ConfigError)?.key, "s3.secret_access_key")
            XCTAssertEqual((error as? ConfigError)?.line, 4)
            XCTAssertTrue("\(error)".contains("chmod 600 \(s3Secret)"), "\(error)")
        }

        let noSecret = try write("plain.conf", "backup:\n  local_dir: store\n  encryption_key_file: key\n", mode: 0o644)
        XCTAssertEqual(try Configuration.load(file: noSecret).localDirectory, folder + "/store")
    }

    func testMissingAndUnreadableFiles() throws {
        let missing = folder + "/nope/mount.conf"
        XCTAssertThrowsError(try Configuration.load(file: missing)) { error in
            guard let error = error as? ConfigError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.file, missing)
            XCTAssertTrue(error.message.contains("polyad init"), error.description)
            XCTAssertTrue(error.description.hasPrefix(missing + ": "), error.description)
        }
        XCTAssertThrowsError(try Configuration.load(file: folder)) { error in
            XCTAssertTrue("\(error)".contains("not a regular file"), "\(error)")
        }
        let binary = folder + "/binary.conf"
        try Data([0x62, 0x61, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: binary))
        XCTAssertThrowsError(try Configuration.load(file: binary)) { error in
            XCTAssertTrue("\(error)".contains("UTF-8"), "\(error)")
        }

        // With nothing found, the error lists every place searched.
        let previous = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(folder))
        defer { XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(previous)) }
        if !FileManager.default.fileExists(atPath: "/etc/polyad/mount.conf") {
            XCTAssertThrowsError(try Configuration.load(explicit: nil, environment: [:])) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("tried \(folder)/mount.conf, /etc/polyad/mount.conf"), text)
                XCTAssertTrue(text.contains("polyad init"), text)
            }
        }
        _ = try write("mount.conf", "backup:\n  local_dir: here\n", mode: 0o600)
        XCTAssertEqual(try Configuration.load(explicit: nil, environment: [:]).localDirectory, folder + "/here")
    }

    func testLocateOrder() throws {
        let environment = ["POLYAD_CONFIG": "/from/env.conf"]
        XCTAssertEqual(
            Configuration.locate(explicit: "/explicit.conf", environment: environment, currentDirectory: folder),
            "/explicit.conf"
        )
        XCTAssertEqual(
            Configuration.locate(explicit: nil, environment: environment, currentDirectory: folder),
            "/from/env.conf"
        )
        let system = Configuration.locate(explicit: nil, environment: [:], currentDirectory: folder)
        XCTAssertEqual(system, "/etc/polyad/mount.conf", "no ./mount.conf: the system file")
        let local = try write("mount.conf", "backup:\n  local_dir: x\n", mode: 0o600)
        XCTAssertEqual(Configuration.locate(explicit: nil, environment: [:], currentDirectory: folder), local)
        XCTAssertEqual(
            Configuration.locate(explicit: nil, environment: environment, currentDirectory: folder),
            "/from/env.conf",
            "POLYAD_CONFIG wins over ./mount.conf"
        )
        XCTAssertEqual(
            Configuration.locate(explicit: nil, environment: ["POLYAD_CONFIG": ""], currentDirectory: folder),
            local,
            "an empty POLYAD_CONFIG is ignored"
        )
    }

    func testKeyFile() throws {
        let config = try write(
            "mount.conf",
            "backup:\n  local_dir: x\n  encryption_key_file: secret/key\n",
            mode: 0o644
        )
        try FileManager.default.createDirectory(atPath: folder + "/secret", withIntermediateDirectories: false)
        let key = folder + "/secret/key"
        let loaded = try Configuration.load(file: config)
        XCTAssertEqual(loaded.passphraseSource, .file(key))

        XCTAssertThrowsError(try loaded.passphrase(environment: [:])) { error in
            XCTAssertTrue("\(error)".contains("\(key) does not exist"), "\(error)")
            XCTAssertEqual((error as? ConfigError)?.key, "backup.encryption_key_file")
            XCTAssertEqual((error as? ConfigError)?.line, 3)
        }
        _ = try write("secret/key", "correct horse\n", mode: 0o600)
        XCTAssertEqual(try loaded.passphrase(environment: ["POLYAD_PASSWORD": "other"]), Array("correct horse".utf8))
        _ = try write("secret/key", "with crlf\r\n\n", mode: 0o600)
        XCTAssertEqual(try loaded.passphrase(environment: [:]), Array("with crlf".utf8))
        _ = try write("secret/key", "  spaces kept \n", mode: 0o400)
        XCTAssertEqual(try loaded.passphrase(environment: [:]), Array("  spaces kept ".utf8))

        _ = try write("secret/key", "correct horse\n", mode: 0o644)
        XCTAssertThrowsError(try loaded.passphrase(environment: [:])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("chmod 600 \(key)"), text)
            XCTAssertFalse(text.contains("correct horse"), text)
        }
        _ = try write("secret/key", "\n", mode: 0o600)
        XCTAssertThrowsError(try loaded.passphrase(environment: [:])) { error in
            XCTAssertTrue("\(error)".contains("is empty"), "\(error)")
        }
    }

    /// A config file over 64 KiB is refused before YAML parsing (bounded work on hostile input: a 1 MiB list used
    /// as a key kept the YAML library hashing for seconds).
    func testOversizedConfigIsRefused() throws {
        let path = folder + "/mount.conf"
        let key = "? [" + Array(repeating: "x", count: 40_000).joined(separator: ",") + "]\n: 1\n"
        XCTAssertTrue(
            FileManager.default.createFile(
                atPath: path,
                contents: Data(("backup:\n  local_dir: s\n" + key).utf8),
                attributes: [.posixPermissions: 0o600]
            )
        )
        XCTAssertThrowsError(try Configuration.load(file: path)) { error in
            XCTAssertTrue("\(error)".contains("is larger than 64 KiB"), "\(error)")
        }
    }

    func testKeyCommand() throws {
        func passphrase(_ command: String) throws -> [UInt8] {
            let text = "backup:\n  local_dir: x\n  encryption_key_command: '\(command)'\n"
            return try Configuration.parse(text, file: folder + "/mount.conf").passphrase(environment: [:])
        }
        XCTAssertEqual(try passphrase("printf \"from-command\\nsecond line\\n\""), Array("from-command".utf8))
        XCTAssertEqual(try passphrase("printf \"no newline\""), Array("no newline".utf8))
        XCTAssertEqual(try passphrase("printf \"crlf\\r\\n\""), Array("crlf".utf8))
        XCTAssertEqual(try passphrase("echo $((6 * 7)) | tr 4 x"), Array("x2".utf8), "run by /bin/sh -c")

        XCTAssertThrowsError(try passphrase("echo leaked-secret; exit 3")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("exit status 3"), text)
            XCTAssertFalse(text.contains("leaked-secret"), text)
            XCTAssertEqual((error as? ConfigError)?.key, "backup.encryption_key_command")
            XCTAssertEqual((error as? ConfigError)?.exitCode, 2)
        }
        XCTAssertThrowsError(try passphrase("kill -9 $$")) { error in
            XCTAssertTrue("\(error)".contains("signal 9"), "\(error)")
        }
        XCTAssertThrowsError(try passphrase("echo")) { error in
            XCTAssertTrue("\(error)".contains("printed nothing"), "\(error)")
        }
        // A program that does not exist is named before anything runs (the trust check looks at it first).
        XCTAssertThrowsError(try passphrase("/nonexistent/polyad-key-helper")) { error in
            XCTAssertTrue(
                "\(error)".contains("the key command's program /nonexistent/polyad-key-helper cannot be used"),
                "\(error)"
            )
        }
        XCTAssertThrowsError(try passphrase("polyad-no-such-helper --x")) { error in
            XCTAssertTrue("\(error)".contains("exit status 127"), "\(error)")
        }
        // A large output is read to the end (the command never blocks), and only the first line is used.
        XCTAssertEqual(try passphrase("echo first; head -c 300000 /dev/zero"), Array("first".utf8))
    }

    func testEnvironmentFallback() throws {
        let config = try Configuration.parse("backup:\n  local_dir: x\n", file: folder + "/mount.conf")
        XCTAssertEqual(config.passphraseSource, PassphraseSource.none)
        XCTAssertEqual(try config.passphrase(environment: ["POLYAD_PASSWORD": "from env"]), Array("from env".utf8))
        XCTAssertEqual(config.effectivePassphraseSource(environment: ["POLYAD_PASSWORD": "x"]), .environment)
        XCTAssertEqual(config.effectivePassphraseSource(environment: [:]), PassphraseSource.none)
        for environment in [[:], ["POLYAD_PASSWORD": ""]] {
            XCTAssertThrowsError(try config.passphrase(environment: environment)) { error in
                guard let error = error as? ConfigError else { return XCTFail("\(error)") }
                XCTAssertEqual(error.exitCode, 2)
                for way in ["encryption_key`", "encryption_key_file", "encryption_key_command", "POLYAD_PASSWORD"] {
                    XCTAssertTrue(error.message.contains(way), "\(way) in \(error)")
                }
            }
        }
    }

    func testErrorDescription() {
        XCTAssertEqual(ConfigError(file: "/a.conf", message: "m").description, "/a.conf: m")
        XCTAssertEqual(ConfigError(file: "a", line: 2, key: "k", message: "m").description, "a:2: k: m")
        XCTAssertEqual(ConfigError(file: "a", line: 2, column: 5, message: "m").description, "a:2:5: m")
    }

    // MARK: - Helpers

    /// Writes `text` to `name` in the test folder with exactly `mode`; returns the path.
    @discardableResult
    private func write(_ name: String, _ text: String, mode: mode_t) throws -> String {
        let path = folder + "/" + name
        _ = chmod(path, 0o600)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(chmod(path, mode), 0)
        return path
    }
}
