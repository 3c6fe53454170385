import PolyadConfig
import XCTest

/// Config files written to hurt: NUL characters that C would cut a path at, alias bombs, and the range checks of
/// `backup.encryption_key_command_timeout`.
final class HostileConfigTests: XCTestCase {
    // MARK: - NUL characters

    func testNULInAPathIsRefusedNamingTheKey() {
        // YAML's double-quoted `\0` is U+0000; `open("sto\0re")` would create `sto`.
        let error = assertError(
            "backup:\n  local_dir: \"sto\\0re\"\n",
            file: "mount.conf",
            line: 2,
            column: 14,
            key: "backup.local_dir",
            contains: "contains a NUL character"
        )
        XCTAssertEqual(
            error?.description,
            "mount.conf:2:14: backup.local_dir: contains a NUL character (\\0), which no path or name can hold; "
                + "remove it"
        )
    }

    func testNULInEveryTextKey() {
        let base = "backup:\n  local_dir: x\n"
        // (the line after `base`, the line, the column of the value, the dotted key)
        let cases: [(text: String, line: Int, column: Int, key: String)] = [
            ("  s3_bucket: \"b\\0\"\n", 3, 14, "backup.s3_bucket"),
            ("  encryption_key: \"abc\\0def\"\n", 3, 19, "backup.encryption_key"),
            ("  encryption_key_file: \"abc\\0def\"\n", 3, 24, "backup.encryption_key_file"),
            ("  encryption_key_command: \"echo a\\0b\"\n", 3, 27, "backup.encryption_key_command"),
            ("s3:\n  endpoint: \"http://h\\0x\"\n", 4, 13, "s3.endpoint"),
            ("s3:\n  region: \"\\0\"\n", 4, 11, "s3.region"),
            ("s3:\n  prefix: \"p\\0\"\n", 4, 11, "s3.prefix"),
            ("s3:\n  access_key_id: \"AKIA\\0\"\n", 4, 18, "s3.access_key_id"),
            ("s3:\n  secret_access_key: \"abc\\0def\"\n", 4, 22, "s3.secret_access_key"),
            ("log:\n  file: \"/var/log/p\\0.log\"\n", 4, 9, "log.file"),
            ("log:\n  level: \"info\\0\"\n", 4, 10, "log.level"),
            // Other spellings of U+0000: `\x00`, `\u0000`.
            ("  s3_bucket: \"b\\x00c\"\n", 3, 14, "backup.s3_bucket"),
            ("  s3_bucket: \"b\\u0000c\"\n", 3, 14, "backup.s3_bucket"),
        ]
        for item in cases {
            let error = assertError(
                base + item.text,
                line: item.line,
                column: item.column,
                key: item.key,
                contains: "contains a NUL character (\\0), which no path or name can hold; remove it"
            )
            // The value may be a secret: no part of it is shown.
            for part in ["abc", "def", "AKIA", "/var/log/p", "http://h"] where item.text.contains(part) {
                XCTAssertFalse("\(String(describing: error))".contains(part), "\(String(describing: error))")
            }
        }
        // Also in a key that loses to another (`encryption_key` wins over `encryption_key_file`).
        assertError(
            base + "  encryption_key: k\n  encryption_key_file: \"a\\0b\"\n",
            line: 4,
            column: 24,
            key: "backup.encryption_key_file",
            contains: "NUL"
        )
    }

    // MARK: - Alias bombs

    /// "Billion laughs": `levels` anchors, each a list of 10 aliases of the one before (10^levels values in all).
    private func aliasBomb(levels: Int = 8) -> [String] {
        let names = (0..<levels).map { String(UnicodeScalar(UInt8(ascii: "a") + UInt8($0))) }
        var lines = ["a: &a [" + Array(repeating: "x", count: 10).joined(separator: ",") + "]"]
        for level in 1..<levels {
            let name = names[level]
            let aliases = Array(repeating: "*" + names[level - 1], count: 10)
            lines.append("\(name): &\(name) [" + aliases.joined(separator: ",") + "]")
        }
        return lines
    }

    func testAliasBombAsAKeyIsRefused() {
        let last = String(UnicodeScalar(UInt8(ascii: "a") + 7))
        for keyForm in ["*\(last) : 1", "? *\(last)\n  : 1", "[*\(last)]: 1", "{*\(last): 1}: 2"] {
            let text = (aliasBomb() + ["backup:", "  local_dir: x", "  " + keyForm]).joined(separator: "\n") + "\n"
            let error = assertError(
                text,
                file: "mount.conf",
                line: 4,
                column: nil,
                key: nil,
                contains: "the YAML expands to more than 10000 values through aliases (&anchor/*alias); "
                    + "a mount.conf needs no aliases this large"
            )
            XCTAssertNotNil(error?.column)
        }
    }

    func testAliasBombAsAValueIsRefused() {
        let text = (aliasBomb() + ["backup:", "  local_dir: *h"]).joined(separator: "\n") + "\n"
        assertError(text, line: 4, column: nil, key: nil, contains: "more than 10000 values through aliases")
        // Past the limit by a little, with no anchor nested in another: 10,001 uses of one scalar.
        let wide = "n: &n 1\nl: [" + Array(repeating: "*n", count: 10_001).joined(separator: ",") + "]\n"
        assertError(wide, line: 2, column: nil, key: nil, contains: "more than 10000 values through aliases")
    }

    func testAliasAsAKeyIsRefused() {
        let text = "backup:\n  local_dir: &k /srv/store\n  *k : x\n"
        assertError(
            text,
            line: 3,
            column: 3,
            key: nil,
            contains: "keys must be plain names, found an alias (*k); write the name itself"
        )
        // Inside a list or section used as a key, too.
        assertError("a: &a x\n[*a]: 1\n", line: 2, column: 2, key: nil, contains: "found an alias (*a)")
    }

    func testSmallAliasesStillWork() throws {
        let text = """
            backup:
              local_dir: /srv/store
              s3_bucket: &bucket polyad-backups
            s3:
              prefix: *bucket
            retention:
              keep_daily: &seven 7
              keep_weekly: *seven
            """
        let config = try Configuration.parse(text, file: "/etc/polyad/mount.conf")
        XCTAssertEqual(config.s3Bucket, "polyad-backups")
        XCTAssertEqual(config.s3.prefix, "polyad-backups")
        XCTAssertEqual(config.retention.keepDaily, 7)
        XCTAssertEqual(config.retention.keepWeekly, 7)
        // A `*` that starts no alias is text as before.
        let command = try Configuration.parse(
            "backup:\n  local_dir: x\n  encryption_key_command: cat /keys/*pass \"*q\" '*r' # *c\n",
            file: "/c/m.conf"
        )
        XCTAssertEqual(command.passphraseSource, .command("cat /keys/*pass \"*q\" '*r'"))
        // Errors keep their place in a file with aliases.
        assertError("backup:\n  local_dir: *nothing\n", line: 2, column: 14, key: nil, contains: "undefined alias")
        assertError(
            "backup:\n  local_dir: &d x\n  s3_bucket: *d\n  s3_bucket: y\n",
            line: 3,
            column: 3,
            key: nil,
            contains: "the key 's3_bucket' appears more than once"
        )
        assertError(
            "backup:\n  local_dir: &d x\n  compression_level: *d\n",
            line: nil,
            column: nil,
            key: "backup.compression_level",
            contains: "expected a whole number, found text"
        )
    }

    // MARK: - backup.encryption_key_command_timeout

    func testKeyCommandTimeout() throws {
        let base = "backup:\n  local_dir: x\n"
        XCTAssertEqual(Configuration.defaultKeyCommandTimeout, 30)
        XCTAssertEqual(try Configuration.parse(base, file: "/c/m.conf").keyCommandTimeout, 30)
        XCTAssertEqual(Configuration().keyCommandTimeout, 30)
        XCTAssertEqual(Configuration(keyCommandTimeout: 5).keyCommandTimeout, 5)
        for value in [1, 90, 3600] {
            let text =
                base + "  encryption_key_command: pass show polyad\n"
                + "  encryption_key_command_timeout: \(value)\n"
            let config = try Configuration.parse(text, file: "/c/m.conf")
            XCTAssertEqual(config.keyCommandTimeout, value)
            XCTAssertTrue("\(config)".contains("keyCommandTimeout: \(value)"), "\(config)")
            XCTAssertTrue(
                Mirror(reflecting: config).children.contains {
                    $0.label == "keyCommandTimeout" && $0.value as? Int == value
                }
            )
        }
        let key = "backup.encryption_key_command_timeout"
        let cases: [(value: String, contains: String)] = [
            ("0", "must be from 1 to 3600, found 0"),
            ("3601", "must be from 1 to 3600, found 3601"),
            ("-5", "must be from 1 to 3600, found -5"),
            ("1.5", "expected a whole number, found a decimal number"),
            ("\"30\"", "expected a whole number, found text (remove the quotes)"),
            ("30s", "expected a whole number, found text"),
        ]
        for item in cases {
            assertError(
                base + "  encryption_key_command_timeout: \(item.value)\n",
                line: 3,
                column: 35,
                key: key,
                contains: item.contains
            )
        }
        // A near miss gets a suggestion.
        assertError(
            base + "  encryption_key_command_timout: 10\n",
            line: 3,
            column: 3,
            key: "backup.encryption_key_command_timout",
            contains: "(did you mean 'encryption_key_command_timeout'?)"
        )
    }
}
