import PolyadFormat
import PolyadStorage

/// What a prune found and did.
public struct PruneReport: Sendable {
    /// Packs the index lists.
    public var packs = 0
    /// Packs holding no blob any snapshot uses (deleted unless a dry run).
    public var unusedPacks = 0
    /// Packs no index file lists: leftovers of interrupted backups (deleted unless a dry run).
    public var strayPacks = 0
    /// Packs kept because some of their blobs are in use, and the bytes of unused blobs they still hold.
    public var partlyUsedPacks = 0
    public var unusedBytesKept: Int64 = 0
    /// Bytes the deleted packs took.
    public var bytesFreed: Int64 = 0
    /// Index files replaced by the new one(s).
    public var indexFilesReplaced = 0
    public var dryRun = false
}

/// Removes from the store what no snapshot uses, in the order the format article requires:
/// 1. mark every blob the snapshots reach (a tree that cannot be read stops the prune: nothing is deleted);
/// 2. write new index files listing the packs that stay and superseding every current index file;
/// 3. delete the superseded index files; then the packs no snapshot uses, and packs no index lists.
///
/// A pack leaves the index before it leaves the store, so a crash at any step leaves a store whose index names
/// only packs that exist (at worst packs no index lists, which the next prune removes). Packs with some blobs in
/// use are kept whole (repacking them is not done yet). Runs under the store's exclusive lock, checked before
/// anything is written or deleted.
public struct Pruner {
    let repository: Repository
    let lock: StoreLock?

    public init(repository: Repository, lock: StoreLock?) {
        self.repository = repository
        self.lock = lock
    }

    public func run(dryRun: Bool) throws(RepositoryError) -> PruneReport {
        var report = PruneReport()
        report.dryRun = dryRun
        try repository.loadIndex()
        let snapshots = try repository.snapshots()

        // 1. Mark.
        var used = Set<BlobID>()
        var failure: RepositoryError?
        TreeWalker(repository: repository).walk(from: snapshots.map { $0.snapshot.tree }) { event in
            switch event {
            case .unreadable(let id, _, let error):
                failure = RepositoryError(
                    .damaged,
                    "tree \(id.hash.shortHex) cannot be read (\(error.message)), so what the snapshots use is not "
                        + "known; nothing was deleted: run `polyad verify` and repair the store first"
                )
                return false
            case .tree(let id, _, _):
                used.insert(id.blob)
            case .node(let node, _):
                for piece in node.content {
                    if case .chunk(let c, _) = piece { used.insert(c.blob) }
                }
            }
            return true
        }
        if let failure { throw failure }

        // Which packs stay: those holding a used blob (with all their entries, kept whole).
        let byPack = repository.index.entriesByPack()
        var keep = [IndexFile.Pack]()
        for (pack, entries) in byPack.sorted(by: { $0.key.hash < $1.key.hash }) {
            let inUse = entries.filter { used.contains($0.id) }
            if !inUse.isEmpty {
                keep.append(IndexFile.Pack(id: pack, entries: entries))
                if inUse.count < entries.count {
                    report.partlyUsedPacks += 1
                    report.unusedBytesKept += entries.filter { !used.contains($0.id) }.reduce(0) {
                        $0 + Int64($1.length)
                    }
                }
            }
        }
        // Every pack not kept goes: unused ones, ones the index lists whose blobs all sit in another pack (two
        // backups stored them at once), and ones no index lists.
        let kept = Set(keep.map { $0.id.hash.hex })
        let present = try repository.list(.data)
        let listed = Set(repository.index.packs.map { $0.hash.hex })
        report.packs = listed.count
        var deletions = [ObjectInfo]()
        for info in present where !kept.contains(info.handle.name) {
            if listed.contains(info.handle.name) { report.unusedPacks += 1 } else { report.strayPacks += 1 }
            report.bytesFreed += info.size
            deletions.append(info)
        }
        let oldIndex = try repository.list(.index)
        report.indexFilesReplaced = oldIndex.count
        guard !dryRun, !deletions.isEmpty else { return report }

        // 2. The new index, superseding every current file, before anything is deleted.
        try lock?.checkHeld()
        let written = try repository.saveIndex(
            for: keep,
            superseding: oldIndex.compactMap { Hash256(hex: $0.handle.name) }
        )

        // 3. The superseded index files, then the packs.
        try lock?.checkHeld()
        for info in oldIndex where !written.contains(info.handle.name) { try repository.removeIfPresent(info.handle) }
        for info in deletions { try repository.removeIfPresent(info.handle) }
        return report
    }
}
