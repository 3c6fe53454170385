import PolyadConfig
import XCTest

/// The seed's block, verbatim.
let seedBlock = """
    backup:
      local_dir: "backup"            # local store directory (relative to the config file's folder)
      s3_bucket: "polyad-backups"    # S3 bucket; with local_dir too, both are written (mirror)
      retention_days: 30             # snapshots older than this are forgotten (the newest is always kept)
      cleanup_interval: 86400        # seconds between automatic retention + prune runs of a mounted store
      compression_level: 9           # zlib level 0-9 (0 = store)
      encryption_key: "your-encryption-key"   # the passphrase (or encryption_key_file / _command / POLYAD_PASSWORD)
      verify_integrity: true         # verify what was written after each backup, and data on read

    """

final class ConfigParseTests: XCTestCase {
    func testSeedBlockVerbatim() throws {
        let config = try Configuration.parse(seedBlock, file: "/etc/polyad/mount.conf")
        XCTAssertEqual(config.file, "/etc/polyad/mount.conf")
        XCTAssertEqual(config.localDirectory, "/etc/polyad/backup")
        XCTAssertEqual(config.s3Bucket, "polyad-backups")
        XCTAssertEqual(config.retentionDays, 30)
        XCTAssertEqual(config.cleanupInterval, 86_400)
        XCTAssertEqual(config.compressionLevel, 9)
        XCTAssertEqual(config.passphraseSource, .inline("your-encryption-key"))
        XCTAssertEqual(
            try config.passphrase(environment: ["POLYAD_PASSWORD": "other"]),
            Array("your-encryption-key".utf8)
        )
        XCTAssertTrue(config.verifyIntegrity)
        XCTAssertEqual(config.packSizeMiB, 16)
    }

    func testDefaults() throws {
        let config = try Configuration.parse("backup:\n  local_dir: /srv/store\n", file: "/etc/polyad/mount.conf")
        XCTAssertEqual(config.localDirectory, "/srv/store")
        XCTAssertNil(config.s3Bucket)
        XCTAssertNil(config.retentionDays)
        XCTAssertEqual(config.cleanupInterval, 86_400)
        XCTAssertEqual(config.compressionLevel, 6)
        XCTAssertTrue(config.verifyIntegrity)
        XCTAssertEqual(config.packSizeMiB, 16)
        XCTAssertEqual(config.passphraseSource, PassphraseSource.none)
        XCTAssertEqual(config.s3, S3Settings())
        XCTAssertFalse(config.s3.pathStyle)
        XCTAssertEqual(config.mount, MountSettings(settleSeconds: 5, cacheMiB: 64, allowOther: false))
        XCTAssertTrue(config.retention.isEmpty)
        XCTAssertEqual(config.log, LogSettings(level: .info, file: nil))
        // Empty sections beside backup: are accepted.
        let empty = try Configuration.parse(
            "backup:\n  s3_bucket: bkt\ns3:\nmount:\nretention:\nlog:\n",
            file: "/m.conf"
        )
        XCTAssertEqual(empty.s3Bucket, "bkt")
        XCTAssertNil(empty.localDirectory)
    }

    func testEverySection() throws {
        let text = """
            backup:
              local_dir: /srv/polyad
              s3_bucket: 2024
              retention_days: 90
              cleanup_interval: 0
              compression_level: 0
              encryption_key_file: keys/pass
              verify_integrity: no
              pack_size_mib: 128
            s3:
              endpoint: http://127.0.0.1:9000
              region: us-east-1
              prefix: ""
              access_key_id: AKIAEXAMPLE
              secret_access_key: "s3cr3t"
              path_style: true
            mount:
              settle_seconds: 0
              cache_mib: 1_024
              allow_other: true
              sync_on_close: false
            retention:
              keep_last: 3
              keep_hourly: 24
              keep_daily: 7
              keep_weekly: 4
              keep_monthly: 12
              keep_yearly: 010
              keep_within: 1y6m
              keep_tags: [monthly, "keep me"]
            log:
              level: Warning
              file: ../log/polyad.log
            """
        let config = try Configuration.parse(text, file: "/etc/polyad/mount.conf")
        XCTAssertEqual(config.s3Bucket, "2024", "a number is accepted as a bucket name")
        XCTAssertEqual(config.retentionDays, 90)
        XCTAssertEqual(config.cleanupInterval, 0)
        XCTAssertEqual(config.compressionLevel, 0)
        XCTAssertEqual(config.passphraseSource, .file("/etc/polyad/keys/pass"))
        XCTAssertFalse(config.verifyIntegrity)
        XCTAssertEqual(config.packSizeMiB, 128)
        XCTAssertEqual(
            config.s3,
            S3Settings(
                endpoint: "http://127.0.0.1:9000",
                region: "us-east-1",
                prefix: "",
                accessKeyID: "AKIAEXAMPLE",
                secretAccessKey: "s3cr3t",
                pathStyle: true
            )
        )
        XCTAssertEqual(
            config.mount,
            MountSettings(settleSeconds: 0, cacheMiB: 1024, allowOther: true, syncOnClose: false)
        )
        XCTAssertEqual(
            config.retention,
            RetentionPolicy(
                keepLast: 3,
                keepHourly: 24,
                keepDaily: 7,
                keepWeekly: 4,
                keepMonthly: 12,
                keepYearly: 10,
                keepWithin: RetentionSpan(years: 1, months: 6),
                keepTags: ["monthly", "keep me"]
            )
        )
        XCTAssertEqual(config.log, LogSettings(level: .warning, file: "/etc/log/polyad.log"))
    }

    func testPassphrasePrecedence() throws {
        let both = "backup:\n  local_dir: x\n  encryption_key_command: echo a\n  encryption_key_file: f\n"
        XCTAssertEqual(try Configuration.parse(both, file: "/c/m.conf").passphraseSource, .file("/c/f"))
        let all = both + "  encryption_key: k\n"
        XCTAssertEqual(try Configuration.parse(all, file: "/c/m.conf").passphraseSource, .inline("k"))
        let command = "backup:\n  local_dir: x\n  encryption_key_command: pass show polyad\n"
        XCTAssertEqual(
            try Configuration.parse(command, file: "/c/m.conf").passphraseSource,
            .command("pass show polyad")
        )
    }

    func testRelativePaths() throws {
        let text =
            "backup:\n  local_dir: ./stores/../store/\n  encryption_key_file: key\nlog:\n  file: /var/log/p.log\n"
        let config = try Configuration.parse(text, file: "/etc/polyad/mount.conf")
        XCTAssertEqual(config.localDirectory, "/etc/polyad/store")
        XCTAssertEqual(config.passphraseSource, .file("/etc/polyad/key"))
        XCTAssertEqual(config.log.file, "/var/log/p.log")

        // A relative config file is taken from the current directory.
        let cwd = FileManager.default.currentDirectoryPath
        let relative = try Configuration.parse("backup:\n  local_dir: backup\n", file: "conf/mount.conf")
        XCTAssertEqual(relative.file, cwd == "/" ? "/conf/mount.conf" : cwd + "/conf/mount.conf")
        XCTAssertEqual(relative.localDirectory, (cwd == "/" ? "" : cwd) + "/conf/backup")

        assertError("backup:\n  local_dir: ~/backups\n", line: 2, column: 14, key: "backup.local_dir", contains: "`~`")
    }

    func testUnknownKeys() {
        let cases: [(text: String, line: Int, column: Int, key: String, hint: String)] = [
            ("bakup:\n  local_dir: x\n", 1, 1, "bakup", "(did you mean 'backup'?)"),
            (
                "backup:\n  local_dir: x\n  compresion_level: 9\n", 3, 3, "backup.compresion_level",
                "(did you mean 'compression_level'?)"
            ),
            ("backup:\n  local_dir: x\n  localdir: y\n", 3, 3, "backup.localdir", "(did you mean 'local_dir'?)"),
            (
                "backup:\n  local_dir: x\n  Verify_Integrity: true\n", 3, 3, "backup.Verify_Integrity",
                "(did you mean 'verify_integrity'?)"
            ),
            ("backup:\n  local_dir: x\ns3:\n  endpont: http://x\n", 4, 3, "s3.endpont", "(did you mean 'endpoint'?)"),
            (
                "backup:\n  local_dir: x\nmount:\n  setle_seconds: 3\n", 4, 3, "mount.setle_seconds",
                "(did you mean 'settle_seconds'?)"
            ),
            (
                "backup:\n  local_dir: x\nretention:\n    keep_dayly: 3\n", 4, 5, "retention.keep_dayly",
                "(did you mean 'keep_daily'?)"
            ),
            ("backup:\n  local_dir: x\nlog:\n  levle: info\n", 4, 3, "log.levle", "(did you mean 'level'?)"),
            (
                "backup:\n  local_dir: x\n  keep_daily: 7\n", 3, 3, "backup.keep_daily",
                "(it belongs in the 'retention:' section)"
            ),
            ("local_dir: x\nbackup:\n  s3_bucket: bkt\n", 1, 1, "local_dir", "(it belongs in the 'backup:' section)"),
            (
                "backup:\n  local_dir: x\n  frobnicate: 1\n", 3, 3, "backup.frobnicate",
                "the keys under 'backup:' are: local_dir, s3_bucket"
            ),
            ("backup:\n  local_dir: x\nalerts:\n  webhook: x\n", 3, 1, "alerts", "the keys at the top level are"),
        ]
        for item in cases {
            let error = assertError(item.text, line: item.line, column: item.column, key: item.key, contains: item.hint)
            XCTAssertTrue(error?.message.hasPrefix("unknown key") == true, "\(String(describing: error))")
        }
        // The exact form of the message.
        let error = assertError(
            "backup:\n  local_dir: x\n  compresion_level: 9\n",
            file: "mount.conf",
            line: 3,
            column: 3,
            key: "backup.compresion_level",
            contains: "unknown key"
        )
        XCTAssertEqual(
            error?.description,
            "mount.conf:3:3: backup.compresion_level: unknown key (did you mean 'compression_level'?)"
        )
        XCTAssertEqual(error?.exitCode, 2)
    }

    func testTypeAndRangeErrors() {
        let base = "backup:\n  local_dir: x\n"
        let cases: [(text: String, line: Int, column: Int, key: String, contains: String)] = [
            ("  compression_level: \"9\"\n", 3, 22, "backup.compression_level", "found text (remove the quotes)"),
            ("  compression_level: 10\n", 3, 22, "backup.compression_level", "must be from 0 to 9, found 10"),
            ("  compression_level: high\n", 3, 22, "backup.compression_level", "expected a whole number, found text"),
            ("  retention_days: -1\n", 3, 19, "backup.retention_days", "must be at least 1"),
            ("  retention_days: 1.5\n", 3, 19, "backup.retention_days", "found a decimal number"),
            ("  cleanup_interval: -5\n", 3, 21, "backup.cleanup_interval", "must not be negative"),
            ("  pack_size_mib: 2\n", 3, 18, "backup.pack_size_mib", "must be from 4 to 128"),
            (
                "  verify_integrity: \"yes\"\n", 3, 21, "backup.verify_integrity",
                "expected true or false, found text (remove the quotes)"
            ),
            (
                "  verify_integrity: 1\n", 3, 21, "backup.verify_integrity",
                "expected true or false, found a whole number"
            ),
            ("  s3_bucket: [a, b]\n", 3, 14, "backup.s3_bucket", "expected text, found a list"),
            ("  s3_bucket: true\n", 3, 14, "backup.s3_bucket", "found true/false (put it in quotes"),
            ("  s3_bucket:\n", 3, 13, "backup.s3_bucket", "expected text, found nothing"),
            ("  s3_bucket: \"\"\n", 3, 14, "backup.s3_bucket", "must not be empty"),
            ("  encryption_key_command: {a: b}\n", 3, 27, "backup.encryption_key_command", "found a section"),
            ("mount:\n  cache_mib: 1.5\n", 4, 14, "mount.cache_mib", "expected a whole number, found a decimal number"),
            ("mount:\n  allow_other: maybe\n", 4, 16, "mount.allow_other", "expected true or false, found text"),
            ("mount:\n  settle_seconds: -1\n", 4, 19, "mount.settle_seconds", "must not be negative, found -1"),
            ("retention:\n  keep_last: -2\n", 4, 14, "retention.keep_last", "must not be negative"),
            ("retention:\n  keep_within: 3w\n", 4, 16, "retention.keep_within", "expected a span such as `30d`"),
            ("retention:\n  keep_tags: [a, [b]]\n", 4, 18, "retention.keep_tags[1]", "expected text, found a list"),
            ("log:\n  level: warn\n", 4, 10, "log.level", "unknown level 'warn' (did you mean 'warning'?)"),
            (
                "log:\n  level: verbose\n", 4, 10, "log.level",
                "use one of trace, debug, info, notice, warning, error, critical"
            ),
            ("s3:\n  path_style: \"true\"\n", 4, 15, "s3.path_style", "(remove the quotes)"),
            ("s3: [a]\n", 3, 5, "s3", "expected a section of indented `key: value` lines, found a list"),
        ]
        for item in cases {
            assertError(base + item.text, line: item.line, column: item.column, key: item.key, contains: item.contains)
        }
        assertError("backup: x\n", line: 1, column: 9, key: "backup", contains: "found text")
        assertError("backup:\n  local_dir: x\n  99: y\n", line: 3, column: 3, key: "backup", contains: "plain names")
    }

    func testMissingStore() {
        for text in ["", "\n", "# only a comment\n", "~\n"] {
            assertError(text, line: nil, column: nil, key: nil, contains: "a `backup:` section is required")
        }
        let error = assertError("s3:\n  region: x\n", line: nil, column: nil, key: nil, contains: "local_dir")
        XCTAssertTrue(error?.message.contains("s3_bucket") == true)
        assertError(
            "backup:\n  compression_level: 5\n",
            line: 1,
            column: 1,
            key: "backup",
            contains: "no store location"
        )
        assertError("backup:\n", line: 1, column: 1, key: "backup", contains: "no store location")
        assertError("- backup\n", line: 1, column: 1, key: nil, contains: "expected sections such as `backup:`")
    }

    func testYAMLSyntaxErrors() {
        let tab = assertError("backup:\n\tlocal_dir: x\n", line: 2, column: 1, key: nil, contains: "YAML syntax error")
        XCTAssertTrue(tab?.message.contains("tabs") == true, "\(String(describing: tab))")
        let tabInside = assertError(
            "backup:\n  local_dir: x\n  \ts3_bucket: y\n",
            line: 3,
            column: nil,
            key: nil,
            contains: "tabs"
        )
        XCTAssertNotNil(tabInside?.column)
        let indent = assertError(
            "backup:\n  local_dir: x\n   s3_bucket: y\n",
            line: 3,
            column: 13,
            key: nil,
            contains: "YAML syntax error"
        )
        XCTAssertTrue(indent?.message.contains("indentation") == true, "\(String(describing: indent))")
        assertError("backup:\n  local_dir: \"x\n", line: 3, column: 1, key: nil, contains: "quoted scalar")
        assertError(
            "backup:\n  local_dir: x\n  local_dir: y\n",
            line: 2,
            column: 3,
            key: nil,
            contains: "the key 'local_dir' appears more than once"
        )
        assertError("backup:\n  local_dir: *nothing\n", line: 2, column: 14, key: nil, contains: "undefined alias")
    }

    func testSecretsNeverShown() throws {
        let secret = "hunter2-SECRET"
        let s3Secret = "AWS-SECRET-xyz"
        let text = "backup:\n  local_dir: x\n  encryption_key: \(secret)\ns3:\n  secret_access_key: \(s3Secret)\n"
        let config = try Configuration.parse(text, file: "/c/mount.conf")
        var dumped = ""
        dump(config, to: &dumped)
        for shown in [
            "\(config)", String(reflecting: config), dumped, "\(config.passphraseSource)",
            String(reflecting: config.passphraseSource), "\(config.s3)", String(reflecting: config.s3),
        ] {
            XCTAssertFalse(shown.contains(secret), shown)
            XCTAssertFalse(shown.contains(s3Secret), shown)
        }
        XCTAssertTrue("\(config.s3)".contains("<redacted>"))
        var dumpedSource = ""
        dump(PassphraseSource.command("echo \(secret)"), to: &dumpedSource)
        XCTAssertFalse(dumpedSource.contains(secret), dumpedSource)
        XCTAssertFalse("\(PassphraseSource.command("echo \(secret)"))".contains(secret))

        // Errors about secret keys, or near them, do not quote them.
        let broken = [
            "backup:\n  local_dir: x\n  encryption_key: \"\(secret)\n",
            "backup:\n  local_dir: x\n  encryption_key: [\(secret)]\n",
            "backup:\n  local_dir: x\n  encryption_key: \(secret)\n  encryption_key: \(secret)\n",
            "backup:\n  local_dir: x\n\tencryption_key: \(secret)\n",
            "backup:\n  local_dir: x\n  encryption_key: \(secret)\n  compression_level: \(secret)\n",
            "backup:\n  local_dir: x\n  encryption_key: \(secret)\n  verify_integrity: \(secret)\n",
            "backup:\n  local_dir: x\ns3:\n  secret_access_key: \(secret)\n  bogus: 1\n",
        ]
        for text in broken {
            XCTAssertThrowsError(try Configuration.parse(text, file: "/c/mount.conf")) { error in
                XCTAssertFalse("\(error)".contains(secret), "\(error)")
                XCTAssertFalse(String(reflecting: error).contains(secret), String(reflecting: error))
            }
        }
    }
}

/// The `access:` section and `log.access`.
final class AccessConfigParseTests: XCTestCase {
    private let base = "backup:\n  local_dir: x\n"

    func testTheIssuesExample() throws {
        let text =
            base + """
                mount:
                  allow_other: true
                access:
                  default_role: none                      # users not listed get nothing
                  roles:
                    admin:  { users: [root, backup-admin] }
                    writer: { groups: [backup-writers] }
                    reader: { groups: [staff], users: [alice, 1001] }
                  file_permissions: true
                log:
                  access: "/var/log/polyad/access.log"

                """
        let config = try Configuration.parse(text, file: "/etc/polyad/mount.conf")
        let access = try XCTUnwrap(config.access)
        XCTAssertEqual(access.defaultRole, AccessRole.none)
        XCTAssertEqual(access.roles[.admin], AccessPrincipals(users: ["root", "backup-admin"]))
        XCTAssertEqual(access.roles[.writer], AccessPrincipals(groups: ["backup-writers"]))
        XCTAssertEqual(access.roles[.reader], AccessPrincipals(users: ["alice", "1001"], groups: ["staff"]))
        XCTAssertNil(access.roles[.none])
        XCTAssertTrue(access.filePermissions)
        XCTAssertTrue(access.checkEveryWalk, "the default")
        XCTAssertEqual(config.log.access, "/var/log/polyad/access.log")
        XCTAssertTrue(config.mount.allowOther)
    }

    func testDefaultsAndRelativeLogPath() throws {
        let none = try Configuration.parse(base, file: "/etc/polyad/mount.conf")
        XCTAssertNil(none.access, "no section: the mount serves only its owner")
        XCTAssertNil(none.log.access)
        let config = try Configuration.parse(
            base + "access:\n  default_role: Reader\n  file_permissions: false\nlog:\n  access: logs/access.log\n",
            file: "/etc/polyad/mount.conf"
        )
        XCTAssertEqual(config.access, AccessSettings(defaultRole: .reader, roles: [:], filePermissions: false))
        let cached = try Configuration.parse(base + "access:\n  check_every_walk: false\n", file: "/m.conf")
        XCTAssertEqual(cached.access?.checkEveryWalk, false)
        XCTAssertEqual(config.log.access, "/etc/polyad/logs/access.log", "relative to the file's folder")
        XCTAssertEqual(try Configuration.parse(base + "access:\n", file: "/m.conf").access, AccessSettings())
    }

    func testBadRolesAndKeysNameTheLineAndTheKey() {
        let cases: [(text: String, line: Int, column: Int, key: String, contains: String)] = [
            (
                "access:\n  default_role: redaer\n", 4, 17, "access.default_role",
                "unknown role 'redaer' (did you mean 'reader'?); use one of none, reader, writer, admin"
            ),
            ("access:\n  default_role: 1\n", 4, 17, "access.default_role", "unknown role '1'"),
            ("access:\n  defualt_role: none\n", 4, 3, "access.defualt_role", "(did you mean 'default_role'?)"),
            (
                "access:\n  roles:\n    admins: { users: [root] }\n", 5, 5, "access.roles.admins",
                "(did you mean 'admin'?)"
            ),
            (
                "access:\n  roles:\n    reader: { user: [alice] }\n", 5, 15, "access.roles.reader.user",
                "(did you mean 'users'?)"
            ),
            (
                "access:\n  roles:\n    reader: { users: [alice, [bob]] }\n", 5, 30, "access.roles.reader.users[1]",
                "expected text, found a list"
            ),
            (
                "access:\n  roles:\n    reader: { users: [\"\"] }\n", 5, 23, "access.roles.reader.users[0]",
                "must not be empty"
            ),
            ("access:\n  roles:\n    reader: [alice]\n", 5, 13, "access.roles.reader", "found a list"),
            ("access:\n  file_permissions: sometimes\n", 4, 21, "access.file_permissions", "expected true or false"),
            ("access: [reader]\n", 3, 9, "access", "found a list"),
            ("log:\n  acess: /var/log/a\n", 4, 3, "log.acess", "(did you mean 'access'?)"),
            ("log:\n  access: \"\"\n", 4, 11, "log.access", "must not be empty"),
        ]
        for item in cases {
            let error = assertError(
                base + item.text,
                line: item.line,
                column: item.column,
                key: item.key,
                contains: item.contains
            )
            XCTAssertEqual(error?.exitCode, 2)
        }
    }
}

/// The `metrics:` section.
final class MetricsConfigParseTests: XCTestCase {
    func testTextfileIsAPathRelativeToTheConfigsFolder() throws {
        let base = "backup:\n  local_dir: x\n"
        XCTAssertNil(try Configuration.parse(base, file: "/etc/polyad/mount.conf").metricsTextfile)
        let config = try Configuration.parse(
            base + "metrics:\n  textfile: prom/polyad.prom\n",
            file: "/etc/polyad/m.conf"
        )
        XCTAssertEqual(config.metricsTextfile, "/etc/polyad/prom/polyad.prom")
        assertError(
            base + "metrics:\n  textfle: /x\n",
            line: 4,
            column: 3,
            key: "metrics.textfle",
            contains: "(did you mean 'textfile'?)"
        )
        assertError(
            base + "metrics:\n  textfile: \"\"\n",
            line: 4,
            column: 13,
            key: "metrics.textfile",
            contains: "must not be empty"
        )
    }
}
