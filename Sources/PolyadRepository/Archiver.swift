import Dispatch
import PolyadChunker
import PolyadCompression
import PolyadCrypto
import PolyadFileSystem
import PolyadFormat
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What to back up and how.
public struct BackupOptions: Sendable {
    /// Paths as given (made absolute against the working directory); stored with their full path.
    public var paths: [[UInt8]]
    public var tags: [String] = []
    /// The host name recorded in the snapshot (default: this machine's).
    public var host: String?
    /// Exclude patterns (see `PathFilter`).
    public var excludes: [String] = []
    /// Stay on the file system of each backed-up path.
    public var oneFileSystem = false
    /// zlib level 0-9 (0 stores).
    public var compressionLevel = 6
    /// Target size of data packs.
    public var packSize = 16 << 20
    /// Free-form metadata stored in the snapshot.
    public var metadata: [String: String] = [:]
    /// Store the one folder in `paths` as the snapshot's root: its entries become the top of the tree,
    /// rather than sitting under the folder's full path (an `/incoming` commit of a staging folder).
    public var folderAsRoot = false
    /// The paths the snapshot records (default: the absolute paths backed up).
    public var recordedPaths: [String]?
    /// Who the snapshot is by (default: this process's user).
    public var writer: SnapshotWriter?
    /// The time the snapshot records (default: now), as restic's `backup --time`.
    public var time: Timestamp?
    /// Called before the index files and before the snapshot are written: throws if the store's lock may have
    /// lapsed meanwhile (``StoreLock/checkHeld()``), so nothing is written that may reference removed data.
    public var lockCheck: (@Sendable () throws(RepositoryError) -> Void)?

    public init(paths: [[UInt8]]) { self.paths = paths }
}

/// The user a snapshot is recorded as made by.
public struct SnapshotWriter: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var userName: String

    public init(uid: UInt32, gid: UInt32, userName: String) {
        self.uid = uid
        self.gid = gid
        self.userName = userName
    }
}

/// Progress of a running backup, for a terminal display.
public struct BackupProgress: Sendable {
    public var files = 0
    public var bytes: UInt64 = 0
    public var elapsed: Double = 0
}

/// A finished backup.
public struct BackupResult: Sendable {
    public var id: SnapshotID
    public var snapshot: Snapshot
    /// One line per source that could not be read (the snapshot leaves them out).
    public var warnings: [String]
    /// The packs this run stored.
    public var packsWritten: Set<PackID>
}

/// Walks the source paths, chunks and identifies file content on the calling thread, hands new chunks to the
/// workers, and builds the trees bottom-up; then writes the index and, last, the snapshot.
/// A backup run: walks the sources, stores new chunks and trees, and saves the snapshot last.
public final class Archiver {
    private let repository: Repository
    private let options: BackupOptions
    private let filter: PathFilter
    private let store: ChunkStore
    private let progress: (@Sendable (BackupProgress) -> Void)?
    private let cancellation: Cancellation?
    private var summary = BackupSummary()
    private var warnings = [String]()
    private var hardLinks = [DeviceInode: (pieces: [ContentPiece], size: UInt64)]()
    private var rootDevice: UInt64 = 0
    private var progressState = BackupProgress()
    private var finishing = [PendingDirectory]()
    private var lastProgress = 0.0
    private let started = Clock.monotonic()

    struct DeviceInode: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    /// Prepares a run of `options` against `repository`; `progress` is called now and then.
    public init(
        repository: Repository,
        options: BackupOptions,
        progress: (@Sendable (BackupProgress) -> Void)?,
        cancellation: Cancellation?
    ) throws(RepositoryError) {
        self.repository = repository
        self.options = options
        self.progress = progress
        self.cancellation = cancellation
        filter = try PathFilter(excludes: options.excludes)
        store = ChunkStore(repository: repository, level: options.compressionLevel, packSize: options.packSize)
    }

    /// A tree of the path components leading to the backed-up paths.
    private final class PathTrie {
        var children = [[UInt8]: PathTrie]()
        var isTarget = false
    }

    /// Runs the backup and returns the new snapshot.
    public func run() throws(RepositoryError) -> BackupResult {
        let time = options.time ?? Clock.now()
        let absolute = options.paths.map { PathNormalizer.absolute($0) }
        guard !absolute.isEmpty else {
            throw RepositoryError(.invalidArgument, "nothing to back up: give at least one path")
        }
        for p in absolute where !FileSystem.exists(p) {
            throw RepositoryError(.invalidArgument, "\(PathBytes.display(p)) does not exist; nothing was backed up")
        }
        if options.folderAsRoot {
            guard absolute.count == 1, (try? FileSystem.lstat(absolute[0]))?.kind == .directory else {
                throw RepositoryError(.invalidArgument, "a folder backed up as the root must be one folder")
            }
        }
        let displayPaths = options.recordedPaths?.sorted() ?? absolute.map { PathBytes.display($0) }.sorted()
        let host = options.host ?? Accounts.hostName
        let parent = try findParent(host: host, paths: displayPaths)
        let parentTree = try cachedTree(parent?.snapshot.tree)

        let root = PathTrie()
        for p in absolute {
            var node = root
            for c in PathBytes.components(p) {
                if node.isTarget { break }
                node =
                    node.children[c]
                    ?? {
                        let n = PathTrie()
                        node.children[c] = n
                        return n
                    }()
            }
            node.isTarget = true
            node.children = [:]
        }

        let filter = self.filter
        let prefetcher = MetadataPrefetcher(roots: absolute, excluded: { filter.isExcluded($0) })
        defer { prefetcher.stop() }
        if root.isTarget || options.folderAsRoot {  // one file system: the one of / (or of the root folder)
            do { rootDevice = try FileSystem.lstat(options.folderAsRoot ? absolute[0] : [UInt8(ascii: "/")]).dev } catch
            {
                throw RepositoryError.system(error)
            }
        }
        let treeID: TreeID
        do {
            let top: PendingDirectory
            if options.folderAsRoot {
                top = try walkDirectory(absolute[0], parent: parentTree)
            } else if root.isTarget {
                top = try walkDirectory([UInt8(ascii: "/")], parent: parentTree)
            } else {
                top = try assemble(root, path: [], parent: parentTree)
            }
            while !finishing.isEmpty { try finalize(finishing.removeFirst()) }
            treeID = top.treeID!
            try store.finish()
        } catch {
            store.abandon()
            throw error
        }
        let packs = store.dataPacker.packs + store.treePacker.packs
        try options.lockCheck?()
        try repository.saveIndex(for: packs)

        summary.addedBytes = store.addedBytes
        summary.blobsAdded = store.blobsAdded
        summary.storedBytes = store.dataPacker.bytesStored + store.treePacker.bytesStored
        summary.errors = warnings.count
        summary.durationSeconds = Clock.monotonic() - started
        let snapshot = Snapshot(
            time: time,
            hostname: host,
            username: options.writer?.userName ?? Accounts.currentUserName,
            uid: options.writer?.uid ?? getuid(),
            gid: options.writer?.gid ?? getgid(),
            paths: displayPaths,
            tags: options.tags.sorted(),
            parent: parent?.id,
            tree: treeID,
            summary: summary,
            metadata: options.metadata,
            programVersion: PolyadVersion.string
        )
        try options.lockCheck?()
        let id = try repository.saveSnapshot(snapshot)
        return BackupResult(id: id, snapshot: snapshot, warnings: warnings, packsWritten: Set(packs.map(\.id)))
    }

    /// A tree of the parent snapshot, for the files cache. A damaged one only costs the cache (its files are
    /// read again; `polyad verify` reports the damage); any other failure ends the backup with its cause.
    private func cachedTree(_ id: TreeID?) throws(RepositoryError) -> Tree? {
        guard let id else { return nil }
        do { return try repository.loadTree(id) } catch  where error.code == .damaged { return nil }
    }

    /// The latest snapshot of the same host and paths: its trees serve as the files cache.
    private func findParent(
        host: String,
        paths: [String]
    ) throws(RepositoryError) -> (id: SnapshotID, snapshot: Snapshot)? {
        try repository.snapshots().last { $0.snapshot.hostname == host && $0.snapshot.paths == paths }
    }

    /// Builds the directories above the backed-up paths (metadata from the real directories).
    private func assemble(_ trie: PathTrie, path: [UInt8], parent: Tree?) throws(RepositoryError) -> PendingDirectory {
        let dir = PendingDirectory()
        for (name, child) in trie.children {
            let childPath = path + [UInt8(ascii: "/")] + name
            let parentNode = parent?.node(named: name)
            if child.isTarget {
                let st: FileStatus
                do { st = try FileSystem.lstat(childPath) } catch {
                    warn("\(error)")
                    continue
                }
                rootDevice = st.dev
                try entry(name: name, path: childPath, status: st, parentNode: parentNode, into: dir)
            } else {
                let st: FileStatus
                do { st = try FileSystem.lstat(childPath) } catch {
                    warn("\(error)")  // the backed-up paths below it are left out: say so
                    continue
                }
                let sub = try cachedTree(parentNode?.subtree)
                dir.children.append((dir.nodes.count, try assemble(child, path: childPath, parent: sub)))
                dir.nodes.append(makeNode(name: name, path: childPath, status: st))
            }
        }
        try finished(dir)
        return dir
    }

    /// Queues a walked directory for its tree; builds the trees of queued directories whose files are done
    /// (waiting for the oldest once many are queued, which bounds memory).
    private func finished(_ dir: PendingDirectory) throws(RepositoryError) {
        finishing.append(dir)
        while let head = finishing.first,
            finishing.count > 256 || head.group.wait(timeout: .now()) == .success
        {
            try finalize(finishing.removeFirst())
        }
    }

    /// Fills in the worker-read files and subdirectory ids, then stores the directory's tree.
    private func finalize(_ dir: PendingDirectory) throws(RepositoryError) {
        dir.group.wait()
        try store.checkFailure()
        var dropped = Set<Int>()
        for job in dir.jobs {
            switch job.slot.value {
            case .stored(let pieces, let size):
                dir.nodes[job.index].content = pieces
                dir.nodes[job.index].size = size
                summary.totalBytes += size
                if job.changed { summary.filesChanged += 1 } else { summary.filesNew += 1 }
                progressState.files += 1
                progressState.bytes += size
            case .failed(let message):
                warn(message)
                dropped.insert(job.index)
            case nil:
                dropped.insert(job.index)
            }
        }
        for child in dir.children { dir.nodes[child.index].subtree = child.directory.treeID }
        let nodes =
            dropped.isEmpty ? dir.nodes : dir.nodes.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
        dir.treeID = try storeTree(Tree(nodes: nodes))
        dir.nodes = []
        dir.jobs = []
        dir.children = []
        reportProgress()
    }

    private func walkDirectory(_ path: [UInt8], parent: Tree?) throws(RepositoryError) -> PendingDirectory {
        let dir = PendingDirectory()
        var names: [[UInt8]]
        do { names = try FileSystem.directoryEntries(path) } catch {
            warn("\(error)")
            try finished(dir)
            return dir
        }
        names.sort { $0.lexicographicallyPrecedes($1) }
        dir.nodes.reserveCapacity(names.count)
        let statuses = Self.statuses(of: names, in: path)
        for (i, name) in names.enumerated() {
            if cancellation?.isCancelled == true {
                throw RepositoryError(
                    .interrupted,
                    "interrupted: no snapshot was written (the store is unchanged but for unreferenced packs)"
                )
            }
            let childPath = PathBytes.join(path, name)
            if filter.isExcluded(childPath) { continue }
            let st: FileStatus
            switch statuses[i] {
            case .success(let s): st = s
            case .failure(let error):
                warn("\(error)")
                continue
            }
            try entry(name: name, path: childPath, status: st, parentNode: parent?.node(named: name), into: dir)
        }
        try finished(dir)
        return dir
    }

    /// `lstat` of every entry; in a large folder several at a time, because on a cold cache each one may
    /// wait for the disk (inode reads), and the device serves several requests at once.
    private static func statuses(of names: [[UInt8]], in path: [UInt8]) -> [Result<FileStatus, SystemError>] {
        guard names.count >= 32 else {
            return names.map { name in
                Result { () throws(SystemError) in try FileSystem.lstat(PathBytes.join(path, name)) }
            }
        }
        let results = Mutex([Result<FileStatus, SystemError>?](repeating: nil, count: names.count))
        let stride = 16
        DispatchQueue.concurrentPerform(iterations: (names.count + stride - 1) / stride) { block in
            var local = [(Int, Result<FileStatus, SystemError>)]()
            for i in (block * stride)..<min(names.count, (block + 1) * stride) {
                local.append(
                    (i, Result { () throws(SystemError) in try FileSystem.lstat(PathBytes.join(path, names[i])) })
                )
            }
            results.withLock { r in for (i, v) in local { r[i] = v } }
        }
        return results.withLock { $0.map { $0! } }
    }

    /// Adds the node for one directory entry to `dir` (nothing, with a warning, if it cannot be read).
    private func entry(
        name: [UInt8],
        path: [UInt8],
        status st: FileStatus,
        parentNode: Node?,
        into dir: PendingDirectory
    ) throws(RepositoryError) {
        var node = makeNode(name: name, path: path, status: st)
        switch node.kind {
        case .directory:
            summary.directories += 1
            let child: PendingDirectory
            if options.oneFileSystem, st.dev != rootDevice {
                child = PendingDirectory()
                try finished(child)
            } else {
                let sub = try cachedTree(parentNode.flatMap { $0.kind == .directory ? $0.subtree : nil })
                child = try walkDirectory(path, parent: sub)
            }
            dir.children.append((dir.nodes.count, child))
        case .file:
            let unchanged = isUnchanged(parentNode, st)
            if !unchanged, st.nlink <= 1, st.size > 0, st.size <= UInt64(repository.config.chunkerMinSize),
                st.blocks * 512 >= st.size
            {
                // Small files are read by the workers, several at a time.
                let slot = FileSlot()
                dir.jobs.append((dir.nodes.count, slot, parentNode?.kind == .file))
                dir.nodes.append(node)
                try store.storeSmallFile(path: path, size: Int(st.size), slot: slot, directory: dir.group)
                return
            }
            guard let content = try fileContent(path: path, status: st, parentNode: parentNode, unchanged: unchanged)
            else { return }
            node.content = content.pieces
            node.size = content.size
            summary.totalBytes += content.size
            progressState.files += 1
            progressState.bytes += content.size
            reportProgress()
        case .symlink:
            do { node.linkTarget = try FileSystem.readLink(path) } catch {
                warn("\(error)")
                return
            }
            summary.otherEntries += 1
        default:
            summary.otherEntries += 1
        }
        dir.nodes.append(node)
    }

    /// The files cache: same size, mtime, ctime and inode as in the parent snapshot, and every chunk indexed.
    private func isUnchanged(_ parent: Node?, _ st: FileStatus) -> Bool {
        guard let p = parent, p.kind == .file, p.size == UInt64(st.size), p.inode == UInt64(st.ino),
            p.mtime.seconds == Int64(st.mtime.seconds), p.mtime.nanoseconds == Int64(st.mtime.nanoseconds),
            p.ctime.seconds == Int64(st.ctime.seconds), p.ctime.nanoseconds == Int64(st.ctime.nanoseconds)
        else { return false }
        return p.content.allSatisfy {
            if case .chunk(let id, _) = $0 { repository.index.contains(id.blob) } else { true }
        }
    }

    private func makeNode(name: [UInt8], path: [UInt8], status st: FileStatus) -> Node {
        let kind: NodeKind =
            switch st.kind {
            case .regular: .file
            case .directory: .directory
            case .symlink: .symlink
            case .fifo: .fifo
            case .characterDevice: .characterDevice
            case .blockDevice: .blockDevice
            case .socket: .socket
            }
        var node = Node(
            name: name,
            kind: kind,
            mode: UInt32(st.mode) & 0o7777,
            uid: UInt32(st.uid),
            gid: UInt32(st.gid),
            user: Accounts.userName(uid: UInt32(st.uid)) ?? "",
            group: Accounts.groupName(gid: UInt32(st.gid)) ?? "",
            size: kind == .symlink ? UInt64(st.size) : 0,
            mtime: Timestamp(seconds: Int64(st.mtime.seconds), nanoseconds: Int64(st.mtime.nanoseconds)),
            atime: Timestamp(seconds: Int64(st.atime.seconds), nanoseconds: Int64(st.atime.nanoseconds)),
            ctime: Timestamp(seconds: Int64(st.ctime.seconds), nanoseconds: Int64(st.ctime.nanoseconds)),
            inode: UInt64(st.ino),
            device: UInt64(st.dev),
            links: UInt32(truncatingIfNeeded: st.nlink),
            rdev: UInt64(st.rdev)
        )
        do {
            node.xattrs = try FileSystem.extendedAttributes(path).map {
                ExtendedAttribute(name: $0.name, value: $0.value)
            }
        } catch {
            warn("\(error) (its extended attributes are left out)")  // none to read (ENOTSUP) is not an error
        }
        return node
    }

    /// The content of a regular file: from the parent snapshot when `unchanged` (the files cache), from a
    /// hard-link sibling read earlier in this run, or read and chunked.
    private func fileContent(
        path: [UInt8],
        status st: FileStatus,
        parentNode: Node?,
        unchanged: Bool
    ) throws(RepositoryError) -> (pieces: [ContentPiece], size: UInt64)? {
        let key = DeviceInode(device: UInt64(st.dev), inode: UInt64(st.ino))
        if st.nlink > 1, let known = hardLinks[key] { return known }
        if unchanged, let p = parentNode {
            summary.filesUnchanged += 1
            let result = (p.content, p.size)
            if st.nlink > 1 { hardLinks[key] = result }
            return result
        }
        let fd: Int32
        do { fd = try FileSystem.openForReading(path) } catch {
            warn("\(error)")
            return nil
        }
        defer { FileSystem.close(fd) }
        var pieces = [ContentPiece]()
        var total: UInt64 = 0
        do {
            let size = Int64(st.size)
            var ranges = [Range<Int64>]()
            if size > 0 {
                ranges =
                    Int64(st.blocks) * 512 < size
                    ? try FileSystem.dataExtents(fileDescriptor: fd, size: size) : [0..<size]
            }
            var position: Int64 = 0
            var shrank = false
            for r in ranges {
                if r.lowerBound > position {
                    pieces.append(.hole(length: UInt64(r.lowerBound - position)))
                    total += UInt64(r.lowerBound - position)
                }
                let read = try chunkRange(fd: fd, range: r, into: &pieces)
                total += read
                position = r.lowerBound + Int64(read)
                if read < UInt64(r.count) {  // the file shrank while being read
                    shrank = true
                    break
                }
            }
            if !shrank, position < size {
                pieces.append(.hole(length: UInt64(size - position)))
                total += UInt64(size - position)
            }
        } catch let e as SystemError {
            // The chunk reader's errors name the offset, not the file.
            warn(e.path == nil ? "\(PathBytes.display(path)): \(e)" : "\(e)")
            return nil
        } catch let e as RepositoryError {
            throw e
        } catch {
            warn("\(PathBytes.display(path)): \(error)")
            return nil
        }
        if parentNode?.kind == .file { summary.filesChanged += 1 } else { summary.filesNew += 1 }
        if st.nlink > 1 { hardLinks[key] = (pieces, total) }
        return (pieces, total)
    }

    /// Chunks `range` of the file; returns the bytes read.
    private func chunkRange(fd: Int32, range: Range<Int64>, into pieces: inout [ContentPiece]) throws -> UInt64 {
        let length = range.upperBound - range.lowerBound
        if length <= Int64(repository.config.chunkerMinSize) {
            // Small: one chunk, read in one call.
            var buffer = [UInt8](repeating: 0, count: Int(length))
            let n = try buffer.withUnsafeMutableBytes { b -> Int in
                try FileSystem.pread(fd, into: b, offset: range.lowerBound)
            }
            if n < buffer.count { buffer.removeLast(buffer.count - n) }
            if n > 0 { try add(chunk: buffer, to: &pieces) }
            return UInt64(n)
        }
        let reader = ChunkReader(
            fileDescriptor: fd,
            offset: range.lowerBound,
            length: length,
            chunker: repository.chunker
        )
        var total: UInt64 = 0
        while let chunk = try reader.next() {
            total += UInt64(chunk.count)
            try add(chunk: chunk, to: &pieces)
            if cancellation?.isCancelled == true {
                throw RepositoryError(.interrupted, "interrupted: no snapshot was written")
            }
        }
        return total
    }

    private func add(chunk: [UInt8], to pieces: inout [ContentPiece]) throws(RepositoryError) {
        let id = repository.blobID(chunk)
        if repository.index.reserve(id) { try store.storeData(chunk, id: id) }
        pieces.append(.chunk(ChunkID(id.hash), length: UInt32(chunk.count)))
    }

    private func storeTree(_ tree: Tree) throws(RepositoryError) -> TreeID {
        let bytes = tree.encoded()
        let id = repository.blobID(bytes)
        if repository.index.reserve(id) { try store.storeTree(bytes, id: id) }
        return TreeID(id.hash)
    }

    private func warn(_ message: String) {
        warnings.append(message)
    }

    private func reportProgress() {
        guard let progress else { return }
        let now = Clock.monotonic()
        if now - lastProgress >= 0.25 {
            lastProgress = now
            progressState.elapsed = now - started
            progress(progressState)
        }
    }
}
