import Glibc
import PolyadFileSystem

extension Configuration {
    /// The largest key file or key command output read.
    static let maximumSecretSize = 64 * 1024

    /// The passphrase bytes: `encryption_key`, else `encryption_key_file` (trailing newlines stripped), else
    /// `encryption_key_command` (the first line of its output), else `POLYAD_PASSWORD` from `environment`.
    ///
    /// The key command runs as `/bin/sh -c COMMAND` with `/dev/null` as standard input, a minimal environment
    /// (``keyCommandEnvironment(from:)``) and a time limit (`backup.encryption_key_command_timeout`, default
    /// 30 s), after which it and everything it started are killed. The key file and the command's program (its
    /// first word, found in that environment's `PATH`) must pass the same trust rule as the config file.
    ///
    /// - Throws: ``ConfigError`` (exit code 2) when no source gives a passphrase (the message names all four
    ///   ways), when the key file is missing, empty, not a regular file, untrusted, or open to group or others
    ///   (the message gives the `chown`/`chmod` to run), or when the command is untrusted, fails, runs too long
    ///   or prints nothing. No message contains the secret.
    public func passphrase(environment: [String: String]) throws(ConfigError) -> [UInt8] {
        switch passphraseSource {
        case .inline(let key):
            return Array(key.utf8)
        case .file(let path):
            return try readKeyFile(path)
        case .command(let command):
            return try runKeyCommand(command, environment: environment)
        case .environment, .none:
            if let value = environment[Configuration.passwordVariable], !value.isEmpty {
                return Array(value.utf8)
            }
            throw ConfigError(
                file: file,
                message: "no passphrase given: set `encryption_key`, `encryption_key_file` or "
                    + "`encryption_key_command` under `backup:` in this file, or the POLYAD_PASSWORD environment "
                    + "variable"
            )
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
            file: file,
            line: passphraseLocation?.line,
            column: passphraseLocation?.column,
            key: passphraseLocation?.key,
            message: message
        )
    }

    private func readKeyFile(_ path: String) throws(ConfigError) -> [UInt8] {
        let shown = PathText.display(path)
        var bytes: [UInt8]
        let mode: mode_t
        do {
            (bytes, mode) = try SmallFile.read(
                PathText.bytes(path),
                limit: Configuration.maximumSecretSize,
                what: "the key file"
            )
        } catch {
            switch error {
            case .system(ENOENT), .system(ENOTDIR):
                throw passphraseError("the key file \(shown) does not exist; create it (mode 0600) or fix the path")
            case .system(let code):
                throw passphraseError("cannot read the key file \(shown): \(String(cString: strerror(code)))")
            case .notRegularFile:
                throw passphraseError("the key file \(shown) is not a regular file")
            case .tooLarge:
                throw passphraseError("the key file \(shown) is larger than 64 KiB; it should hold only the passphrase")
            case .untrusted(let message):
                throw passphraseError(message)
            }
        }
        guard mode & 0o077 == 0 else {
            throw passphraseError(
                "the key file \(shown) is open to group or others (mode \(octal(mode & 0o777))); "
                    + "run `chmod 600 \(shown)`"
            )
        }
        while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
        guard !bytes.isEmpty else {
            throw passphraseError("the key file \(shown) is empty; write the passphrase into it")
        }
        return bytes
    }

    /// Before `polyad init` writes a new key file: the folders above `encryption_key_file` must pass the trust
    /// rule, so nobody else can read or swap the secret.
    ///
    /// - Throws: ``ConfigError`` naming the folder and the `chown`/`chmod` that fixes it.
    public func checkKeyFileFolder() throws(ConfigError) {
        guard case .file(let path) = passphraseSource else { return }
        let bytes = PathText.bytes(path)
        let real: [UInt8]
        do {
            real = try FileSystem.realPath(PathBytes.parent(bytes))
        } catch {
            throw passphraseError(
                "the folder of the key file \(PathText.display(path)) cannot be used: \(error.reason)"
            )
        }
        do {
            try FileTrust.checkFolders(
                above: PathBytes.join(real, PathBytes.lastComponent(bytes)),
                what: "the key file"
            )
        } catch {
            throw passphraseError(error.message)
        }
    }

    /// The shell the key command runs in.
    static let shell: [UInt8] = Array("/bin/sh".utf8)

    /// The `PATH` the key command gets: system folders only, none a user can write.
    public static let keyCommandPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The variables the key command keeps from `environment` (what password stores, gpg, secret-tool and
    /// systemd credentials need); everything else, `POLYAD_PASSWORD` included, is left out.
    static let keyCommandVariables: Set<String> = [
        "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TERM", "XDG_RUNTIME_DIR",
        "DBUS_SESSION_BUS_ADDRESS", "GNUPGHOME", "GPG_TTY", "PASSWORD_STORE_DIR", "CREDENTIALS_DIRECTORY",
    ]

    /// The environment of the key command: `PATH` set to ``keyCommandPath``, plus the variables of
    /// ``keyCommandVariables`` that `environment` holds.
    public static func keyCommandEnvironment(from environment: [String: String]) -> [String: String] {
        var result = environment.filter { keyCommandVariables.contains($0.key) }
        result["PATH"] = keyCommandPath
        return result
    }

    /// Runs `command` with `/bin/sh -c` (see ``passphrase(environment:)``) and returns its first output line.
    private func runKeyCommand(_ command: String, environment: [String: String]) throws(ConfigError) -> [UInt8] {
        try checkKeyCommandProgram(command)
        let variables = Configuration.keyCommandEnvironment(from: environment)
            .map { Array("\($0.key)=\($0.value)".utf8) }
        let outcome: Subprocess.Outcome
        do {
            outcome = try Subprocess.run(
                Configuration.shell,
                arguments: [Array("-c".utf8), Array(command.utf8)],
                environment: variables,
                timeoutSeconds: keyCommandTimeout,
                outputLimit: Configuration.maximumSecretSize
            )
        } catch {
            throw passphraseError("cannot run the key command: \(error.reason)")
        }
        switch outcome.termination {
        case .timedOut:
            throw passphraseError(
                "the key command did not finish within \(keyCommandTimeout) s and was stopped; make it print the "
                    + "passphrase without waiting for input (its standard input is /dev/null), or raise "
                    + "backup.encryption_key_command_timeout"
            )
        case .signalled(let signal):
            throw passphraseError("the key command was killed by signal \(signal)")
        case .exited(let code) where code != 0:
            throw passphraseError("the key command failed with exit status \(code); run it by hand to see why")
        case .exited:
            break
        }
        var line = outcome.output.prefix { $0 != 0x0A }
        if line.last == 0x0D { line = line.dropLast() }
        guard !line.isEmpty else {
            throw passphraseError("the key command printed nothing; it must print the passphrase on its first line")
        }
        return Array(line)
    }

    /// Applies the trust rule to `/bin/sh` and to the program the command starts with (its first word, looked
    /// up in ``keyCommandPath`` when it has no `/`).
    private func checkKeyCommandProgram(_ command: String) throws(ConfigError) {
        let word = command.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.map(String.init) ?? ""
        var programs = [Configuration.shell]
        if word.contains("/") {
            // The shell resolves a relative program against the current folder.
            programs.append(PathText.bytes(Paths.resolve(word, against: Paths.currentDirectory())))
        } else if !word.isEmpty {
            let found = Configuration.keyCommandPath.split(separator: ":")
                .map { PathText.bytes(String($0) + "/" + word) }
                .first { (try? FileSystem.stat($0))?.kind == .regular }
            // A shell builtin or keyword (`echo`, `read`, `if`) has no program of its own to check.
            if let found { programs.append(found) }
        }
        for program in programs {
            let status: FileStatus
            do {
                status = try FileSystem.stat(program)
            } catch {
                throw passphraseError(
                    "the key command's program \(PathText.display(PathText.string(program))) cannot be used: \(error.reason)"
                )
            }
            do {
                try FileTrust.check(file: program, status: status, what: "the key command's program")
            } catch {
                throw passphraseError(error.message)
            }
        }
    }
}
