import PolyadFileSystem

/// A problem with the configuration: where it is (file, line, column, key) and what to do about it.
///
/// The message never contains the value of a secret (`encryption_key`, `s3.secret_access_key`, a key file's
/// contents or a key command's output). Commands exit with ``exitCode`` (2, usage or config error).
public struct ConfigError: Error, CustomStringConvertible {
    /// The config file, as it was named.
    public var file: String
    /// The 1-based line of the problem, if it has one.
    public var line: Int?
    /// The 1-based column of the problem (counted in Unicode scalars), if it has one.
    public var column: Int?
    /// The dotted key involved, e.g. `backup.compression_level`, if any.
    public var key: String?
    /// What is wrong and how to fix it.
    public var message: String

    /// Creates a config error.
    public init(file: String, line: Int? = nil, column: Int? = nil, key: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.message = message
    }

    /// The process exit code for a config error: 2.
    public var exitCode: Int32 { 2 }

    /// `mount.conf:3:3: backup.compresion_level: unknown key (did you mean 'compression_level'?)`; bytes of
    /// paths that are not UTF-8 show as `\xNN`.
    public var description: String {
        var text = file
        if let line {
            text += ":\(line)"
            if let column { text += ":\(column)" }
        }
        text += ": "
        if let key { text += "\(key): " }
        return PathText.displayMessage(text + message)
    }
}
