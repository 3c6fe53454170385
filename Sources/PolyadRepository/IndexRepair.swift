import Dispatch
import PolyadFormat
import PolyadStorage
import Synchronization

/// What `repair index` found.
public struct IndexRepairReport: Sendable {
    /// Packs whose headers were read into the new index.
    public var packs = 0
    public var blobs = 0
    /// Packs whose header cannot be read: left out of the index (and in the store, for `verify` to name).
    public var unreadable: [DamagedObject] = []
    /// Index files replaced.
    public var indexFilesReplaced = 0
}

/// Rebuilds the index from the packs alone (`polyad repair index`): every pack's header is read (its trailer
/// and sealed header: two small reads), new index files listing them are written superseding every current
/// index file, and the old files are deleted only after. A lost or damaged index is recovered this way; the
/// packs themselves are not changed.
public struct IndexRepair {
    let repository: Repository
    let lock: StoreLock?

    public init(repository: Repository, lock: StoreLock?) {
        self.repository = repository
        self.lock = lock
    }

    public func run() throws(RepositoryError) -> IndexRepairReport {
        var report = IndexRepairReport()
        let packs = try repository.list(.data)
        let oldIndex = try repository.list(.index)
        let found = Mutex<[(IndexFile.Pack?, DamagedObject?)]>([])
        let repo = repository
        DispatchQueue.concurrentPerform(iterations: packs.count) { i in
            let info = packs[i]
            let reader = PackReader(repository: repo, handle: info.handle)
            do {
                let header = try reader.header(size: info.size)
                found.withLock { $0.append((IndexFile.Pack(id: reader.id, entries: header.entries), nil)) }
            } catch {
                let problem = DamagedObject(object: "data/\(info.handle.name)", problem: "header unreadable: \(error)")
                found.withLock { $0.append((nil, problem)) }
            }
        }
        var listed = [IndexFile.Pack]()
        for (pack, problem) in found.withLock({ $0 }) {
            if let pack { listed.append(pack) }
            if let problem { report.unreadable.append(problem) }
        }
        listed.sort { $0.id.hash < $1.id.hash }
        report.unreadable.sort { $0.object < $1.object }
        report.packs = listed.count
        report.blobs = listed.reduce(0) { $0 + $1.entries.count }
        report.indexFilesReplaced = oldIndex.count

        try lock?.checkHeld()
        let written = try repository.saveIndex(
            for: listed,
            superseding: oldIndex.compactMap { Hash256(hex: $0.handle.name) }
        )
        try lock?.checkHeld()
        for info in oldIndex where !written.contains(info.handle.name) { try repository.removeIfPresent(info.handle) }
        return report
    }
}
