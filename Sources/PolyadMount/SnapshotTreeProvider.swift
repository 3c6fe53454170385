import Foundation
import PolyadFormat
import PolyadRepository

/// A node of a snapshot's tree, as the entry of its inode. Held by reference: an inode record then takes a
/// few words, not a whole node (a walk of a tree with 200,000 entries keeps as many records while the kernel
/// holds the inodes), and reading its attributes copies nothing.
final class SnapshotNode: Sendable {
    let node: Node
    let snapshot: SnapshotID

    init(_ node: Node, snapshot: SnapshotID) {
        self.node = node
        self.snapshot = snapshot
    }
}

/// The entries of `/snapshots` that the snapshot catalog makes: the folder itself, a day, `latest`, and the
/// root folder of each snapshot.
final class CatalogEntry: Sendable {
    enum Kind: Sendable {
        /// `/snapshots` itself.
        case snapshotsFolder
        /// `/snapshots/<YYYY-MM-DD>`.
        case day(String)
        /// `/snapshots/latest` pointing at this snapshot: a new inode whenever the newest snapshot changes, so
        /// that the kernel may cache a symlink's target for as long as the inode lives.
        case latest(SnapshotID)
        /// `/snapshots/<day>/<short id>`: the root of a snapshot's tree.
        case snapshotRoot(SnapshotID)
    }

    let kind: Kind

    init(_ kind: Kind) { self.kind = kind }

    /// `/snapshots` and the day folders: what they list comes from the catalog (and changes with it).
    var listsSnapshots: Bool {
        switch kind {
        case .snapshotsFolder, .day: true
        case .latest, .snapshotRoot: false
        }
    }
}

/// `/snapshots`: a folder per day, `latest`, and below `<day>/<id>` each snapshot's tree, read-only. Trees are
/// loaded when first looked up; the kernel may cache what is below a snapshot for a day.
final class SnapshotTreeProvider: TreeProvider {
    /// What makes two entries one inode.
    private enum Identity: Hashable, Sendable {
        case hardLink(SnapshotID, device: UInt64, inode: UInt64)
        case snapshot(SnapshotID)
        case day(String)
        case latest(SnapshotID)
    }

    let id: ProviderID
    private let table: InodeTable
    private let catalog: SnapshotCatalog
    private let trees: DecodedTrees
    private let walk: WalkOrderPrefetch
    /// The times of the folders that have none of their own.
    private let mountTime: Timestamp

    init(
        id: ProviderID,
        table: InodeTable,
        catalog: SnapshotCatalog,
        trees: DecodedTrees,
        chunks: DecodedChunks,
        mountTime: Timestamp
    ) {
        self.id = id
        self.table = table
        self.catalog = catalog
        self.trees = trees
        self.mountTime = mountTime
        walk = WalkOrderPrefetch(table: table, catalog: catalog, trees: trees, chunks: chunks)
        table.insertFixed(
            FixedInode.snapshots,
            owner: id,
            entry: CatalogEntry(.snapshotsFolder),
            parent: FixedInode.root,
            name: "snapshots"
        )
    }

    // MARK: Lookup and listing

    func lookup(_ name: [UInt8], in folder: Inode, caller: Caller) throws(FileSystemErrno) -> UInt64 {
        if let catalogFolder = folder.entry as? CatalogEntry, catalogFolder.listsSnapshots {
            catalog.refresh()
            guard let found = children(of: catalogFolder.kind)?.first(where: { $0.0 == name })?.1 else {
                throw FileSystemErrno(ENOENT)
            }
            return child(found, named: name, in: folder.number, countLookup: true)
        }
        if let known = folder.children?[name], let k = table.countLookupIfPresent(known) { return k }
        // Tree nodes are sorted by name bytes: binary search, and only the one found becomes an entry.
        guard let (tree, snapshot) = try folderTree(of: folder) else { throw FileSystemErrno(ENOENT) }
        // A tree another writer did not sort is still searched, the slow way.
        guard let node = tree.node(named: name) ?? tree.nodes.first(where: { $0.name == name }) else {
            throw FileSystemErrno(ENOENT)
        }
        return child(node, of: snapshot, in: folder.number, countLookup: true)
    }

    func listing(of folder: Inode, caller: Caller) throws(FileSystemErrno) -> [DirectoryEntry] {
        if let catalogFolder = folder.entry as? CatalogEntry, let entries = children(of: catalogFolder.kind) {
            return entries.map { name, kind in
                DirectoryEntry(
                    name: name,
                    inode: child(kind, named: name, in: folder.number, countLookup: false),
                    mode: Self.typeBits(kind)
                )
            }
        }
        guard let (tree, snapshot) = try folderTree(of: folder) else { return [] }
        return tree.nodes.map { node in
            DirectoryEntry(
                name: node.name,
                inode: child(node, of: snapshot, in: folder.number, countLookup: false),
                mode: Self.typeBits(node.kind)
            )
        }
    }

    /// The entries of `/snapshots` (the days and `latest`) or of a day (its snapshots), in order; nil for
    /// other kinds.
    private func children(of kind: CatalogEntry.Kind) -> [([UInt8], CatalogEntry.Kind)]? {
        switch kind {
        case .snapshotsFolder:
            catalog.refresh()
            var out = catalog.days().map { (Array($0.utf8), CatalogEntry.Kind.day($0)) }
            if let (id, _) = catalog.latest() { out.append((Array("latest".utf8), .latest(id))) }
            return out
        case .day(let d):
            return catalog.snapshots(on: d).map { (Array($0.short.utf8), CatalogEntry.Kind.snapshotRoot($0)) }
                .sorted { $0.0.lexicographicallyPrecedes($1.0) }
        case .latest, .snapshotRoot:
            return nil
        }
    }

    /// The nodes of a snapshot's root or of a folder in it (sorted by name), with the snapshot; nil for a
    /// folder without a tree of its own (empty).
    private func folderTree(of folder: Inode) throws(FileSystemErrno) -> (Tree, SnapshotID)? {
        if let entry = folder.entry as? SnapshotNode {
            guard entry.node.kind == .directory else { throw FileSystemErrno(ENOTDIR) }
            guard let sub = entry.node.subtree else { return nil }
            return (try trees.tree(sub), entry.snapshot)
        }
        guard let entry = folder.entry as? CatalogEntry, case .snapshotRoot(let id) = entry.kind else {
            throw FileSystemErrno(ENOTDIR)
        }
        guard let info = catalog.info(id) else { throw FileSystemErrno(ENOENT) }
        return (try trees.tree(info.snapshot.tree), id)
    }

    /// Finds or makes the inode of `node` (of `snapshot`) in `folder`.
    private func child(_ node: Node, of snapshot: SnapshotID, in folder: UInt64, countLookup: Bool) -> UInt64 {
        table.child(
            of: folder,
            name: node.name,
            owner: id,
            countLookup: countLookup,
            identity: {
                // A hard-link group is one inode wherever it is reached.
                guard node.kind != .directory && node.links > 1 else { return nil }
                return InodeIdentity(
                    owner: id,
                    key: Identity.hardLink(
                        snapshot,
                        device: node.device,
                        inode: node.inode
                    )
                )
            },
            make: { SnapshotNode(node, snapshot: snapshot) }
        )
    }

    /// Finds or makes the inode for the catalog entry `kind` named `name` in `folder`.
    private func child(_ kind: CatalogEntry.Kind, named name: [UInt8], in folder: UInt64, countLookup: Bool) -> UInt64 {
        table.child(
            of: folder,
            name: name,
            owner: id,
            countLookup: countLookup,
            isCurrent: { known in
                // Only `latest` changes what its name stands for.
                guard case .latest(let wanted) = kind, let e = known as? CatalogEntry,
                    case .latest(let current) = e.kind
                else { return true }
                return current == wanted
            },
            identity: {
                // Snapshots, days and each `latest` stay one inode wherever they are reached.
                let identity: Identity? =
                    switch kind {
                    case .snapshotRoot(let snapshot): .snapshot(snapshot)
                    case .day(let d): .day(d)
                    case .latest(let snapshot): .latest(snapshot)
                    case .snapshotsFolder: nil
                    }
                return identity.map { InodeIdentity(owner: self.id, key: $0) }
            },
            make: { CatalogEntry(kind) }
        )
    }

    static func typeBits(_ kind: CatalogEntry.Kind) -> UInt32 {
        switch kind {
        case .snapshotsFolder, .day, .snapshotRoot: S_IFDIR
        case .latest: S_IFLNK
        }
    }

    static func typeBits(_ kind: NodeKind) -> UInt32 {
        switch kind {
        case .file: S_IFREG
        case .directory: S_IFDIR
        case .symlink: S_IFLNK
        case .fifo: S_IFIFO
        case .characterDevice: S_IFCHR
        case .blockDevice: S_IFBLK
        case .socket: S_IFSOCK
        }
    }

    // MARK: Attributes

    func attributes(of inode: Inode, caller: Caller) throws(FileSystemErrno) -> Attributes {
        if let entry = inode.entry as? SnapshotNode { return Self.attributes(of: entry.node, inode: inode.number) }
        guard let entry = inode.entry as? CatalogEntry else { throw FileSystemErrno(EIO) }
        var a = Attributes.folder(inode.number, time: mountTime)
        switch entry.kind {
        case .snapshotsFolder, .day:
            catalog.refresh()
            let changed = catalog.changedAt
            a.mtime = changed
            a.ctime = changed
        case .latest(let id):
            a.mode = S_IFLNK | 0o777
            a.links = 1
            a.size = UInt64(catalog.target(of: id).count)
        case .snapshotRoot(let id):
            if let info = catalog.info(id) {
                a.mtime = info.snapshot.time
                a.ctime = info.snapshot.time
                a.atime = info.snapshot.time
            }
            a.cacheSeconds = 86_400
        }
        return a
    }

    /// The stored mode, owner and group of a node of a snapshot's tree; nil for the catalog's own folders
    /// (`/snapshots`, the days, `latest`, a snapshot's root), which everyone with a role may read.
    static func storedOwnership(_ inode: Inode) -> (mode: UInt32, uid: UInt32, gid: UInt32)? {
        guard let entry = inode.entry as? SnapshotNode else { return nil }
        return (entry.node.mode & 0o7777, entry.node.uid, entry.node.gid)
    }

    /// Whether `inode` is a folder of a snapshot's tree or of the catalog.
    static func isFolder(_ inode: Inode) -> Bool {
        guard let entry = inode.entry as? SnapshotNode else {
            if let c = inode.entry as? CatalogEntry, case .latest = c.kind { return false }
            return true
        }
        return entry.node.kind == .directory
    }

    /// A tree node's attributes, as it was backed up; cached by the kernel for a day (snapshots never change).
    private static func attributes(of n: Node, inode: UInt64) -> Attributes {
        let stored = n.content.reduce(UInt64(0)) { if case .chunk(_, let l) = $1 { $0 + UInt64(l) } else { $0 } }
        return Attributes(
            inode: inode,
            mode: typeBits(n.kind) | (n.mode & 0o7777),
            links: max(1, n.links),
            uid: n.uid,
            gid: n.gid,
            size: n.kind == .symlink ? UInt64(n.linkTarget.count) : n.size,
            blocks: n.kind == .directory ? 8 : (stored + 511) / 512,
            rdev: n.rdev,
            atime: n.atime,
            mtime: n.mtime,
            ctime: n.ctime,
            cacheSeconds: 86_400
        )
    }

    func readLink(_ inode: Inode, caller: Caller) throws(FileSystemErrno) -> [UInt8] {
        if let entry = inode.entry as? SnapshotNode, entry.node.kind == .symlink { return entry.node.linkTarget }
        if let entry = inode.entry as? CatalogEntry, case .latest(let id) = entry.kind { return catalog.target(of: id) }
        throw FileSystemErrno(EINVAL)
    }

    // MARK: Extended attributes

    /// Names of the node's own extended attributes. `user.polyad.hash` is readable by name but not listed, so
    /// that `cp -a` and `rsync -X` copy exactly the attributes that were backed up.
    func extendedAttributeNames(of inode: Inode, caller: Caller) throws(FileSystemErrno) -> [[UInt8]] {
        guard let entry = inode.entry as? SnapshotNode else { return [] }
        return entry.node.xattrs.map(\.name)
    }

    func extendedAttribute(_ name: [UInt8], of inode: Inode, caller: Caller) throws(FileSystemErrno) -> [UInt8] {
        guard let entry = inode.entry as? SnapshotNode else { throw FileSystemErrno(ENODATA) }
        let n = entry.node
        if n.kind == .file, name == ContentHash.attributeName { return Array(ContentHash.of(n).utf8) }
        guard let x = n.xattrs.first(where: { $0.name == name }) else { throw FileSystemErrno(ENODATA) }
        return x.value
    }

    // MARK: Opening

    /// Opens a snapshot file for reading, and starts decoding the files that follow it in walk order.
    func open(_ inode: Inode, flags: Int32, caller: Caller) throws(FileSystemErrno) -> OpenedContent {
        try requireReadOnly(flags)
        if let entry = inode.entry as? SnapshotNode, entry.node.kind == .file {
            let file = OpenFile(node: entry.node, inode: inode.number)
            walk.start(after: inode.number, node: entry.node)
            return .content(file)
        }
        if let entry = inode.entry as? CatalogEntry, case .latest = entry.kind { throw FileSystemErrno(ELOOP) }
        throw FileSystemErrno(EISDIR)
    }
}
