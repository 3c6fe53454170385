import Foundation
import PolyadTestSupport
import XCTest

/// The operations files `Scripts/install-ops` installs: the systemd units pass `systemd-analyze verify`, the
/// logrotate rules parse, the completions load in bash and complete, and the man page renders.
final class OperationsFilesTests: XCTestCase {
    private static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    private var temporary: TemporaryFolder!
    private var prefix: String { temporary.path + "/prefix" }
    private var sysconf: String { temporary.path + "/etc" }
    private var units: String { prefix + "/lib/systemd/system" }

    override func setUpWithError() throws {
        temporary = try TemporaryFolder(prefix: "polyad-ops")
        guard FileManager.default.isExecutableFile(atPath: CLIFixture.binary) else {
            throw XCTSkip("polyad is not built at \(CLIFixture.binary): run `swift build` first (Scripts/test does)")
        }
        try FileManager.default.createDirectory(atPath: prefix + "/bin", withIntermediateDirectories: true)
        for name in ["polyad", "polyadfs"] {
            try FileManager.default.copyItem(
                atPath: CLIFixture.productsDirectory + "/" + name,
                toPath: prefix + "/bin/" + name
            )
        }
        var environment = ProcessInfo.processInfo.environment
        environment["PREFIX"] = prefix
        environment["SYSCONFDIR"] = sysconf
        // Built by Scripts/test beside the tests (a `swift build` here would wait for the test run's own lock).
        let generator = CLIFixture.productsDirectory + "/generate-manual"
        guard FileManager.default.isExecutableFile(atPath: generator) else {
            if underCI { XCTFail("generate-manual is not built at \(generator) (Scripts/test builds it)") }
            throw XCTSkip("generate-manual is not built (swift build --product generate-manual): not checked")
        }
        environment["GENERATE_MANUAL"] = generator
        let r = MountedStore.shell([Self.repository + "/Scripts/install-ops"], environment: environment)
        XCTAssertEqual(r.status, 0, r.out)
    }

    override func tearDownWithError() throws { temporary.remove() }

    /// The tool's path, or a skip with the reason (a failure under CI, where Scripts/install-deps installs it).
    private func tool(_ name: String, package: String) throws -> String {
        for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        where FileManager.default.isExecutableFile(atPath: dir + "/" + name) {
            return dir + "/" + name
        }
        if underCI { XCTFail("\(name) is missing under CI: apt-get install \(package) (Scripts/install-deps does)") }
        throw XCTSkip("\(name) is missing (apt-get install \(package)): not checked")
    }

    func testEveryUnitPassesSystemdAnalyzeVerify() throws {
        let analyze = try tool("systemd-analyze", package: "systemd")
        let shipped = try FileManager.default.contentsOfDirectory(atPath: Self.repository + "/Support/systemd").sorted()
        XCTAssertEqual(
            shipped,
            [
                "polyad-backup@.service", "polyad-backup@.timer", "polyad-prune@.service", "polyad-prune@.timer",
                "polyadfs@.service",
            ]
        )
        for unit in shipped {
            let installed = try String(contentsOfFile: units + "/" + unit, encoding: .utf8)
            XCTAssertFalse(installed.contains("@BINDIR@"), "\(unit): the binaries' folder is filled in")
            if installed.contains("ExecStart=") {
                XCTAssertTrue(installed.contains("ExecStart=\(prefix)/bin/"), "\(unit) runs the installed binary")
            }
            // A template is checked as an instance of it, as systemd would start it.
            let instance = unit.replacingOccurrences(of: "@.", with: "@home.")
            let r = MountedStore.shell([analyze, "verify", "--man=no", units + "/" + instance])
            XCTAssertEqual(r.status, 0, "\(unit): \(r.out)")
            XCTAssertEqual(r.out, "", "\(unit): systemd-analyze has no complaint")
        }
        // The check can fail: a unit with an unknown key and a missing binary is refused.
        let broken = units + "/polyad-broken@.service"
        let text =
            try String(contentsOfFile: units + "/polyad-prune@.service", encoding: .utf8)
            .replacingOccurrences(of: prefix + "/bin/polyad", with: prefix + "/bin/polyad-missing")
            + "Frobnicate=yes\n"
        try text.write(toFile: broken, atomically: true, encoding: .utf8)
        let r = MountedStore.shell([analyze, "verify", "--man=no", units + "/polyad-broken@home.service"])
        XCTAssertNotEqual(r.status, 0, r.out)
        XCTAssertTrue(r.out.contains("polyad-missing"), r.out)
        XCTAssertTrue(r.out.contains("Frobnicate"), r.out)
    }

    func testTheLogrotateRulesParse() throws {
        let logrotate = try tool("logrotate", package: "logrotate")
        let rules = sysconf + "/logrotate.d/polyad"
        let r = MountedStore.shell([logrotate, "--debug", "--state", temporary.path + "/state", rules])
        XCTAssertEqual(r.status, 0, r.out)
        XCTAssertTrue(r.out.contains("/var/log/polyad/*.log"), r.out)
        XCTAssertFalse(r.out.lowercased().contains("error"), r.out)
        XCTAssertFalse(r.out.contains("copytruncate"), "a rename and SIGHUP, not a copy")
    }

    func testTheBashCompletionLoadsAndCompletes() throws {
        let script = prefix + "/share/bash-completion/completions/polyad"
        XCTAssertEqual(MountedStore.shell(["bash", "-n", script]).status, 0)
        let r = MountedStore.shell([
            "bash", "-c",
            """
            source "$0" && complete -p polyad && COMP_LINE='polyad ba' && COMP_POINT=9 && COMP_WORDS=(polyad ba) && \
            COMP_CWORD=1 && _polyad && printf 'reply: %s\\n' "${COMPREPLY[@]}" && COMP_LINE='polyad key ' && \
            COMP_POINT=11 && COMP_WORDS=(polyad key '') && COMP_CWORD=2 && _polyad && printf 'key: %s\\n' "${COMPREPLY[@]}"
            """,
            script,
        ])
        XCTAssertEqual(r.status, 0, r.out)
        XCTAssertTrue(r.out.contains("-F _polyad polyad"), r.out)
        XCTAssertTrue(r.out.contains("reply: backup"), r.out)
        XCTAssertTrue(r.out.contains("key: add"), r.out)
        XCTAssertTrue(r.out.contains("key: passwd"), r.out)
        for (shell, file) in [
            ("zsh", "/share/zsh/site-functions/_polyad"), ("fish", "/share/fish/vendor_completions.d/polyad.fish"),
        ] {
            let text = try String(contentsOfFile: prefix + file, encoding: .utf8)
            XCTAssertTrue(text.contains("backup"), "\(shell) completion names the commands")
            if FileManager.default.isExecutableFile(atPath: "/usr/bin/" + shell) {
                XCTAssertEqual(MountedStore.shell([shell, "-n", prefix + file]).status, 0, shell)
            } else {
                print("OperationsFilesTests: \(shell) is not installed; its completion's syntax is not checked")
            }
        }
    }

    func testTheManPageRenders() throws {
        let man = try tool("man", package: "man-db")
        let page = prefix + "/share/man/man1/polyad.1"
        var environment = ProcessInfo.processInfo.environment
        environment["MANWIDTH"] = "100"
        environment["MANPAGER"] = "cat"
        let r = MountedStore.shell([man, "--warnings", "-l", page], environment: environment)
        XCTAssertEqual(r.status, 0, r.out)
        for text in ["NAME", "polyad", "Encrypted, compressed, deduplicated backups", "backup", "restore", "--json"] {
            XCTAssertTrue(r.out.contains(text), "\(text) in:\n\(r.out.prefix(2000))")
        }
        XCTAssertFalse(r.out.contains("warning:"), r.out)
    }
}
