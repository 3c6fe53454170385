import Dispatch
import Foundation
import PolyadFormat
import PolyadRepository
import PolyadService
import PolyadStorage

/// The view of the store that `polyadfs` serves: `/snapshots/<day>/<id>/<tree>`, `/snapshots/latest`,
/// `/incoming`, `/.polyad/{stats.json,status,metrics}`. It routes each request to the provider that owns the
/// inode (the inode table knows which), with the `Caller` that made it. Trees are loaded when first looked
/// up; chunks are decrypted, authenticated and decompressed on read into a bounded cache. Every method may
/// be called from any FUSE thread. No FUSE types: the bridge in `polyadfs` translates.
public final class MountFileSystem: Sendable {
    private let table = InodeTable()
    private let catalog: SnapshotCatalog
    private let chunks: DecodedChunks
    private let reader: OpenFileReader
    private let activity: MountActivity
    /// The parts of the tree, by `ProviderID.index`.
    private let providers: [any TreeProvider]
    private let repository: Repository
    /// Where trees and chunks are decoded ahead and small files pushed to the kernel.
    private let readAhead = DispatchQueue(label: "polyad.mount.readahead", attributes: .concurrent)
    private let willBlock: @Sendable () -> Void

    /// - Parameters:
    ///   - cacheBytes: the most decrypted chunk data kept in memory.
    ///   - log: receives one line per damaged read (object and file named).
    ///   - willBlock: called on the calling thread before an operation waits for the store (a read, a
    ///     decode, a listing), so that the FUSE loop can let another thread take requests meanwhile.
    ///   - pushToKernel: given an inode the kernel knows and the whole content of that (small, one-chunk)
    ///     file, decoded ahead of a reader; puts it in the kernel's page cache so that reading it costs no
    ///     request.
    public init(
        manager: BackupManager,
        repository: Repository,
        cacheBytes: Int,
        log: @escaping @Sendable (String) -> Void,
        willBlock: @escaping @Sendable () -> Void = {},
        pushToKernel: @escaping @Sendable (UInt64, [UInt8]) -> Void = { _, _ in }
    ) {
        self.repository = repository
        self.willBlock = willBlock
        let mountedAt = Date()
        let mountTime = Timestamp(seconds: Int64(mountedAt.timeIntervalSince1970), nanoseconds: 0)
        let activity = MountActivity(log: log)
        let catalog = SnapshotCatalog(repository: repository, willBlock: willBlock)
        let trees = DecodedTrees(
            repository: repository,
            background: readAhead,
            activity: activity,
            willBlock: willBlock
        )
        let chunks = DecodedChunks(
            repository: repository,
            cacheBytes: cacheBytes,
            background: readAhead,
            activity: activity,
            pushToKernel: pushToKernel
        )
        self.activity = activity
        self.catalog = catalog
        self.chunks = chunks
        reader = OpenFileReader(chunks: chunks, activity: activity, table: table, willBlock: willBlock)
        // Each provider's id is its place in `providers`.
        let root = RootFolder(
            id: ProviderID(index: 0),
            table: table,
            folders: [
                .init(name: Array("snapshots".utf8), inode: FixedInode.snapshots),
                .init(name: Array("incoming".utf8), inode: FixedInode.incoming),
                .init(name: Array(".polyad".utf8), inode: FixedInode.control),
            ],
            mountTime: mountTime
        )
        let snapshots = SnapshotTreeProvider(
            id: ProviderID(index: 1),
            table: table,
            catalog: catalog,
            trees: trees,
            chunks: chunks,
            mountTime: mountTime
        )
        let incoming = IncomingFolder(id: ProviderID(index: 2), table: table, mountTime: mountTime)
        let control = ControlFilesProvider(
            id: ProviderID(index: 3),
            table: table,
            mountedAt: mountedAt,
            storeLocation: repository.backend.location,
            catalog: catalog,
            counters: { Self.counters(activity: activity, chunks: chunks, catalog: catalog) },
            storeStatistics: { try manager.backupStatistics() },
            willBlock: willBlock
        )
        providers = [root, snapshots, incoming, control]
        for (i, p) in providers.enumerated() { precondition(p.id.index == i, "provider \(i) has id \(p.id.index)") }
    }

    /// The provider that owns `inode`.
    private func owner(_ inode: Inode) -> any TreeProvider { providers[inode.owner.index] }

    // MARK: Snapshots

    /// Picks up snapshots (and index files) written since the last look, at most every `interval` seconds.
    public func refreshSnapshots(interval: Double = 2) { catalog.refresh(interval: interval) }

    // MARK: Inodes

    /// Looks up `name` in directory `parent`; counts one lookup of the result.
    public func lookup(parent: UInt64, name: [UInt8], caller: Caller) throws(FileSystemErrno) -> Attributes {
        let folder = try table.folder(parent)
        let child = try owner(folder).lookup(name, in: folder, caller: caller)
        return try attributes(child, caller: caller)
    }

    /// The kernel forgets `count` lookups of `inode`; at zero the inode is dropped (it is made again on the
    /// next lookup). The fixed inodes stay. (Bookkeeping of the kernel's, not a request of a process: no
    /// caller.)
    public func forget(_ inode: UInt64, count: UInt64) { table.forget(inode, count: count) }

    /// Counts one lookup of `inode` (an entry returned by `readdirplus` counts as a lookup).
    public func countLookup(_ inode: UInt64) { table.countLookup(inode) }

    /// The path of an inode below the mount point, for log lines.
    public func path(of inode: UInt64) -> String { table.path(of: inode) }

    /// The entries of directory `inode`, "." and ".." first.
    public func readDirectory(_ inode: UInt64, caller: Caller) throws(FileSystemErrno) -> [DirectoryEntry] {
        let folder = try table.inode(inode)
        let entries = try owner(folder).listing(of: folder, caller: caller)
        return [
            DirectoryEntry(name: [46], inode: inode, mode: S_IFDIR),
            DirectoryEntry(name: [46, 46], inode: folder.parent, mode: S_IFDIR),
        ] + entries
    }

    /// The attributes of `inode`.
    public func attributes(_ inode: UInt64, caller: Caller) throws(FileSystemErrno) -> Attributes {
        let i = try table.inode(inode)
        return try owner(i).attributes(of: i, caller: caller)
    }

    /// The target of a symlink inode.
    public func readLink(_ inode: UInt64, caller: Caller) throws(FileSystemErrno) -> [UInt8] {
        let i = try table.inode(inode)
        return try owner(i).readLink(i, caller: caller)
    }

    /// `access(2)`: throws unless `caller` may access `inode` as `mask` asks (write access: EROFS).
    public func checkAccess(_ inode: UInt64, mask: Int32, caller: Caller) throws(FileSystemErrno) {
        let i = try table.inode(inode)
        try owner(i).checkAccess(i, mask: mask, caller: caller)
    }

    // MARK: Extended attributes

    /// Names of the inode's own extended attributes (`user.polyad.hash` is readable by name but not listed, so
    /// that `cp -a` and `rsync -X` copy exactly the attributes that were backed up).
    public func extendedAttributeNames(_ inode: UInt64, caller: Caller) throws(FileSystemErrno) -> [[UInt8]] {
        let i = try table.inode(inode)
        return try owner(i).extendedAttributeNames(of: i, caller: caller)
    }

    /// One extended attribute's value; `ENODATA` if there is none.
    public func extendedAttribute(_ inode: UInt64, name: [UInt8], caller: Caller) throws(FileSystemErrno) -> [UInt8] {
        let i = try table.inode(inode)
        return try owner(i).extendedAttribute(name, of: i, caller: caller)
    }

    // MARK: Reading

    /// Opens a file with the `open(2)` `flags` (anything but `O_RDONLY` is EROFS: the mount is read-only).
    public func open(_ inode: UInt64, flags: Int32 = O_RDONLY, caller: Caller) throws(FileSystemErrno) -> OpenedFile {
        let i = try table.inode(inode)
        let file = try owner(i).open(i, flags: flags, caller: caller)
        return OpenedFile(handle: reader.register(file), keepCache: file.keepCache)
    }

    /// Reads up to `size` bytes at `offset`: the bytes are the concatenation of the returned slices, which
    /// point into cached chunks (no copy). A damaged chunk fails this read with `EIO` (never wrong bytes) and
    /// is logged with the object and file. (Whether `caller` may read was decided at `open`.)
    public func read(
        _ handle: UInt64,
        offset: UInt64,
        size: Int,
        caller: Caller
    ) throws(FileSystemErrno)
        -> [ArraySlice<UInt8>]
    {
        try reader.read(handle, offset: offset, size: size)
    }

    /// `lseek` with `SEEK_DATA` or `SEEK_HOLE`: where the next data or hole starts at or after `offset`.
    public func seek(
        _ handle: UInt64,
        offset: UInt64,
        findData: Bool,
        caller: Caller
    ) throws(FileSystemErrno)
        -> UInt64
    {
        try reader.seek(handle, offset: offset, findData: findData)
    }

    /// Closes an open file.
    public func release(_ handle: UInt64, caller: Caller) { reader.release(handle) }

    /// Waits for the read-ahead work under way (decodes, pushes to the kernel) to finish.
    public func finishBackgroundWork() {
        readAhead.sync(flags: .barrier) {}
    }

    // MARK: Figures

    /// What the mount has done so far (what `/.polyad/status` and `/.polyad/metrics` show).
    public var counters: MountCounters { Self.counters(activity: activity, chunks: chunks, catalog: catalog) }

    private static func counters(
        activity: MountActivity,
        chunks: DecodedChunks,
        catalog: SnapshotCatalog
    )
        -> MountCounters
    {
        let figures = activity.current
        let cache = chunks.statistics
        var c = MountCounters()
        c.reads = figures.reads
        c.bytesRead = figures.bytesRead
        c.readErrors = figures.readErrors
        c.lastError = figures.lastError
        c.chunksDecoded = figures.decodes
        c.chunkCacheHits = cache.hits
        c.chunkCacheMisses = cache.misses
        c.chunkCacheBytes = cache.cost
        c.snapshots = catalog.count
        return c
    }

    /// `statfs`: the store's size in 4 KiB blocks, no free space (read-only), the inode count in use.
    public func statistics(caller: Caller) -> (blocks: UInt64, files: UInt64) {
        // Object sizes from the listing only: `df` should not decrypt every snapshot.
        willBlock()
        var stored: UInt64 = 0
        for kind in ObjectKind.allCases {
            for info in (try? repository.backend.list(kind)) ?? [] { stored += UInt64(max(0, info.size)) }
        }
        return ((stored + 4095) / 4096, UInt64(table.count))
    }
}
