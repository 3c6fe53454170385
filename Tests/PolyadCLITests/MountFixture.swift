import Foundation
import PolyadFileSystem
import XCTest

/// A store and a real mount of it: `polyadfs CONF MNT` in daemon mode (it returns once the mount is up),
/// unmounted with `fusermount3 -u`, the daemon then waited for (it commits `/incoming` before it exits).
/// Under CI a missing FUSE is a failure; elsewhere the test is skipped with the reason.
final class MountedStore {
    let fixture: CLIFixture
    let mountpoint: String
    /// The daemon of the current mount (read from the staging folder's lock file).
    private(set) var daemonPID: pid_t?

    static var polyadfs: String { CLIFixture.productsDirectory + "/polyadfs" }

    /// A new fixture (config `extraConfig` appended) and an empty mount point; nothing mounted yet.
    init(extraConfig: String = "") throws {
        try Self.requireFUSE()
        fixture = try CLIFixture(extraConfig: extraConfig)
        mountpoint = fixture.root + "/mnt"
        try FileSystem.makeDirectories(bytes(mountpoint), mode: 0o755)
    }

    /// The same fixture and mount point with its config rewritten (`local_dir` moved if given).
    init(reusing other: MountedStore, extraConfig: String, localDirectory: String = "store") throws {
        other.unmount()
        fixture = other.fixture
        mountpoint = other.mountpoint
        let text =
            "backup:\n  local_dir: \"\(localDirectory)\"\n  compression_level: 6\n  verify_integrity: true\n"
            + extraConfig
        try Data(text.utf8).write(to: URL(fileURLWithPath: fixture.conf))
    }

    static func requireFUSE() throws {
        guard FileManager.default.fileExists(atPath: "/dev/fuse"),
            FileManager.default.isExecutableFile(atPath: "/usr/bin/fusermount3")
                || FileManager.default.isExecutableFile(atPath: "/bin/fusermount3")
        else {
            if underCI {
                XCTFail("/dev/fuse or fusermount3 is missing: the mount tests need FUSE (apt-get install fuse3)")
            }
            throw XCTSkip("/dev/fuse or fusermount3 is missing: mount tests skipped")
        }
        guard FileManager.default.isExecutableFile(atPath: polyadfs) else {
            throw XCTSkip("polyadfs is not built at \(polyadfs): run `swift build` first (Scripts/test does)")
        }
    }

    /// Mounts (daemon mode) and records the daemon's PID.
    func mount(file: StaticString = #filePath, line: UInt = #line) throws {
        let o = try fixture.run([fixture.conf, mountpoint], executable: Self.polyadfs)
        guard o.status == 0 else {
            XCTFail("polyadfs exited \(o.status): \(o.stderr)", file: file, line: line)
            throw XCTSkip("not mounted")
        }
        let staging = try stagingFolder()
        let pid = try String(contentsOfFile: staging + "/lock", encoding: .utf8)
        daemonPID = pid_t(pid.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The staging folder the config names (default: beside the store).
    func stagingFolder() throws -> String {
        let text = try String(contentsOfFile: fixture.conf, encoding: .utf8)
        if let line = text.split(separator: "\n").first(where: { $0.contains("staging_dir:") }) {
            return String(line.split(separator: "\"")[1])
        }
        let local = String(
            try XCTUnwrap(text.split(separator: "\n").first { $0.contains("local_dir:") }).split(separator: "\"")[1]
        )
        return (local.hasPrefix("/") ? local : fixture.root + "/" + local) + ".staging"
    }

    /// Unmounts if mounted and waits (up to 120 s) for the daemon to exit.
    func unmount() {
        // Also a dead mount (its daemon killed), which `mountpoint` cannot stat.
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        let real = (try? FileSystem.realPath(bytes(fixture.root))).map { String(decoding: $0, as: UTF8.self) + "/mnt" }
        if mounts.contains(" \(mountpoint) ") || real.map({ mounts.contains(" \($0) ") }) == true {
            if Self.shell(["fusermount3", "-u", mountpoint]).status != 0 {
                _ = Self.shell(["fusermount3", "-uz", mountpoint])
            }
        }
        if let pid = daemonPID {
            for _ in 0..<12_000 where kill(pid, 0) == 0 { usleep(10_000) }
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        }
        daemonPID = nil
    }

    /// `kill -9` of the daemon; the dead mount is then cleaned up by `unmount`.
    func killDaemon() {
        guard let pid = daemonPID else { return }
        kill(pid, SIGKILL)
        for _ in 0..<1000 where kill(pid, 0) == 0 { usleep(10_000) }
    }

    /// Runs a command and returns its status and combined output. posix_spawn and waitpid directly, not
    /// Foundation's Process: its exit monitoring can miss a child whose own child daemonizes (polyadfs).
    @discardableResult
    static func shell(_ args: [String], environment: [String: String]? = nil) -> (status: Int32, out: String) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return (-1, "pipe failed") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let cArgs = (["/usr/bin/env"] + args).map { strdup($0) } + [nil]
        let cEnv = env.map { strdup($0) } + [nil]
        defer {
            for pointer in cArgs + cEnv { free(pointer) }
        }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, "/usr/bin/env", &actions, nil, cArgs, cEnv)
        close(fds[1])
        guard spawned == 0 else {
            close(fds[0])
            return (-1, "spawn failed: \(spawned)")
        }
        var output = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fds[0], &buffer, buffer.count)
            if n > 0 {
                output += buffer[0..<n]
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (code, String(decoding: output, as: UTF8.self))
    }
}
