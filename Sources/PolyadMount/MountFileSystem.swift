import Dispatch
import Foundation
import PolyadAudit
import PolyadFileSystem
import PolyadFormat
import PolyadMetrics
import PolyadRepository
import PolyadService
import PolyadStorage
import Synchronization

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
    /// `/incoming` (a typed reference: its open files are not the reader's) and its commits.
    let incoming: IncomingFolder
    private let committer: IncomingCommitter
    /// The shared lock held while the mount reads the store, and the automatic forget + prune.
    private let readLock: StoreReadLock
    private let cleanup: StoreCleanup
    private let committerStarted = Atomic<Bool>(false)
    /// Where every request is checked against the roles and logged (`access:`, `log.access`).
    private let gate: RequestGate
    /// Handles of `/incoming`'s open files carry this bit; the reader's do not.
    private static let stagedHandleBit: UInt64 = 1 << 63

    /// - Parameters:
    ///   - cacheBytes: the most decrypted chunk data kept in memory.
    ///   - log: receives one line per damaged read (object and file named).
    ///   - willBlock: called on the calling thread before an operation waits for the store (a read, a
    ///     decode, a listing), so that the FUSE loop can let another thread take requests meanwhile.
    ///   - pushToKernel: given an inode the kernel knows and the whole content of that (small, one-chunk)
    ///     file, decoded ahead of a reader; puts it in the kernel's page cache so that reading it costs no
    ///     request.
    ///   - staging: where `/incoming` keeps what is written to it until it is committed.
    ///   - settleSeconds: how long `/incoming` must be quiet (no writer open) before it is committed.
    ///   - cleanupInterval: seconds between automatic forget + prune runs (`backup.cleanup_interval`); 0: none.
    ///   - syncOnClose: whether a `close` of a written file waits until it is on the staging disk
    ///     (`mount.sync_on_close`).
    ///   - descriptorBudget: staged inodes (open descriptors) `/incoming` keeps before it asks the kernel to
    ///     forget closed ones (default: half the open-file limit).
    ///   - invalidateEntry: tells the kernel to drop its cached entry `name` of folder `inode` (what a commit
    ///     took out of `/incoming`).
    ///   - access: who may do what (`access:`); by default the mount's owner alone, unchecked.
    ///   - accessLog: where each request's decision is logged (`log.access`), or nil.
    public init(
        manager: BackupManager,
        repository: Repository,
        cacheBytes: Int,
        staging: StagingArea,
        settleSeconds: Double,
        cleanupInterval: Double = 0,
        syncOnClose: Bool = true,
        descriptorBudget: Int? = nil,
        log: @escaping @Sendable (String) -> Void,
        willBlock: @escaping @Sendable () -> Void = {},
        pushToKernel: @escaping @Sendable (UInt64, [UInt8]) -> Void = { _, _ in },
        invalidateEntry: @escaping @Sendable (UInt64, [UInt8]) -> Void = { _, _ in },
        access: AccessControl = AccessControl(ownerOnly: getuid()),
        accessLog: AccessLog? = nil
    ) throws(RepositoryError) {
        self.repository = repository
        self.willBlock = willBlock
        let mountedAt = Date()
        let mountTime = Timestamp(seconds: Int64(mountedAt.timeIntervalSince1970), nanoseconds: 0)
        let activity = MountActivity(log: log)
        let catalog = SnapshotCatalog(repository: repository, willBlock: willBlock)
        let readLock = StoreReadLock(
            repository: repository,
            timing: manager.lockTiming,
            onTaken: {
                // A prune may have run while the mount held no lock: its index and snapshots, as they are now.
                try? repository.loadIndex()
                catalog.refresh(interval: 0)
            },
            log: log
        )
        self.readLock = readLock
        let trees = DecodedTrees(
            repository: repository,
            background: readAhead,
            activity: activity,
            willBlock: willBlock,
            beforeStoreRead: { () throws(RepositoryError) in try readLock.use() }
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
        let incoming: IncomingFolder
        do {
            incoming = try IncomingFolder(
                id: ProviderID(index: 2),
                table: table,
                staging: staging,
                syncOnClose: syncOnClose,
                descriptorBudget: descriptorBudget
            )
        } catch {
            throw RepositoryError.system(error)
        }
        let gate = RequestGate(control: access, log: accessLog, table: table, incoming: incoming)
        self.gate = gate
        let event: MountEventSink = { operation, succeeded, fields in
            gate.event(operation, result: succeeded ? .ok : .failed, fields: fields)
        }
        let turn = StoreTurn()
        let committer = IncomingCommitter(
            incoming: incoming,
            staging: staging,
            manager: manager,
            turn: turn,
            catalog: catalog,
            settleSeconds: settleSeconds,
            log: log,
            event: event,
            invalidateEntry: invalidateEntry
        )
        self.incoming = incoming
        self.committer = committer
        let reader = self.reader
        let cleanup = StoreCleanup(
            manager: manager,
            interval: cleanupInterval,
            readLock: readLock,
            openChunks: { reader.openChunks() },
            turn: turn,
            afterRun: { catalog.refresh(interval: 0) },
            log: log,
            event: event
        )
        self.cleanup = cleanup
        let control = ControlFilesProvider(
            id: ProviderID(index: 3),
            table: table,
            mountedAt: mountedAt,
            storeLocation: repository.backend.location,
            catalog: catalog,
            counters: { Self.counters(activity: activity, chunks: chunks, catalog: catalog) },
            incomingStatus: { committer.status },
            cleanupStatus: { cleanup.status },
            storeStatistics: { try manager.backupStatistics() },
            storeMetrics: { try StoreMetrics.of(manager) },
            willBlock: willBlock
        )
        providers = [root, snapshots, incoming, control]
        for (i, p) in providers.enumerated() { precondition(p.id.index == i, "provider \(i) has id \(p.id.index)") }
    }

    /// The provider that owns `inode`.
    private func owner(_ inode: Inode) -> any TreeProvider { providers[inode.owner.index] }

    // MARK: /incoming commits

    /// Starts committing `/incoming` in the background (what earlier runs left staged first).
    public func startCommitting() {
        committerStarted.store(true, ordering: .relaxed)
        committer.start()
    }

    /// At unmount: stops the background commits and commits what is staged if no file is open for writing;
    /// what is not committed stays staged for the next mount.
    public func finishCommitting() { committer.finish(started: committerStarted.load(ordering: .relaxed)) }

    /// Starts the read lock's idle release and the automatic cleanup (every `cleanupInterval` seconds).
    public func startMaintenance() {
        readLock.start()
        cleanup.start()
    }

    /// The access log's line for the mount coming up at `mountpoint`.
    public func noteMounted(at mountpoint: [UInt8]) {
        gate.event(
            "mount",
            fields: [
                ("mountpoint", PathBytes.display(mountpoint)), ("store", repository.backend.location),
                ("roles", gate.control.enforced ? "checked" : "owner only"),
            ]
        )
    }

    /// The access log's line for the unmount; everything logged so far is written before it returns.
    public func noteUnmounted() {
        gate.event("unmount")
        gate.log?.flush()
    }

    /// The rules resolved again and the access log reopened (SIGHUP).
    public func reload() -> [String] {
        let problems = gate.control.enforced ? gate.control.reload() : []
        gate.log?.reopen()
        gate.event("reload", fields: problems.map { ("problem", $0) })
        return problems
    }

    /// One automatic forget + prune now (for tests that drive it).
    public func cleanUpNow() { cleanup.runOnce() }

    /// What `/.polyad/status` says about the automatic cleanup.
    public var cleanupStatus: CleanupStatus { cleanup.status }

    /// One look at `/incoming` now, as the background thread takes every 0.2 s (for tests that drive it).
    public func commitIfSettled() { committer.tick() }

    /// What `/.polyad/status` says about `/incoming`.
    public var incomingStatus: IncomingStatus { committer.status }

    // MARK: Snapshots

    /// Picks up snapshots (and index files) written since the last look, at most every `interval` seconds.
    public func refreshSnapshots(interval: Double = 2) { catalog.refresh(interval: interval) }

    // MARK: Inodes

    /// Looks up `name` in directory `parent`; counts one lookup of the result.
    public func lookup(parent: UInt64, name: [UInt8], caller: Caller) throws(FileSystemErrno) -> Attributes {
        let folder = try table.folder(parent)
        return try gated(.lookup, folder, name: name, caller: caller) { () throws(FileSystemErrno) in
            let child = try owner(folder).lookup(name, in: folder, caller: caller)
            return try entryAttributes(child)
        }
    }

    /// Runs a request's work once the gate let it through, and logs its answer.
    private func gated<T>(
        _ operation: AccessOperation,
        _ inode: Inode,
        name: [UInt8]? = nil,
        caller: Caller,
        want: AccessControl.Want = [],
        _ work: () throws(FileSystemErrno) -> T
    ) throws(FileSystemErrno) -> T {
        let request = try gate.admit(operation, inode, name: name, caller: caller, want: want)
        do {
            let result = try work()
            gate.finish(request, .ok)
            return result
        } catch {
            gate.finish(request, .error(error.code))
            throw error
        }
    }

    /// The attributes of an entry being looked up or listed (the request itself was checked). With roles, the
    /// kernel is told not to keep the entry when a path walk to it must reach the gate each time: the top
    /// folders' entries (so every walk into the mount is checked; unless `access.check_every_walk` is off), and a snapshot entry below a folder that not
    /// everyone may search by its stored mode (else a stat of it by another caller, after an admin's walk, would
    /// be answered from the kernel's cache). Other entries may be cached; their opens and listings are checked
    /// one by one.
    public func entryAttributes(_ inode: UInt64) throws(FileSystemErrno) -> Attributes {
        let i = try table.inode(inode)
        var a = try owner(i).attributes(of: i, caller: .currentProcess)
        let control = gate.control
        if control.enforced,
            (i.parent == FixedInode.root && control.checkEveryWalk) || gate.isBehindAClosedFolder(i)
        {
            a.entrySeconds = 0
            a.cacheSeconds = 0
        }
        return a
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
        var entries = try owner(folder).listing(of: folder, caller: caller)
        if gate.listingsDiffer(folder) { entries.removeAll { !gate.shows($0.inode, caller: caller) } }
        return [
            DirectoryEntry(name: [46], inode: inode, mode: S_IFDIR),
            DirectoryEntry(name: [46, 46], inode: folder.parent, mode: S_IFDIR),
        ] + entries
    }

    /// Opens a folder for listing (OPENDIR, sent only when the gate checks or logs requests): whether the
    /// kernel may keep its listing for everyone (not in `/incoming`, where each writer sees their own).
    public func openFolder(_ inode: UInt64, caller: Caller) throws(FileSystemErrno) -> Bool {
        let i = try table.folder(inode)
        try gated(.readdir, i, caller: caller, want: .read) { () throws(FileSystemErrno) in }
        return !gate.listingsDiffer(i)
    }

    /// Whether folders must be opened (OPENDIR) so that each listing is checked and logged.
    public var checksFolderOpens: Bool { gate.active }

    /// The attributes of `inode`.
    public func attributes(_ inode: UInt64, caller: Caller) throws(FileSystemErrno) -> Attributes {
        let i = try table.inode(inode)
        return try gated(.getattr, i, caller: caller) { () throws(FileSystemErrno) in
            try owner(i).attributes(of: i, caller: caller)
        }
    }

    /// The target of a symlink inode.
    public func readLink(_ inode: UInt64, caller: Caller) throws(FileSystemErrno) -> [UInt8] {
        let i = try table.inode(inode)
        return try gated(.readlink, i, caller: caller) { () throws(FileSystemErrno) in
            try owner(i).readLink(i, caller: caller)
        }
    }

    /// `access(2)`: throws unless `caller` may access `inode` as `mask` asks (write access: EROFS).
    public func checkAccess(_ inode: UInt64, mask: Int32, caller: Caller) throws(FileSystemErrno) {
        let i = try table.inode(inode)
        let want = AccessControl.Want(rawValue: mask & (R_OK | X_OK))
        try gated(.access, i, caller: caller, want: want) { () throws(FileSystemErrno) in
            try owner(i).checkAccess(i, mask: mask, caller: caller)
        }
    }

    // MARK: Extended attributes

    /// Names of the inode's own extended attributes (`user.polyad.hash` is readable by name but not listed, so
    /// that `cp -a` and `rsync -X` copy exactly the attributes that were backed up).
    public func extendedAttributeNames(_ inode: UInt64, caller: Caller) throws(FileSystemErrno) -> [[UInt8]] {
        let i = try table.inode(inode)
        return try gated(.listxattr, i, caller: caller) { () throws(FileSystemErrno) in
            try owner(i).extendedAttributeNames(of: i, caller: caller)
        }
    }

    /// One extended attribute's value; `ENODATA` if there is none.
    /// (A `user.` attribute is content: reading it needs read permission, as on a local disk.)
    public func extendedAttribute(_ inode: UInt64, name: [UInt8], caller: Caller) throws(FileSystemErrno) -> [UInt8] {
        let i = try table.inode(inode)
        let want: AccessControl.Want = name.starts(with: Array("user.".utf8)) ? .read : []
        return try gated(.getxattr, i, caller: caller, want: want) { () throws(FileSystemErrno) in
            try owner(i).extendedAttribute(name, of: i, caller: caller)
        }
    }

    // MARK: Reading

    /// Opens a file with the `open(2)` `flags` (anything but `O_RDONLY` is EROFS: the mount is read-only).
    public func open(_ inode: UInt64, flags: Int32 = O_RDONLY, caller: Caller) throws(FileSystemErrno) -> OpenedFile {
        let i = try table.inode(inode)
        // Writing: a snapshot answers EROFS itself, `/incoming` is the staging disk's to decide.
        let want: AccessControl.Want = flags & O_ACCMODE == O_RDONLY ? .read : []
        let request = try gate.admit(.open, i, caller: caller, want: want)
        let opened: OpenedFile
        do { opened = try openAdmitted(i, flags: flags, caller: caller) } catch {
            gate.finish(request, .error(error.code))
            throw error
        }
        gate.opened(opened.handle, request)
        return opened
    }

    private func openAdmitted(_ i: Inode, flags: Int32, caller: Caller) throws(FileSystemErrno) -> OpenedFile {
        let inode = i.number
        switch try owner(i).open(i, flags: flags, caller: caller) {
        case .content(let file):
            if file.generated == nil {
                do { try readLock.retain() } catch {
                    activity.note("open of \(table.path(of: inode)) refused: \(error.message)")
                    throw FileSystemErrno(error.code == .locked ? EBUSY : EIO)
                }
            }
            var opened = OpenedFile(handle: reader.register(file), keepCache: file.keepCache)
            opened.directIO = file.generated != nil
            return opened
        case .staged(let handle): return Self.openedStaged(handle, flags: flags)
        }
    }

    /// A file opened under `/incoming`. Opened write-only, its writes go straight to the daemon (direct I/O),
    /// not through a page cache of the mount's own in front of the staging disk's: one copy of the data in
    /// memory instead of two, and nothing lost (no read or mmap can use that descriptor).
    private static func openedStaged(_ handle: UInt64, flags: Int32) -> OpenedFile {
        var opened = OpenedFile(handle: handle | stagedHandleBit, keepCache: false)
        opened.directIO = flags & O_ACCMODE == O_WRONLY
        return opened
    }

    /// The handle of `/incoming`'s own open files, or nil for the reader's.
    private static func staged(_ handle: UInt64) -> UInt64? {
        handle & stagedHandleBit != 0 ? handle & ~stagedHandleBit : nil
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
        let slices: [ArraySlice<UInt8>]
        if let h = Self.staged(handle) {
            slices = [try incoming.read(h, offset: offset, size: size)[...]]
        } else {
            slices = try reader.read(handle, offset: offset, size: size)
        }
        if gate.log != nil { gate.transferred(handle, slices.reduce(0) { $0 + $1.count }) }
        return slices
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
        if let h = Self.staged(handle) {
            return try incoming.seek(h, offset: offset, whence: findData ? 3 : 4)  // SEEK_DATA, SEEK_HOLE
        }
        return try reader.seek(handle, offset: offset, findData: findData)
    }

    /// Closes an open file (its last descriptor).
    public func release(_ handle: UInt64, caller: Caller) {
        gate.released(handle)
        if let h = Self.staged(handle) {
            incoming.release(h)
        } else if let file = reader.release(handle), file.generated == nil {
            readLock.releaseOne()
        }
    }

    // MARK: Writing (only /incoming's files are open for writing)

    /// Writes `bytes` at `offset`: the count written.
    public func write(
        _ handle: UInt64,
        _ bytes: UnsafeRawBufferPointer,
        offset: UInt64,
        caller: Caller
    ) throws(FileSystemErrno) -> Int {
        guard let h = Self.staged(handle) else { throw FileSystemErrno(EBADF) }
        let written = try incoming.write(h, bytes, offset: offset)
        gate.transferred(handle, written)
        return written
    }

    /// A `close` of one descriptor of the file: what was written is on the staging disk when it returns.
    public func flush(_ handle: UInt64, caller: Caller) throws(FileSystemErrno) {
        if let h = Self.staged(handle) { try incoming.flush(h) }
    }

    /// `fsync` (or `fdatasync`, `dataOnly`).
    public func sync(_ handle: UInt64, dataOnly: Bool, caller: Caller) throws(FileSystemErrno) {
        if let h = Self.staged(handle) { try incoming.sync(h, dataOnly: dataOnly) }
    }

    /// `fsync` of a folder.
    public func syncFolder(_ inode: UInt64, caller: Caller) throws(FileSystemErrno) {
        let i = try table.inode(inode)
        if i.owner == incoming.id { try incoming.syncFolder(i) }
    }

    /// `fallocate`.
    public func allocate(
        _ handle: UInt64,
        mode: Int32,
        offset: UInt64,
        length: UInt64,
        caller: Caller
    ) throws(FileSystemErrno) {
        guard let h = Self.staged(handle) else { throw FileSystemErrno(EBADF) }
        try incoming.allocate(h, mode: mode, offset: offset, length: length)
    }

    // MARK: Changing the tree (the provider of the folder decides; read-only parts answer EROFS)

    /// Creates and opens `name` in `parent`: its attributes (one lookup counted) and the open file.
    public func create(
        parent: UInt64,
        name: [UInt8],
        mode: UInt32,
        flags: Int32,
        caller: Caller
    ) throws(FileSystemErrno) -> (Attributes, OpenedFile) {
        let folder = try table.folder(parent)
        let request = try gate.admit(.create, folder, name: name, caller: caller)
        do {
            let made = try owner(folder).create(name, in: folder, mode: mode, flags: flags, caller: caller)
            let opened = Self.openedStaged(made.handle, flags: flags)
            gate.opened(opened.handle, request)
            return (try entryAttributes(made.inode), opened)
        } catch {
            gate.finish(request, .error(error.code))
            throw error
        }
    }

    /// `mkdir`, `mknod` or `symlink`: the new entry's attributes (one lookup counted).
    public func make(
        parent: UInt64,
        name: [UInt8],
        kind: NewEntry,
        caller: Caller
    ) throws(FileSystemErrno)
        -> Attributes
    {
        let folder = try table.folder(parent)
        let operation: AccessOperation =
            switch kind {
            case .folder: .mkdir
            case .node: .mknod
            case .symlink: .symlink
            }
        return try gated(operation, folder, name: name, caller: caller) { () throws(FileSystemErrno) in
            try entryAttributes(try owner(folder).make(name, in: folder, kind: kind, caller: caller))
        }
    }

    /// A hard link: the attributes of the linked inode (one more lookup counted).
    public func link(
        _ inode: UInt64,
        newParent: UInt64,
        newName: [UInt8],
        caller: Caller
    ) throws(FileSystemErrno)
        -> Attributes
    {
        let i = try table.inode(inode)
        let folder = try table.folder(newParent)
        guard i.owner == folder.owner else { throw FileSystemErrno(EXDEV) }
        // The linked file must be the caller's to see, and the new name theirs to make.
        _ = try gate.admit(.getattr, i, caller: caller)
        return try gated(.link, folder, name: newName, caller: caller) { () throws(FileSystemErrno) in
            try entryAttributes(try owner(folder).link(i, as: newName, in: folder, caller: caller))
        }
    }

    /// `unlink` (or `rmdir`, `isFolder`).
    public func remove(parent: UInt64, name: [UInt8], isFolder: Bool, caller: Caller) throws(FileSystemErrno) {
        let folder = try table.folder(parent)
        try gated(isFolder ? .rmdir : .unlink, folder, name: name, caller: caller) { () throws(FileSystemErrno) in
            try owner(folder).remove(name, in: folder, isFolder: isFolder, caller: caller)
        }
    }

    /// `rename`/`renameat2`: EXDEV between parts of the tree (`/incoming` and a snapshot), as between disks.
    public func rename(
        parent: UInt64,
        name: [UInt8],
        newParent: UInt64,
        newName: [UInt8],
        flags: RenameFlags,
        caller: Caller
    ) throws(FileSystemErrno) {
        let from = try table.folder(parent)
        let to = try table.folder(newParent)
        guard from.owner == to.owner else { throw FileSystemErrno(EXDEV) }
        try gated(.rename, from, name: name, caller: caller) { () throws(FileSystemErrno) in
            try gate.admitTarget(to, name: newName, caller: caller)
            try owner(from).rename(name, in: from, to: newName, in: to, flags: flags, caller: caller)
        }
    }

    /// `setattr`: the attributes after the change.
    public func setAttributes(
        _ inode: UInt64,
        _ changes: AttributeChanges,
        caller: Caller
    ) throws(FileSystemErrno)
        -> Attributes
    {
        let i = try table.inode(inode)
        var changes = changes
        changes.handle = changes.handle.flatMap(Self.staged)
        return try gated(.setattr, i, caller: caller) { () throws(FileSystemErrno) in
            try owner(i).setAttributes(changes, of: i, caller: caller)
        }
    }

    /// `setxattr`.
    public func setExtendedAttribute(
        _ inode: UInt64,
        name: [UInt8],
        value: [UInt8],
        flags: Int32,
        caller: Caller
    ) throws(FileSystemErrno) {
        let i = try table.inode(inode)
        try gated(.setxattr, i, caller: caller) { () throws(FileSystemErrno) in
            try owner(i).setExtendedAttribute(name, value: value, flags: flags, of: i, caller: caller)
        }
    }

    /// `removexattr`.
    public func removeExtendedAttribute(_ inode: UInt64, name: [UInt8], caller: Caller) throws(FileSystemErrno) {
        let i = try table.inode(inode)
        try gated(.removexattr, i, caller: caller) { () throws(FileSystemErrno) in
            try owner(i).removeExtendedAttribute(name, of: i, caller: caller)
        }
    }

    /// Waits for the read-ahead work under way (decodes, pushes to the kernel) to finish.
    public func finishBackgroundWork() {
        cleanup.stop()
        readAhead.sync(flags: .barrier) {}
        readLock.stop()
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

    /// `statfs`: the staging disk's figures, as that is where `/incoming` writes (`df` shows what can be
    /// dropped in), or the store's size with no free space if the staging disk cannot be asked.
    public func statistics(caller: Caller) -> VolumeStatistics {
        if let v = incoming.volumeStatistics() { return v }
        // Object sizes from the listing only: `df` should not decrypt every snapshot.
        willBlock()
        var stored: UInt64 = 0
        for kind in ObjectKind.allCases {
            for info in (try? repository.backend.list(kind)) ?? [] { stored += UInt64(max(0, info.size)) }
        }
        var v = VolumeStatistics()
        v.blocks = (stored + 4095) / 4096
        v.files = UInt64(table.count)
        return v
    }
}
