import CFuseShim
import Glibc
import PolyadMount

/// `SEEK_DATA` and `SEEK_HOLE` (Linux values; Swift's Glibc module does not import them).
let SEEK_DATA_VALUE: Int32 = 3
let SEEK_HOLE_VALUE: Int32 = 4

/// The operations that read the tree: each passes the request's `Caller` to `MountFileSystem`.
func installReadOperations(into ops: inout fuse_lowlevel_ops) {
    ops.lookup = { req, parent, n in
        answer(req) { () throws(FileSystemErrno) in
            replyEntry(req, try context(req).fs.lookup(parent: parent, name: name(n), caller: caller(req)))
        }
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
            replyAttributes(req, try context(req).fs.attributes(ino, caller: caller(req)))
        }
    }
    ops.readlink = { req, ino in
        answer(req) { () throws(FileSystemErrno) in
            replyLink(req, try context(req).fs.readLink(ino, caller: caller(req)))
        }
    }
    ops.open = { req, ino, fi in
        answer(req) { () throws(FileSystemErrno) in
            let opened = try context(req).fs.open(ino, flags: fi!.pointee.flags, caller: caller(req))
            fi!.pointee.fh = opened.handle
            if opened.keepCache { polyad_fuse_file_info_keep_cache(fi) }  // snapshot files never change
            if opened.directIO { polyad_fuse_file_info_direct_io(fi) }
            fuse_reply_open(req, fi)
        }
    }
    ops.read = { req, _, size, off, fi in
        answer(req) { () throws(FileSystemErrno) in
            replySlices(
                req,
                try context(req).fs.read(fi!.pointee.fh, offset: UInt64(off), size: size, caller: caller(req))
            )
        }
    }
    ops.lseek = { req, _, off, whence, fi in
        guard whence == SEEK_DATA_VALUE || whence == SEEK_HOLE_VALUE else {
            fuse_reply_err(req, EINVAL)
            return
        }
        answer(req) { () throws(FileSystemErrno) in
            let at = try context(req).fs.seek(
                fi!.pointee.fh,
                offset: UInt64(max(0, off)),
                findData: whence == SEEK_DATA_VALUE,
                caller: caller(req)
            )
            fuse_reply_lseek(req, off_t(at))
        }
    }
    ops.release = { req, _, fi in
        context(req).fs.release(fi!.pointee.fh, caller: caller(req))
        fuse_reply_err(req, 0)
    }
    // Without roles or an access log, no opendir: the kernel then sends neither OPENDIR nor RELEASEDIR (two
    // requests per folder fewer) and caches listings itself; `/snapshots` and its day folders change their
    // mtime when snapshots come, which drops the kernel's copy. Listings are read by inode. With them, every
    // OPENDIR is checked and logged, and the kernel keeps the listing (but not of `/incoming`'s folders, which
    // differ by caller).
    ops.opendir = { req, ino, fi in
        let fs = context(req).fs
        guard fs.checksFolderOpens else {
            fuse_reply_err(req, ENOSYS)
            return
        }
        answer(req) { () throws(FileSystemErrno) in
            if try fs.openFolder(ino, caller: caller(req)) { polyad_fuse_file_info_cache_dir(fi) }
            fuse_reply_open(req, fi)
        }
    }
    ops.releasedir = { req, _, _ in fuse_reply_err(req, 0) }
    ops.readdir = { req, ino, size, off, _ in
        replyDirectory(req, ino, size: size, offset: off, plus: false)
    }
    // Entries with their attributes in one reply: `ls -l` and `find` need no lookup per name.
    ops.readdirplus = { req, ino, size, off, _ in
        replyDirectory(req, ino, size: size, offset: off, plus: true)
    }
    ops.statfs = { req, _ in
        replyStatistics(req, context(req).fs.statistics(caller: caller(req)))
    }
    ops.listxattr = { req, ino, size in
        answer(req) { () throws(FileSystemErrno) in
            var list = [UInt8]()
            for n in try context(req).fs.extendedAttributeNames(ino, caller: caller(req)) { list += n + [0] }
            try replyXattr(req, list, size: size)
        }
    }
    ops.getxattr = { req, ino, n, size in
        answer(req) { () throws(FileSystemErrno) in
            try replyXattr(
                req,
                try context(req).fs.extendedAttribute(ino, name: name(n), caller: caller(req)),
                size: size
            )
        }
    }
    ops.access = { req, ino, mask in
        answer(req) { () throws(FileSystemErrno) in
            try context(req).fs.checkAccess(ino, mask: mask, caller: caller(req))
            fuse_reply_err(req, 0)
        }
    }
}

/// Fills a `readdir` (or `readdirplus`) reply from directory `inode`'s listing, from entry `offset` on, as
/// many entries as fit in `size` bytes. The listing is taken at offset 0 and kept until it has been read to
/// the end. A `readdirplus` entry other than "." and ".." counts as a lookup.
private func replyDirectory(_ req: fuse_req_t?, _ inode: fuse_ino_t, size: Int, offset: off_t, plus: Bool) {
    let ctx = context(req)
    let who = caller(req)
    let kept = offset == 0 ? nil : ctx.directories.withLock { $0[inode] }
    let entries: [DirectoryEntry]
    if let kept {
        entries = kept
    } else {
        do {
            entries = try ctx.fs.readDirectory(inode, caller: who)
        } catch {
            fuse_reply_err(req, error.code)
            return
        }
        ctx.directories.withLock { d in
            if d.count >= 256 { d.removeAll() }  // listings abandoned half-read
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
            guard let a = try? ctx.fs.entryAttributes(e.inode) else {
                index += 1
                continue
            }
            param = entryParameters(a)
        }
        let name = (e.name + [0]).map { CChar(bitPattern: $0) }
        let length = buffer.withUnsafeMutableBufferPointer { b in
            name.withUnsafeBufferPointer { n in
                plus
                    ? fuse_add_direntry_plus(
                        req,
                        b.baseAddress! + used,
                        size - used,
                        n.baseAddress,
                        &param,
                        off_t(index + 1)
                    )
                    : fuse_add_direntry(
                        req,
                        b.baseAddress! + used,
                        size - used,
                        n.baseAddress,
                        &param.attr,
                        off_t(index + 1)
                    )
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
