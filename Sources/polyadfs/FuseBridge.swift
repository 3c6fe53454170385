import CFuseShim
import Dispatch
import Foundation
import Glibc
import Synchronization
import PolyadFileSystem
import PolyadMount

/// What the C callbacks reach through `fuse_req_userdata`: the filesystem model, the listings being read,
/// and the readiness pipe of a daemonizing parent.
final class MountContext: Sendable {
    let fs: SnapshotFileSystem
    let readyDescriptor: Int32?
    let ready = Atomic<Bool>(false)
    /// Listings being read, by directory inode: taken at offset 0, kept until read to the end.
    let directories = Mutex<[UInt64: [DirectoryEntry]]>([:])
    let mountpoint: String?

    init(fs: SnapshotFileSystem, readyDescriptor: Int32?, mountpoint: String?) {
        self.fs = fs
        self.readyDescriptor = readyDescriptor
        self.mountpoint = mountpoint
    }

    /// Tells the waiting parent (if any) that the mount is up: called from FUSE's `init`.
    func signalReady() {
        guard !ready.exchange(true, ordering: .relaxed), let fd = readyDescriptor else { return }
        _ = "ok\n".withCString { write(fd, $0, 3) }
        close(fd)
    }
}

/// `SEEK_DATA` and `SEEK_HOLE` (Linux values; Swift's Glibc module does not import them).
let SEEK_DATA_VALUE: Int32 = 3
let SEEK_HOLE_VALUE: Int32 = 4

/// The context of a request (retained once by `main` for the session's life, so unretained here).
private func context(_ req: fuse_req_t?) -> MountContext {
    Unmanaged<MountContext>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
}

private func name(_ c: UnsafePointer<CChar>?) -> [UInt8] {
    guard let c else { return [] }
    return Array(UnsafeBufferPointer(start: UnsafeRawPointer(c).assumingMemoryBound(to: UInt8.self), count: strlen(c)))
}

func statBuffer(_ a: Attributes) -> stat {
    var st = stat()
    st.st_ino = UInt(a.inode)
    st.st_mode = a.mode
    st.st_nlink = UInt(a.links)
    st.st_uid = a.uid
    st.st_gid = a.gid
    st.st_size = Int(clamping: a.size)
    st.st_blocks = Int(clamping: a.blocks)
    st.st_blksize = 4096
    st.st_rdev = UInt(a.rdev)
    st.st_atim = timespec(tv_sec: Int(a.atime.seconds), tv_nsec: Int(a.atime.nanoseconds))
    st.st_mtim = timespec(tv_sec: Int(a.mtime.seconds), tv_nsec: Int(a.mtime.nanoseconds))
    st.st_ctim = timespec(tv_sec: Int(a.ctime.seconds), tv_nsec: Int(a.ctime.nanoseconds))
    return st
}

private func replyEntry(_ req: fuse_req_t?, _ a: Attributes) {
    var e = fuse_entry_param()
    e.ino = a.inode
    e.generation = 1
    e.attr = statBuffer(a)
    e.attr_timeout = a.cacheSeconds
    e.entry_timeout = a.cacheSeconds
    fuse_reply_entry(req, &e)
}

private func replyBytes(_ req: fuse_req_t?, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { _ = fuse_reply_buf(req, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
}

/// Replies with the concatenation of `slices`, straight from their storage (one `writev`, no copy).
private func replySlices(_ req: fuse_req_t?, _ slices: [ArraySlice<UInt8>]) {
    var vectors = [iovec]()
    vectors.reserveCapacity(slices.count)
    func gather(_ index: Int) {
        guard index < slices.count else {
            _ = vectors.withUnsafeBufferPointer { fuse_reply_iov(req, $0.baseAddress, Int32($0.count)) }
            return
        }
        slices[index].withUnsafeBytes { b in
            vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress), iov_len: b.count))
            gather(index + 1)   // nested, so that every slice's storage is pinned while the reply is written
        }
    }
    gather(0)
}

/// The xattr protocol: size 0 asks for the length; a buffer too small is ERANGE.
private func replyXattr(_ req: fuse_req_t?, _ value: [UInt8], size: Int) throws(FileSystemErrno) {
    if size == 0 {
        fuse_reply_xattr(req, value.count)
    } else if value.count > size {
        throw FileSystemErrno(ERANGE)
    } else {
        replyBytes(req, value)
    }
}

/// Runs `body`, replying with its errno if it throws.
private func answer(_ req: fuse_req_t?, _ body: () throws(FileSystemErrno) -> Void) {
    do { try body() } catch { fuse_reply_err(req, error.code) }
}

/// The low-level operations. Every callback replies exactly once. Writes anywhere are refused with EROFS
/// (snapshots are immutable; `/incoming` becomes writable with its own feature).
func makeOperations() -> fuse_lowlevel_ops {
    var ops = fuse_lowlevel_ops()
    ops.`init` = { userdata, conn in
        polyad_fuse_conn_configure(conn, 1 << 20)
        let ctx = Unmanaged<MountContext>.fromOpaque(userdata!).takeUnretainedValue()
        ctx.signalReady()
        // The kernel's read-ahead for a FUSE mount starts at 128 KiB; raise it to 1 MiB (as root) so that
        // sequential reads arrive as 1 MiB requests. Off the loop's thread: stat() of the mount point is
        // itself a request to this daemon.
        if let mountpoint = ctx.mountpoint {
            DispatchQueue.global().async { raiseReadAhead(mountpoint: mountpoint, kilobytes: 1024) }
        }
    }
    ops.lookup = { req, parent, n in
        answer(req) { () throws(FileSystemErrno) in replyEntry(req, try context(req).fs.lookup(parent: parent, name: name(n))) }
    }
    ops.forget = { req, ino, count in
        context(req).fs.forget(ino, count: count)
        fuse_reply_none(req)
    }
    ops.forget_multi = { req, count, items in
        let fs = context(req).fs
        for i in 0..<count {
            let item = items![i]
            fs.forget(item.ino, count: item.nlookup)
        }
        fuse_reply_none(req)
    }
    ops.getattr = { req, ino, _ in
        answer(req) { () throws(FileSystemErrno) in
            let a = try context(req).fs.attributes(ino)
            var st = statBuffer(a)
            fuse_reply_attr(req, &st, a.cacheSeconds)
        }
    }
    ops.readlink = { req, ino in
        answer(req) { () throws(FileSystemErrno) in
            let target = try context(req).fs.readLink(ino) + [0]
            target.withUnsafeBufferPointer { b in
                b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { _ = fuse_reply_readlink(req, $0) }
            }
        }
    }
    ops.open = { req, ino, fi in
        answer(req) { () throws(FileSystemErrno) in
            let flags = fi!.pointee.flags & O_ACCMODE
            guard flags == O_RDONLY else { throw FileSystemErrno(EROFS) }
            fi!.pointee.fh = try context(req).fs.open(ino)
            if ino >= 16 { polyad_fuse_file_info_keep_cache(fi) }   // snapshot files never change
            fuse_reply_open(req, fi)
        }
    }
    ops.read = { req, _, size, off, fi in
        answer(req) { () throws(FileSystemErrno) in
            replySlices(req, try context(req).fs.read(fi!.pointee.fh, offset: UInt64(off), size: size))
        }
    }
    ops.lseek = { req, _, off, whence, fi in
        guard whence == SEEK_DATA_VALUE || whence == SEEK_HOLE_VALUE else {
            fuse_reply_err(req, EINVAL)
            return
        }
        answer(req) { () throws(FileSystemErrno) in
            let at = try context(req).fs.seek(fi!.pointee.fh, offset: UInt64(max(0, off)), findData: whence == SEEK_DATA_VALUE)
            fuse_reply_lseek(req, off_t(at))
        }
    }
    ops.release = { req, _, fi in
        context(req).fs.release(fi!.pointee.fh)
        fuse_reply_err(req, 0)
    }
    // No opendir: the kernel then sends neither OPENDIR nor RELEASEDIR (two requests per folder fewer) and
    // caches listings itself; `/snapshots` and its day folders change their mtime when snapshots come, which
    // drops the kernel's copy. Listings are read by inode.
    ops.opendir = { req, _, _ in fuse_reply_err(req, ENOSYS) }
    ops.readdir = { req, ino, size, off, _ in
        replyDirectory(req, ino, size: size, offset: off, plus: false)
    }
    // Entries with their attributes in one reply: `ls -l` and `find` need no lookup per name.
    ops.readdirplus = { req, ino, size, off, _ in
        replyDirectory(req, ino, size: size, offset: off, plus: true)
    }
    ops.statfs = { req, _ in
        let (blocks, files) = context(req).fs.statistics()
        var s = statvfs()
        s.f_bsize = 4096
        s.f_frsize = 4096
        s.f_blocks = UInt(blocks)
        s.f_bfree = 0
        s.f_bavail = 0
        s.f_files = UInt(files)
        s.f_ffree = 0
        s.f_favail = 0
        s.f_namemax = 255
        fuse_reply_statfs(req, &s)
    }
    ops.listxattr = { req, ino, size in
        answer(req) { () throws(FileSystemErrno) in
            var list = [UInt8]()
            for n in try context(req).fs.extendedAttributeNames(ino) { list += n + [0] }
            try replyXattr(req, list, size: size)
        }
    }
    ops.getxattr = { req, ino, n, size in
        answer(req) { () throws(FileSystemErrno) in
            try replyXattr(req, try context(req).fs.extendedAttribute(ino, name: name(n)), size: size)
        }
    }
    ops.access = { req, _, mask in
        fuse_reply_err(req, mask & W_OK != 0 ? EROFS : 0)
    }
    // Everything that would change the tree: read-only.
    ops.setattr = { req, _, _, _, _ in fuse_reply_err(req, EROFS) }
    ops.mknod = { req, _, _, _, _ in fuse_reply_err(req, EROFS) }
    ops.mkdir = { req, _, _, _ in fuse_reply_err(req, EROFS) }
    ops.unlink = { req, _, _ in fuse_reply_err(req, EROFS) }
    ops.rmdir = { req, _, _ in fuse_reply_err(req, EROFS) }
    ops.symlink = { req, _, _, _ in fuse_reply_err(req, EROFS) }
    ops.rename = { req, _, _, _, _, _ in fuse_reply_err(req, EROFS) }
    ops.link = { req, _, _, _ in fuse_reply_err(req, EROFS) }
    ops.create = { req, _, _, _, _ in fuse_reply_err(req, EROFS) }
    ops.write = { req, _, _, _, _, _ in fuse_reply_err(req, EROFS) }
    ops.setxattr = { req, _, _, _, _, _ in fuse_reply_err(req, EROFS) }
    ops.removexattr = { req, _, _ in fuse_reply_err(req, EROFS) }
    return ops
}

/// Sets the read-ahead of the mount's backing device info (`/sys/class/bdi/MAJOR:MINOR/read_ahead_kb`).
/// Needs root; without it the kernel's default stays (reads then arrive in smaller requests).
func raiseReadAhead(mountpoint: String, kilobytes: Int) {
    guard let status = try? FileSystem.stat(PathText.bytes(mountpoint)) else { return }
    let (major, minor) = (DeviceNumber.major(status.dev), DeviceNumber.minor(status.dev))
    let path = "/sys/class/bdi/\(major):\(minor)/read_ahead_kb"
    try? "\(kilobytes)\n".write(toFile: path, atomically: false, encoding: .utf8)
}

/// Fills a `readdir` (or `readdirplus`) reply from directory `inode`'s listing, from entry `offset` on, as
/// many entries as fit in `size` bytes. The listing is taken at offset 0 and kept until it has been read to
/// the end. A `readdirplus` entry other than "." and ".." counts as a lookup.
private func replyDirectory(_ req: fuse_req_t?, _ inode: fuse_ino_t, size: Int, offset: off_t, plus: Bool) {
    let ctx = context(req)
    let kept = offset == 0 ? nil : ctx.directories.withLock { $0[inode] }
    let entries: [DirectoryEntry]
    if let kept {
        entries = kept
    } else {
        do {
            entries = try ctx.fs.readDirectory(inode)
        } catch {
            fuse_reply_err(req, error.code)
            return
        }
        ctx.directories.withLock { d in
            if d.count >= 256 { d.removeAll() }   // listings abandoned half-read
            d[inode] = entries
        }
    }
    var buffer = [CChar](repeating: 0, count: size)
    var used = 0
    var index = Int(offset)
    while index < entries.count {
        let e = entries[index]
        let isDot = e.name == [46] || e.name == [46, 46]
        var param = fuse_entry_param()
        param.attr.st_ino = UInt(e.inode)
        param.attr.st_mode = e.mode
        if plus && !isDot {
            guard let a = try? ctx.fs.attributes(e.inode) else {
                index += 1
                continue
            }
            param.ino = a.inode
            param.generation = 1
            param.attr = statBuffer(a)
            param.attr_timeout = a.cacheSeconds
            param.entry_timeout = a.cacheSeconds
        }
        let name = (e.name + [0]).map { CChar(bitPattern: $0) }
        let length = buffer.withUnsafeMutableBufferPointer { b in
            name.withUnsafeBufferPointer { n in
                plus ? fuse_add_direntry_plus(req, b.baseAddress! + used, size - used, n.baseAddress, &param, off_t(index + 1))
                    : fuse_add_direntry(req, b.baseAddress! + used, size - used, n.baseAddress, &param.attr, off_t(index + 1))
            }
        }
        if length > size - used { break }
        if plus && !isDot { ctx.fs.countLookup(e.inode) }
        used += length
        index += 1
    }
    if index >= entries.count { _ = ctx.directories.withLock { $0.removeValue(forKey: inode) } }
    buffer.withUnsafeBufferPointer { _ = fuse_reply_buf(req, $0.baseAddress, used) }
}
