import Glibc

extension Configuration {
    /// The largest key file or key command output read.
    static let maximumSecretSize = 64 * 1024

    /// The passphrase bytes: `encryption_key`, else `encryption_key_file` (trailing newlines stripped), else
    /// `encryption_key_command` (run with `/bin/sh -c` in this process's environment; the first line of its
    /// output), else `POLYAD_PASSWORD` from `environment`.
    ///
    /// - Throws: ``ConfigError`` (exit code 2) when no source gives a passphrase (the message names all four
    ///   ways), when the key file is missing, empty, or open to group or others (the message gives the
    ///   `chmod 600` to run), or when the command fails or prints nothing. No message contains the secret.
    public func passphrase(environment: [String: String]) throws(ConfigError) -> [UInt8] {
        switch passphraseSource {
        case .inline(let key):
            return Array(key.utf8)
        case .file(let path):
            return try readKeyFile(path)
        case .command(let command):
            return try runKeyCommand(command)
        case .environment, .none:
            if let value = environment[Configuration.passwordVariable], !value.isEmpty {
                return Array(value.utf8)
            }
            throw ConfigError(
                file: file,
                message: "no passphrase given: set `encryption_key`, `encryption_key_file` or "
                    + "`encryption_key_command` under `backup:` in this file, or the POLYAD_PASSWORD environment "
                    + "variable")
        }
    }

    /// The passphrase source that ``passphrase(environment:)`` will use with `environment`:
    /// ``PassphraseSource/environment`` when the file names none and `POLYAD_PASSWORD` is set.
    public func effectivePassphraseSource(environment: [String: String]) -> PassphraseSource {
        guard passphraseSource == .none || passphraseSource == .environment else { return passphraseSource }
        return environment[Configuration.passwordVariable]?.isEmpty == false ? .environment : .none
    }

    private func passphraseError(_ message: String) -> ConfigError {
        ConfigError(
            file: file, line: passphraseLocation?.line, column: passphraseLocation?.column,
            key: passphraseLocation?.key, message: message)
    }

    private func readKeyFile(_ path: String) throws(ConfigError) -> [UInt8] {
        var bytes: [UInt8]
        let mode: mode_t
        do {
            (bytes, mode) = try SmallFile.read(path, limit: Configuration.maximumSecretSize)
        } catch {
            switch error {
            case .system(ENOENT), .system(ENOTDIR):
                throw passphraseError("the key file \(path) does not exist; create it (mode 0600) or fix the path")
            case .system(let code):
                throw passphraseError("cannot read the key file \(path): \(String(cString: strerror(code)))")
            case .notRegularFile:
                throw passphraseError("the key file \(path) is not a regular file")
            case .tooLarge:
                throw passphraseError("the key file \(path) is larger than 64 KiB; it should hold only the passphrase")
            }
        }
        guard mode & 0o077 == 0 else {
            throw passphraseError(
                "the key file \(path) is open to group or others (mode \(octal(mode & 0o777))); "
                    + "run `chmod 600 \(path)`")
        }
        while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
        guard !bytes.isEmpty else {
            throw passphraseError("the key file \(path) is empty; write the passphrase into it")
        }
        return bytes
    }

    /// Runs `command` with `/bin/sh -c`, standard input and error inherited, and returns its first output line.
    private func runKeyCommand(_ command: String) throws(ConfigError) -> [UInt8] {
        let output: [UInt8]
        let status: Int32
        do {
            (output, status) = try Subprocess.run(shellCommand: command, outputLimit: Configuration.maximumSecretSize)
        } catch {
            throw passphraseError("cannot run the key command: \(String(cString: strerror(error.code)))")
        }
        // The status as waitpid(2) encodes it: WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift cannot import.
        let signal = status & 0x7F
        if signal != 0 {
            throw passphraseError("the key command was killed by signal \(signal)")
        }
        let exitCode = (status >> 8) & 0xFF
        guard exitCode == 0 else {
            throw passphraseError("the key command failed with exit status \(exitCode); run it by hand to see why")
        }
        var line = output.prefix { $0 != 0x0A }
        if line.last == 0x0D { line = line.dropLast() }
        guard !line.isEmpty else {
            throw passphraseError("the key command printed nothing; it must print the passphrase on its first line")
        }
        return Array(line)
    }
}

/// Runs a shell command and collects its standard output.
enum Subprocess {
    struct Failure: Error {
        var code: Int32
    }

    /// Runs `/bin/sh -c shellCommand` with this process's environment, standard input and standard error; returns
    /// up to `outputLimit` bytes of its standard output (the rest is read and dropped, so the child never blocks)
    /// and its `waitpid` status.
    static func run(shellCommand: String, outputLimit: Int) throws(Failure) -> (output: [UInt8], status: Int32) {
        var pipeEnds: [Int32] = [-1, -1]
        // pipe2 is not visible to Swift; close-on-exec is set right after (a child spawned by another thread
        // in between could inherit an end, which only delays our end-of-file until that child exits).
        guard pipe(&pipeEnds) == 0 else { throw Failure(code: errno) }
        let (readEnd, writeEnd) = (pipeEnds[0], pipeEnds[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the child's standard output; every other pipe end closes on exec.
        posix_spawn_file_actions_adddup2(&actions, writeEnd, STDOUT_FILENO)

        let strings: [String] = ["/bin/sh", "-c", shellCommand]
        let arguments = strings.map { strdup($0) }
        defer { arguments.forEach { free($0) } }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments + [nil]
        var pid = pid_t()
        let spawned = posix_spawn(&pid, "/bin/sh", &actions, nil, &argv, environ)
        close(writeEnd)
        guard spawned == 0 else {
            close(readEnd)
            throw Failure(code: spawned)
        }

        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var readError: Int32 = 0
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(readEnd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                readError = errno
                break
            }
            if count == 0 { break }
            if output.count < outputLimit { output += chunk[0..<min(count, outputLimit - output.count)] }
        }
        // Closed before waiting: a child still writing after a read error gets EPIPE instead of blocking.
        close(readEnd)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { throw Failure(code: errno) }
        }
        if readError != 0 { throw Failure(code: readError) }
        return (output, status)
    }
}
