import Glibc
import PolyadFileSystem

/// An `errno` value from a failed C call.
struct SystemError: Error {
    var code: Int32

    /// The C library's text for the error, e.g. "No space left on device".
    var text: String { String(cString: strerror(code)) }
}

/// Each C call the local backend makes, wrapped once: `-1`/`errno` becomes a thrown ``SystemError`` and
/// `EINTR` is retried.
enum Sys {
    /// Runs `call` until it does not fail with `EINTR`; a negative result throws the current `errno`.
    @inline(__always)
    static func retrying<Result: BinaryInteger>(_ call: () -> Result) throws(SystemError) -> Result {
        while true {
            let result = call()
            if result >= 0 { return result }
            let code = errno
            if code != EINTR { throw SystemError(code: code) }
        }
    }

    /// The bytes a ``PathText`` path stands for, NUL-terminated for a C call; a NUL inside fails with `EINVAL`
    /// (the C call would silently cut the path short).
    static func cPath(_ path: String) throws(SystemError) -> [CChar] {
        let bytes = PathText.bytes(path)
        guard !bytes.contains(0) else { throw SystemError(code: EINVAL) }
        return bytes.map { CChar(bitPattern: $0) } + [0]
    }

    /// `open(2)`; the corresponding C function is `open`.
    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) throws(SystemError) -> Int32 {
        let cPath = try cPath(path)
        return try retrying { Glibc.open(cPath, flags | O_CLOEXEC, mode) }
    }

    /// `close(2)`. `EINTR` is not retried: on Linux the descriptor is released either way.
    static func close(_ fd: Int32) throws(SystemError) {
        if Glibc.close(fd) != 0 {
            let code = errno
            if code != EINTR { throw SystemError(code: code) }
        }
    }

    /// `fstat(2)`.
    static func status(of fd: Int32) throws(SystemError) -> stat {
        var info = stat()
        _ = try retrying { fstat(fd, &info) }
        return info
    }

    /// `stat(2)`, following symbolic links.
    static func status(_ path: String) throws(SystemError) -> stat {
        var info = stat()
        let cPath = try cPath(path)
        _ = try retrying { fstatat(AT_FDCWD, cPath, &info, 0) }
        return info
    }

    /// `fstatat(2)` without following a symbolic link in the last component.
    static func linkStatus(at directory: Int32, _ name: UnsafePointer<CChar>) throws(SystemError) -> stat {
        var info = stat()
        _ = try retrying { fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) }
        return info
    }

    /// `write(2)` until all of `buffer` is written.
    static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(SystemError) {
        guard var next = buffer.baseAddress else { return }
        var remaining = buffer.count
        while remaining > 0 {
            // Linux writes at most 0x7ffff000 bytes per call; ask for no more than 1 GiB at a time.
            let written = try retrying { Glibc.write(fd, next, min(remaining, 1 << 30)) }
            if written == 0 { throw SystemError(code: EIO) }
            next += written
            remaining -= written
        }
    }

    /// `pread(2)` until `count` bytes are read or the file ends; returns how many bytes were read.
    static func preadFully(_ fd: Int32, _ destination: UnsafeMutableRawPointer, count: Int, offset: Int64)
        throws(SystemError) -> Int
    {
        var done = 0
        while done < count {
            let got = try retrying {
                Glibc.pread(fd, destination + done, min(count - done, 1 << 30), off_t(offset) + off_t(done))
            }
            if got == 0 { break }
            done += got
        }
        return done
    }

    /// `fsync(2)`.
    static func fsync(_ fd: Int32) throws(SystemError) {
        _ = try retrying { Glibc.fsync(fd) }
    }

    /// Makes a directory's entries durable: `open` + `fsync` + `close`. File systems that cannot sync a
    /// directory (`EINVAL`, `ENOTSUP`) are accepted as they are.
    static func fsyncDirectory(_ path: String) throws(SystemError) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { _ = Glibc.close(fd) }
        do {
            try fsync(fd)
        } catch  where error.code == EINVAL || error.code == ENOTSUP {
            return
        }
    }

    /// `mkdir(2)`.
    static func mkdir(_ path: String, _ mode: mode_t) throws(SystemError) {
        let cPath = try cPath(path)
        _ = try retrying { Glibc.mkdir(cPath, mode) }
    }

    /// `link(2)`.
    static func link(_ existing: String, _ new: String) throws(SystemError) {
        let (cExisting, cNew) = (try cPath(existing), try cPath(new))
        _ = try retrying { Glibc.link(cExisting, cNew) }
    }

    /// `rename(2)`.
    static func rename(_ old: String, _ new: String) throws(SystemError) {
        let (cOld, cNew) = (try cPath(old), try cPath(new))
        _ = try retrying { Glibc.rename(cOld, cNew) }
    }

    /// `unlink(2)`.
    static func unlink(_ path: String) throws(SystemError) {
        let cPath = try cPath(path)
        _ = try retrying { Glibc.unlink(cPath) }
    }
}

extension stat {
    /// Whether this describes a regular file.
    var isRegularFile: Bool { (st_mode & S_IFMT) == S_IFREG }
    /// Whether this describes a directory.
    var isDirectory: Bool { (st_mode & S_IFMT) == S_IFDIR }
}
