import Foundation
import PolyadFileSystem
import PolyadFormat
import PolyadRepository
import Synchronization

/// One inode of `/incoming`: an `O_PATH` descriptor on the staged file, which keeps it reachable (renamed,
/// unlinked while open) and lets the kernel's own file system answer every call on it.
final class StagedNode: Sendable {
    /// Staged nodes alive in this process: each holds a descriptor (see `IncomingFolder.relieveDescriptors`).
    static let alive = Atomic<Int>(0)

    let fd: Int32
    let device: UInt64
    let fileInode: UInt64
    /// The file type bits (`S_IFDIR`, `S_IFREG`, ...).
    let type: UInt32
    /// The live tree this node belongs to: a node of a tree handed to a commit has left `/incoming`.
    let generation: UInt64

    init(fd: Int32, status: FileStatus, generation: UInt64) {
        self.fd = fd
        device = status.dev
        fileInode = status.ino
        type = status.mode & S_IFMT
        self.generation = generation
        Self.alive.add(1, ordering: .relaxed)
    }

    deinit {
        FileSystem.close(fd)
        Self.alive.subtract(1, ordering: .relaxed)
    }

    var isSymlink: Bool { type == S_IFLNK }
}

/// What makes two names one inode in `/incoming`: the staged file (and its tree's generation).
private struct StagedIdentity: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64
    var generation: UInt64
}

/// An open file of `/incoming`: a real descriptor in the staging folder.
final class StagedHandle: Sendable {
    let fd: Int32
    let node: StagedNode
    /// Opened for writing (counts as a writer: no commit while one is open).
    let writes: Bool
    /// Written (or created) since the last `fsync`: a `close` must flush it first.
    let dirty = Atomic<Bool>(false)

    init(fd: Int32, node: StagedNode, writes: Bool) {
        self.fd = fd
        self.node = node
        self.writes = writes
    }

    deinit { FileSystem.close(fd) }
}

/// Who wrote to `/incoming` since the last hand-over: the snapshot records them.
struct IncomingWriter: Hashable, Sendable {
    var uid: UInt32
    var gid: UInt32
}

/// `/incoming`, the drop folder: a passthrough to the live tree of the staging folder (libfuse's
/// `passthrough_ll` is the model). Each inode holds an `O_PATH` descriptor on its staged file, so that the
/// kernel's file system (ext4, xfs, ...) decides the semantics and errors of every call, and hard links,
/// renames of open files and unlinked-but-open files behave as they do there.
///
/// Durability: a `close` of a written file (unless `syncOnClose` is off), an `fsync` or an `fsyncdir` that
/// returns success has flushed the file and every folder changed since (and every file whose metadata
/// changed) to the staging disk.
///
/// Commits: `handOver()` gives the live tree to a commit in one rename (see `StagingArea`), only while no
/// file is open for writing; the nodes of the old tree then answer ENOENT to any change or open, and the
/// kernel is told to forget the names it cached, so that what was committed leaves `/incoming`.
final class IncomingFolder: TreeProvider {
    private struct State {
        var live: StagedNode
        var generation: UInt64
        var handles: [UInt64: StagedHandle] = [:]
        var nextHandle: UInt64 = 1
        var openWriters = 0
        /// Nodes changed (entries, metadata) since they were last flushed, by identity.
        var dirty: [ObjectIdentifier: StagedNode] = [:]
        var writers: Set<IncomingWriter> = []
    }

    let id: ProviderID
    private let table: InodeTable
    private let staging: StagingArea
    private let state: Mutex<State>
    /// `PolyadRepository.Clock.monotonic()` of the last change, as bits (written on every write: no lock).
    private let lastChangeBits: Atomic<UInt64>
    /// Whether the daemon runs as root (then new files are given to the caller, as the kernel would).
    private let isRoot = geteuid() == 0
    /// Whether a `close` of a written file syncs it (`mount.sync_on_close`).
    private let syncOnClose: Bool
    /// Files and folders synced to the staging disk so far (each an fsync).
    private let syncCount = Atomic<Int>(0)

    /// Files and folders synced to the staging disk since the mount started.
    var syncs: Int { syncCount.load(ordering: .relaxed) }
    /// Staged nodes (descriptors) above which `relieveDescriptors` asks the kernel to forget closed ones.
    let descriptorBudget: Int

    /// - Parameter descriptorBudget: how many staged nodes (each an open descriptor) to keep at most before
    ///   asking the kernel to forget closed ones; default half the open-file limit.
    init(
        id: ProviderID,
        table: InodeTable,
        staging: StagingArea,
        syncOnClose: Bool = true,
        descriptorBudget: Int? = nil
    ) throws(SystemError) {
        self.id = id
        self.syncOnClose = syncOnClose
        self.descriptorBudget = descriptorBudget ?? Self.defaultDescriptorBudget()
        self.table = table
        self.staging = staging
        let fd = try staging.openLive()
        let live = StagedNode(fd: fd, status: try FileSystem.status(descriptor: fd), generation: 1)
        state = Mutex(State(live: live, generation: 1))
        lastChangeBits = Atomic(PolyadRepository.Clock.monotonic().bitPattern)
        table.insertFixed(FixedInode.incoming, owner: id, entry: live, parent: FixedInode.root, name: "incoming")
    }

    // MARK: Descriptors

    /// Half the soft open-file limit (the rest: open files, the store's packs, FUSE itself).
    private static func defaultDescriptorBudget() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 512 }
        return max(64, Int(clamping: min(limit.rlim_cur, 1 << 30)) / 2)
    }

    /// Every inode of `/incoming` the kernel holds is an open `O_PATH` descriptor, and the kernel keeps
    /// inodes (its dentry cache) long after the files are closed: `cp -a` of more files than the open-file
    /// limit would fail with EMFILE. Above the budget, this names closed files (and folders with no cached
    /// children) to `invalidate`, which tells the kernel to drop its entries for them; the kernel then
    /// forgets those inodes and their descriptors close. Down to 80% of the budget. Call it from a thread
    /// that is not answering a request (the kernel takes the folder's lock).
    func relieveDescriptors(invalidate: (UInt64, [UInt8]) -> Void) {
        let alive = StagedNode.alive.load(ordering: .relaxed)
        guard alive > descriptorBudget else { return }
        flushChangedIfMany()
        let open = state.withLock { s in
            Set(s.handles.values.map { ObjectIdentifier($0.node) } + [ObjectIdentifier(s.live)])
        }
        var excess = alive - descriptorBudget * 8 / 10
        for leaf in table.leaves(ownedBy: id) {
            guard excess > 0 else { break }
            guard let n = leaf.entry as? StagedNode, !open.contains(ObjectIdentifier(n)) else { continue }
            invalidate(leaf.parent, leaf.name)
            excess -= 1
        }
    }

    /// The nodes changed since the last flush hold their descriptors until it (without `syncOnClose`, no
    /// close flushes them): past a quarter of the budget, one `syncfs` of the staging disk flushes them all
    /// and lets them go.
    private func flushChangedIfMany() {
        let changed = state.withLock { s -> [ObjectIdentifier: StagedNode]? in
            guard s.dirty.count > max(64, descriptorBudget / 4) else { return nil }
            let d = s.dirty
            s.dirty = [:]
            return d
        }
        guard let changed else { return }
        do {
            try FileSystem.syncFileSystem(staging.folder)
            syncCount.add(1, ordering: .relaxed)
        } catch {
            state.withLock { s in s.dirty.merge(changed) { a, _ in a } }
        }
    }

    // MARK: Commit hand-over and status

    /// Seconds since the last change under `/incoming`.
    var secondsSinceChange: Double {
        PolyadRepository.Clock.monotonic() - Double(bitPattern: lastChangeBits.load(ordering: .relaxed))
    }

    /// Files open for writing now.
    var openWriters: Int { state.withLock { $0.openWriters } }

    private func changed() { lastChangeBits.store(PolyadRepository.Clock.monotonic().bitPattern, ordering: .relaxed) }

    /// Hands the live tree to a commit if nothing is open for writing and it is not empty: the commit
    /// folder's name, the writers since the last hand-over, and the names at the top of the tree (for the
    /// kernel to forget). Nil if a writer is open or there is nothing to commit.
    func handOver() throws(SystemError) -> (commit: [UInt8], writers: Set<IncomingWriter>, names: [[UInt8]])? {
        try state.withLock {
            (s) throws(SystemError) -> (commit: [UInt8], writers: Set<IncomingWriter>, names: [[UInt8]])? in
            guard s.openWriters == 0, !staging.liveIsEmpty() else { return nil }
            // Synced closes leave little here, flushed now so the commit starts from what is on disk.
            // Without them (`sync_on_close: false`) the commit reads the page cache like any reader, and the
            // snapshot is what becomes durable: thousands of fsyncs would only slow it.
            if syncOnClose { try flush(&s.dirty) } else { s.dirty = [:] }
            let names = (try? Self.entries(of: s.live)) ?? []
            let commit = try staging.handOver()
            let fd = try staging.openLive()
            s.generation += 1
            s.live = StagedNode(fd: fd, status: try FileSystem.status(descriptor: fd), generation: s.generation)
            table.replaceFixedEntry(FixedInode.incoming, entry: s.live)
            let writers = s.writers
            s.writers = []
            return (commit, writers, names)
        }
    }

    // MARK: Nodes

    private func node(_ inode: Inode) throws(FileSystemErrno) -> StagedNode {
        guard let n = inode.entry as? StagedNode else { throw FileSystemErrno(EIO) }
        return n
    }

    /// The node, if it is still in the live tree (a node of a committed tree has left `/incoming`).
    private func liveNode(_ inode: Inode, _ s: State) throws(FileSystemErrno) -> StagedNode {
        if inode.number == FixedInode.incoming { return s.live }
        let n = try node(inode)
        guard n.generation == s.generation else { throw FileSystemErrno(ENOENT) }
        return n
    }

    /// Finds or makes the inode for `name` in `folder` (whose node is `parent`).
    private func adopt(
        _ name: [UInt8],
        in folder: Inode,
        parent: StagedNode,
        countLookup: Bool
    )
        throws(FileSystemErrno) -> UInt64
    {
        let fd: Int32
        let status: FileStatus
        do {
            fd = try FileSystem.openPath(at: parent.fd, name)
            status = try FileSystem.status(descriptor: fd)
        } catch {
            throw FileSystemErrno(error.errno)
        }
        let identity = StagedIdentity(device: status.dev, inode: status.ino, generation: parent.generation)
        var made = false
        let number = table.child(
            of: folder.number,
            name: name,
            owner: id,
            countLookup: countLookup,
            isCurrent: { e in
                guard let n = e as? StagedNode else { return false }
                return n.device == identity.device && n.fileInode == identity.inode
                    && n.generation == identity.generation
            },
            identity: { InodeIdentity(owner: id, key: identity) },
            make: {
                made = true
                return StagedNode(fd: fd, status: status, generation: parent.generation)
            }
        )
        if !made { FileSystem.close(fd) }
        return number
    }

    /// The names in a staged folder.
    private static func entries(of folder: StagedNode) throws(SystemError) -> [[UInt8]] {
        let fd = try FileSystem.reopen(folder.fd, flags: O_RDONLY | O_DIRECTORY)
        return try FileSystem.directoryEntries(descriptor: fd, path: FileSystem.descriptorPath(folder.fd))
    }

    private func errno<T>(_ body: () throws(SystemError) -> T) throws(FileSystemErrno) -> T {
        do { return try body() } catch { throw FileSystemErrno(error.errno) }
    }

    // MARK: Who owns what (access control: a writer sees only what they wrote)

    /// The staged owner of `inode` (nil for `/incoming` itself, which every writer shares, or if it is gone).
    func stagedOwner(of inode: Inode) -> UInt32? {
        guard inode.number != FixedInode.incoming, let n = inode.entry as? StagedNode else { return nil }
        return (try? FileSystem.status(descriptor: n.fd))?.uid
    }

    /// The staged owner of the entry `name` of `folder`, or nil if there is none.
    func stagedOwner(of name: [UInt8], in folder: Inode) -> UInt32? {
        guard let parent = try? state.withLock({ (s) throws(FileSystemErrno) in try liveNode(folder, s) }) else {
            return nil
        }
        return (try? FileSystem.linkStatus(at: parent.fd, name))?.uid
    }

    // MARK: Reading the tree

    func lookup(_ name: [UInt8], in folder: Inode, caller: Caller) throws(FileSystemErrno) -> UInt64 {
        let parent = try state.withLock { (s) throws(FileSystemErrno) in try liveNode(folder, s) }
        return try adopt(name, in: folder, parent: parent, countLookup: true)
    }

    func listing(of folder: Inode, caller: Caller) throws(FileSystemErrno) -> [DirectoryEntry] {
        let parent = try node(folder)
        let names = try errno { () throws(SystemError) in try Self.entries(of: parent) }
        var entries = [DirectoryEntry]()
        entries.reserveCapacity(names.count)
        for name in names {
            // Gone since the listing was read: left out, as a later readdir would.
            guard let number = try? adopt(name, in: folder, parent: parent, countLookup: false),
                let n = try? table.inode(number).entry as? StagedNode
            else { continue }
            entries.append(DirectoryEntry(name: name, inode: number, mode: n.type))
        }
        return entries
    }

    func attributes(of inode: Inode, caller: Caller) throws(FileSystemErrno) -> Attributes {
        let n = inode.number == FixedInode.incoming ? state.withLock { $0.live } : try node(inode)
        let st = try errno { () throws(SystemError) in try FileSystem.status(descriptor: n.fd) }
        return Attributes(
            inode: inode.number,
            mode: st.mode,
            links: UInt32(clamping: st.nlink),
            uid: st.uid,
            gid: st.gid,
            size: st.size,
            blocks: st.blocks,
            rdev: st.rdev,
            atime: Timestamp(seconds: st.atime.seconds, nanoseconds: st.atime.nanoseconds),
            mtime: Timestamp(seconds: st.mtime.seconds, nanoseconds: st.mtime.nanoseconds),
            ctime: Timestamp(seconds: st.ctime.seconds, nanoseconds: st.ctime.nanoseconds),
            // Every change goes through this daemon, and a commit tells the kernel what left.
            cacheSeconds: 1
        )
    }

    func readLink(_ inode: Inode, caller: Caller) throws(FileSystemErrno) -> [UInt8] {
        let n = try node(inode)
        return try errno { () throws(SystemError) in try FileSystem.readLink(descriptor: n.fd) }
    }

    func checkAccess(_ inode: Inode, mask: Int32, caller: Caller) throws(FileSystemErrno) {
        // The kernel checks the mode bits (default_permissions); a committed node can no longer be written.
        if mask & W_OK != 0 { _ = try state.withLock { (s) throws(FileSystemErrno) in try liveNode(inode, s) } }
    }

    func extendedAttributeNames(of inode: Inode, caller: Caller) throws(FileSystemErrno) -> [[UInt8]] {
        let n = try node(inode)
        if n.isSymlink { return [] }
        return try errno { () throws(SystemError) in
            try FileSystem.extendedAttributeNames(FileSystem.descriptorPath(n.fd), follow: true)
        }
    }

    func extendedAttribute(_ name: [UInt8], of inode: Inode, caller: Caller) throws(FileSystemErrno) -> [UInt8] {
        let n = try node(inode)
        // A symlink's own attributes cannot be reached through /proc/self/fd (it would follow the link).
        if n.isSymlink { throw FileSystemErrno(ENODATA) }
        return try errno { () throws(SystemError) in
            try FileSystem.extendedAttribute(FileSystem.descriptorPath(n.fd), name: name, follow: true)
        }
    }

    // MARK: Open files

    func open(_ inode: Inode, flags: Int32, caller: Caller) throws(FileSystemErrno) -> OpenedContent {
        let writes = flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0
        return try state.withLock { (s) throws(FileSystemErrno) -> OpenedContent in
            let n = writes ? try liveNode(inode, s) : try node(inode)
            let fd = try errno { () throws(SystemError) in try FileSystem.reopen(n.fd, flags: flags) }
            if writes {
                changed()
                s.writers.insert(IncomingWriter(uid: caller.uid, gid: caller.gid))
            }
            return .staged(Self.register(StagedHandle(fd: fd, node: n, writes: writes), in: &s))
        }
    }

    private static func register(_ handle: StagedHandle, in s: inout State) -> UInt64 {
        let number = s.nextHandle
        s.nextHandle += 1
        s.handles[number] = handle
        if handle.writes { s.openWriters += 1 }
        return number
    }

    private func handle(_ number: UInt64) throws(FileSystemErrno) -> StagedHandle {
        guard let h = state.withLock({ $0.handles[number] }) else { throw FileSystemErrno(EBADF) }
        return h
    }

    /// Reads up to `size` bytes at `offset`.
    func read(_ number: UInt64, offset: UInt64, size: Int) throws(FileSystemErrno) -> [UInt8] {
        let h = try handle(number)
        var buffer = [UInt8](repeating: 0, count: size)
        let n = try errno { () throws(SystemError) in
            try buffer.withTypedMutableBytes { (b) throws(SystemError) in
                try FileSystem.preadOnce(h.fd, into: b, offset: Int64(offset))
            }
        }
        buffer.removeLast(size - n)
        return buffer
    }

    /// Writes `bytes` at `offset`: the count written.
    func write(_ number: UInt64, _ bytes: UnsafeRawBufferPointer, offset: UInt64) throws(FileSystemErrno) -> Int {
        let h = try handle(number)
        let n = try errno { () throws(SystemError) in try FileSystem.pwriteOnce(h.fd, bytes, offset: Int64(offset)) }
        h.dirty.store(true, ordering: .relaxed)
        changed()
        return n
    }

    /// `close` (FUSE's flush, once per `close` of a descriptor): a written file is flushed to the staging
    /// disk with every folder changed since, before the `close` returns (with `syncOnClose`).
    func flush(_ number: UInt64) throws(FileSystemErrno) {
        let h = try handle(number)
        guard h.writes, syncOnClose else { return }
        try sync(h, dataOnly: false)
    }

    /// `fsync`/`fdatasync` of an open file.
    func sync(_ number: UInt64, dataOnly: Bool) throws(FileSystemErrno) {
        try sync(try handle(number), dataOnly: dataOnly)
    }

    private func sync(_ h: StagedHandle, dataOnly: Bool) throws(FileSystemErrno) {
        if h.dirty.exchange(false, ordering: .relaxed) {
            do {
                if dataOnly { try FileSystem.fdatasync(h.fd) } else { try FileSystem.fsync(h.fd) }
                syncCount.add(1, ordering: .relaxed)
            } catch {
                h.dirty.store(true, ordering: .relaxed)
                throw FileSystemErrno(error.errno)
            }
        }
        try syncChanged()
    }

    /// `fsyncdir`: the folder and everything changed since the last flush.
    func syncFolder(_ inode: Inode) throws(FileSystemErrno) {
        let n = inode.number == FixedInode.incoming ? state.withLock { $0.live } : try node(inode)
        try errno { () throws(SystemError) in try flush(node: n) }
        try syncChanged()
    }

    /// Flushes every node changed since the last flush.
    private func syncChanged() throws(FileSystemErrno) {
        var pending = state.withLock { s in
            let d = s.dirty
            s.dirty = [:]
            return d
        }
        guard !pending.isEmpty else { return }
        do { try flush(&pending) } catch {
            state.withLock { s in s.dirty.merge(pending) { a, _ in a } }
            throw FileSystemErrno(error.errno)
        }
    }

    /// Flushes the nodes in `nodes`, removing each once flushed.
    private func flush(_ nodes: inout [ObjectIdentifier: StagedNode]) throws(SystemError) {
        for (key, n) in nodes {
            try flush(node: n)
            nodes[key] = nil
        }
    }

    /// Flushes one node, counted in `syncs`.
    private func flush(node n: StagedNode) throws(SystemError) {
        try Self.flushToDisk(n)
        syncCount.add(1, ordering: .relaxed)
    }

    private static func flushToDisk(_ n: StagedNode) throws(SystemError) {
        if n.isSymlink { return }  // a symlink cannot be opened; its folder's flush covers it
        let flags = n.type == S_IFDIR ? O_RDONLY | O_DIRECTORY : (n.type == S_IFREG ? O_RDONLY : -1)
        guard flags >= 0 else { return }  // fifos, devices: nothing of theirs is in their own data
        let fd = try FileSystem.reopen(n.fd, flags: flags)
        defer { FileSystem.close(fd) }
        do { try FileSystem.fsync(fd) } catch  where error.errno == EINVAL {}
    }

    /// The last `close` of an open file.
    func release(_ number: UInt64) {
        state.withLock { s in
            guard let h = s.handles.removeValue(forKey: number) else { return }
            if h.writes {
                s.openWriters -= 1
                changed()
            }
        }
    }

    /// `lseek` with `SEEK_DATA`/`SEEK_HOLE`.
    func seek(_ number: UInt64, offset: UInt64, whence: Int32) throws(FileSystemErrno) -> UInt64 {
        let h = try handle(number)
        return UInt64(
            try errno { () throws(SystemError) in try FileSystem.seek(h.fd, offset: Int64(offset), whence: whence) }
        )
    }

    /// `fallocate`.
    func allocate(_ number: UInt64, mode: Int32, offset: UInt64, length: UInt64) throws(FileSystemErrno) {
        let h = try handle(number)
        try errno { () throws(SystemError) in
            try FileSystem.allocate(h.fd, mode: mode, offset: Int64(offset), length: Int64(length))
        }
        h.dirty.store(true, ordering: .relaxed)
        changed()
    }

    /// `statfs`: the staging disk's figures (what `/incoming` can take).
    func volumeStatistics() -> VolumeStatistics? {
        guard let v = try? FileSystem.fileSystemStatus(staging.folder) else { return nil }
        var s = VolumeStatistics()
        s.blockSize = UInt64(v.f_frsize)
        s.blocks = UInt64(v.f_blocks)
        s.freeBlocks = UInt64(v.f_bfree)
        s.availableBlocks = UInt64(v.f_bavail)
        s.files = UInt64(v.f_files)
        s.freeFiles = UInt64(v.f_ffree)
        s.nameMax = UInt64(v.f_namemax)
        return s
    }

    // MARK: Changing the tree

    /// Runs a change of the live tree under the lock (a hand-over never splits it), with `folder`'s node;
    /// marks the folder changed, and the time.
    private func change<T>(
        in folder: Inode,
        caller: Caller,
        _ body: (StagedNode, inout State) throws(FileSystemErrno) -> T
    ) throws(FileSystemErrno) -> T {
        try state.withLock { (s) throws(FileSystemErrno) -> T in
            let parent = try liveNode(folder, s)
            let result = try body(parent, &s)
            s.dirty[ObjectIdentifier(parent)] = parent
            s.writers.insert(IncomingWriter(uid: caller.uid, gid: caller.gid))
            changed()
            return result
        }
    }

    /// Gives a new entry to its creator, as the kernel does for a local disk (the daemon runs as root): the
    /// caller's uid, and the caller's gid unless the folder passes its own on (setgid); the mode exactly
    /// as asked (the daemon's umask must not cut it again: the kernel applied the caller's).
    private func settle(_ name: [UInt8], in parent: StagedNode, mode: UInt32?, caller: Caller) throws(FileSystemErrno) {
        try errno { () throws(SystemError) in
            let fd = try FileSystem.openPath(at: parent.fd, name)
            defer { FileSystem.close(fd) }
            let st = try FileSystem.status(descriptor: fd)
            if let mode, st.mode & 0o777 != mode & 0o777, st.mode & S_IFMT != S_IFLNK {
                try FileSystem.changeMode(descriptor: fd, mode: (st.mode & 0o7000) | (mode & 0o7777))
            }
            guard isRoot else { return }
            let folderStatus = try FileSystem.status(descriptor: parent.fd)
            let gid = folderStatus.mode & S_ISGID != 0 ? folderStatus.gid : caller.gid
            if st.uid != caller.uid || st.gid != gid {
                try FileSystem.changeOwner(descriptor: fd, uid: caller.uid, gid: gid)
            }
        }
    }

    func create(
        _ name: [UInt8],
        in folder: Inode,
        mode: UInt32,
        flags: Int32,
        caller: Caller
    ) throws(FileSystemErrno)
        -> (inode: UInt64, handle: UInt64)
    {
        try change(in: folder, caller: caller) { (parent, s) throws(FileSystemErrno) in
            let fd = try errno { () throws(SystemError) in
                try FileSystem.open(at: parent.fd, name, flags: (flags | O_CREAT | O_CLOEXEC) & ~O_NOFOLLOW, mode: mode)
            }
            do throws(FileSystemErrno) {
                try settle(name, in: parent, mode: mode & 0o7777, caller: caller)
                let number = try adopt(name, in: folder, parent: parent, countLookup: true)
                guard let n = try table.inode(number).entry as? StagedNode else { throw FileSystemErrno(EIO) }
                let h = StagedHandle(fd: fd, node: n, writes: true)
                h.dirty.store(true, ordering: .relaxed)
                return (number, Self.register(h, in: &s))
            } catch {
                FileSystem.close(fd)
                throw error
            }
        }
    }

    func make(_ name: [UInt8], in folder: Inode, kind: NewEntry, caller: Caller) throws(FileSystemErrno) -> UInt64 {
        try change(in: folder, caller: caller) { (parent, s) throws(FileSystemErrno) in
            var mode: UInt32?
            try errno { () throws(SystemError) in
                switch kind {
                case .folder(let m):
                    mode = m & 0o7777
                    try FileSystem.makeDirectory(at: parent.fd, name, mode: m)
                case .node(let m, let device):
                    mode = m & 0o7777
                    try FileSystem.makeNode(at: parent.fd, name, mode: m, device: device)
                case .symlink(let target):
                    try FileSystem.symlink(target: target, at: parent.fd, name)
                }
            }
            try settle(name, in: parent, mode: mode, caller: caller)
            let number = try adopt(name, in: folder, parent: parent, countLookup: true)
            if case .folder = kind, let n = try? table.inode(number).entry as? StagedNode {
                s.dirty[ObjectIdentifier(n)] = n
            }
            return number
        }
    }

    func link(_ inode: Inode, as name: [UInt8], in folder: Inode, caller: Caller) throws(FileSystemErrno) -> UInt64 {
        try change(in: folder, caller: caller) { (parent, s) throws(FileSystemErrno) in
            let source = try liveNode(inode, s)
            try errno { () throws(SystemError) in try FileSystem.link(source.fd, at: parent.fd, name) }
            s.dirty[ObjectIdentifier(source)] = source  // its link count
            return try adopt(name, in: folder, parent: parent, countLookup: true)
        }
    }

    func remove(_ name: [UInt8], in parent: Inode, isFolder: Bool, caller: Caller) throws(FileSystemErrno) {
        try change(in: parent, caller: caller) { (p, _) throws(FileSystemErrno) in
            try errno { () throws(SystemError) in try FileSystem.unlink(at: p.fd, name, folder: isFolder) }
        }
    }

    func rename(
        _ name: [UInt8],
        in parent: Inode,
        to newName: [UInt8],
        in newParent: Inode,
        flags: RenameFlags,
        caller: Caller
    ) throws(FileSystemErrno) {
        try change(in: parent, caller: caller) { (from, s) throws(FileSystemErrno) in
            let to = try liveNode(newParent, s)
            try errno { () throws(SystemError) in
                try FileSystem.rename(at: from.fd, name, to: to.fd, newName, flags: flags)
            }
            s.dirty[ObjectIdentifier(to)] = to
        }
    }

    func setAttributes(
        _ changes: AttributeChanges,
        of inode: Inode,
        caller: Caller
    ) throws(FileSystemErrno)
        -> Attributes
    {
        try state.withLock { (s) throws(FileSystemErrno) in
            let n = try liveNode(inode, s)
            let open = changes.handle.flatMap { s.handles[$0] }
            try errno { () throws(SystemError) in
                if let mode = changes.mode, !n.isSymlink {
                    try FileSystem.changeMode(descriptor: n.fd, mode: mode)
                }
                if changes.uid != nil || changes.gid != nil {
                    try FileSystem.changeOwner(
                        descriptor: n.fd,
                        uid: changes.uid ?? UInt32.max,
                        gid: changes.gid ?? UInt32.max
                    )
                }
                if let size = changes.size {
                    if let open, open.writes {
                        try FileSystem.ftruncate(open.fd, Int64(size))
                    } else {
                        try FileSystem.truncate(descriptor: n.fd, size: Int64(size))
                    }
                    open?.dirty.store(true, ordering: .relaxed)
                }
                if changes.accessTime != nil || changes.modificationTime != nil {
                    try FileSystem.setTimes(
                        descriptor: n.fd,
                        access: Self.setting(changes.accessTime),
                        modification: Self.setting(changes.modificationTime)
                    )
                }
            }
            s.dirty[ObjectIdentifier(n)] = n
            s.writers.insert(IncomingWriter(uid: caller.uid, gid: caller.gid))
            changed()
        }
        return try attributes(of: inode, caller: caller)
    }

    private static func setting(_ change: TimeChange?) -> TimeSetting {
        switch change {
        case nil: .omit
        case .now: .now
        case .at(let t): .at(Timespec(seconds: t.seconds, nanoseconds: t.nanoseconds))
        }
    }

    func setExtendedAttribute(
        _ name: [UInt8],
        value: [UInt8],
        flags: Int32,
        of inode: Inode,
        caller: Caller
    )
        throws(FileSystemErrno)
    {
        try state.withLock { (s) throws(FileSystemErrno) in
            let n = try liveNode(inode, s)
            // A symlink's own attributes are out of reach (see `extendedAttribute`); ext4 refuses user.* on one.
            if n.isSymlink { throw FileSystemErrno(name.starts(with: Array("user.".utf8)) ? EPERM : EOPNOTSUPP) }
            try errno { () throws(SystemError) in
                try value.withTypedBytes { (b) throws(SystemError) in
                    try FileSystem.setExtendedAttribute(
                        FileSystem.descriptorPath(n.fd),
                        name: name,
                        value: b,
                        flags: flags,
                        follow: true
                    )
                }
            }
            s.dirty[ObjectIdentifier(n)] = n
            changed()
        }
    }

    func removeExtendedAttribute(_ name: [UInt8], of inode: Inode, caller: Caller) throws(FileSystemErrno) {
        try state.withLock { (s) throws(FileSystemErrno) in
            let n = try liveNode(inode, s)
            if n.isSymlink { throw FileSystemErrno(ENODATA) }
            try errno { () throws(SystemError) in
                try FileSystem.removeExtendedAttribute(FileSystem.descriptorPath(n.fd), name: name, follow: true)
            }
            s.dirty[ObjectIdentifier(n)] = n
            changed()
        }
    }
}
