import Glibc

/// Linux constants that Swift's Glibc module does not import (they sit behind `_GNU_SOURCE`).
/// The values are the same on x86_64 and arm64.
enum LinuxConstants {
    /// `O_NOATIME` from `<bits/fcntl-linux.h>`: do not update the access time.
    static let noAccessTime: Int32 = 0o1_000_000
    /// `SEEK_DATA` from `<unistd.h>`: seek to the next byte of data at or after the offset.
    static let seekData: Int32 = 3
    /// `SEEK_HOLE` from `<unistd.h>`: seek to the next hole at or after the offset.
    static let seekHole: Int32 = 4
}

/// The POSIX calls backup and restore need, each wrapped once.
///
/// Every path is raw bytes (`[UInt8]` without NUL; a NUL byte fails with `EINVAL`). Calls interrupted by a
/// signal (`EINTR`) are retried. Failures throw `SystemError` naming the operation and the path. Calls that
/// act on a path do not follow a symlink in its last component unless their documentation says otherwise.
public enum FileSystem {
    // MARK: Metadata

    /// The status of a path, without following a final symlink.
    ///
    /// The corresponding C function is `lstat`.
    public static func lstat(_ path: [UInt8]) throws(SystemError) -> FileStatus {
        var status = Glibc.stat()
        _ = try withCPath(path, operation: "lstat") { (cPath) throws(SystemError) in
            try check("lstat", path) { systemLstat(cPath, &status) }
        }
        return FileStatus(status)
    }

    /// The status of `name` in the open folder `directory`, without following a final symlink.
    ///
    /// The corresponding C function is `fstatat` with `AT_SYMLINK_NOFOLLOW`.
    public static func linkStatus(at directory: Int32, _ name: UnsafePointer<CChar>) throws(SystemError) -> FileStatus {
        var status = Glibc.stat()
        // The name becomes bytes only for the error: listing a folder stats every entry.
        let (result, code) = retrying { fstatat(directory, name, &status, AT_SYMLINK_NOFOLLOW) }
        if result == -1 { throw SystemError(errno: code, operation: "fstatat", path: PathBytes.bytes(ofCString: name)) }
        return FileStatus(status)
    }

    /// The status of a path, following symlinks.
    ///
    /// The corresponding C function is `stat`.
    public static func stat(_ path: [UInt8]) throws(SystemError) -> FileStatus {
        var status = Glibc.stat()
        _ = try withCPath(path, operation: "stat") { (cPath) throws(SystemError) in
            try check("stat", path) { systemStat(cPath, &status) }
        }
        return FileStatus(status)
    }

    /// The status of an open file.
    ///
    /// The corresponding C function is `fstat`.
    public static func fstat(_ fd: Int32) throws(SystemError) -> FileStatus {
        var status = Glibc.stat()
        _ = try check("fstat", nil) { Glibc.fstat(fd, &status) }
        return FileStatus(status)
    }

    /// The names in a directory, excluding `.` and `..`, in the order the file system returns them.
    ///
    /// Does not follow a symlink in the last component (`ELOOP` or `ENOTDIR` then), so a directory swapped
    /// for a symlink during a backup is not descended into. Opens with `O_NOATIME` where permitted.
    /// The corresponding C functions are `open`, `fdopendir` and `readdir`.
    public static func directoryEntries(_ path: [UInt8]) throws(SystemError) -> [[UInt8]] {
        let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
        let fd = try openRetryingWithoutNoAccessTime(path, flags: flags, operation: "opendir")
        return try directoryEntries(descriptor: fd, path: path)
    }

    /// The names in the open folder `fd` (which this call takes over and closes), excluding `.` and `..`;
    /// `path` names it in errors.
    public static func directoryEntries(descriptor fd: Int32, path: [UInt8]) throws(SystemError) -> [[UInt8]] {
        guard let directory = fdopendir(fd) else {
            let code = errno
            Glibc.close(fd)
            throw SystemError(errno: code, operation: "opendir", path: path)
        }
        defer { closedir(directory) }
        var names: [[UInt8]] = []
        while true {
            errno = 0
            guard let entry = readdir(directory) else {
                let code = errno
                if code != 0 {
                    throw SystemError(errno: code, operation: "readdir", path: path)
                }
                return names
            }
            let name = withUnsafeBytes(of: &entry.pointee.d_name) { raw -> [UInt8] in
                let length = strnlen(raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
                return Array(raw[0..<length])
            }
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            names.append(name)
        }
    }

    /// Opens the folder at `path` (following symlinks) for `readdir`; the caller closes it with `closedir`.
    ///
    /// The corresponding C function is `opendir`.
    public static func openDirectory(_ path: [UInt8]) throws(SystemError) -> OpaquePointer {
        try withCPath(path, operation: "opendir") { (cPath) throws(SystemError) -> OpaquePointer in
            guard let stream = opendir(cPath) else { throw SystemError(errno: errno, operation: "opendir", path: path) }
            return stream
        }
    }

    /// The target of a symlink, as stored (not resolved).
    ///
    /// The corresponding C function is `readlink`.
    public static func readLink(_ path: [UInt8]) throws(SystemError) -> [UInt8] {
        try withCPath(path, operation: "readlink") { (cPath) throws(SystemError) -> [UInt8] in
            var capacity = 256
            while true {
                var buffer = [UInt8](repeating: 0, count: capacity)
                let (length, code) = buffer.withUnsafeMutableBytes { raw in
                    retrying { Glibc.readlink(cPath, raw.baseAddress!, raw.count) }
                }
                if length < 0 {
                    throw SystemError(errno: code, operation: "readlink", path: path)
                }
                if length < capacity {
                    buffer.removeSubrange(length...)
                    return buffer
                }
                capacity *= 4
            }
        }
    }

    // MARK: Extended attributes

    /// The extended attributes of a path (not following a final symlink), sorted by name bytes.
    ///
    /// Returns an empty list where the file system does not support extended attributes (`ENOTSUP`).
    /// An attribute removed between listing and reading is skipped. The corresponding C functions are
    /// `llistxattr` and `lgetxattr`.
    public static func extendedAttributes(_ path: [UInt8]) throws(SystemError) -> [(name: [UInt8], value: [UInt8])] {
        try withCPath(path, operation: "llistxattr") {
            (cPath) throws(SystemError) -> [(name: [UInt8], value: [UInt8])] in
            guard
                let list = try readSizedBuffer(
                    operation: "llistxattr",
                    path: path,
                    fn: { buffer, size in
                        ExtendedAttributeFunctions.shared.llistxattr(cPath, buffer, size)
                    }
                )
            else {
                return []
            }
            var attributes: [(name: [UInt8], value: [UInt8])] = []
            for name in list.split(separator: 0, omittingEmptySubsequences: true) {
                let name = Array(name)
                let value = try withCPath(name, operation: "lgetxattr") { (cName) throws(SystemError) -> [UInt8]? in
                    try readSizedBuffer(
                        operation: "lgetxattr",
                        path: path,
                        fn: { buffer, size in
                            ExtendedAttributeFunctions.shared.lgetxattr(cPath, cName, buffer, size)
                        }
                    )
                }
                if let value {
                    attributes.append((name: name, value: value))
                }
            }
            attributes.sort { $0.name.lexicographicallyPrecedes($1.name) }
            return attributes
        }
    }

    /// Reads a variable-length result with the size-query protocol of the xattr calls, growing on `ERANGE`.
    /// Returns nil for `ENOTSUP` and `ENODATA` (unsupported, or the attribute vanished).
    private static func readSizedBuffer(
        operation: String,
        path: [UInt8],
        fn: (UnsafeMutableRawPointer?, Int) -> Int
    ) throws(SystemError) -> [UInt8]? {
        while true {
            let (size, code) = retrying { fn(nil, 0) }
            if size < 0 {
                if code == ENOTSUP || code == ENODATA { return nil }
                throw SystemError(errno: code, operation: operation, path: path)
            }
            if size == 0 { return [] }
            var buffer = [UInt8](repeating: 0, count: size)
            let (length, readCode) = buffer.withUnsafeMutableBytes { raw in
                retrying { fn(raw.baseAddress, raw.count) }
            }
            if length < 0 {
                if readCode == ERANGE { continue }  // grew in between: ask for the size again
                if readCode == ENOTSUP || readCode == ENODATA { return nil }
                throw SystemError(errno: readCode, operation: operation, path: path)
            }
            buffer.removeSubrange(length...)
            return buffer
        }
    }

    /// Sets an extended attribute on a path (not following a final symlink), creating or replacing it.
    ///
    /// The corresponding C function is `lsetxattr`.
    public static func setExtendedAttribute(_ path: [UInt8], name: [UInt8], value: [UInt8]) throws(SystemError) {
        try withCPath(path, operation: "lsetxattr") { (cPath) throws(SystemError) in
            try withCPath(name, operation: "lsetxattr") { (cName) throws(SystemError) in
                let (result, code) = value.withUnsafeBytes { raw in
                    retrying {
                        ExtendedAttributeFunctions.shared.lsetxattr(cPath, cName, raw.baseAddress, raw.count, 0)
                    }
                }
                if result != 0 {
                    throw SystemError(errno: code, operation: "lsetxattr", path: path)
                }
            }
        }
    }

    // MARK: Sparse files

    /// The byte ranges of an open file that hold data, in order; holes between them read as zeros.
    ///
    /// Uses `lseek` with `SEEK_DATA`/`SEEK_HOLE`; where the file system does not support them, returns the
    /// whole file `0..<size`. Ranges are clamped to `size`. Moves the descriptor's file offset.
    public static func dataExtents(fileDescriptor: Int32, size: Int64) throws(SystemError) -> [Range<Int64>] {
        guard size > 0 else { return [] }
        var extents: [Range<Int64>] = []
        var position: Int64 = 0
        while position < size {
            let (dataStart, code) = retrying { lseek(fileDescriptor, off_t(position), LinuxConstants.seekData) }
            if dataStart < 0 {
                if code == ENXIO { break }  // no data after `position`
                if code == EINVAL || code == ENOTSUP || code == EOPNOTSUPP { return [0..<size] }
                throw SystemError(errno: code, operation: "lseek(SEEK_DATA)")
            }
            if Int64(dataStart) >= size { break }
            let (holeStart, holeCode) = retrying { lseek(fileDescriptor, dataStart, LinuxConstants.seekHole) }
            if holeStart < 0 {
                if holeCode == ENXIO {  // the file shrank: data runs to the end
                    extents.append(Int64(dataStart)..<size)
                    break
                }
                throw SystemError(errno: holeCode, operation: "lseek(SEEK_HOLE)")
            }
            let end = min(Int64(holeStart), size)
            if end > Int64(dataStart) {
                extents.append(Int64(dataStart)..<end)
            }
            position = Int64(holeStart)
        }
        return extents
    }

    // MARK: Opening and closing

    /// Opens a file for reading without following a final symlink and, where permitted, without updating its
    /// access time.
    ///
    /// Uses `O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME`, retrying without `O_NOATIME` on `EPERM` (only
    /// the owner or root may use it). The corresponding C function is `open`.
    public static func openForReading(_ path: [UInt8]) throws(SystemError) -> Int32 {
        try openRetryingWithoutNoAccessTime(path, flags: O_RDONLY | O_NOFOLLOW | O_CLOEXEC, operation: "open")
    }

    private static func openRetryingWithoutNoAccessTime(
        _ path: [UInt8],
        flags: Int32,
        operation: String
    ) throws(SystemError) -> Int32 {
        try withCPath(path, operation: operation) { (cPath) throws(SystemError) -> Int32 in
            let (fd, code) = retrying { Glibc.open(cPath, flags | LinuxConstants.noAccessTime) }
            if fd >= 0 { return fd }
            if code != EPERM {
                throw SystemError(errno: code, operation: operation, path: path)
            }
            return try check(operation, path) { Glibc.open(cPath, flags) }
        }
    }

    /// Creates a new file for writing; fails with `EEXIST` if the path exists (even as a dangling symlink).
    ///
    /// Uses `O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC`; `mode` is filtered by the umask. The corresponding C
    /// function is `open`.
    public static func createExclusive(_ path: [UInt8], mode: UInt32) throws(SystemError) -> Int32 {
        try open(path, flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: mode)
    }

    /// Opens a path with explicit flags and creation mode.
    ///
    /// The corresponding C function is `open`.
    public static func open(_ path: [UInt8], flags: Int32, mode: UInt32) throws(SystemError) -> Int32 {
        try withCPath(path, operation: "open") { (cPath) throws(SystemError) -> Int32 in
            try check("open", path) { Glibc.open(cPath, flags, mode_t(mode)) }
        }
    }

    /// Closes a descriptor. Errors are ignored: on Linux the descriptor is released even when `close` fails,
    /// so retrying could close an unrelated file. Use `fsync` first where durability matters.
    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    // MARK: Reading and writing

    /// Reads at `offset` until the buffer is full or the file ends; returns the number of bytes read.
    ///
    /// Short reads continue; a result below `buffer.count` means the end of the file. The corresponding C
    /// function is `pread`.
    public static func pread(
        _ fd: Int32,
        into buffer: UnsafeMutableRawBufferPointer,
        offset: Int64
    ) throws(SystemError) -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        var done = 0
        while done < buffer.count {
            let count = try check("pread", nil) {
                Glibc.pread(fd, base + done, buffer.count - done, off_t(offset + Int64(done)))
            }
            if count == 0 { break }
            done += count
        }
        return done
    }

    /// Writes the whole buffer at `offset`, continuing after short writes.
    ///
    /// The corresponding C function is `pwrite`.
    public static func pwriteAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, offset: Int64) throws(SystemError) {
        guard let base = buffer.baseAddress else { return }
        var done = 0
        while done < buffer.count {
            let count = try check("pwrite", nil) {
                Glibc.pwrite(fd, base + done, buffer.count - done, off_t(offset + Int64(done)))
            }
            done += count
        }
    }

    /// Writes the whole buffer at the descriptor's current offset, continuing after short writes.
    ///
    /// The corresponding C function is `write`.
    public static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(SystemError) {
        guard let base = buffer.baseAddress else { return }
        var done = 0
        while done < buffer.count {
            let count = try check("write", nil) { Glibc.write(fd, base + done, buffer.count - done) }
            done += count
        }
    }

    /// Flushes a file's data and metadata to stable storage.
    ///
    /// The corresponding C function is `fsync`.
    public static func fsync(_ fd: Int32) throws(SystemError) {
        _ = try check("fsync", nil) { Glibc.fsync(fd) }
    }

    /// Sets a file's size, cutting it or extending it with a hole.
    ///
    /// The corresponding C function is `ftruncate`.
    public static func ftruncate(_ fd: Int32, _ size: Int64) throws(SystemError) {
        _ = try check("ftruncate", nil) { Glibc.ftruncate(fd, off_t(size)) }
    }

    // MARK: Creating and removing

    /// Creates a directory; succeeds if a directory (not a symlink to one) already exists at the path.
    ///
    /// The corresponding C function is `mkdir`.
    public static func makeDirectory(_ path: [UInt8], mode: UInt32) throws(SystemError) {
        try makeDirectory(path, mode: mode, followExisting: false)
    }

    private static func makeDirectory(_ path: [UInt8], mode: UInt32, followExisting: Bool) throws(SystemError) {
        try withCPath(path, operation: "mkdir") { (cPath) throws(SystemError) in
            let (result, code) = retrying { Glibc.mkdir(cPath, mode_t(mode)) }
            if result == 0 { return }
            if code == EEXIST {
                let existing = followExisting ? try? stat(path) : try? lstat(path)
                if existing?.kind == .directory { return }
            }
            throw SystemError(errno: code, operation: "mkdir", path: path)
        }
    }

    /// Creates a directory and any missing parents, like `mkdir -p`.
    ///
    /// Existing components may be symlinks to directories. New directories get `mode` (filtered by the umask).
    public static func makeDirectories(_ path: [UInt8], mode: UInt32) throws(SystemError) {
        if (try? stat(path))?.kind == .directory { return }
        var prefix: [UInt8] = path.first == PathBytes.separator ? [PathBytes.separator] : []
        for component in PathBytes.components(path) {
            prefix = prefix.isEmpty ? component : PathBytes.join(prefix, component)
            try makeDirectory(prefix, mode: mode, followExisting: true)
        }
    }

    /// Creates a symlink at `path` pointing to `target` (stored as given, not resolved).
    ///
    /// The corresponding C function is `symlink`.
    public static func symlink(target: [UInt8], at path: [UInt8]) throws(SystemError) {
        try withCPath(target, operation: "symlink") { (cTarget) throws(SystemError) in
            try withCPath(path, operation: "symlink") { (cPath) throws(SystemError) in
                _ = try check("symlink", path) { Glibc.symlink(cTarget, cPath) }
            }
        }
    }

    /// Creates a hard link `new` to the existing file `existing` (a symlink is linked itself, not followed).
    ///
    /// The corresponding C function is `link`.
    public static func link(existing: [UInt8], new: [UInt8]) throws(SystemError) {
        try withCPath(existing, operation: "link") { (cExisting) throws(SystemError) in
            try withCPath(new, operation: "link") { (cNew) throws(SystemError) in
                _ = try check("link", existing, secondPath: new) { Glibc.link(cExisting, cNew) }
            }
        }
    }

    /// Creates a special file: `mode` holds the type bits (`FileKind.modeBits` of `.fifo`, `.characterDevice`,
    /// `.blockDevice`, or `.socket`) and the permissions; `device` is the `dev_t` for device nodes (see
    /// `DeviceNumber`). Device nodes need root (`CAP_MKNOD`).
    ///
    /// The corresponding C function is `mknod`.
    public static func makeNode(_ path: [UInt8], mode: UInt32, device: UInt64) throws(SystemError) {
        try withCPath(path, operation: "mknod") { (cPath) throws(SystemError) in
            _ = try check("mknod", path) { Glibc.mknod(cPath, mode_t(mode), dev_t(device)) }
        }
    }

    /// Renames `from` to `to`, atomically replacing `to` if it exists.
    ///
    /// The corresponding C function is `rename`.
    public static func rename(_ from: [UInt8], _ to: [UInt8]) throws(SystemError) {
        try withCPath(from, operation: "rename") { (cFrom) throws(SystemError) in
            try withCPath(to, operation: "rename") { (cTo) throws(SystemError) in
                _ = try check("rename", from, secondPath: to) { Glibc.rename(cFrom, cTo) }
            }
        }
    }

    /// Removes a name that is not a directory (a symlink itself is removed, not its target).
    ///
    /// The corresponding C function is `unlink`.
    public static func unlink(_ path: [UInt8]) throws(SystemError) {
        try withCPath(path, operation: "unlink") { (cPath) throws(SystemError) in
            _ = try check("unlink", path) { Glibc.unlink(cPath) }
        }
    }

    /// Removes an empty directory.
    ///
    /// The corresponding C function is `rmdir`.
    public static func removeDirectory(_ path: [UInt8]) throws(SystemError) {
        try withCPath(path, operation: "rmdir") { (cPath) throws(SystemError) in
            _ = try check("rmdir", path) { Glibc.rmdir(cPath) }
        }
    }

    /// Removes a path and everything under it, like `rm -rf`; a missing path is not an error.
    ///
    /// Never follows symlinks. Directories without owner read, write or search permission get them added
    /// before their contents are removed. Iterative, so deep trees do not exhaust the stack.
    public static func removeTree(_ path: [UInt8]) throws(SystemError) {
        // Post-order walk: a directory is removed when it comes off the stack the second time.
        var stack: [(path: [UInt8], emptied: Bool)] = [(path, false)]
        while let (current, emptied) = stack.popLast() {
            if emptied {
                try removeDirectory(current)
                continue
            }
            let status: FileStatus
            do {
                status = try lstat(current)
            } catch  where error.errno == ENOENT {
                continue
            }
            guard status.kind == .directory else {
                do {
                    try unlink(current)
                } catch  where error.errno == ENOENT {}
                continue
            }
            if status.permissions & 0o700 != 0o700 {
                try? changeMode(current, mode: status.permissions | 0o700)
            }
            stack.append((current, true))
            for name in try directoryEntries(current) {
                stack.append((PathBytes.join(current, name), false))
            }
        }
    }

    // MARK: Ownership, permissions, times

    /// Sets the owner and group of a path, not following a final symlink.
    ///
    /// The corresponding C function is `lchown`.
    public static func changeOwner(_ path: [UInt8], uid: UInt32, gid: UInt32) throws(SystemError) {
        try withCPath(path, operation: "lchown") { (cPath) throws(SystemError) in
            _ = try check("lchown", path) { Glibc.lchown(cPath, uid_t(uid), gid_t(gid)) }
        }
    }

    /// Sets the permission bits (`mode & 0o7777`) of a path. Follows symlinks, so do not call it on one
    /// (Linux symlinks have no permissions of their own).
    ///
    /// The corresponding C function is `chmod`.
    public static func changeMode(_ path: [UInt8], mode: UInt32) throws(SystemError) {
        try withCPath(path, operation: "chmod") { (cPath) throws(SystemError) in
            _ = try check("chmod", path) { Glibc.chmod(cPath, mode_t(mode & 0o7777)) }
        }
    }

    /// Sets the access and modification times of a path with nanosecond precision, not following a final
    /// symlink (so it works on symlinks themselves).
    ///
    /// The corresponding C function is `utimensat` with `AT_SYMLINK_NOFOLLOW`.
    public static func setTimes(_ path: [UInt8], access: Timespec, modification: Timespec) throws(SystemError) {
        try withCPath(path, operation: "utimensat") { (cPath) throws(SystemError) in
            let times = [access.cValue, modification.cValue]
            let (result, code) = times.withUnsafeBufferPointer { buffer in
                retrying { utimensat(AT_FDCWD, cPath, buffer.baseAddress, AT_SYMLINK_NOFOLLOW) }
            }
            if result != 0 {
                throw SystemError(errno: code, operation: "utimensat", path: path)
            }
        }
    }

    /// Flushes a directory's entries to stable storage, so renames and creations in it survive a crash.
    ///
    /// File systems that cannot sync directories (`EINVAL`) are ignored. The corresponding C functions are
    /// `open` with `O_DIRECTORY` and `fsync`.
    public static func syncDirectory(_ path: [UInt8]) throws(SystemError) {
        let fd = try open(path, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC, mode: 0)
        defer { close(fd) }
        let (result, code) = retrying { Glibc.fsync(fd) }
        if result != 0 && code != EINVAL {
            throw SystemError(errno: code, operation: "fsync", path: path)
        }
    }

    // MARK: Queries

    /// True if `lstat` succeeds on the path (a dangling symlink exists).
    public static func exists(_ path: [UInt8]) -> Bool {
        (try? lstat(path)) != nil
    }

    /// The absolute path with all symlinks, `.` and `..` resolved; the path must exist.
    ///
    /// The corresponding C function is `realpath`.
    public static func realPath(_ path: [UInt8]) throws(SystemError) -> [UInt8] {
        try withCPath(path, operation: "realpath") { (cPath) throws(SystemError) -> [UInt8] in
            guard let resolved = Glibc.realpath(cPath, nil) else {
                throw SystemError(errno: errno, operation: "realpath", path: path)
            }
            defer { free(resolved) }
            return PathBytes.bytes(ofCString: resolved)
        }
    }

    /// The current working directory, or `/` if it cannot be determined (for example, it was removed).
    ///
    /// The corresponding C function is `getcwd`.
    public static func currentDirectory() -> [UInt8] {
        guard let cwd = getcwd(nil, 0) else { return [PathBytes.separator] }
        defer { free(cwd) }
        return PathBytes.bytes(ofCString: cwd)
    }

    /// The bytes available to unprivileged users on the file system holding `path` (`f_bavail * f_frsize`).
    ///
    /// The corresponding C function is `statvfs`.
    public static func freeSpace(_ path: [UInt8]) throws(SystemError) -> Int64 {
        var info = statvfs()
        _ = try withCPath(path, operation: "statvfs") { (cPath) throws(SystemError) in
            try check("statvfs", path) { systemStatvfs(cPath, &info) }
        }
        let (product, overflow) = Int64(clamping: info.f_bavail).multipliedReportingOverflow(
            by: Int64(clamping: info.f_frsize)
        )
        return overflow ? Int64.max : product
    }
}
