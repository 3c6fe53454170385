import Glibc
import PolyadFileSystem

extension Configuration {
    /// The largest config file read (a mount.conf is a few hundred bytes). The bound also bounds the YAML
    /// library's work: its duplicate-key check hashes a list used as a key in full, which took 4 s for 1 MiB.
    static let maximumFileSize = 64 << 10

    /// Reads and parses the config file at `path` (a ``PathText`` string: any bytes), and refuses it if it could
    /// run another user's commands or holds a secret others can read.
    ///
    /// The file and every folder above it must be owned by the caller or root and not writable by group or
    /// others (see `FileTrust`); a file holding a secret (`backup.encryption_key`, `s3.secret_access_key`) must
    /// give group and others no permission at all.
    ///
    /// - Throws: ``ConfigError``: the path is empty, the file is missing, unreadable or not a regular file (a
    ///   FIFO is refused, not waited on), untrusted (the message gives the `chown`/`chmod` to run), malformed (see
    ///   ``parse(_:file:)``), or holds a secret and is not mode 0600.
    public static func load(file path: String) throws(ConfigError) -> Configuration {
        try load(file: path, searched: nil)
    }

    /// Finds the config file as ``locate(explicit:environment:)`` does and loads it; when none exists, the error
    /// lists every path that was tried.
    public static func load(explicit: String?, environment: [String: String]) throws(ConfigError) -> Configuration {
        let candidates = candidates(explicit: explicit, environment: environment, currentDirectory: nil)
        let path = locate(explicit: explicit, environment: environment)
        return try load(file: path, searched: candidates.count > 1 ? candidates : nil)
    }

    /// Which file to use: the explicit `-c` path, else `$POLYAD_CONFIG`, else `./mount.conf` if it exists,
    /// else `/etc/polyad/mount.conf`.
    public static func locate(explicit: String?, environment: [String: String]) -> String {
        locate(explicit: explicit, environment: environment, currentDirectory: Paths.currentDirectory())
    }

    /// ``locate(explicit:environment:)`` with the current directory given (`./mount.conf` is looked up in it).
    public static func locate(
        explicit: String?,
        environment: [String: String],
        currentDirectory: String
    )
        -> String
    {
        let candidates = candidates(explicit: explicit, environment: environment, currentDirectory: currentDirectory)
        return candidates.first(where: Paths.isFile) ?? candidates[candidates.count - 1]
    }

    /// The paths searched, in order: just the explicit path or `$POLYAD_CONFIG` when given, else
    /// `<currentDirectory>/mount.conf` and `/etc/polyad/mount.conf`.
    static func candidates(
        explicit: String?,
        environment: [String: String],
        currentDirectory: String?
    )
        -> [String]
    {
        if let explicit { return [explicit] }
        if let named = environment[configVariable], !named.isEmpty { return [named] }
        let folder = currentDirectory ?? Paths.currentDirectory()
        return [Paths.resolve("mount.conf", against: folder), systemConfigFile]
    }

    private static func load(file path: String, searched: [String]?) throws(ConfigError) -> Configuration {
        guard !path.isEmpty else {
            throw ConfigError(file: "''", message: "the config file's path is empty; give the path of a config file")
        }
        let (text, mode) = try readConfigFile(path, searched: searched)
        let config = try parse(text, file: path)
        if mode & 0o077 != 0, let secret = config.secretLocations.first {
            throw ConfigError(
                file: path,
                line: secret.line,
                column: secret.column,
                key: secret.key,
                message: "this file holds a secret but group or others have access to it (mode "
                    + octal(mode & 0o777) + "); run `chmod 600 \(path)`, or move the secret out of the file "
                    + "(encryption_key_file, encryption_key_command or POLYAD_PASSWORD)"
            )
        }
        return config
    }

    /// The file's text and permission bits, once the file has passed the trust check.
    private static func readConfigFile(
        _ path: String,
        searched: [String]?
    ) throws(ConfigError)
        -> (text: String, mode: mode_t)
    {
        let shown = PathText.display(path)
        let bytes: [UInt8]
        let mode: mode_t
        do {
            (bytes, mode) = try SmallFile.read(PathText.bytes(path), limit: maximumFileSize, what: "the config file")
        } catch {
            switch error {
            case .system(ENOENT), .system(ENOTDIR):
                let tried = searched.map { "; tried " + $0.map(PathText.display).joined(separator: ", ") } ?? ""
                throw ConfigError(
                    file: path,
                    message: "no config file here\(tried). Polyad reads -c/--config, else $POLYAD_CONFIG, else "
                        + "./mount.conf, else \(systemConfigFile); `polyad init` needs one naming the store "
                        + "(`backup:` with `local_dir` and/or `s3_bucket`)"
                )
            case .system(let code):
                throw ConfigError(
                    file: path,
                    message: "cannot read the config file: \(String(cString: strerror(code)))"
                )
            case .notRegularFile:
                throw ConfigError(file: path, message: "is not a regular file; give the path of the config file")
            case .tooLarge:
                throw ConfigError(file: path, message: "is larger than 64 KiB; this is not a config file")
            case .untrusted(let message):
                throw ConfigError(file: path, message: message)
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(file: path, message: "\(shown) is not UTF-8 text; save it as UTF-8")
        }
        return (text, mode)
    }
}

/// `0644`.
func octal(_ mode: mode_t) -> String {
    let digits = String(mode, radix: 8)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

/// Reads small regular files (config and key files) that must pass the trust rule (`FileTrust`).
enum SmallFile {
    enum Failure: Error {
        case system(Int32)
        case notRegularFile
        case tooLarge
        case untrusted(String)
    }

    /// The whole file and its permission bits; follows symbolic links. The file is opened without blocking
    /// (a FIFO is refused, not waited on) and checked with `fstat` of that descriptor before it is read.
    static func read(_ path: [UInt8], limit: Int, what: String) throws(Failure) -> (bytes: [UInt8], mode: mode_t) {
        let fd: Int32
        do {
            fd = try FileSystem.open(path, flags: O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode: 0)
        } catch {
            throw .system(error.errno)
        }
        defer { FileSystem.close(fd) }
        let status: FileStatus
        do {
            status = try FileSystem.fstat(fd)
        } catch {
            throw .system(error.errno)
        }
        guard status.kind == .regular else { throw .notRegularFile }
        guard status.size <= limit else { throw .tooLarge }
        do {
            try FileTrust.check(file: path, status: status, what: what)
        } catch {
            throw .untrusted(error.message)
        }
        do {
            return (try FileSystem.readToEnd(fd, limit: limit), mode_t(status.permissions))
        } catch  where error.errno == EFBIG {
            throw .tooLarge
        } catch {
            throw .system(error.errno)
        }
    }
}
