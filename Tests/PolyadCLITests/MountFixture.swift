import Foundation
import PolyadFileSystem
import XCTest

/// A store and a real mount of it. `mount()` runs `polyadfs CONF MNT` in daemon mode (it returns once the mount
/// is up); `mount(inForeground: true)` runs `polyadfs CONF MNT -f` as a child `Process` and waits for the mount.
/// `unmount()` runs `fusermount3 -u` and then waits for the daemon (it commits `/incoming` before it exits).
/// Under CI a missing FUSE is a failure; elsewhere the test is skipped with the reason.
final class MountedStore {
    let fixture: CLIFixture
    let mountpoint: String
    /// The daemon of the current mount: in daemon mode read from the staging folder's lock file, in the
    /// foreground the child's PID.
    private(set) var daemonPID: pid_t?
    /// The foreground daemon (`mount(inForeground: true)`), a child of this process; nil in daemon mode.
    private(set) var daemon: Process?

    static var polyadfs: String { CLIFixture.productsDirectory + "/polyadfs" }

    /// A new fixture (config `extraConfig` appended) and an empty mount point; nothing mounted yet.
    init(extraConfig: String = "") throws {
        try Self.requireFUSE()
        fixture = try CLIFixture(extraConfig: extraConfig)
        mountpoint = fixture.root + "/mnt"
        try FileSystem.makeDirectories(bytes(mountpoint), mode: 0o755)
    }

    /// A mount of `fixture`'s store as its config stands; nothing mounted yet.
    init(fixture: CLIFixture) throws {
        try Self.requireFUSE()
        self.fixture = fixture
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

    /// Mounts and returns once the mount is up. Daemon mode (the default) records the daemon's PID from the
    /// staging folder's lock file. In the foreground the daemon's stderr goes to `<fixture root>/polyadfs.log`
    /// (a file, not a pipe that nobody drains), which a failure to mount quotes.
    /// `openFileLimit` starts the daemon under `prlimit --nofile=N:N` (daemon mode).
    func mount(
        inForeground: Bool = false,
        openFileLimit: Int? = nil,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        guard inForeground else {
            let o =
                try openFileLimit.map {
                    try fixture.run(
                        ["--nofile=\($0):\($0)", Self.polyadfs, fixture.conf, mountpoint],
                        executable: "/usr/bin/prlimit"
                    )
                } ?? fixture.run([fixture.conf, mountpoint], executable: Self.polyadfs)
            guard o.status == 0 else {
                XCTFail("polyadfs exited \(o.status): \(o.stderr)", file: file, line: line)
                throw XCTSkip("not mounted")
            }
            let staging = try stagingFolder()
            let pid = try String(contentsOfFile: staging + "/lock", encoding: .utf8)
            daemonPID = pid_t(pid.trimmingCharacters(in: .whitespacesAndNewlines))
            return
        }
        let log = fixture.root + "/polyadfs.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.polyadfs)
        p.arguments = [fixture.conf, mountpoint, "-f"]
        p.environment = fixture.environment
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try p.run()
        daemon = p
        daemonPID = p.processIdentifier
        for _ in 0..<1000 {
            if isMounted { return }
            if !p.isRunning {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                XCTFail("polyadfs exited \(p.terminationStatus): \(text)", file: file, line: line)
                throw XCTSkip("not mounted")
            }
            usleep(10_000)
        }
        XCTFail("not mounted after 10 s", file: file, line: line)
    }

    /// Whether `mountpoint -q` sees a mount on the mount point.
    var isMounted: Bool { Self.shell(["mountpoint", "-q", mountpoint]).status == 0 }

    /// The mounted root of the only snapshot.
    func snapshotRoot() throws -> String {
        let days = try FileManager.default.contentsOfDirectory(atPath: mountpoint + "/snapshots").filter {
            $0 != "latest"
        }
        let day = try XCTUnwrap(days.first)
        let ids = try FileManager.default.contentsOfDirectory(atPath: mountpoint + "/snapshots/" + day)
        return mountpoint + "/snapshots/" + day + "/" + (try XCTUnwrap(ids.first))
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

    /// Unmounts if mounted and waits (up to 120 s, then `kill -9`) for the daemon to exit.
    func unmount() {
        // Also a dead mount (its daemon killed), which `mountpoint` cannot stat.
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        let real = (try? FileSystem.realPath(bytes(fixture.root))).map { String(decoding: $0, as: UTF8.self) + "/mnt" }
        if mounts.contains(" \(mountpoint) ") || real.map({ mounts.contains(" \($0) ") }) == true {
            if Self.shell(["fusermount3", "-u", mountpoint]).status != 0 {
                _ = Self.shell(["fusermount3", "-uz", mountpoint])
            }
        }
        if let d = daemon {
            for _ in 0..<12_000 where d.isRunning { usleep(10_000) }
            if d.isRunning { kill(d.processIdentifier, SIGKILL) }
            d.waitUntilExit()
        } else if let pid = daemonPID {
            for _ in 0..<12_000 where kill(pid, 0) == 0 { usleep(10_000) }
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        }
        daemon = nil
        daemonPID = nil
    }

    /// `kill -9` of the daemon; the dead mount is then cleaned up by `unmount`.
    func killDaemon() {
        guard let pid = daemonPID else { return }
        kill(pid, SIGKILL)
        if let d = daemon {
            d.waitUntilExit()
        } else {
            for _ in 0..<1000 where kill(pid, 0) == 0 { usleep(10_000) }
        }
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
