import CFuseShim
import Glibc
import PolyadMount

/// A `stat` buffer for `a`.
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

/// The entry parameters of a LOOKUP reply (or a `readdirplus` entry) for `a`.
func entryParameters(_ a: Attributes) -> fuse_entry_param {
    var e = fuse_entry_param()
    e.ino = a.inode
    e.generation = 1
    e.attr = statBuffer(a)
    e.attr_timeout = a.cacheSeconds
    e.entry_timeout = a.entrySeconds ?? a.cacheSeconds
    return e
}

func replyEntry(_ req: fuse_req_t?, _ a: Attributes) {
    var e = entryParameters(a)
    fuse_reply_entry(req, &e)
}

func replyAttributes(_ req: fuse_req_t?, _ a: Attributes) {
    var st = statBuffer(a)
    fuse_reply_attr(req, &st, a.cacheSeconds)
}

func replyBytes(_ req: fuse_req_t?, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { _ = fuse_reply_buf(req, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
}

/// Replies with a symlink's target (the kernel wants it NUL-terminated).
func replyLink(_ req: fuse_req_t?, _ target: [UInt8]) {
    (target + [0]).withUnsafeBufferPointer { b in
        b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { _ = fuse_reply_readlink(req, $0) }
    }
}

/// Replies with the concatenation of `slices`, straight from their storage (one `writev`, no copy).
func replySlices(_ req: fuse_req_t?, _ slices: [ArraySlice<UInt8>]) {
    var vectors = [iovec]()
    vectors.reserveCapacity(slices.count)
    func gather(_ index: Int) {
        guard index < slices.count else {
            _ = vectors.withUnsafeBufferPointer { fuse_reply_iov(req, $0.baseAddress, Int32($0.count)) }
            return
        }
        slices[index].withUnsafeBytes { b in
            vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress), iov_len: b.count))
            gather(index + 1)  // nested, so that every slice's storage is pinned while the reply is written
        }
    }
    gather(0)
}

/// The xattr protocol: size 0 asks for the length; a buffer too small is ERANGE.
func replyXattr(_ req: fuse_req_t?, _ value: [UInt8], size: Int) throws(FileSystemErrno) {
    if size == 0 {
        fuse_reply_xattr(req, value.count)
    } else if value.count > size {
        throw FileSystemErrno(ERANGE)
    } else {
        replyBytes(req, value)
    }
}

/// `statfs`.
func replyStatistics(_ req: fuse_req_t?, _ v: VolumeStatistics) {
    var s = statvfs()
    s.f_bsize = UInt(v.blockSize)
    s.f_frsize = UInt(v.blockSize)
    s.f_blocks = UInt(v.blocks)
    s.f_bfree = UInt(v.freeBlocks)
    s.f_bavail = UInt(v.availableBlocks)
    s.f_files = UInt(v.files)
    s.f_ffree = UInt(v.freeFiles)
    s.f_favail = UInt(v.freeFiles)
    s.f_namemax = UInt(v.nameMax)
    fuse_reply_statfs(req, &s)
}

/// Runs `body`, replying with its errno if it throws.
func answer(_ req: fuse_req_t?, _ body: () throws(FileSystemErrno) -> Void) {
    do { try body() } catch { fuse_reply_err(req, error.code) }
}
