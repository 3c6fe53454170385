import CFuseShim
import Glibc
import PolyadFileSystem
import PolyadFormat
import PolyadMount

/// The operations that change the tree or write a file: each passes the request's `Caller` to
/// `MountFileSystem`, which hands it to the provider owning the inode. Only `/incoming` accepts them; the
/// snapshots and the control files answer EROFS.
func installWriteOperations(into ops: inout fuse_lowlevel_ops) {
    ops.create = { req, parent, n, mode, fi in
        answer(req) { () throws(FileSystemErrno) in
            let (a, opened) = try context(req).fs.create(
                parent: parent,
                name: name(n),
                mode: mode,
                flags: fi!.pointee.flags,
                caller: caller(req)
            )
            fi!.pointee.fh = opened.handle
            if opened.directIO { polyad_fuse_file_info_direct_io(fi) }
            var e = entryParameters(a)
            if fuse_reply_create(req, &e, fi) != 0 {
                // The process was interrupted before it got the file: close it again.
                context(req).fs.release(opened.handle, caller: caller(req))
            }
        }
    }
    ops.mkdir = { req, parent, n, mode in make(req, parent, n, .folder(mode: mode)) }
    ops.mknod = { req, parent, n, mode, device in make(req, parent, n, .node(mode: mode, device: UInt64(device))) }
    ops.symlink = { req, target, parent, n in make(req, parent, n, .symlink(target: name(target))) }
    ops.link = { req, ino, newParent, newName in
        answer(req) { () throws(FileSystemErrno) in
            replyEntry(
                req,
                try context(req).fs.link(ino, newParent: newParent, newName: name(newName), caller: caller(req))
            )
        }
    }
    ops.unlink = { req, parent, n in
        answer(req) { () throws(FileSystemErrno) in
            try context(req).fs.remove(parent: parent, name: name(n), isFolder: false, caller: caller(req))
            fuse_reply_err(req, 0)
        }
    }
    ops.rmdir = { req, parent, n in
        answer(req) { () throws(FileSystemErrno) in
            try context(req).fs.remove(parent: parent, name: name(n), isFolder: true, caller: caller(req))
            fuse_reply_err(req, 0)
        }
    }
    ops.rename = { req, parent, n, newParent, newName, flags in
        answer(req) { () throws(FileSystemErrno) in
            try context(req).fs.rename(
                parent: parent,
                name: name(n),
                newParent: newParent,
                newName: name(newName),
                flags: RenameFlags(rawValue: flags),
                caller: caller(req)
            )
            fuse_reply_err(req, 0)
        }
    }
    ops.setattr = { req, ino, attr, toSet, fi in
        answer(req) { () throws(FileSystemErrno) in
            let st = attr!.pointee
            let set = Int32(toSet)
            var changes = AttributeChanges()
            if set & FUSE_SET_ATTR_MODE != 0 { changes.mode = st.st_mode & 0o7777 }
            if set & FUSE_SET_ATTR_UID != 0 { changes.uid = st.st_uid }
            if set & FUSE_SET_ATTR_GID != 0 { changes.gid = st.st_gid }
            if set & FUSE_SET_ATTR_SIZE != 0 { changes.size = UInt64(max(0, st.st_size)) }
            if set & FUSE_SET_ATTR_ATIME_NOW != 0 {
                changes.accessTime = .now
            } else if set & FUSE_SET_ATTR_ATIME != 0 {
                changes.accessTime = .at(
                    Timestamp(seconds: Int64(st.st_atim.tv_sec), nanoseconds: Int64(st.st_atim.tv_nsec))
                )
            }
            if set & FUSE_SET_ATTR_MTIME_NOW != 0 {
                changes.modificationTime = .now
            } else if set & FUSE_SET_ATTR_MTIME != 0 {
                changes.modificationTime = .at(
                    Timestamp(seconds: Int64(st.st_mtim.tv_sec), nanoseconds: Int64(st.st_mtim.tv_nsec))
                )
            }
            changes.handle = fi.map { $0.pointee.fh }
            replyAttributes(req, try context(req).fs.setAttributes(ino, changes, caller: caller(req)))
        }
    }
    ops.write = { req, _, buffer, size, offset, fi in
        answer(req) { () throws(FileSystemErrno) in
            let bytes = UnsafeRawBufferPointer(start: buffer, count: size)
            let written = try context(req).fs.write(
                fi!.pointee.fh,
                bytes,
                offset: UInt64(max(0, offset)),
                caller: caller(req)
            )
            fuse_reply_write(req, written)
        }
    }
    ops.flush = { req, _, fi in
        answer(req) { () throws(FileSystemErrno) in
            try context(req).fs.flush(fi!.pointee.fh, caller: caller(req))
            fuse_reply_err(req, 0)
        }
    }
    ops.fsync = { req, _, dataOnly, fi in
        answer(req) { () throws(FileSystemErrno) in
            try context(req).fs.sync(fi!.pointee.fh, dataOnly: dataOnly != 0, caller: caller(req))
            fuse_reply_err(req, 0)
        }
    }
    ops.fsyncdir = { req, ino, _, _ in
        answer(req) { () throws(FileSystemErrno) in
            try context(req).fs.syncFolder(ino, caller: caller(req))
            fuse_reply_err(req, 0)
        }
    }
    ops.fallocate = { req, _, mode, offset, length, fi in
        answer(req) { () throws(FileSystemErrno) in
            try context(req).fs.allocate(
                fi!.pointee.fh,
                mode: mode,
                offset: UInt64(max(0, offset)),
                length: UInt64(max(0, length)),
                caller: caller(req)
            )
            fuse_reply_err(req, 0)
        }
    }
    ops.setxattr = { req, ino, n, value, size, flags in
        answer(req) { () throws(FileSystemErrno) in
            let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
            try context(req).fs.setExtendedAttribute(
                ino,
                name: name(n),
                value: bytes,
                flags: flags,
                caller: caller(req)
            )
            fuse_reply_err(req, 0)
        }
    }
    ops.removexattr = { req, ino, n in
        answer(req) { () throws(FileSystemErrno) in
            try context(req).fs.removeExtendedAttribute(ino, name: name(n), caller: caller(req))
            fuse_reply_err(req, 0)
        }
    }
}

/// `mkdir`, `mknod` and `symlink`: makes the entry and replies with it.
private func make(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ n: UnsafePointer<CChar>?, _ kind: NewEntry) {
    answer(req) { () throws(FileSystemErrno) in
        replyEntry(req, try context(req).fs.make(parent: parent, name: name(n), kind: kind, caller: caller(req)))
    }
}
