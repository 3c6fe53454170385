internal import CSystemShim
import Glibc

/// Starts programs: one `posix_spawn` with a pipe back to this process, for the key command (run to
/// completion with a time limit) and for `polyadfs`' daemon (left running once it reports on the pipe).
///
/// A child gets `/dev/null` as standard input, exactly the given environment, and a process group of its
/// own (or a session of its own), so that the whole group, a shell and whatever it started, can be killed.
/// No other descriptor is inherited: the ones this process opens are close-on-exec.
public enum Subprocess {
    /// How the child ended.
    public enum Termination: Sendable, Equatable {
        /// It exited with this status.
        case exited(Int32)
        /// A signal killed it.
        case signalled(Int32)
        /// It ran past the time limit and was killed (with its process group).
        case timedOut
    }

    /// What the child printed and how it ended.
    public struct Outcome: Sendable {
        /// Up to the limit's worth of its standard output.
        public var output: [UInt8]
        public var termination: Termination
    }

    /// Where the child's end of the pipe goes.
    public enum PipeEnd: Sendable {
        /// It becomes the child's standard output; standard error is this process's.
        case standardOutput
        /// It stays open in the child under its own number, which the child finds in the environment variable
        /// named here; the child's standard output and error go to `/dev/null`.
        case descriptor(variable: String)
    }

    /// A started child and this process's (read) end of its pipe, which the caller closes.
    public struct Child: Sendable {
        public var pid: pid_t
        public var readEnd: Int32
    }

    /// Starts `executable` with `argv` (its whole argument vector, `argv[0]` included) and `environment`
    /// (`NAME=value` entries), in a new process group, or a new session with `newSession`.
    ///
    /// - Throws: ``SystemError`` when the pipe or the process cannot be made (e.g. `ENOENT` for `executable`).
    public static func spawn(
        _ executable: [UInt8],
        argv: [[UInt8]],
        environment: [[UInt8]],
        pipe pipeEnd: PipeEnd,
        newSession: Bool = false
    ) throws(SystemError) -> Child {
        var ends: [Int32] = [-1, -1]
        // pipe2 is not visible to Swift; close-on-exec is set right after (a child spawned by another thread in
        // between could inherit an end, which only delays end-of-file until that child exits).
        guard pipe(&ends) == 0 else { throw SystemError(errno: errno, operation: "pipe") }
        let (readEnd, writeEnd) = (ends[0], ends[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        var environment = environment
        switch pipeEnd {
        case .standardOutput:
            // dup2 clears close-on-exec on the child's standard output; the original end closes on exec.
            _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
            posix_spawn_file_actions_adddup2(&actions, writeEnd, STDOUT_FILENO)
        case .descriptor(let variable):
            posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0)
            let prefix = Array((variable + "=").utf8)
            environment.removeAll { $0.starts(with: prefix) }
            environment.append(prefix + Array(String(writeEnd).utf8))
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        if newSession {
            posix_spawnattr_setflags(&attributes, polyad_posix_spawn_setsid_flag())
        } else {
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
            posix_spawnattr_setpgroup(&attributes, 0)
        }

        let path = cString(executable)
        let arguments = argv.map(cString)
        let variables = environment.map(cString)
        defer { for pointer in [path] + arguments + variables { free(pointer) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, path!, &actions, &attributes, arguments + [nil], variables + [nil])
        close(writeEnd)
        guard spawned == 0 else {
            close(readEnd)
            throw SystemError(errno: spawned, operation: "posix_spawn", path: executable)
        }
        return Child(pid: pid, readEnd: readEnd)
    }

    /// Runs `executable` with `arguments` (its `argv[1...]`) and `environment` (`NAME=value` entries) to
    /// completion, its standard output piped back; after `timeoutSeconds` it and its process group are killed.
    ///
    /// Output beyond `outputLimit` bytes is read and dropped, so the child never blocks on a full pipe.
    /// - Throws: ``SystemError`` when the pipe or the process cannot be made (e.g. `ENOENT` for `executable`).
    public static func run(
        _ executable: [UInt8],
        arguments: [[UInt8]],
        environment: [[UInt8]],
        timeoutSeconds: Int,
        outputLimit: Int
    ) throws(SystemError) -> Outcome {
        let child = try spawn(
            executable,
            argv: [executable] + arguments,
            environment: environment,
            pipe: .standardOutput
        )
        let deadline = ContinuousClock.now + .seconds(timeoutSeconds)
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var timedOut = false
        reading: while true {
            let left = ContinuousClock.now.duration(to: deadline)
            if left <= .zero {
                timedOut = true
                break
            }
            let (seconds, attoseconds) = left.components
            let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
            var watch = pollfd(fd: child.readEnd, events: Int16(POLLIN), revents: 0)
            // An interrupted poll is retried with the time that was left.
            let (ready, _) = retrying { poll(&watch, 1, milliseconds) }
            if ready < 0 { break }
            if ready == 0 { continue }
            let (count, _) = chunk.withUnsafeMutableBytes { buffer in
                retrying { read(child.readEnd, buffer.baseAddress, buffer.count) }
            }
            guard count > 0 else { break reading }
            if output.count < outputLimit { output += chunk[0..<min(count, outputLimit - output.count)] }
        }
        // Closed before waiting: a child still writing gets EPIPE instead of blocking.
        close(child.readEnd)
        if timedOut { kill(-child.pid, SIGKILL) }
        let status = try wait(for: child.pid)
        if timedOut { return Outcome(output: output, termination: .timedOut) }
        // The status as waitpid(2) encodes it (WIFEXITED, WEXITSTATUS and WTERMSIG are macros Swift cannot import).
        let signal = status & 0x7F
        return Outcome(output: output, termination: signal != 0 ? .signalled(signal) : .exited((status >> 8) & 0xFF))
    }

    /// Waits for the child `pid` to end; its `waitpid` status.
    public static func wait(for pid: pid_t) throws(SystemError) -> Int32 {
        var status: Int32 = 0
        _ = try check("waitpid", nil) { waitpid(pid, &status, 0) }
        return status
    }

    /// This process's environment as the kernel gave it (`NAME=value` entries, bytes that need not be UTF-8).
    public static func currentEnvironment() -> [[UInt8]] {
        var entries: [[UInt8]] = []
        var cursor = environ
        while let entry = cursor.pointee {
            entries.append(PathBytes.bytes(ofCString: entry))
            cursor += 1
        }
        return entries
    }

    /// A `malloc`ed NUL-terminated copy of `bytes` (which must hold no NUL), for `free`.
    private static func cString(_ bytes: [UInt8]) -> UnsafeMutablePointer<CChar>? {
        let pointer = malloc(bytes.count + 1)!.assumingMemoryBound(to: CChar.self)
        for (offset, byte) in bytes.enumerated() { pointer[offset] = CChar(bitPattern: byte) }
        pointer[bytes.count] = 0
        return pointer
    }
}
