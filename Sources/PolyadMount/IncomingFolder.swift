import Foundation
import PolyadFormat

/// `/incoming`, the drop folder whose contents will become snapshots. Not writable yet: today an empty
/// folder, and every write to it fails with EROFS, as everywhere in the mount. The writable version (staging,
/// settle time, commit) takes this provider's place.
final class IncomingFolder: TreeProvider {
    private final class Entry: Sendable {}

    let id: ProviderID
    private let mountTime: Timestamp

    init(id: ProviderID, table: InodeTable, mountTime: Timestamp) {
        self.id = id
        self.mountTime = mountTime
        table.insertFixed(FixedInode.incoming, owner: id, entry: Entry(), parent: FixedInode.root, name: "incoming")
    }

    func lookup(_ name: [UInt8], in folder: Inode, caller: Caller) throws(FileSystemErrno) -> UInt64 {
        throw FileSystemErrno(ENOENT)
    }

    func listing(of folder: Inode, caller: Caller) throws(FileSystemErrno) -> [DirectoryEntry] { [] }

    func attributes(of inode: Inode, caller: Caller) throws(FileSystemErrno) -> Attributes {
        var a = Attributes.folder(inode.number, time: mountTime)
        a.mode = S_IFDIR | 0o755
        return a
    }

    func open(_ inode: Inode, flags: Int32, caller: Caller) throws(FileSystemErrno) -> OpenFile {
        try requireReadOnly(flags)
        throw FileSystemErrno(EISDIR)
    }
}
