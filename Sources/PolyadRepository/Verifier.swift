import Dispatch
import PolyadCompression
import PolyadCrypto
import PolyadFileSystem
import PolyadFormat
import PolyadStorage
import Synchronization

/// How much `verify` reads.
public struct VerifyOptions: Sendable {
    /// Read every data pack: hash it, authenticate, decompress and re-identify every blob.
    public var readData = false
    /// Read only this fraction (0...1) of the data packs, chosen at random.
    public var readDataSubset: Double?
    /// Check only what this snapshot references.
    public var snapshot: SnapshotID?
    /// Read these packs in full too (a backup's own packs, after it wrote them).
    public var packsToRead: Set<PackID> = []
    /// Called now and then with the packs checked so far and their total.
    public var progress: (@Sendable (_ done: Int, _ total: Int) -> Void)?

    public init(readData: Bool = false, readDataSubset: Double? = nil, snapshot: SnapshotID? = nil) {
        self.readData = readData
        self.readDataSubset = readDataSubset
        self.snapshot = snapshot
    }
}

/// A damaged or missing object and what is wrong with it.
public struct DamagedObject: Sendable, Hashable, CustomStringConvertible {
    /// `kind/name`, e.g. `data/3f9c…`.
    public var object: String
    public var problem: String
    public var description: String { "\(object): \(problem)" }
}

/// What `verify` found.
public struct VerifyReport: Sendable {
    public var snapshotsChecked = 0
    public var treesChecked = 0
    public var packsChecked = 0
    public var packsRead = 0
    public var blobsRead = 0
    public var bytesRead: UInt64 = 0
    public var damaged: [DamagedObject] = []
    /// What the damage hurts: "snapshot 3f9c01ab: /home/alice/file" lines.
    public var affected: [String] = []
    /// The snapshots that reference a damaged blob (those `affected` names), in the order checked.
    public var affectedSnapshots: [SnapshotID] = []
    /// Packs no index file lists (left by an interrupted backup; prune removes them). Not damage.
    public var unreferencedPacks = 0
    /// Packs an index file lists whose every blob the index finds in another pack too: two backups stored the
    /// same blobs at once, each in its own packs (prune removes them). Not damage; they are checked all the same.
    public var duplicatePacks = 0
    public var isClean: Bool { damaged.isEmpty }
}

/// Checks structure, object hashes and (optionally) every byte of a store.
public final class Verifier {
    private let repository: Repository
    private let options: VerifyOptions
    private var report = VerifyReport()
    private var damagedBlobs = Set<BlobID>()

    /// Prepares a check of `repository` as `options` say.
    public init(repository: Repository, options: VerifyOptions) {
        self.repository = repository
        self.options = options
    }

    /// Runs the check; damage is in the report, not thrown.
    public func run() throws(RepositoryError) -> VerifyReport {
        // Key slots and index files were read when the store was opened; check the others' hashes too.
        for info in try repository.list(.keys) {
            guard let bytes = try? KeyRing.load(repository.backend, info.handle) else {
                damage("keys/\(info.handle.name)", "cannot be read")
                continue
            }
            if SHA256.hash(bytes).hexString != info.handle.name {
                damage("keys/\(info.handle.name)", "content does not match its name (SHA-256)")
            }
        }
        for problem in repository.indexProblems { damage(problem.object, problem.problem) }

        var snapshots = [(id: SnapshotID, snapshot: Snapshot)]()
        for info in try repository.list(.snapshots) {
            guard let h = Hash256(hex: info.handle.name) else { continue }
            if let only = options.snapshot, only.hash != h { continue }
            do {
                let plain = try repository.loadObject(info.handle, aad: AdditionalData.snapshot)
                snapshots.append((SnapshotID(h), try Snapshot(decoding: plain)))
            } catch {
                damage("snapshots/\(info.handle.name)", "\(error)")
            }
        }
        report.snapshotsChecked = snapshots.count

        // Structure: every tree loads and every referenced blob is indexed.
        var seenTrees = Set<BlobID>()
        var referencedData = Set<BlobID>()
        TreeWalker(repository: self.repository).walk(from: snapshots.map { $0.snapshot.tree }) { event in
            switch event {
            case .unreadable(let id, _, let error):
                seenTrees.insert(id.blob)
                if let location = self.repository.index.lookup(id.blob) {
                    damage("data/\(location.pack.hash.hex)", "tree blob \(id.hash.shortHex): \(error.message)")
                } else {
                    damage("tree \(id.hash.shortHex)", "referenced but in no index (missing)")
                }
                damagedBlobs.insert(id.blob)
            case .tree(let id, _, _):
                seenTrees.insert(id.blob)
                report.treesChecked += 1
            case .node(let node, _):
                for piece in node.content {
                    guard case .chunk(let cid, _) = piece else { continue }
                    if referencedData.insert(cid.blob).inserted, self.repository.index.lookup(cid.blob) == nil {
                        damage("chunk \(cid.hash.shortHex)", "referenced but in no index (missing)")
                        damagedBlobs.insert(cid.blob)
                    }
                }
            }
            return true
        }

        // Packs: every indexed pack exists; its header matches the index; with --read-data, every byte.
        // The index holds one location per blob: when two backups stored the same blobs at once, the packs of
        // one of them are listed by its index file but hold no blob the index points to. They are duplicates,
        // not leftovers of an interrupted backup (a pack no index file lists).
        let byPack = repository.index.entriesByPack()
        let listed = Set(repository.index.packs)
        let duplicates = listed.subtracting(byPack.keys)
        let present = Dictionary(
            (try repository.list(.data)).map { ($0.handle.name, $0.size) },
            uniquingKeysWith: { a, _ in a }
        )
        report.unreferencedPacks =
            present.keys.filter { Hash256(hex: $0).map { !listed.contains(PackID($0)) } ?? false }.count
        report.duplicatePacks = duplicates.filter { present[$0.hash.hex] != nil }.count
        var packs = byPack.keys.sorted { $0.hash < $1.hash }
        if options.snapshot != nil {
            let wanted = referencedData.union(seenTrees)
            packs = packs.filter { p in byPack[p]!.contains { wanted.contains($0.id) } }
        } else {
            packs += duplicates.sorted { $0.hash < $1.hash }
        }
        var selected = options.packsToRead.intersection(packs)
        if options.readData {
            selected = Set(packs)
        } else if let f = options.readDataSubset {
            let n = Int((Double(packs.count) * max(0, min(1, f))).rounded(.up))
            selected.formUnion(packs.shuffled().prefix(n))
        }
        let toRead = selected
        let repository = self.repository
        let results = Mutex([(PackID, PackCheck)]())
        let list = packs
        let progress = options.progress
        let throttle = ProgressThrottle()
        DispatchQueue.concurrentPerform(iterations: list.count) { i in
            let pack = list[i]
            let entries = byPack[pack] ?? []
            let handle = ObjectHandle(kind: .data, name: pack.hash.hex)
            var check = PackCheck()
            if present[handle.name] == nil {
                check.problems.append(
                    DamagedObject(object: "data/\(handle.name)", problem: "missing (the index lists it)")
                )
                check.failedBlobs = Set(entries.map(\.id))
            } else if toRead.contains(pack) {
                check = Self.readPack(handle, entries: entries, repository: repository)
            } else {
                check.problems = Self.checkHeader(
                    handle,
                    entries: entries,
                    size: present[handle.name] ?? 0,
                    repository: repository
                )
                if !check.problems.isEmpty {
                    // The header is not what the index says, but readers go by the index: check each blob.
                    let blobs = Self.checkBlobs(PackReader(repository: repository, handle: handle), entries: entries)
                    check.problems += blobs.problems
                    check.failedBlobs = blobs.failed
                }
            }
            let done = results.withLock {
                $0.append((pack, check))
                return $0.count
            }
            if let progress, throttle.due() { progress(done, list.count) }
        }
        for (pack, check) in results.withLock({ $0 }) {
            report.packsChecked += 1
            if toRead.contains(pack) { report.packsRead += 1 }
            report.blobsRead += check.blobs
            report.bytesRead += check.bytes
            report.damaged.append(contentsOf: check.problems)
            // Only the blobs that fail their own check are damaged: a pack's wrong SHA-256 or bad header does not
            // make its intact blobs unreadable. (A duplicate pack's blobs are read from their other pack.)
            if byPack[pack] != nil { damagedBlobs.formUnion(check.failedBlobs) }
        }
        report.damaged.sort { $0.object < $1.object }
        if !damagedBlobs.isEmpty { findAffected(snapshots) }
        return report
    }

    private func damage(_ object: String, _ problem: String) {
        report.damaged.append(DamagedObject(object: object, problem: problem))
    }

    /// Reads a pack's trailer and header and compares the header with the index.
    private static func checkHeader(
        _ handle: ObjectHandle,
        entries: [PackEntry],
        size: Int64,
        repository: Repository
    ) -> [DamagedObject] {
        let name = "data/\(handle.name)"
        do {
            let header = try PackReader(repository: repository, handle: handle).header(size: size)
            let inHeader = Set(header.entries)
            let missing = entries.filter { !inHeader.contains($0) }
            if !missing.isEmpty {
                return [DamagedObject(object: name, problem: "\(missing.count) indexed blob(s) are not in its header")]
            }
            return []
        } catch {
            return [DamagedObject(object: name, problem: "header unreadable: \(error)")]
        }
    }

    /// What checking one pack found.
    private struct PackCheck: Sendable {
        var problems = [DamagedObject]()
        /// The blobs that are themselves unreadable (missing, cut off, not authentic, or the wrong content).
        var failedBlobs = Set<BlobID>()
        var blobs = 0
        var bytes: UInt64 = 0
    }

    /// Reads a whole pack: its hash and every blob (those the index puts there; for a duplicate pack, which the
    /// index lists no blob in, those its header lists). A pack that cannot be read whole is checked blob by blob.
    private static func readPack(_ handle: ObjectHandle, entries: [PackEntry], repository: Repository) -> PackCheck {
        let name = "data/\(handle.name)"
        let reader = PackReader(repository: repository, handle: handle)
        var check = PackCheck()
        let bytes: [UInt8]
        do { bytes = try repository.backend.load(handle, offset: 0, length: nil) } catch {
            check.problems.append(DamagedObject(object: name, problem: "\(error)"))
            let blobs = checkBlobs(reader, entries: entries)
            check.problems += blobs.problems
            check.failedBlobs = blobs.failed
            return check
        }
        check.bytes = UInt64(bytes.count)
        if SHA256.hash(bytes).hexString != handle.name {
            check.problems.append(
                DamagedObject(object: name, problem: "content does not match its name (SHA-256): the file was altered")
            )
        }
        var entries = entries
        if entries.isEmpty {
            do { entries = try reader.header(in: bytes).entries } catch {
                check.problems.append(DamagedObject(object: name, problem: "header unreadable: \(error)"))
            }
        }
        for e in entries {
            let end = Int(e.offset) + Int(e.length)
            guard end <= bytes.count else {
                check.problems.append(
                    DamagedObject(object: name, problem: "blob \(e.id.shortHex) lies beyond the end of the pack")
                )
                check.failedBlobs.insert(e.id)
                continue
            }
            if let problem = reader.problem(with: Array(bytes[Int(e.offset)..<end]), e) {
                check.problems.append(DamagedObject(object: name, problem: problem))
                check.failedBlobs.insert(e.id)
            } else {
                check.blobs += 1
            }
        }
        return check
    }

    /// Reads each blob of a damaged pack on its own (at its index offset and length) and checks it.
    private static func checkBlobs(
        _ reader: PackReader,
        entries: [PackEntry]
    ) -> (problems: [DamagedObject], failed: Set<BlobID>) {
        let name = "data/\(reader.handle.name)"
        var problems = [DamagedObject]()
        var failed = Set<BlobID>()
        for e in entries {
            let sealed: [UInt8]
            do {
                sealed = try reader.sealedBlob(e)
            } catch {
                problems.append(
                    DamagedObject(
                        object: name,
                        problem: "\(e.type) blob \(e.id.shortHex) at offset \(e.offset) cannot be read: \(error)"
                    )
                )
                failed.insert(e.id)
                continue
            }
            if let problem = reader.problem(with: sealed, e) {
                problems.append(DamagedObject(object: name, problem: problem))
                failed.insert(e.id)
            }
        }
        return (problems, failed)
    }

    /// Lists the snapshots and paths that reference a damaged blob.
    private func findAffected(_ snapshots: [(id: SnapshotID, snapshot: Snapshot)]) {
        var walker = TreeWalker(repository: repository)
        walker.visitEachTreeOnce = false
        walker.tracksPaths = true
        for (id, snapshot) in snapshots {
            if damagedBlobs.contains(snapshot.tree.blob) {
                report.affected.append("snapshot \(id.short): the whole snapshot (its root tree)")
                report.affectedSnapshots.append(id)
                continue
            }
            let before = report.affected.count
            var lines = 0
            walker.walk(from: [snapshot.tree]) { event in
                guard case .node(let node, let path) = event else { return true }
                if node.content.contains(where: {
                    if case .chunk(let c, _) = $0 { damagedBlobs.contains(c.blob) } else { false }
                }) {
                    lines += 1
                    if lines <= 1000 { report.affected.append("snapshot \(id.short): \(PathBytes.display(path))") }
                }
                if let sub = node.subtree, damagedBlobs.contains(sub.blob) {
                    report.affected.append("snapshot \(id.short): \(PathBytes.display(path))/ (folder listing)")
                    return false
                }
                return true
            }
            if lines > 1000 { report.affected.append("snapshot \(id.short): … and \(lines - 1000) more files") }
            if report.affected.count > before { report.affectedSnapshots.append(id) }
        }
    }
}
