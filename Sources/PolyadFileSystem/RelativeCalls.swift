internal import CSystemShim
import Glibc

/// A time to set with `FileSystem.setTimes(descriptor:...)`: a given one, now, or unchanged.
public enum TimeSetting: Sendable, Equatable {
    case at(Timespec)
    case now
    case omit

    var cValue: timespec {
        switch self {
        case .at(let t): t.cValue
        // UTIME_NOW and UTIME_OMIT (<sys/stat.h>): Swift's Glibc module does not import them.
        case .now: timespec(tv_sec: 0, tv_nsec: (1 << 30) - 1)
        case .omit: timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2)
        }
    }
}

/// The flags of `FileSystem.rename(at:...)` (`renameat2`).
public struct RenameFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Fail with `EEXIST` rather than replace the target.
    public static let noReplace = RenameFlags(rawValue: polyad_rename_noreplace_flag())
    /// Swap the two names atomically (both must exist).
    public static let exchange = RenameFlags(rawValue: polyad_rename_exchange_flag())
}

/// The calls relative to open descriptors (the `*at` family, `O_PATH` descriptors and `/proc/self/fd`), for
/// a passthrough to a real folder: each inode held as an `O_PATH` descriptor, each name a byte string
/// without `/` or NUL, so that the kernel's own file system decides every semantic and error.
extension FileSystem {
    /// `O_PATH`.
    public static let pathOnlyFlag: Int32 = polyad_open_path_flag()
    private static let emptyPath: Int32 = polyad_at_empty_path_flag()

    /// `/proc/self/fd/N`: the path that reopens descriptor `fd` (an `O_PATH` one too) as the file itself.
    public static func descriptorPath(_ fd: Int32) -> [UInt8] { Array("/proc/self/fd/\(fd)".utf8) }

    /// Opens `name` in folder `directory` as an `O_PATH` descriptor (not following a final symlink): a handle
    /// on the file that keeps it reachable, whatever it is.
    public static func openPath(at directory: Int32, _ name: [UInt8]) throws(SystemError) -> Int32 {
        try open(at: directory, name, flags: pathOnlyFlag | O_NOFOLLOW | O_CLOEXEC, mode: 0)
    }

    /// `openat(directory, name, flags, mode)`.
    public static func open(
        at directory: Int32,
        _ name: [UInt8],
        flags: Int32,
        mode: UInt32
    ) throws(SystemError)
        -> Int32
    {
        try withCPath(name, operation: "openat") { (c) throws(SystemError) -> Int32 in
            try check("openat", name) { Glibc.openat(directory, c, flags, mode_t(mode)) }
        }
    }

    /// Opens the file an `O_PATH` descriptor names, with `flags` (through `/proc/self/fd`).
    public static func reopen(_ pathDescriptor: Int32, flags: Int32) throws(SystemError) -> Int32 {
        try open(descriptorPath(pathDescriptor), flags: (flags & ~O_NOFOLLOW) | O_CLOEXEC, mode: 0)
    }

    /// The status of `name` in `directory`, not following a final symlink.
    public static func linkStatus(at directory: Int32, _ name: [UInt8]) throws(SystemError) -> FileStatus {
        try withCPath(name, operation: "fstatat") { (c) throws(SystemError) -> FileStatus in
            try linkStatus(at: directory, c)
        }
    }

    /// The status of the file an `O_PATH` (or any) descriptor names, itself (a symlink is not followed).
    public static func status(descriptor fd: Int32) throws(SystemError) -> FileStatus {
        var st = Glibc.stat()
        _ = try check("fstatat", nil) { fstatat(fd, "", &st, emptyPath | AT_SYMLINK_NOFOLLOW) }
        return FileStatus(st)
    }

    /// `mkdirat`.
    public static func makeDirectory(at directory: Int32, _ name: [UInt8], mode: UInt32) throws(SystemError) {
        try withCPath(name, operation: "mkdirat") { (c) throws(SystemError) in
            _ = try check("mkdirat", name) { mkdirat(directory, c, mode_t(mode)) }
        }
    }

    /// `mknodat` (fifos, sockets, device files, empty regular files).
    public static func makeNode(at directory: Int32, _ name: [UInt8], mode: UInt32, device: UInt64) throws(SystemError)
    {
        try withCPath(name, operation: "mknodat") { (c) throws(SystemError) in
            _ = try check("mknodat", name) { mknodat(directory, c, mode_t(mode), dev_t(device)) }
        }
    }

    /// `symlinkat`: `name` in `directory` pointing at `target`.
    public static func symlink(target: [UInt8], at directory: Int32, _ name: [UInt8]) throws(SystemError) {
        try withCPath(target, operation: "symlinkat") { (t) throws(SystemError) in
            try withCPath(name, operation: "symlinkat") { (c) throws(SystemError) in
                _ = try check("symlinkat", name) { symlinkat(t, directory, c) }
            }
        }
    }

    /// `unlinkat`: a file, or an empty folder with `folder`.
    public static func unlink(at directory: Int32, _ name: [UInt8], folder: Bool) throws(SystemError) {
        try withCPath(name, operation: "unlinkat") { (c) throws(SystemError) in
            _ = try check("unlinkat", name) { unlinkat(directory, c, folder ? AT_REMOVEDIR : 0) }
        }
    }

    /// `renameat2`.
    public static func rename(
        at directory: Int32,
        _ name: [UInt8],
        to newDirectory: Int32,
        _ newName: [UInt8],
        flags: RenameFlags = []
    ) throws(SystemError) {
        try withCPath(name, operation: "renameat2") { (a) throws(SystemError) in
            try withCPath(newName, operation: "renameat2") { (b) throws(SystemError) in
                _ = try check("renameat2", name, secondPath: newName) {
                    polyad_renameat2(directory, a, newDirectory, b, flags.rawValue)
                }
            }
        }
    }

    /// A new hard link `name` in `directory` to the file an `O_PATH` descriptor names.
    public static func link(_ pathDescriptor: Int32, at directory: Int32, _ name: [UInt8]) throws(SystemError) {
        let source = descriptorPath(pathDescriptor)
        try withCPath(source, operation: "linkat") { (s) throws(SystemError) in
            try withCPath(name, operation: "linkat") { (c) throws(SystemError) in
                _ = try check("linkat", name) { linkat(AT_FDCWD, s, directory, c, AT_SYMLINK_FOLLOW) }
            }
        }
    }

    /// The target of the symlink an `O_PATH` descriptor names.
    public static func readLink(descriptor fd: Int32) throws(SystemError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = try check("readlinkat", nil) {
            buffer.withUnsafeMutableBufferPointer { b in
                b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { readlinkat(fd, "", $0, b.count) }
            }
        }
        return Array(buffer[0..<n])
    }

    /// Changes the owner of the file a descriptor names, itself (a symlink is not followed); `UInt32.max`
    /// leaves that id unchanged.
    public static func changeOwner(descriptor fd: Int32, uid: UInt32, gid: UInt32) throws(SystemError) {
        _ = try check("fchownat", nil) { fchownat(fd, "", uid, gid, emptyPath | AT_SYMLINK_NOFOLLOW) }
    }

    /// Sets the permission bits of the file an `O_PATH` descriptor names (not a symlink).
    public static func changeMode(descriptor fd: Int32, mode: UInt32) throws(SystemError) {
        try changeMode(descriptorPath(fd), mode: mode)
    }

    /// Sets the size of the file an `O_PATH` descriptor names.
    public static func truncate(descriptor fd: Int32, size: Int64) throws(SystemError) {
        let path = descriptorPath(fd)
        try withCPath(path, operation: "truncate") { (c) throws(SystemError) in
            _ = try check("truncate", nil) { Glibc.truncate(c, off_t(size)) }
        }
    }

    /// Sets the access and modification times of `name` in `directory` (not following a final symlink), or
    /// of the file an open descriptor names when `name` is nil.
    public static func setTimes(
        at directory: Int32,
        _ name: [UInt8]?,
        access: TimeSetting,
        modification: TimeSetting
    ) throws(SystemError) {
        let times = [access.cValue, modification.cValue]
        guard let name else {
            _ = try check("futimens", nil) { times.withUnsafeBufferPointer { futimens(directory, $0.baseAddress) } }
            return
        }
        try withCPath(name, operation: "utimensat") { (c) throws(SystemError) in
            _ = try check("utimensat", name) {
                times.withUnsafeBufferPointer { utimensat(directory, c, $0.baseAddress, AT_SYMLINK_NOFOLLOW) }
            }
        }
    }

    /// Sets the times of the file a descriptor (an `O_PATH` one too) names, itself: a symlink's own times.
    public static func setTimes(
        descriptor fd: Int32,
        access: TimeSetting,
        modification: TimeSetting
    )
        throws(SystemError)
    {
        let times = [access.cValue, modification.cValue]
        _ = try check("utimensat", nil) {
            times.withUnsafeBufferPointer { utimensat(fd, "", $0.baseAddress, emptyPath) }
        }
    }

    /// `fallocate`.
    public static func allocate(_ fd: Int32, mode: Int32, offset: Int64, length: Int64) throws(SystemError) {
        _ = try check("fallocate", nil) { polyad_fallocate(fd, mode, offset, length) }
    }

    /// `lseek`: the new offset.
    public static func seek(_ fd: Int32, offset: Int64, whence: Int32) throws(SystemError) -> Int64 {
        Int64(try check("lseek", nil) { lseek(fd, off_t(offset), whence) })
    }

    /// Flushes a file's data (and the metadata needed to read it back) to stable storage.
    public static func fdatasync(_ fd: Int32) throws(SystemError) {
        _ = try check("fdatasync", nil) { Glibc.fdatasync(fd) }
    }

    /// Flushes the whole file system holding `fd` to stable storage.
    public static func syncFileSystem(_ fd: Int32) throws(SystemError) {
        _ = try check("syncfs", nil) { polyad_syncfs(fd) }
    }

    /// Reads at most `buffer.count` bytes at `offset` with one call: the count read.
    public static func preadOnce(
        _ fd: Int32,
        into buffer: UnsafeMutableRawBufferPointer,
        offset: Int64
    )
        throws(SystemError) -> Int
    {
        try check("pread", nil) { Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    /// Writes at most `buffer.count` bytes at `offset` with one call: the count written.
    public static func pwriteOnce(
        _ fd: Int32,
        _ buffer: UnsafeRawBufferPointer,
        offset: Int64
    ) throws(SystemError)
        -> Int
    {
        try check("pwrite", nil) { Glibc.pwrite(fd, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    /// The status of the file system holding `fd` (`fstatvfs`).
    public static func fileSystemStatus(_ fd: Int32) throws(SystemError) -> statvfs {
        var info = statvfs()
        _ = try check("fstatvfs", nil) { fstatvfs(fd, &info) }
        return info
    }

    /// Takes an exclusive `flock` lock on `fd` without waiting: false if another open file holds it.
    public static func tryLock(_ fd: Int32) throws(SystemError) -> Bool {
        let (result, code) = retrying { flock(fd, LOCK_EX | LOCK_NB) }
        if result == 0 { return true }
        if code == EWOULDBLOCK { return false }
        throw SystemError(errno: code, operation: "flock")
    }

    // MARK: Extended attributes by path, with the caller's flags

    /// One extended attribute's value (`follow`: through a final symlink, as `getxattr`; else `lgetxattr`).
    public static func extendedAttribute(
        _ path: [UInt8],
        name: [UInt8],
        follow: Bool
    ) throws(SystemError)
        -> [UInt8]
    {
        try withCPath(path, operation: "getxattr") { (p) throws(SystemError) -> [UInt8] in
            try withCPath(name, operation: "getxattr") { (n) throws(SystemError) -> [UInt8] in
                while true {
                    let size = try check("getxattr", path) { polyad_getxattr(p, n, nil, 0, follow ? 1 : 0) }
                    var value = [UInt8](repeating: 0, count: size)
                    let (got, code) = retrying {
                        value.withUnsafeMutableBytes {
                            polyad_getxattr(p, n, $0.baseAddress, UInt(size), follow ? 1 : 0)
                        }
                    }
                    if got >= 0 { return Array(value[0..<got]) }
                    if code != ERANGE { throw SystemError(errno: code, operation: "getxattr", path: path) }
                }
            }
        }
    }

    /// The names of a file's extended attributes, each without its NUL.
    public static func extendedAttributeNames(_ path: [UInt8], follow: Bool) throws(SystemError) -> [[UInt8]] {
        try withCPath(path, operation: "listxattr") { (p) throws(SystemError) -> [[UInt8]] in
            while true {
                let size = try check("listxattr", path) { polyad_listxattr(p, nil, 0, follow ? 1 : 0) }
                if size == 0 { return [] }
                var list = [CChar](repeating: 0, count: size)
                let (got, code) = retrying {
                    list.withUnsafeMutableBufferPointer {
                        polyad_listxattr(p, $0.baseAddress, UInt(size), follow ? 1 : 0)
                    }
                }
                if got >= 0 {
                    return list[0..<got].split(separator: 0).map { $0.map { UInt8(bitPattern: $0) } }
                }
                if code != ERANGE { throw SystemError(errno: code, operation: "listxattr", path: path) }
            }
        }
    }

    /// Sets an extended attribute with `flags` (`XATTR_CREATE`, `XATTR_REPLACE`).
    public static func setExtendedAttribute(
        _ path: [UInt8],
        name: [UInt8],
        value: UnsafeRawBufferPointer,
        flags: Int32,
        follow: Bool
    ) throws(SystemError) {
        try withCPath(path, operation: "setxattr") { (p) throws(SystemError) in
            try withCPath(name, operation: "setxattr") { (n) throws(SystemError) in
                _ = try check("setxattr", path) {
                    polyad_setxattr(p, n, value.baseAddress, UInt(value.count), flags, follow ? 1 : 0)
                }
            }
        }
    }

    /// Removes an extended attribute.
    public static func removeExtendedAttribute(_ path: [UInt8], name: [UInt8], follow: Bool) throws(SystemError) {
        try withCPath(path, operation: "removexattr") { (p) throws(SystemError) in
            try withCPath(name, operation: "removexattr") { (n) throws(SystemError) in
                _ = try check("removexattr", path) { polyad_removexattr(p, n, follow ? 1 : 0) }
            }
        }
    }
}
