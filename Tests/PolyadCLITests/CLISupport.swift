import Foundation
import PolyadFileSystem
import PolyadTestSupport
import XCTest

/// Runs the built `polyad` binary in a private folder with its own mount.conf.
final class CLIFixture {
    private let folder: TemporaryFolder
    let root: String
    let conf: String
    var environment: [String: String]

    /// The folder holding the built products (the test bundle's folder).
    static var productsDirectory: String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path,
            Bundle.main.bundleURL.path,
        ]
        for c in candidates where FileManager.default.isExecutableFile(atPath: c + "/polyad") { return c }
        return candidates[0]
    }

    static var binary: String { productsDirectory + "/polyad" }

    init(passphrase: String = "test passphrase", extraConfig: String = "") throws {
        folder = try TemporaryFolder(prefix: "polyad-cli")
        root = folder.path
        conf = root + "/mount.conf"
        let text = "backup:\n  local_dir: \"store\"\n  compression_level: 6\n  verify_integrity: true\n" + extraConfig
        _ = FileManager.default.createFile(
            atPath: conf,
            contents: Data(text.utf8),
            attributes: [.posixPermissions: 0o600]
        )
        environment = ProcessInfo.processInfo.environment
        environment["POLYAD_CONFIG"] = conf
        environment["POLYAD_PASSWORD"] = passphrase
        environment["XDG_STATE_HOME"] = root + "/state"
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw XCTSkip(
                "polyad is not built at \(Self.binary): run `swift build` before `swift test` (Scripts/test does)"
            )
        }
    }

    deinit {
        folder.remove()
    }

    /// Replaces the config with `backup:`, `storeLine` and `extra` (mode 0600).
    func writeConfig(
        _ extra: String,
        storeLine: String = "  local_dir: \"store\"\n",
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        let text = "backup:\n" + storeLine + extra
        XCTAssertTrue(
            FileManager.default.createFile(
                atPath: conf,
                contents: Data(text.utf8),
                attributes: [.posixPermissions: 0o600]
            ),
            file: file,
            line: line
        )
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    @discardableResult
    func run(
        _ arguments: [String],
        environment extra: [String: String] = [:],
        stdin: String? = nil,
        executable: String = CLIFixture.binary
    ) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.environment = environment.merging(extra) { $1 }
        p.currentDirectoryURL = URL(fileURLWithPath: root)
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let input = Pipe()
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Output(
            status: p.terminationStatus,
            stdout: String(decoding: o, as: UTF8.self),
            stderr: String(decoding: e, as: UTF8.self)
        )
    }

    /// Runs and asserts the exit status.
    @discardableResult
    func expect(
        _ status: Int32,
        _ arguments: [String],
        environment extra: [String: String] = [:],
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> Output {
        let o = try run(arguments, environment: extra)
        XCTAssertEqual(
            o.status,
            status,
            "polyad \(arguments.joined(separator: " ")):\n\(o.stdout)\n\(o.stderr)",
            file: file,
            line: line
        )
        return o
    }
}

/// True when this process runs with CI=true: tests that need a facility fail instead of skipping.
var underCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Deterministic incompressible bytes (xorshift64).
func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed | 1
    return (0..<count).map { _ -> UInt8 in
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
        return UInt8(truncatingIfNeeded: x)
    }
}

/// Mounts a tmpfs of `size` on `path` (needs root); returns the unmount, or throws XCTSkip (a failure under CI).
func mountTmpfs(at path: String, size: String) throws -> () -> Void {
    let mount = Process()
    mount.executableURL = URL(fileURLWithPath: "/bin/mount")
    mount.arguments = ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path]
    try? mount.run()
    mount.waitUntilExit()
    guard mount.terminationStatus == 0 else {
        if underCI { XCTFail("mounting a tmpfs failed under CI: the disk-full tests need root") }
        throw XCTSkip("cannot mount a tmpfs here (needs root): disk-full test skipped")
    }
    return {
        let u = Process()
        u.executableURL = URL(fileURLWithPath: "/bin/umount")
        u.arguments = [path]
        try? u.run()
        u.waitUntilExit()
    }
}
