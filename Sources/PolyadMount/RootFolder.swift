import Foundation
import PolyadFormat

/// The mount's root folder: its children are the top folders of the other providers, at fixed inodes.
final class RootFolder: TreeProvider {
    /// A folder at the top of the mount.
    struct TopFolder: Sendable {
        var name: [UInt8]
        var inode: UInt64
    }

    private final class Entry: Sendable {}

    let id: ProviderID
    private let folders: [TopFolder]
    private let mountTime: Timestamp

    init(id: ProviderID, table: InodeTable, folders: [TopFolder], mountTime: Timestamp) {
        self.id = id
        self.folders = folders
        self.mountTime = mountTime
        table.insertFixed(FixedInode.root, owner: id, entry: Entry(), parent: FixedInode.root, name: "")
    }

    func lookup(_ name: [UInt8], in folder: Inode, caller: Caller) throws(FileSystemErrno) -> UInt64 {
        guard let top = folders.first(where: { $0.name == name }) else { throw FileSystemErrno(ENOENT) }
        return top.inode
    }

    func listing(of folder: Inode, caller: Caller) throws(FileSystemErrno) -> [DirectoryEntry] {
        folders.map { DirectoryEntry(name: $0.name, inode: $0.inode, mode: S_IFDIR) }
    }

    func attributes(of inode: Inode, caller: Caller) throws(FileSystemErrno) -> Attributes {
        Attributes.folder(inode.number, time: mountTime)
    }

    func open(_ inode: Inode, flags: Int32, caller: Caller) throws(FileSystemErrno) -> OpenedContent {
        try requireReadOnly(flags)
        throw FileSystemErrno(EISDIR)
    }
}
