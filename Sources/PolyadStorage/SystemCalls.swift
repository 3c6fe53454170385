import Glibc
import PolyadFileSystem

/// The calls the local backend makes, on its ``PathText`` paths: each is `PolyadFileSystem`'s one wrapper of
/// the C call (errno to `SystemError`, `EINTR` retried there); this only turns the path text into its bytes.
enum Sys {
    /// `open(2)` with close-on-exec.
    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) throws(SystemError) -> Int32 {
        try FileSystem.open(PathText.bytes(path), flags: flags | O_CLOEXEC, mode: UInt32(mode))
    }

    /// `stat(2)`, following symbolic links.
    static func status(_ path: String) throws(SystemError) -> FileStatus {
        try FileSystem.stat(PathText.bytes(path))
    }

    /// Makes a directory's entries durable (file systems that cannot sync a directory are accepted).
    static func fsyncDirectory(_ path: String) throws(SystemError) {
        try FileSystem.syncDirectory(PathText.bytes(path))
    }

    /// `mkdir(2)`; an existing folder is fine, an existing non-folder fails with `EEXIST`.
    static func mkdir(_ path: String, _ mode: mode_t) throws(SystemError) {
        try FileSystem.makeDirectory(PathText.bytes(path), mode: UInt32(mode))
    }

    /// `link(2)`.
    static func link(_ existing: String, _ new: String) throws(SystemError) {
        try FileSystem.link(existing: PathText.bytes(existing), new: PathText.bytes(new))
    }

    /// `rename(2)`.
    static func rename(_ old: String, _ new: String) throws(SystemError) {
        try FileSystem.rename(PathText.bytes(old), PathText.bytes(new))
    }

    /// `unlink(2)`.
    static func unlink(_ path: String) throws(SystemError) {
        try FileSystem.unlink(PathText.bytes(path))
    }
}

extension FileStatus {
    /// Whether this describes a regular file.
    var isRegularFile: Bool { kind == .regular }
    /// Whether this describes a directory.
    var isDirectory: Bool { kind == .directory }
}
