import CFuseShim
import Glibc

/// The operations that would change the tree. The mount is read-only as a whole (mounted `ro`, so the kernel
/// refuses most of these itself), and each answers EROFS: snapshots are immutable. The writable `/incoming`
/// replaces these with calls into `MountFileSystem`, which hands them (with the `Caller`) to the provider
/// owning the parent inode, as the read operations do.
func installWriteOperations(into ops: inout fuse_lowlevel_ops) {
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
}
