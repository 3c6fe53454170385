import Dispatch
import PolyadCrypto
import PolyadFileSystem
import PolyadFormat
import Synchronization

/// What to restore and how.
public struct RestoreOptions: Sendable {
    /// The folder to restore into (created if missing).
    public var target: [UInt8]
    /// Only paths matching these patterns (relative to the snapshot root), and what is below them.
    public var includes: [String] = []
    public var excludes: [String] = []
    /// Re-read every restored file and compare it with the chunk ids.
    public var verify = false
    /// Restore only this path of the snapshot (the `id:path` form), under its own name.
    public var subpath: [UInt8]?
    /// Restore owners (default: when running as root).
    public var restoreOwners = getuid() == 0
    /// Called now and then with the files and bytes restored so far (for a terminal).
    public var progress: (@Sendable (_ files: Int, _ bytes: UInt64) -> Void)?

    public init(target: [UInt8]) { self.target = target }
}

/// What a restore did.
public struct RestoreResult: Sendable {
    public var files = 0
    public var directories = 0
    public var otherEntries = 0
    public var bytes: UInt64 = 0
    /// Files already present and identical, left as they were.
    public var unchanged = 0
    public var verified = 0
    /// One line per entry that could not be restored.
    public var errors: [String] = []
    /// True if an error was an integrity failure (exit 13).
    public var damaged = false
    /// True if the target ran out of space (exit 15).
    public var noSpace = false
}

/// Restores a snapshot's tree: directories and special files on the calling thread, file contents on worker
/// threads (each file written to a temporary name in its folder, then renamed); hard links, then directory
/// metadata, last.
public final class Restorer: @unchecked Sendable {
    // @unchecked: the mutable state below is only touched from the calling thread (walk) or under `shared`.
    private let repository: Repository
    private let options: RestoreOptions
    private let filter: PathFilter
    /// Files are created and written by one thread: file creation does not scale across threads (the file
    /// system serialises it, and two creators contend), while the chunks of a large file are fetched,
    /// authenticated and decompressed in parallel (`writeContent`).
    private let queue = DispatchQueue(label: "polyad.restore.files")
    private let slots = DispatchSemaphore(value: 64)
    private let group = DispatchGroup()
    private let shared = Mutex(RestoreResult())
    private var directoryMetadata = [([UInt8], Node)]()
    private var hardLinkFirst = [Archiver.DeviceInode: [UInt8]]()
    private var hardLinks = [([UInt8], [UInt8], Node)]()
    private let cancellation: Cancellation?
    private let temporaryCounter = Atomic<Int>(0)
    private let decoders = DispatchQueue(label: "polyad.restore.decoders", attributes: .concurrent)
    private let throttle = ProgressThrottle()

    /// Prepares a restore as `options` say.
    public init(repository: Repository, options: RestoreOptions, cancellation: Cancellation?) throws(RepositoryError) {
        self.repository = repository
        self.options = options
        self.cancellation = cancellation
        filter = try PathFilter(excludes: options.excludes, includes: options.includes)
    }

    /// Restores `snapshot` (or the part `options` select).
    public func run(snapshot: Snapshot) throws(RepositoryError) -> RestoreResult {
        let target = PathNormalizer.absolute(options.target)
        do { try FileSystem.makeDirectories(target, mode: 0o700) } catch { throw RepositoryError.system(error) }
        do {
            if let sub = options.subpath {
                let (node, parentRel) = try resolve(sub, in: snapshot)
                try restore(node: node, rel: parentRel + [node.name], in: target, selectedRoot: true)
            } else {
                try walk(snapshot.tree, rel: [], directory: target)
            }
        } catch {
            group.wait()  // files being written are finished or removed: no temporary file is left behind
            throw error
        }
        group.wait()
        for (existing, new, node) in hardLinks {
            do {
                if FileSystem.exists(new) { try FileSystem.unlink(new) }
                try FileSystem.link(existing: existing, new: new)
            } catch {
                // The first name failed to restore: restore this one as a file of its own.
                submitFile(node, path: new)
            }
        }
        group.wait()
        for (path, node) in directoryMetadata.reversed() { applyMetadata(node, path: path, isFile: false) }
        return shared.withLock { $0 }
    }

    /// Finds the node at `path`: relative to the snapshot root, or to the folder holding a backed-up path.
    private func resolve(_ path: [UInt8], in snapshot: Snapshot) throws(RepositoryError) -> (Node, [[UInt8]]) {
        let parts = PathBytes.components(path)
        guard !parts.isEmpty else {
            throw RepositoryError(.invalidArgument, "give a path after the snapshot id, e.g. ID:home/alice/file")
        }
        var bases: [[[UInt8]]] = [[]]
        for p in snapshot.paths { bases.append(Array(PathBytes.components(Array(p.utf8)).dropLast())) }
        for base in bases {
            if let found = try? lookup(base + parts, tree: snapshot.tree) {
                return (found, Array((base + parts).dropLast()))
            }
        }
        throw RepositoryError(
            .notFound,
            "\(PathBytes.display(path)) is not in this snapshot (browse it under the mount: polyadfs CONF MNT, then MNT/snapshots/)"
        )
    }

    private func lookup(_ parts: [[UInt8]], tree: TreeID) throws(RepositoryError) -> Node {
        var current = try repository.loadTree(tree)
        for (i, name) in parts.enumerated() {
            guard let node = current.node(named: name) else { throw RepositoryError(.notFound, "not found") }
            if i == parts.count - 1 { return node }
            guard node.kind == .directory, let sub = node.subtree else { throw RepositoryError(.notFound, "not found") }
            current = try repository.loadTree(sub)
        }
        throw RepositoryError(.notFound, "not found")
    }

    private func walk(_ id: TreeID, rel: [[UInt8]], directory: [UInt8]) throws(RepositoryError) {
        let tree: Tree
        do { tree = try repository.loadTree(id) } catch {
            record(error: "\(error)", damaged: error.code == .damaged)
            return
        }
        for node in tree.nodes {
            if cancellation?.isCancelled == true {
                throw RepositoryError(
                    .interrupted,
                    "interrupted: the files restored so far are complete; others are missing"
                )
            }
            try restore(node: node, rel: rel + [node.name], in: directory, selectedRoot: false)
        }
    }

    private func restore(node: Node, rel: [[UInt8]], in directory: [UInt8], selectedRoot: Bool) throws(RepositoryError)
    {
        let name = node.name
        guard !name.isEmpty, !name.contains(UInt8(ascii: "/")), name != [46], name != [46, 46] else {
            record(
                error: "refusing entry \(PathBytes.display(name)): its name would escape the target folder",
                damaged: true
            )
            return
        }
        let relPath = rel.reduce(into: [UInt8]()) { $0 += [UInt8(ascii: "/")] + $1 }
        if !selectedRoot {
            if filter.isExcluded(relPath) { return }
        }
        let (included, mayContain) = selectedRoot ? (true, true) : filter.inclusion(relPath)
        let path = PathBytes.join(directory, name)
        switch node.kind {
        case .directory:
            guard included || mayContain else { return }
            do {
                if let st = try? FileSystem.lstat(path), st.kind != .directory { try FileSystem.unlink(path) }
                try FileSystem.makeDirectory(path, mode: 0o700)
            } catch {
                record(error: "\(error)", damaged: false)
                return
            }
            shared.withLock { $0.directories += 1 }
            directoryMetadata.append((path, node))
            if let sub = node.subtree { try walk(sub, rel: rel, directory: path) }
        case .file:
            guard included else { return }
            if node.links > 1 {
                let key = Archiver.DeviceInode(device: node.device, inode: node.inode)
                if let first = hardLinkFirst[key] {
                    hardLinks.append((first, path, node))
                    return
                }
                hardLinkFirst[key] = path
            }
            submitFile(node, path: path)
        default:
            guard included else { return }
            do {
                if FileSystem.exists(path) {
                    if let st = try? FileSystem.lstat(path), st.kind == .directory {
                        try FileSystem.removeTree(path)
                    } else {
                        try FileSystem.unlink(path)
                    }
                }
                switch node.kind {
                case .symlink: try FileSystem.symlink(target: node.linkTarget, at: path)
                case .fifo: try FileSystem.makeNode(path, mode: S_IFIFO | node.mode, device: 0)
                case .characterDevice: try FileSystem.makeNode(path, mode: S_IFCHR | node.mode, device: node.rdev)
                case .blockDevice: try FileSystem.makeNode(path, mode: S_IFBLK | node.mode, device: node.rdev)
                default:
                    shared.withLock { $0.otherEntries += 1 }
                    return  // sockets are not restored (like tar and restic)
                }
                shared.withLock { $0.otherEntries += 1 }
                applyMetadata(node, path: path, isFile: false)
            } catch {
                record(error: "\(error)", damaged: false)
            }
        }
    }

    private func submitFile(_ node: Node, path: [UInt8]) {
        // On a store whose reads are round trips, start the file's first part on its way while the files
        // queued before it are written (a no-op on a local store).
        if case .chunk(let id, _) = node.content.first { repository.prefetchBlob(id.blob) }
        slots.wait()
        group.enter()
        // A file of one chunk (most small files): fetch and decode it on the other core now, while the
        // writer thread is busy creating the files before it.
        var early: BlobFuture?
        if node.content.count == 1, case .chunk(let id, _) = node.content[0] {
            let future = BlobFuture()
            early = future
            decoders.async { [repository] in
                future.fulfil(Result { () throws(RepositoryError) in try repository.loadBlob(id.blob) })
            }
        }
        let prefetched = early
        queue.async { [self] in
            defer {
                slots.signal()
                group.leave()
            }
            restoreFile(node, path: path, prefetched: prefetched)
        }
    }

    private func restoreFile(_ node: Node, path: [UInt8], prefetched: BlobFuture? = nil) {
        if cancellation?.isCancelled == true { return }
        if isIdentical(node, path: path) {
            applyMetadata(node, path: path, isFile: true)
            shared.withLock {
                $0.files += 1
                $0.unchanged += 1
            }
            return
        }
        let (directory, _) = PathBytes.split(path)
        // Unique within this process by the counter, across processes by the pid; O_EXCL refuses any clash.
        let serial = temporaryCounter.add(1, ordering: .relaxed).oldValue
        let temporary = PathBytes.join(directory, Array(".polyad-restore-\(getpid())-\(serial)".utf8))
        do {
            let fd = try FileSystem.createExclusive(temporary, mode: 0o600)
            var ok = false
            defer {
                FileSystem.close(fd)
                if !ok { try? FileSystem.unlink(temporary) }
            }
            if let prefetched {
                let data = try prefetched.value()
                try data.withUnsafeBytes { b in try FileSystem.pwriteAll(fd, b, offset: 0) }
            } else {
                try writeContent(node, fd: fd)
            }
            if case .hole = node.content.last { try FileSystem.ftruncate(fd, Int64(node.size)) }
            applyMetadata(node, path: temporary, isFile: true)
            try FileSystem.rename(temporary, path)
            ok = true
        } catch let e as RepositoryError {
            record(error: "\(PathBytes.display(path)): \(e)", damaged: e.code == .damaged)
            return
        } catch let e as SystemError {
            record(error: "\(e)", damaged: false, noSpace: e.errno == ENOSPC || e.errno == EDQUOT)
            return
        } catch {
            record(error: "\(error)", damaged: false)
            return
        }
        var verified = false
        if options.verify {
            guard isIdentical(node, path: path) else {
                record(
                    error: "\(PathBytes.display(path)): verification failed: restored bytes differ from the snapshot",
                    damaged: true
                )
                return
            }
            verified = true
        }
        let (files, bytes) = shared.withLock {
            $0.files += 1
            $0.bytes += node.size
            if verified { $0.verified += 1 }
            return ($0.files, $0.bytes)
        }
        if let progress = options.progress, throttle.due() { progress(files, bytes) }
    }

    /// Writes every chunk of `node` at its offset; chunks of one file are fetched in parallel.
    private func writeContent(_ node: Node, fd: Int32) throws {
        var list = [(UInt64, BlobID)]()
        var offset: UInt64 = 0
        for piece in node.content {
            if case .chunk(let id, _) = piece { list.append((offset, id.blob)) }
            offset += piece.length
        }
        let offsets = list
        if offsets.count <= 1 {
            for (o, id) in offsets { try writeChunk(id, at: o, fd: fd) }
            return
        }
        let failure = Mutex<(any Error)?>(nil)
        DispatchQueue.concurrentPerform(iterations: offsets.count) { i in
            if failure.withLock({ $0 != nil }) { return }
            do { try writeChunk(offsets[i].1, at: offsets[i].0, fd: fd) } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
        }
        if let e = failure.withLock({ $0 }) { throw e }
    }

    private func writeChunk(_ id: BlobID, at offset: UInt64, fd: Int32) throws {
        let data = try repository.loadBlob(id)
        try data.withUnsafeBytes { b in try FileSystem.pwriteAll(fd, b, offset: Int64(offset)) }
    }

    /// The file at `path` has exactly the node's content (compared chunk by chunk with keyed ids).
    private func isIdentical(_ node: Node, path: [UInt8]) -> Bool {
        guard let st = try? FileSystem.lstat(path), st.kind == .regular, UInt64(st.size) == node.size,
            let fd = try? FileSystem.openForReading(path)
        else { return false }
        defer { FileSystem.close(fd) }
        var offset: Int64 = 0
        var buffer = [UInt8]()
        let hasHoles = node.content.contains { if case .hole = $0 { true } else { false } }
        let extents =
            hasHoles
            ? ((try? FileSystem.dataExtents(fileDescriptor: fd, size: Int64(st.size))) ?? [0..<Int64(st.size)]) : []
        for piece in node.content {
            let n = Int(piece.length)
            switch piece {
            case .chunk(let id, _):
                buffer = [UInt8](repeating: 0, count: n)
                guard
                    let read = try? buffer.withUnsafeMutableBytes({ b -> Int in
                        try FileSystem.pread(fd, into: b, offset: offset)
                    }), read == n, repository.blobID(buffer) == id.blob
                else { return false }
            case .hole:
                // Only the parts of the hole that hold data on disk need reading.
                let holeEnd = offset + Int64(n)
                for extent in extents where extent.lowerBound < holeEnd && extent.upperBound > offset {
                    var at = max(extent.lowerBound, offset)
                    let end = min(extent.upperBound, holeEnd)
                    while at < end {
                        let step = Int(min(end - at, 1 << 20))
                        buffer = [UInt8](repeating: 0, count: step)
                        guard
                            let read = try? buffer.withUnsafeMutableBytes({ b -> Int in
                                try FileSystem.pread(fd, into: b, offset: at)
                            }), read == step, buffer.withUnsafeBytes(Self.isAllZero)
                        else { return false }
                        at += Int64(step)
                    }
                }
            }
            offset += Int64(n)
        }
        return true
    }

    /// True if every byte is zero (word at a time).
    static func isAllZero(_ b: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let words = b.count / 8
        while i < words {
            if b.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) != 0 { return false }
            i += 1
        }
        for j in (words * 8)..<b.count where b[j] != 0 { return false }
        return true
    }

    private func applyMetadata(_ node: Node, path: [UInt8], isFile: Bool) {
        for x in node.xattrs { try? FileSystem.setExtendedAttribute(path, name: x.name, value: x.value) }
        if options.restoreOwners {
            var uid = node.uid
            var gid = node.gid
            if !node.user.isEmpty, let u = Accounts.uid(forUserName: node.user) { uid = u }
            if !node.group.isEmpty, let g = Accounts.gid(forGroupName: node.group) { gid = g }
            try? FileSystem.changeOwner(path, uid: uid, gid: gid)
        }
        if node.kind != .symlink { try? FileSystem.changeMode(path, mode: node.mode) }
        try? FileSystem.setTimes(
            path,
            access: Timespec(seconds: node.atime.seconds, nanoseconds: node.atime.nanoseconds),
            modification: Timespec(seconds: node.mtime.seconds, nanoseconds: node.mtime.nanoseconds)
        )
    }

    private func record(error: String, damaged: Bool, noSpace: Bool = false) {
        shared.withLock {
            $0.errors.append(error)
            if damaged { $0.damaged = true }
            if noSpace { $0.noSpace = true }
        }
    }
}

extension PathBytes {
    /// Splits a path into its folder and last component.
    static func split(_ path: [UInt8]) -> ([UInt8], [UInt8]) {
        guard let slash = path.lastIndex(of: UInt8(ascii: "/")) else { return ([UInt8(ascii: ".")], path) }
        let dir = slash == 0 ? [UInt8(ascii: "/")] : Array(path[..<slash])
        return (dir, Array(path[(slash + 1)...]))
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// A blob being fetched and decoded on another thread; `value()` waits for it.
final class BlobFuture: Sendable {
    private let result = Mutex<Result<[UInt8], RepositoryError>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    func fulfil(_ r: Result<[UInt8], RepositoryError>) {
        result.withLock { $0 = r }
        done.signal()
    }

    func value() throws(RepositoryError) -> [UInt8] {
        done.wait()
        done.signal()  // later callers do not wait
        return try result.withLock { $0! }.get()
    }
}
