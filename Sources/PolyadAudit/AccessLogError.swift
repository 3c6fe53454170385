import Glibc
import PolyadFileSystem

/// The access log cannot be opened or written; `description` names the path and what to do.
public struct AccessLogError: Error, CustomStringConvertible {
    /// What is wrong.
    public enum Reason: Sendable {
        /// The path exists but is not a regular file (a directory, a pipe, a device, …).
        case notRegularFile(FileKind)
        /// The file is readable or writable by group or others (these permission bits).
        case accessibleByOthers(permissions: UInt32)
        /// A system call failed.
        case system(SystemError)
    }

    /// The access log's path.
    public var path: [UInt8]
    /// What is wrong.
    public var reason: Reason

    /// An error from its parts.
    public init(path: [UInt8], reason: Reason) {
        self.path = path
        self.reason = reason
    }

    /// The `errno` that best stands for the error (for the log's own record of a failed reopen).
    public var errno: Int32 {
        switch reason {
        case .notRegularFile(let kind): kind == .directory ? EISDIR : EINVAL
        case .accessibleByOthers: EPERM
        case .system(let error): error.errno
        }
    }

    /// What went wrong and what to do, naming the path.
    public var description: String {
        let shown = PathBytes.display(path)
        switch reason {
        case .notRegularFile(let kind):
            return "the access log \(shown) is \(Self.article(kind)), not a regular file: "
                + "set the access log to a file's path"
        case .accessibleByOthers(let permissions):
            return "the access log \(shown) has mode \(Self.octal(permissions)): group or others may read or "
                + "write it, and it records who accessed what; run chmod 600 \(shown)"
        case .system(let error):
            let remedy: String
            switch error.errno {
            case ENOENT:
                remedy =
                    "create the folder \(PathBytes.display(PathBytes.parent(path))) first (only the log file "
                    + "itself is created)"
            default:
                remedy = error.remedy ?? "check the access log's path and its folder"
            }
            return "cannot use the access log \(shown): \(error); \(remedy)"
        }
    }

    private static func article(_ kind: FileKind) -> String {
        switch kind {
        case .regular: "a regular file"
        case .directory: "a directory"
        case .symlink: "a symlink"
        case .fifo: "a named pipe"
        case .characterDevice: "a character device"
        case .blockDevice: "a block device"
        case .socket: "a socket"
        }
    }

    private static func octal(_ permissions: UInt32) -> String {
        let digits = String(permissions, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

/// Opening the log file: created `0600`, appended to, refused when it is no regular file or others may read it.
enum LogFile {
    /// `O_RDWR` (not write-only) so that after a failed write the last byte can be read back (a line cut off
    /// mid-way is ended before the next batch). `O_NONBLOCK` so that a named pipe at the path cannot hang the
    /// open; it does nothing to a regular file. `O_NOCTTY` so that a terminal never becomes ours.
    static let flags = O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK

    /// Opens (or creates, mode `0600`) the log file at `path`; creates nothing else and changes no mode.
    static func open(_ path: [UInt8]) throws(AccessLogError) -> Int32 {
        // Look first, so that no device or pipe is opened at all; then check the descriptor (the path may change
        // in between).
        let existing: FileStatus?
        do {
            existing = try FileSystem.stat(path)
        } catch {
            guard error.errno == ENOENT else { throw AccessLogError(path: path, reason: .system(error)) }
            existing = nil
        }
        if let existing, existing.kind != .regular {
            throw AccessLogError(path: path, reason: .notRegularFile(existing.kind))
        }
        let fd: Int32
        do {
            fd = try FileSystem.open(path, flags: flags, mode: 0o600)
        } catch {
            throw AccessLogError(path: path, reason: .system(error))
        }
        let status: FileStatus
        do {
            status = try FileSystem.fstat(fd)
        } catch {
            FileSystem.close(fd)
            throw AccessLogError(
                path: path,
                reason: .system(SystemError(errno: error.errno, operation: "fstat", path: path))
            )
        }
        guard status.kind == .regular else {
            FileSystem.close(fd)
            throw AccessLogError(path: path, reason: .notRegularFile(status.kind))
        }
        guard status.permissions & 0o066 == 0 else {
            FileSystem.close(fd)
            throw AccessLogError(path: path, reason: .accessibleByOthers(permissions: status.permissions))
        }
        return fd
    }

    /// Writes the whole buffer with one `write` (more only after a short write).
    static func write(_ fd: Int32, _ buffer: [UInt8], path: [UInt8]) throws(AccessLogError) {
        do {
            try buffer.withTypedBytes { (raw) throws(SystemError) in try FileSystem.writeAll(fd, raw) }
        } catch {
            throw AccessLogError(
                path: path,
                reason: .system(SystemError(errno: error.errno, operation: "write", path: path))
            )
        }
    }

    /// True unless the file is empty or ends with a newline (or cannot be read): after a failed write, whether
    /// part of a line went out and the next batch must start on a line of its own.
    static func endsMidLine(_ fd: Int32) -> Bool {
        guard let size = try? FileSystem.fstat(fd).size else { return true }
        if size == 0 { return false }
        var last: UInt8 = 0
        let count = try? withUnsafeMutableBytes(of: &last) { raw in
            try FileSystem.pread(fd, into: raw, offset: Int64(size - 1))
        }
        return count != 1 || last != 0x0A
    }
}
