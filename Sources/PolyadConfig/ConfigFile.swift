import Glibc

extension Configuration {
    /// The largest config file read; anything bigger is not a config file.
    static let maximumFileSize = 1 << 20

    /// Reads and parses the config file at `path`, and refuses it if it holds a secret (`backup.encryption_key`,
    /// `s3.secret_access_key`) while group or others have any permission on it.
    ///
    /// - Throws: ``ConfigError``: the file is missing or unreadable, malformed (see ``parse(_:file:)``), or
    ///   holds a secret and is not mode 0600 (the message gives the `chmod 600` to run).
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
    public static func locate(explicit: String?, environment: [String: String], currentDirectory: String)
        -> String
    {
        let candidates = candidates(explicit: explicit, environment: environment, currentDirectory: currentDirectory)
        return candidates.first(where: Paths.isFile) ?? candidates[candidates.count - 1]
    }

    /// The paths searched, in order: just the explicit path or `$POLYAD_CONFIG` when given, else
    /// `<currentDirectory>/mount.conf` and `/etc/polyad/mount.conf`.
    static func candidates(explicit: String?, environment: [String: String], currentDirectory: String?)
        -> [String]
    {
        if let explicit, !explicit.isEmpty { return [explicit] }
        if let named = environment[configVariable], !named.isEmpty { return [named] }
        let folder = currentDirectory ?? Paths.currentDirectory()
        return [Paths.resolve("mount.conf", against: folder), systemConfigFile]
    }

    private static func load(file path: String, searched: [String]?) throws(ConfigError) -> Configuration {
        let (text, mode) = try readConfigFile(path, searched: searched)
        let config = try parse(text, file: path)
        if mode & 0o077 != 0, let secret = config.secretLocations.first {
            throw ConfigError(
                file: path, line: secret.line, column: secret.column, key: secret.key,
                message: "this file holds a secret but group or others have access to it (mode "
                    + octal(mode & 0o777) + "); run `chmod 600 \(path)`, or move the secret out of the file "
                    + "(encryption_key_file, encryption_key_command or POLYAD_PASSWORD)")
        }
        return config
    }

    /// The file's text and permission bits.
    private static func readConfigFile(_ path: String, searched: [String]?) throws(ConfigError)
        -> (text: String, mode: mode_t)
    {
        let bytes: [UInt8]
        let mode: mode_t
        do {
            (bytes, mode) = try SmallFile.read(path, limit: maximumFileSize)
        } catch {
            switch error {
            case .system(ENOENT), .system(ENOTDIR):
                let tried = searched.map { "; tried " + $0.joined(separator: ", ") } ?? ""
                throw ConfigError(
                    file: path,
                    message: "no config file here\(tried). Polyad reads -c/--config, else $POLYAD_CONFIG, else "
                        + "./mount.conf, else \(systemConfigFile); `polyad init` needs one naming the store "
                        + "(`backup:` with `local_dir` and/or `s3_bucket`)")
            case .system(let code):
                throw ConfigError(
                    file: path, message: "cannot read the config file: \(String(cString: strerror(code)))")
            case .notRegularFile:
                throw ConfigError(file: path, message: "is not a regular file; give the path of the config file")
            case .tooLarge:
                throw ConfigError(file: path, message: "is larger than 1 MiB; this is not a config file")
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(file: path, message: "is not UTF-8 text; save it as UTF-8")
        }
        return (text, mode)
    }
}

/// `0644`.
func octal(_ mode: mode_t) -> String {
    let digits = String(mode, radix: 8)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

/// Reads small regular files (config and key files) with `open` + `fstat` + `read`.
enum SmallFile {
    enum Failure: Error {
        case system(Int32)
        case notRegularFile
        case tooLarge
    }

    /// The whole file and its permission bits; follows symbolic links.
    static func read(_ path: String, limit: Int) throws(Failure) -> (bytes: [UInt8], mode: mode_t) {
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw .system(errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .system(errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .notRegularFile }
        guard info.st_size <= limit else { throw .tooLarge }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .system(errno)
            }
            if count == 0 { break }
            bytes += chunk[0..<count]
            if bytes.count > limit { throw .tooLarge }
        }
        return (bytes, info.st_mode & 0o7777)
    }
}
