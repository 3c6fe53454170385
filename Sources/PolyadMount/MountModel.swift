import Dispatch
import Foundation
import Synchronization
import PolyadCrypto
import PolyadFileSystem
import PolyadFormat
import PolyadRepository
import PolyadStorage

/// An error a filesystem operation answers with: an errno value.
public struct FileSystemErrno: Error, Sendable {
    public var code: Int32
    public init(_ code: Int32) { self.code = code }
}

/// What an inode is: the fixed layout of DESIGN §2, or a node of a snapshot's tree.
public enum InodeKind: Sendable {
    case root, snapshots, incoming, control
    case controlFile(String)
    /// `/snapshots/latest` pointing at this snapshot: a new inode whenever the newest snapshot changes, so that
    /// the kernel may cache a symlink's target for as long as the inode lives.
    case latest(SnapshotID)
    case day(String)
    case snapshotRoot(SnapshotID)
    /// A node of a snapshot (its tree is immutable).
    case node(SnapshotNode)
}

/// A node of a snapshot's tree, held by reference: an inode record then takes a few words, not a whole node
/// (a walk of a tree with 200,000 entries keeps as many records while the kernel holds the inodes).
public final class SnapshotNode: Sendable {
    public let node: Node
    public let snapshot: SnapshotID

    init(_ node: Node, snapshot: SnapshotID) {
        self.node = node
        self.snapshot = snapshot
    }
}

/// The attributes of an inode, as `stat` shows them.
public struct Attributes: Sendable {
    public var inode: UInt64
    public var mode: UInt32          // with the file type bits
    public var links: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: UInt64
    public var blocks: UInt64        // 512-byte units
    public var rdev: UInt64
    public var atime: Timestamp
    public var mtime: Timestamp
    public var ctime: Timestamp
    /// How long the kernel may cache this (seconds): long for snapshot content, short for the listings.
    public var cacheSeconds: Double
}

/// A directory entry as `readdir` returns it.
public struct DirectoryEntry: Sendable {
    public var name: [UInt8]
    public var inode: UInt64
    public var mode: UInt32
}

/// The read-only view of the store that `polyadfs` serves (DESIGN §2): `/snapshots/<day>/<id>/<tree>`,
/// `/snapshots/latest`, `/incoming`, `/.polyad/{stats.json,status,metrics}`. Trees are loaded when first
/// looked up; chunks are decrypted, authenticated and decompressed on read into a bounded cache. Every method
/// may be called from any FUSE thread.
public final class SnapshotFileSystem: Sendable {
    public static let rootInode: UInt64 = 1
    static let snapshotsInode: UInt64 = 2
    static let incomingInode: UInt64 = 3
    static let controlInode: UInt64 = 4
    static let controlFiles = ["metrics", "stats.json", "status"]
    static let firstDynamicInode: UInt64 = 16

    let repository: Repository
    let manager: BackupManager
    private let chunks: LRUCache<Hash256, [UInt8]>
    /// How far ahead of a sequential reader chunks are decoded: 4 MiB, or a quarter of the cache if smaller
    /// (measured: 16 MiB queues so many decodes at once that both a large file and a tree read slower).
    private let readAheadBytes: Int
    private let trees: LRUCache<TreeID, Tree>
    private let state: Mutex<State>
    private let handles = Mutex<[UInt64: OpenFile]>([:])
    private let nextHandle = Atomic<UInt64>(1)
    private let readAhead = DispatchQueue(label: "polyad.mount.readahead", attributes: .concurrent)
    private let chunkLoads = SharedLoads<Hash256, [UInt8], RepositoryError>()
    private let treeLoads = SharedLoads<TreeID, Tree, RepositoryError>()
    private let mountedAt = Date()
    private let counters = Mutex(Counters())
    /// Where damaged reads are reported (one line each).
    private let log: @Sendable (String) -> Void
    /// Called on a request's thread before it waits for the store (see `init`).
    private let willBlock: @Sendable () -> Void
    /// Hands a whole small file's bytes to the kernel's page cache (see `init`).
    private let pushToKernel: @Sendable (UInt64, [UInt8]) -> Void
    /// Files whose bytes were pushed, so that they are pushed once.
    private let pushed = Mutex<Set<UInt64>>([])

    struct Counters {
        var reads = 0
        var bytesRead: UInt64 = 0
        var readErrors = 0
        var lastError: String?
        /// Chunks decrypted and decompressed (each chunk once while it stays in the cache).
        var decodes = 0
    }

    struct Record {
        var kind: InodeKind
        var parent: UInt64
        var name: [UInt8] = []
        var lookups: UInt64 = 0
        /// Children by name, once listed or looked up (directories).
        var children: [[UInt8]: UInt64]?
    }

    struct SnapshotInfo {
        var snapshot: Snapshot
        var day: String
    }

    struct State {
        var records: [UInt64: Record] = [:]
        var next = SnapshotFileSystem.firstDynamicInode
        var snapshots: [SnapshotID: SnapshotInfo] = [:]
        var lastRefresh = 0.0
        /// When the set of snapshots last changed: the modification time of `/snapshots` and its day folders,
        /// so that the kernel's cached listings of them are dropped when it changes.
        var changedAt = Timestamp(seconds: Int64(Date().timeIntervalSince1970), nanoseconds: 0)
        var identities: [Identity: UInt64] = [:]
    }

    /// What makes two tree entries one inode.
    enum Identity: Hashable {
        case hardLink(SnapshotID, device: UInt64, inode: UInt64)
        case snapshot(SnapshotID)
        case day(String)
        case latest(SnapshotID)
    }

    /// An open file: its node and where each piece starts.
    final class OpenFile: Sendable {
        let node: Node
        /// The file's inode: its path is worked out only for a log line.
        let inode: UInt64
        let starts: [UInt64]
        let pieces: [ContentPiece]
        /// Bytes of generated content (control files).
        let generated: [UInt8]?
        let nextSequential = Atomic<UInt64>(0)

        init(node: Node, inode: UInt64) {
            self.node = node
            self.inode = inode
            pieces = node.content
            var s = [UInt64]()
            s.reserveCapacity(pieces.count)
            var at: UInt64 = 0
            for p in pieces {
                s.append(at)
                at += p.length
            }
            starts = s
            generated = nil
        }

        init(generated: [UInt8], inode: UInt64) {
            node = Node(name: [], kind: .file)
            self.inode = inode
            pieces = []
            starts = []
            self.generated = generated
        }
    }

    /// - Parameters:
    ///   - cacheBytes: the most decrypted chunk data kept in memory.
    ///   - log: receives one line per damaged read (object and file named).
    ///   - willBlock: called on the calling thread before an operation waits for the store (a read, a
    ///     decode, a listing), so that the FUSE loop can let another thread take requests meanwhile.
    ///   - pushToKernel: given an inode the kernel knows and the whole content of that (small, one-chunk)
    ///     file, decoded ahead of a reader; puts it in the kernel's page cache so that reading it costs no
    ///     request.
    public init(manager: BackupManager, repository: Repository, cacheBytes: Int,
                log: @escaping @Sendable (String) -> Void, willBlock: @escaping @Sendable () -> Void = {},
                pushToKernel: @escaping @Sendable (UInt64, [UInt8]) -> Void = { _, _ in }) {
        self.manager = manager
        self.repository = repository
        chunks = LRUCache(capacity: cacheBytes)
        readAheadBytes = min(4 << 20, cacheBytes / 4)
        trees = LRUCache(capacity: 16_384)
        self.log = log
        self.willBlock = willBlock
        self.pushToKernel = pushToKernel
        var s = State()
        s.records[Self.rootInode] = Record(kind: .root, parent: Self.rootInode)
        s.records[Self.snapshotsInode] = Record(kind: .snapshots, parent: Self.rootInode)
        s.records[Self.incomingInode] = Record(kind: .incoming, parent: Self.rootInode)
        s.records[Self.controlInode] = Record(kind: .control, parent: Self.rootInode)
        for (i, name) in Self.controlFiles.enumerated() {
            s.records[UInt64(8 + i)] = Record(kind: .controlFile(name), parent: Self.controlInode)
        }
        state = Mutex(s)
    }

    // MARK: Snapshots

    /// Picks up snapshots (and index files) written since the last look, at most every `interval` seconds.
    public func refreshSnapshots(interval: Double = 2) {
        let now = ProcessInfo.processInfo.systemUptime
        let due = state.withLock { s -> Bool in
            guard now - s.lastRefresh >= interval else { return false }
            s.lastRefresh = now
            return true
        }
        guard due else { return }
        willBlock()
        guard let ids = try? repository.snapshotIDs() else { return }
        let known = state.withLock { Set($0.snapshots.keys) }
        let new = ids.filter { !known.contains($0) }
        guard !new.isEmpty else { return }
        // Their index entries are read when a lookup first misses (Repository.location(of:)).
        var loaded = [(SnapshotID, SnapshotInfo)]()
        for id in new {
            guard let snap = try? repository.loadSnapshot(id) else { continue }
            loaded.append((id, SnapshotInfo(snapshot: snap, day: Self.day(of: snap.time))))
        }
        let changed = Date().timeIntervalSince1970
        state.withLock { s in
            for (id, info) in loaded { s.snapshots[id] = info }
            s.changedAt = Timestamp(seconds: Int64(changed),
                                    nanoseconds: Int64(changed.truncatingRemainder(dividingBy: 1) * 1e9))
        }
    }

    /// The snapshot's day in this machine's time zone: `YYYY-MM-DD`.
    static func day(of t: Timestamp) -> String {
        var tm = tm()
        var secs = time_t(t.seconds)
        localtime_r(&secs, &tm)
        return String(format: "%04d-%02d-%02d", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday))
    }

    private func latest() -> (SnapshotID, SnapshotInfo)? {
        state.withLock { s in s.snapshots.max { ($0.value.snapshot.time, $0.key.hash) < ($1.value.snapshot.time, $1.key.hash) } }
    }

    // MARK: Inodes

    private func record(_ inode: UInt64) throws(FileSystemErrno) -> Record {
        guard let r = state.withLock({ $0.records[inode] }) else { throw FileSystemErrno(ENOENT) }
        return r
    }

    /// Finds or makes the inode for `kind` under `parent` named `name`.
    private func child(of parent: UInt64, name: [UInt8], kind: InodeKind, countLookup: Bool) -> UInt64 {
        state.withLock { s in
            if let existing = s.records[parent]?.children?[name], let known = s.records[existing],
               Self.isSameEntry(known.kind, kind) {
                if countLookup { s.records[existing]!.lookups += 1 }
                return existing
            }
            // Inodes that must stay one inode wherever they are reached: hard-link groups, snapshots, days.
            let identity: Identity? = switch kind {
            case .node(let entry) where entry.node.kind != .directory && entry.node.links > 1:
                .hardLink(entry.snapshot, device: entry.node.device, inode: entry.node.inode)
            case .snapshotRoot(let id): .snapshot(id)
            case .day(let d): .day(d)
            case .latest(let id): .latest(id)
            default: nil
            }
            let number: UInt64
            if let identity, let n = s.identities[identity], s.records[n] != nil {
                number = n
            } else {
                number = s.next
                s.next += 1
                s.records[number] = Record(kind: kind, parent: parent, name: name)
                if let identity { s.identities[identity] = number }
            }
            if countLookup { s.records[number]!.lookups += 1 }
            if s.records[parent]?.children == nil { s.records[parent]?.children = [:] }
            s.records[parent]?.children?[name] = number
            return number
        }
    }

    /// Whether a name's known inode still stands for `kind` (only `latest` changes what it stands for).
    private static func isSameEntry(_ known: InodeKind, _ kind: InodeKind) -> Bool {
        if case .latest(let a) = known, case .latest(let b) = kind { return a == b }
        return true
    }

    /// The kernel forgets `count` lookups of `inode`; at zero the inode is dropped (it is made again on the
    /// next lookup). The fixed inodes stay.
    public func forget(_ inode: UInt64, count: UInt64) {
        guard inode >= Self.firstDynamicInode else { return }
        state.withLock { s in
            guard var r = s.records[inode] else { return }
            r.lookups = r.lookups > count ? r.lookups - count : 0
            if r.lookups == 0 && (r.children?.isEmpty ?? true) {
                s.records[inode] = nil
                if var parent = s.records[r.parent] {
                    parent.children = parent.children?.filter { $0.value != inode }
                    s.records[r.parent] = parent
                }
            } else {
                s.records[inode] = r
            }
        }
    }

    /// The path of an inode below the mount point, for log lines.
    public func path(of inode: UInt64) -> String {
        state.withLock { s in
            var parts = [[UInt8]]()
            var at = inode
            var guardCount = 0
            while at != Self.rootInode, let r = s.records[at], guardCount < 4096 {
                parts.append(r.name.isEmpty ? Array(Self.fixedName(r.kind).utf8) : r.name)
                at = r.parent
                guardCount += 1
            }
            return "/" + parts.reversed().map { PathBytes.display($0) }.joined(separator: "/")
        }
    }

    static func fixedName(_ kind: InodeKind) -> String {
        switch kind {
        case .snapshots: "snapshots"
        case .incoming: "incoming"
        case .control: ".polyad"
        case .latest: "latest"
        case .controlFile(let n): n
        default: "?"
        }
    }

    // MARK: Lookup and listing

    /// The children of a directory inode, in order, with their kinds (trees are loaded here).
    private func listing(_ inode: UInt64) throws(FileSystemErrno) -> [([UInt8], InodeKind)] {
        let r = try record(inode)
        switch r.kind {
        case .root:
            return [(Array("snapshots".utf8), .snapshots), (Array("incoming".utf8), .incoming),
                    (Array(".polyad".utf8), .control)]
        case .control:
            return Self.controlFiles.map { (Array($0.utf8), .controlFile($0)) }
        case .incoming:
            return []
        case .snapshots:
            refreshSnapshots()
            let days = state.withLock { Set($0.snapshots.values.map(\.day)) }.sorted()
            var out = days.map { (Array($0.utf8), InodeKind.day($0)) }
            if let (id, _) = latest() { out.append((Array("latest".utf8), .latest(id))) }
            return out
        case .day(let d):
            let ids = state.withLock { s in s.snapshots.filter { $0.value.day == d }.map(\.key) }
            return ids.map { (Array($0.short.utf8), InodeKind.snapshotRoot($0)) }.sorted { $0.0.lexicographicallyPrecedes($1.0) }
        case .snapshotRoot, .node:
            guard let (nodes, id) = try treeNodes(r.kind) else { return [] }
            return nodes.map { ($0.name, .node(SnapshotNode($0, snapshot: id))) }
        default:
            throw FileSystemErrno(ENOTDIR)
        }
    }

    /// The nodes of a snapshot's root or of a folder in it (sorted by name), with the snapshot.
    private func treeNodes(_ kind: InodeKind) throws(FileSystemErrno) -> ([Node], SnapshotID)? {
        switch kind {
        case .snapshotRoot(let id):
            guard let info = state.withLock({ $0.snapshots[id] }) else { throw FileSystemErrno(ENOENT) }
            return (try tree(info.snapshot.tree).nodes, id)
        case .node(let entry):
            guard entry.node.kind == .directory else { throw FileSystemErrno(ENOTDIR) }
            guard let sub = entry.node.subtree else { return nil }
            return (try tree(sub).nodes, entry.snapshot)
        default:
            throw FileSystemErrno(ENOTDIR)
        }
    }

    private func tree(_ id: TreeID) throws(FileSystemErrno) -> Tree {
        if let t = trees.value(for: id) { return t }
        willBlock()
        do {
            let t = try loadTree(id)
            prefetchSubtrees(of: t)
            return t
        } catch {
            reportDamage("tree \(id.hash.shortHex): \(error.message)")
            throw FileSystemErrno(EIO)
        }
    }

    /// Loads the trees of a directory's subdirectories in the background (one level ahead), so that a walk
    /// (`ls -lR`, `find`, `cp -a`) finds them decoded and the other core does the decoding.
    private func prefetchSubtrees(of tree: Tree) {
        for node in tree.nodes {
            guard let sub = node.subtree, !trees.contains(sub), !treeLoads.isLoading(sub) else { continue }
            readAhead.async { [self] in _ = try? loadTree(sub) }
        }
    }

    /// Loads a tree into the cache, or waits for the load of it already under way.
    private func loadTree(_ id: TreeID) throws(RepositoryError) -> Tree {
        try treeLoads.value(for: id) { () throws(RepositoryError) -> Tree in
            if let t = trees.peek(id) { return t }   // loaded while this prefetch waited in the queue
            let t = try repository.loadTree(id)
            trees.insert(t, for: id, cost: 1)
            return t
        }
    }

    /// Looks up `name` in directory `parent`; counts one lookup of the result.
    public func lookup(parent: UInt64, name: [UInt8]) throws(FileSystemErrno) -> Attributes {
        let r = try record(parent)
        switch r.kind {
        case .snapshots, .day:
            refreshSnapshots()
        case .snapshotRoot, .node:
            if let known = r.children?[name], let k = state.withLock({ s -> UInt64? in
                guard s.records[known] != nil else { return nil }
                s.records[known]!.lookups += 1
                return known
            }) { return try attributes(k) }
        default:
            break
        }
        if case .root = r.kind {
            let fixed: [String: UInt64] = ["snapshots": Self.snapshotsInode, "incoming": Self.incomingInode,
                                           ".polyad": Self.controlInode]
            guard let n = fixed[String(decoding: name, as: UTF8.self)] else { throw FileSystemErrno(ENOENT) }
            return try attributes(n)
        }
        if case .control = r.kind {
            guard let i = Self.controlFiles.firstIndex(of: String(decoding: name, as: UTF8.self)) else {
                throw FileSystemErrno(ENOENT)
            }
            return try attributes(UInt64(8 + i))
        }
        let found: InodeKind?
        switch r.kind {
        case .snapshotRoot, .node:
            // Tree nodes are sorted by name bytes: binary search, and only the one found becomes an entry.
            guard let (nodes, id) = try treeNodes(r.kind) else { throw FileSystemErrno(ENOENT) }
            var lo = 0, hi = nodes.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if nodes[mid].name.lexicographicallyPrecedes(name) { lo = mid + 1 } else { hi = mid }
            }
            let node = lo < nodes.count && nodes[lo].name == name ? nodes[lo] : nodes.first { $0.name == name }
            found = node.map { .node(SnapshotNode($0, snapshot: id)) }
        default:
            found = try listing(parent).first { $0.0 == name }?.1
        }
        guard let kind = found else { throw FileSystemErrno(ENOENT) }
        return try attributes(child(of: parent, name: name, kind: kind, countLookup: true))
    }

    /// The entries of directory `inode` from position `offset` on ("." and ".." first).
    public func readDirectory(_ inode: UInt64) throws(FileSystemErrno) -> [DirectoryEntry] {
        let r = try record(inode)
        var out = [DirectoryEntry(name: [46], inode: inode, mode: S_IFDIR),
                   DirectoryEntry(name: [46, 46], inode: r.parent, mode: S_IFDIR)]
        for (name, kind) in try listing(inode) {
            let number: UInt64 = switch kind {
            case .snapshots: Self.snapshotsInode
            case .incoming: Self.incomingInode
            case .control: Self.controlInode
            case .controlFile(let n): UInt64(8 + (Self.controlFiles.firstIndex(of: n) ?? 0))
            default: child(of: inode, name: name, kind: kind, countLookup: false)
            }
            out.append(DirectoryEntry(name: name, inode: number, mode: Self.typeBits(kind)))
        }
        return out
    }

    /// Counts one lookup of `inode` (an entry returned by `readdirplus` counts as a lookup).
    public func countLookup(_ inode: UInt64) {
        guard inode >= Self.firstDynamicInode else { return }
        state.withLock { $0.records[inode]?.lookups += 1 }
    }

    static func typeBits(_ kind: InodeKind) -> UInt32 {
        switch kind {
        case .root, .snapshots, .incoming, .control, .day, .snapshotRoot: S_IFDIR
        case .controlFile: S_IFREG
        case .latest: S_IFLNK
        case .node(let entry):
            switch entry.node.kind {
            case .file: S_IFREG
            case .directory: S_IFDIR
            case .symlink: S_IFLNK
            case .fifo: S_IFIFO
            case .characterDevice: S_IFCHR
            case .blockDevice: S_IFBLK
            case .socket: S_IFSOCK
            }
        }
    }

    // MARK: Attributes

    /// The attributes of `inode`.
    public func attributes(_ inode: UInt64) throws(FileSystemErrno) -> Attributes {
        let r = try record(inode)
        let now = Timestamp(seconds: Int64(mountedAt.timeIntervalSince1970), nanoseconds: 0)
        var a = Attributes(inode: inode, mode: S_IFDIR | 0o555, links: 2, uid: getuid(), gid: getgid(), size: 0,
                           blocks: 0, rdev: 0, atime: now, mtime: now, ctime: now, cacheSeconds: 1)
        switch r.kind {
        case .root, .control:
            break
        case .snapshots, .day:
            refreshSnapshots()
            let changed = state.withLock { $0.changedAt }
            a.mtime = changed
            a.ctime = changed
        case .incoming:
            a.mode = S_IFDIR | 0o755
        case .controlFile(let name):
            a.mode = S_IFREG | 0o444
            a.links = 1
            a.size = UInt64(controlContent(name).count)
            a.cacheSeconds = 0
        case .latest(let id):
            a.mode = S_IFLNK | 0o777
            a.links = 1
            a.size = UInt64(target(of: id).count)
        case .snapshotRoot(let id):
            if let info = state.withLock({ $0.snapshots[id] }) {
                a.mtime = info.snapshot.time
                a.ctime = info.snapshot.time
                a.atime = info.snapshot.time
            }
            a.cacheSeconds = 86_400
        case .node(let entry):
            let n = entry.node
            a.mode = Self.typeBits(r.kind) | (n.mode & 0o7777)
            a.links = max(1, n.links)
            a.uid = n.uid
            a.gid = n.gid
            a.size = n.kind == .symlink ? UInt64(n.linkTarget.count) : n.size
            let stored = n.content.reduce(UInt64(0)) { if case .chunk(_, let l) = $1 { $0 + UInt64(l) } else { $0 } }
            a.blocks = n.kind == .directory ? 8 : (stored + 511) / 512
            a.rdev = n.rdev
            a.atime = n.atime
            a.mtime = n.mtime
            a.ctime = n.ctime
            a.cacheSeconds = 86_400
        }
        return a
    }

    /// The target of a symlink inode.
    public func readLink(_ inode: UInt64) throws(FileSystemErrno) -> [UInt8] {
        switch try record(inode).kind {
        case .latest(let id): return target(of: id)
        case .node(let entry) where entry.node.kind == .symlink: return entry.node.linkTarget
        default: throw FileSystemErrno(EINVAL)
        }
    }

    private func latestTarget() -> [UInt8] {
        guard let (id, _) = latest() else { return [] }
        return target(of: id)
    }

    /// `<day>/<short id>`: where `latest` points while `id` is the newest snapshot.
    private func target(of id: SnapshotID) -> [UInt8] {
        guard let info = state.withLock({ $0.snapshots[id] }) else { return [] }
        return Array("\(info.day)/\(id.short)".utf8)
    }

    // MARK: Extended attributes

    static let hashAttribute = Array("user.polyad.hash".utf8)

    /// Names of the node's own extended attributes. `user.polyad.hash` is readable by name but not listed, so
    /// that `cp -a` and `rsync -X` copy exactly the attributes that were backed up.
    public func extendedAttributeNames(_ inode: UInt64) throws(FileSystemErrno) -> [[UInt8]] {
        guard case .node(let entry) = try record(inode).kind else { return [] }
        return entry.node.xattrs.map(\.name)
    }

    /// One extended attribute's value; `ENODATA` if there is none.
    public func extendedAttribute(_ inode: UInt64, name: [UInt8]) throws(FileSystemErrno) -> [UInt8] {
        guard case .node(let entry) = try record(inode).kind else { throw FileSystemErrno(ENODATA) }
        let n = entry.node
        if n.kind == .file, name == Self.hashAttribute { return Array(Self.contentHash(n).utf8) }
        guard let x = n.xattrs.first(where: { $0.name == name }) else { throw FileSystemErrno(ENODATA) }
        return x.value
    }

    /// The content hash shown as `user.polyad.hash`: SHA-256 of the file's piece list as its tree stores it
    /// (each chunk's keyed id and length, each hole's length), in hex. Equal contents in one store have equal
    /// hashes; reading it costs no data I/O.
    static func contentHash(_ n: Node) -> String {
        var w = BinaryWriter(capacity: n.content.count * 40 + 8)
        Tree.writeContent(n.content, to: &w)
        return HexCoding.encode(SHA256.hash(w.bytes))
    }

    // MARK: Reading

    /// Opens a file for reading; returns a handle number.
    public func open(_ inode: UInt64) throws(FileSystemErrno) -> UInt64 {
        let file: OpenFile
        switch try record(inode).kind {
        case .node(let entry) where entry.node.kind == .file:
            let n = entry.node
            file = OpenFile(node: n, inode: inode)
            prefetchNeighbours(of: inode, node: n)
        case .controlFile(let name): file = OpenFile(generated: controlContent(name), inode: inode)
        case .node, .root, .snapshots, .incoming, .control, .day, .snapshotRoot: throw FileSystemErrno(EISDIR)
        case .latest: throw FileSystemErrno(ELOOP)
        }
        let h = nextHandle.add(1, ordering: .relaxed).oldValue
        handles.withLock { $0[h] = file }
        return h
    }

    public func release(_ handle: UInt64) {
        _ = handles.withLock { $0.removeValue(forKey: handle) }
    }

    /// Zeros that reads of holes point into (a read is at most this long; longer holes take several slices).
    private static let zeros = [UInt8](repeating: 0, count: 1 << 20)

    /// Reads up to `size` bytes at `offset`: the bytes are the concatenation of the returned slices, which
    /// point into cached chunks (no copy). A damaged chunk fails this read with `EIO` (never wrong bytes) and
    /// is logged with the object and file.
    public func read(_ handle: UInt64, offset: UInt64, size: Int) throws(FileSystemErrno) -> [ArraySlice<UInt8>] {
        guard let file = handles.withLock({ $0[handle] }) else { throw FileSystemErrno(EBADF) }
        if let g = file.generated {
            guard offset < UInt64(g.count) else { return [] }
            return [g[Int(offset)..<min(g.count, Int(offset) + size)]]
        }
        let end = min(file.node.size, offset + UInt64(size))
        guard offset < end else { return [] }
        var out = [ArraySlice<UInt8>]()
        var total = 0
        // The first piece that ends after `offset`.
        var lo = 0, hi = file.starts.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if file.starts[mid] + file.pieces[mid].length <= offset { lo = mid + 1 } else { hi = mid }
        }
        var i = lo
        var at = offset
        while at < end, i < file.pieces.count {
            let start = file.starts[i]
            let piece = file.pieces[i]
            let from = at - start
            let to = min(piece.length, end - start)
            switch piece {
            case .hole:
                var left = Int(to - from)
                while left > 0 {
                    let n = min(left, Self.zeros.count)
                    out.append(Self.zeros[0..<n])
                    left -= n
                }
            case .chunk(let id, _):
                let data = try chunk(id.hash, file: file)
                guard UInt64(data.count) >= to else { throw FileSystemErrno(EIO) }
                out.append(data[Int(from)..<Int(to)])
            }
            total += Int(to - from)
            at = start + to
            i += 1
        }
        // Sequential reading: decode the next chunks on the other core while the reader copies these. (Starting
        // them before this read's own decode was measured slower: the two compete for the same cores.)
        let previous = file.nextSequential.exchange(end, ordering: .relaxed)
        if previous == offset || offset == 0 { prefetch(file, from: i) }
        counters.withLock {
            $0.reads += 1
            $0.bytesRead += UInt64(total)
        }
        return out
    }

    /// `lseek` with `SEEK_DATA` or `SEEK_HOLE`: where the next data or hole starts at or after `offset`, from
    /// the file's piece list (so `cp` and `tar` skip the holes of sparse files without reading them).
    public func seek(_ handle: UInt64, offset: UInt64, findData: Bool) throws(FileSystemErrno) -> UInt64 {
        guard let file = handles.withLock({ $0[handle] }) else { throw FileSystemErrno(EBADF) }
        let size = file.generated.map { UInt64($0.count) } ?? file.node.size
        guard offset < size else { throw FileSystemErrno(ENXIO) }
        if file.generated != nil { return findData ? offset : size }
        for (i, piece) in file.pieces.enumerated() {
            let start = file.starts[i], end = start + piece.length
            guard end > offset else { continue }
            let isHole = if case .hole = piece { true } else { false }
            if findData != isHole { return max(start, offset) }
        }
        if findData { throw FileSystemErrno(ENXIO) }
        return size
    }

    private func chunk(_ id: Hash256, file: OpenFile) throws(FileSystemErrno) -> [UInt8] {
        if let data = chunks.value(for: id) { return data }
        willBlock()
        do {
            return try loadChunk(id)
        } catch {
            reportDamage("read of \(path(of: file.inode)) failed: \(error.message)")
            throw FileSystemErrno(EIO)
        }
    }

    /// Decodes up to `readAheadBytes` of chunks from piece `index` on into the cache, in the background.
    private func prefetch(_ file: OpenFile, from index: Int) {
        var budget = readAheadBytes
        var i = index
        while budget > 0, i < file.pieces.count {
            if case .chunk(let id, let length) = file.pieces[i] {
                budget -= Int(length)
                prefetchChunk(id.hash)
            }
            i += 1
        }
    }

    /// Decodes a chunk into the cache on the read-ahead threads, unless it is cached or on its way.
    private func prefetchChunk(_ key: Hash256) {
        guard !chunks.contains(key), !chunkLoads.isLoading(key) else { return }
        readAhead.async { [self] in _ = try? loadChunk(key) }
    }

    /// Waits for the read-ahead work under way (decodes, pushes to the kernel) to finish.
    public func finishBackgroundWork() {
        readAhead.sync(flags: .barrier) {}
    }

    /// Decodes a one-chunk file in the background and hands its bytes to the kernel (once per inode), so that
    /// the reader that opens it next finds them in the page cache.
    private func prefetchWhole(_ key: Hash256, into inode: UInt64) {
        guard pushed.withLock({ p in
            if p.count > 100_000 { p.removeAll() }
            return p.insert(inode).inserted
        }) else { return prefetchChunk(key) }
        readAhead.async { [self] in
            // After the load has finished (a reader waiting for it must have its answer first: its pages are
            // locked until then).
            guard let data = try? loadChunk(key) else { return }
            pushToKernel(inode, data)
        }
    }

    /// Decrypts, authenticates and decompresses a chunk into the cache, or waits for the load of it already
    /// under way (a read-ahead), so that no chunk is decoded twice at once.
    private func loadChunk(_ key: Hash256) throws(RepositoryError) -> [UInt8] {
        try chunkLoads.value(for: key) { () throws(RepositoryError) -> [UInt8] in
            // A read-ahead queued behind others may find its chunk decoded by a reader meanwhile.
            if let data = chunks.peek(key) { return data }
            let data = try repository.loadBlob(key)
            counters.withLock { $0.decodes += 1 }
            chunks.insert(data, for: key, cost: data.count)
            return data
        }
    }

    /// On open: decode the first chunk of this file and of the next files in walk order (depth first, names
    /// in order: how `find | xargs cat`, `cp -r` and `tar` read a tree), so that their data is ready before
    /// they ask. The walk goes on into subfolders whose trees are loaded and, at the end of this folder, out
    /// to the folders that follow it; at most 16 files or 2 MiB.
    private func prefetchNeighbours(of inode: UInt64, node: Node) {
        var budget = 2 << 20
        var files = 0
        // Prefetches from `nodes` (of the folder with inode `folder`, if the kernel knows it) on, descending
        // into loaded subtrees; false once the budget is spent.
        func visit(_ nodes: ArraySlice<Node>, folder: UInt64?, depth: Int) -> Bool {
            // The inode of `name` in `folder`, if the kernel has been given one.
            func known(_ name: [UInt8]) -> UInt64? {
                folder.flatMap { f in state.withLock { $0.records[f]?.children?[name] } }
            }
            for n in nodes {
                guard files < 16, budget > 0 else { return false }
                if n.kind == .file, case .chunk(let id, let length)? = n.content.first {
                    if let file = known(n.name), file != inode, n.content.count == 1, n.size == UInt64(length) {
                        prefetchWhole(id.hash, into: file)
                    } else {
                        prefetchChunk(id.hash)
                    }
                    budget -= Int(length)
                    files += 1
                } else if n.kind == .directory, depth < 8, let sub = n.subtree, let t = trees.peek(sub) {
                    guard visit(t.nodes[...], folder: known(n.name), depth: depth + 1) else { return false }
                }
            }
            return true
        }
        // From this file's folder up towards the snapshot's root: the rest of each folder after the entry
        // the walk came from (this file itself included, at the first level).
        var at = inode
        var name = node.name
        var inclusive = true
        for _ in 0..<8 {
            guard let (parent, parentName, kind) = state.withLock({ s -> (UInt64, [UInt8], InodeKind)? in
                guard let r = s.records[at], let p = s.records[r.parent] else { return nil }
                return (r.parent, p.name, p.kind)
            }) else { return }
            let treeID: TreeID? = switch kind {
            case .node(let dir): dir.node.subtree
            case .snapshotRoot(let id): state.withLock { $0.snapshots[id]?.snapshot.tree }
            default: nil
            }
            guard let treeID, let tree = trees.peek(treeID) else { return }
            var lo = 0, hi = tree.nodes.count
            while lo < hi {
                let mid = (lo + hi) / 2
                let before = inclusive ? tree.nodes[mid].name.lexicographicallyPrecedes(name)
                                       : !name.lexicographicallyPrecedes(tree.nodes[mid].name)
                if before { lo = mid + 1 } else { hi = mid }
            }
            guard visit(tree.nodes[lo...], folder: parent, depth: 0) else { return }
            if case .snapshotRoot = kind { return }
            at = parent
            name = parentName
            inclusive = false
        }
    }

    private func reportDamage(_ message: String) {
        counters.withLock {
            $0.readErrors += 1
            $0.lastError = message
        }
        log(message)
    }

    // MARK: Control files

    func controlContent(_ name: String) -> [UInt8] {
        switch name {
        case "stats.json":
            willBlock()
            guard let stats = try? manager.backupStatistics() else { return Array("{}\n".utf8) }
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            return Array(((try? e.encode(stats)) ?? Data("{}".utf8))) + [10]
        case "status":
            let c = counters.withLock { $0 }
            let cache = chunks.statistics
            let count = state.withLock { $0.snapshots.count }
            var lines = [
                "state: mounted (read-only snapshots)",
                "store: \(repository.backend.location)",
                "mounted_at: \(ISO8601DateFormatter().string(from: mountedAt))",
                "snapshots: \(count)",
                "latest: \(String(decoding: latestTarget(), as: UTF8.self))",
                "reads: \(c.reads) (\(c.bytesRead) bytes)",
                "read_errors: \(c.readErrors)",
                "chunk_cache: \(cache.cost) bytes, \(cache.hits) hits, \(cache.misses) misses",
                "chunks_decoded: \(c.decodes)",
                "incoming: not writable yet (commits from /incoming come with a later version)",
            ]
            if let e = c.lastError { lines.append("last_error: \(e)") }
            return Array((lines.joined(separator: "\n") + "\n").utf8)
        default:
            let c = counters.withLock { $0 }
            let cache = chunks.statistics
            let count = state.withLock { $0.snapshots.count }
            let text = """
                # HELP polyad_mount_snapshots Snapshots visible in the mount.
                # TYPE polyad_mount_snapshots gauge
                polyad_mount_snapshots \(count)
                # HELP polyad_mount_reads_total Read requests served.
                # TYPE polyad_mount_reads_total counter
                polyad_mount_reads_total \(c.reads)
                # HELP polyad_mount_read_bytes_total Bytes served by reads.
                # TYPE polyad_mount_read_bytes_total counter
                polyad_mount_read_bytes_total \(c.bytesRead)
                # HELP polyad_mount_read_errors_total Reads that failed because data was damaged.
                # TYPE polyad_mount_read_errors_total counter
                polyad_mount_read_errors_total \(c.readErrors)
                # HELP polyad_mount_chunks_decoded_total Chunks decrypted and decompressed.
                # TYPE polyad_mount_chunks_decoded_total counter
                polyad_mount_chunks_decoded_total \(c.decodes)
                # HELP polyad_mount_cache_hits_total Chunk cache hits.
                # TYPE polyad_mount_cache_hits_total counter
                polyad_mount_cache_hits_total \(cache.hits)
                # HELP polyad_mount_cache_misses_total Chunk cache misses.
                # TYPE polyad_mount_cache_misses_total counter
                polyad_mount_cache_misses_total \(cache.misses)

                """
            return Array(text.utf8)
        }
    }

    /// `statfs`: the store's size in 4 KiB blocks, no free space (read-only), the inode count in use.
    public func statistics() -> (blocks: UInt64, files: UInt64) {
        // Object sizes from the listing only: `df` should not decrypt every snapshot.
        willBlock()
        var stored: UInt64 = 0
        for kind in ObjectKind.allCases {
            for info in (try? repository.backend.list(kind)) ?? [] { stored += UInt64(max(0, info.size)) }
        }
        return ((stored + 4095) / 4096, UInt64(state.withLock { $0.records.count }))
    }
}
