import Foundation
import PolyadFileSystem

/// One part of the mount's tree (the root folder, `/snapshots`, `/.polyad`, `/incoming`): it owns the inodes
/// of that part and answers every request about them. `MountFileSystem` finds the owner of an inode in the
/// inode table and hands it the request with its `Caller`, so that access control is decided here, by the
/// part of the tree that knows what is asked for.
///
/// The requests that change the tree (create, mkdir, rename, unlink, setattr, xattrs) are answered by
/// `/incoming` alone; every other part keeps the defaults, which refuse them with EROFS (snapshots are
/// immutable). Reads and writes of an open file go to what `open` returned, not through here.
protocol TreeProvider: Sendable {
    /// This provider's place in `MountFileSystem`'s list: the owner the inode table records for its inodes.
    var id: ProviderID { get }

    /// Looks `name` up in `folder` (one of this provider's inodes): the child's inode number, with one lookup
    /// counted (fixed inodes are not counted). The child may belong to another provider (the root's
    /// children do).
    func lookup(_ name: [UInt8], in folder: Inode, caller: Caller) throws(FileSystemErrno) -> UInt64

    /// The entries of `folder`, in order, without "." and ".."; their inodes are made but no lookups counted.
    func listing(of folder: Inode, caller: Caller) throws(FileSystemErrno) -> [DirectoryEntry]

    /// The attributes of `inode`.
    func attributes(of inode: Inode, caller: Caller) throws(FileSystemErrno) -> Attributes

    /// The target of the symlink `inode`.
    func readLink(_ inode: Inode, caller: Caller) throws(FileSystemErrno) -> [UInt8]

    /// Opens `inode` with the `open(2)` `flags`: what the reader serves reads of it from, or (in
    /// `/incoming`) the staged file's handle.
    func open(_ inode: Inode, flags: Int32, caller: Caller) throws(FileSystemErrno) -> OpenedContent

    /// The names of `inode`'s listed extended attributes.
    func extendedAttributeNames(of inode: Inode, caller: Caller) throws(FileSystemErrno) -> [[UInt8]]

    /// One extended attribute of `inode`; `ENODATA` if there is none.
    func extendedAttribute(_ name: [UInt8], of inode: Inode, caller: Caller) throws(FileSystemErrno) -> [UInt8]

    /// `access(2)`: throws unless `caller` may access `inode` as `mask` (`R_OK`, `W_OK`, `X_OK`) asks.
    func checkAccess(_ inode: Inode, mask: Int32, caller: Caller) throws(FileSystemErrno)

    // MARK: Changing the tree

    /// Creates and opens the file `name` in `folder` (`open` with `O_CREAT`): its inode (one lookup counted)
    /// and the open handle.
    func create(
        _ name: [UInt8],
        in folder: Inode,
        mode: UInt32,
        flags: Int32,
        caller: Caller
    ) throws(FileSystemErrno)
        -> (inode: UInt64, handle: UInt64)

    /// `mkdir`, `mknod` (with `device`) or `symlink` (with `target`) of `name` in `folder`: the new inode, one
    /// lookup counted.
    func make(_ name: [UInt8], in folder: Inode, kind: NewEntry, caller: Caller) throws(FileSystemErrno) -> UInt64

    /// A hard link `name` in `folder` to `inode`: the inode, one more lookup counted.
    func link(_ inode: Inode, as name: [UInt8], in folder: Inode, caller: Caller) throws(FileSystemErrno) -> UInt64

    /// `unlink` (or `rmdir`, with `folder: true`) of `name` in `parent`.
    func remove(_ name: [UInt8], in parent: Inode, isFolder: Bool, caller: Caller) throws(FileSystemErrno)

    /// `rename`/`renameat2` within this provider.
    func rename(
        _ name: [UInt8],
        in parent: Inode,
        to newName: [UInt8],
        in newParent: Inode,
        flags: RenameFlags,
        caller: Caller
    ) throws(FileSystemErrno)

    /// `chmod`, `chown`, `truncate`, `utimensat` (what `changes` holds): the attributes after.
    func setAttributes(
        _ changes: AttributeChanges,
        of inode: Inode,
        caller: Caller
    ) throws(FileSystemErrno)
        -> Attributes

    /// `setxattr` with its `flags` (`XATTR_CREATE`, `XATTR_REPLACE`).
    func setExtendedAttribute(
        _ name: [UInt8],
        value: [UInt8],
        flags: Int32,
        of inode: Inode,
        caller: Caller
    )
        throws(FileSystemErrno)

    /// `removexattr`.
    func removeExtendedAttribute(_ name: [UInt8], of inode: Inode, caller: Caller) throws(FileSystemErrno)
}

extension TreeProvider {
    func readLink(_ inode: Inode, caller: Caller) throws(FileSystemErrno) -> [UInt8] { throw FileSystemErrno(EINVAL) }

    func extendedAttributeNames(of inode: Inode, caller: Caller) throws(FileSystemErrno) -> [[UInt8]] { [] }

    func extendedAttribute(_ name: [UInt8], of inode: Inode, caller: Caller) throws(FileSystemErrno) -> [UInt8] {
        throw FileSystemErrno(ENODATA)
    }

    /// Read-only parts of the tree: anything but write access is allowed (the kernel checks the mode bits,
    /// `default_permissions`).
    func checkAccess(_ inode: Inode, mask: Int32, caller: Caller) throws(FileSystemErrno) {
        if mask & W_OK != 0 { throw FileSystemErrno(EROFS) }
    }

    func create(
        _ name: [UInt8],
        in folder: Inode,
        mode: UInt32,
        flags: Int32,
        caller: Caller
    ) throws(FileSystemErrno)
        -> (inode: UInt64, handle: UInt64)
    { throw FileSystemErrno(EROFS) }

    func make(_ name: [UInt8], in folder: Inode, kind: NewEntry, caller: Caller) throws(FileSystemErrno) -> UInt64 {
        throw FileSystemErrno(EROFS)
    }

    func link(_ inode: Inode, as name: [UInt8], in folder: Inode, caller: Caller) throws(FileSystemErrno) -> UInt64 {
        throw FileSystemErrno(EROFS)
    }

    func remove(_ name: [UInt8], in parent: Inode, isFolder: Bool, caller: Caller) throws(FileSystemErrno) {
        throw FileSystemErrno(EROFS)
    }

    func rename(
        _ name: [UInt8],
        in parent: Inode,
        to newName: [UInt8],
        in newParent: Inode,
        flags: RenameFlags,
        caller: Caller
    ) throws(FileSystemErrno) { throw FileSystemErrno(EROFS) }

    func setAttributes(
        _ changes: AttributeChanges,
        of inode: Inode,
        caller: Caller
    ) throws(FileSystemErrno)
        -> Attributes
    { throw FileSystemErrno(EROFS) }

    func setExtendedAttribute(
        _ name: [UInt8],
        value: [UInt8],
        flags: Int32,
        of inode: Inode,
        caller: Caller
    )
        throws(FileSystemErrno)
    { throw FileSystemErrno(EROFS) }

    func removeExtendedAttribute(_ name: [UInt8], of inode: Inode, caller: Caller) throws(FileSystemErrno) {
        throw FileSystemErrno(EROFS)
    }

    /// Read-only parts of the tree refuse every open but for reading.
    func requireReadOnly(_ flags: Int32) throws(FileSystemErrno) {
        guard flags & O_ACCMODE == O_RDONLY else { throw FileSystemErrno(EROFS) }
    }
}
