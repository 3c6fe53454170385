import Glibc

/// Runs a program to completion, collecting its standard output, with a time limit.
///
/// The child gets `/dev/null` as standard input, a pipe as standard output, this process's standard error,
/// exactly the given environment, and a process group of its own, so that on timeout the whole group (a shell
/// and whatever it started) is killed. No other descriptor is inherited: the ones this process opens are
/// close-on-exec.
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

    /// Runs `executable` with `arguments` (its `argv[1...]`) and `environment` (`NAME=value` entries).
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
        var ends: [Int32] = [-1, -1]
        // pipe2 is not visible to Swift; close-on-exec is set right after (a child spawned by another thread in
        // between could inherit an end, which only delays end-of-file until that child exits).
        guard pipe(&ends) == 0 else { throw SystemError(errno: errno, operation: "pipe") }
        let (readEnd, writeEnd) = (ends[0], ends[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        // dup2 clears close-on-exec on the child's standard output; every other pipe end closes on exec.
        posix_spawn_file_actions_adddup2(&actions, writeEnd, STDOUT_FILENO)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)

        let argv = ([executable] + arguments).map(cString)
        let envp = environment.map(cString)
        defer { for pointer in argv + envp { free(pointer) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, argv[0]!, &actions, &attributes, argv + [nil], envp + [nil])
        close(writeEnd)
        guard spawned == 0 else {
            close(readEnd)
            throw SystemError(errno: spawned, operation: "posix_spawn", path: executable)
        }

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
            var watch = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&watch, 1, milliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if ready == 0 { continue }
            let count = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            switch count {
            case ..<0 where errno == EINTR: continue
            case ...0: break reading
            default:
                if output.count < outputLimit { output += chunk[0..<min(count, outputLimit - output.count)] }
            }
        }
        // Closed before waiting: a child still writing gets EPIPE instead of blocking.
        close(readEnd)
        if timedOut { kill(-pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { throw SystemError(errno: errno, operation: "waitpid") }
        }
        if timedOut { return Outcome(output: output, termination: .timedOut) }
        // The status as waitpid(2) encodes it (WIFEXITED, WEXITSTATUS and WTERMSIG are macros Swift cannot import).
        let signal = status & 0x7F
        return Outcome(output: output, termination: signal != 0 ? .signalled(signal) : .exited((status >> 8) & 0xFF))
    }

    /// A `malloc`ed NUL-terminated copy of `bytes` (which must hold no NUL), for `free`.
    private static func cString(_ bytes: [UInt8]) -> UnsafeMutablePointer<CChar>? {
        let pointer = malloc(bytes.count + 1)!.assumingMemoryBound(to: CChar.self)
        for (offset, byte) in bytes.enumerated() { pointer[offset] = CChar(bitPattern: byte) }
        pointer[bytes.count] = 0
        return pointer
    }
}
