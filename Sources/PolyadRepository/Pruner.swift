import Foundation
import PolyadCrypto
import PolyadFormat
import PolyadStorage

/// How much unused data a prune may leave in packs that are still partly in use (restic's `--max-unused`).
public enum UnusedLimit: Sendable, Equatable {
    /// Unused bytes may make up at most this percentage of what stays (0 ≤ p < 100): packs are repacked, the
    /// most wasteful first, until that holds.
    case percent(Double)
    /// At most this many unused bytes stay.
    case bytes(Int64)
    /// Never repack; packs with any blob in use are kept whole.
    case unlimited

    /// restic's default, and Polyad's.
    public static let `default` = UnusedLimit.percent(5)

    /// Parses restic's forms: `5%`, `unlimited`, or a size in bytes with an optional k/m/g/t suffix (powers
    /// of 1024: `500M`, `2G`); nil for anything else.
    public init?(_ text: String) {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t == "unlimited" {
            self = .unlimited
        } else if t.hasSuffix("%") {
            guard let p = Double(t.dropLast()), p.isFinite, p >= 0, p < 100 else { return nil }
            self = .percent(p)
        } else {
            let units: [Character: Int64] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40]
            var digits = Substring(t)
            var scale: Int64 = 1
            if let last = digits.last, let u = units[last] {
                scale = u
                digits = digits.dropLast()
            }
            if digits.hasSuffix("b") && scale == 1 { digits = digits.dropLast() }
            guard let n = Int64(digits), n >= 0, n <= Int64.max / scale else { return nil }
            self = .bytes(n * scale)
        }
    }

    /// The unused bytes allowed beside `used` bytes in use.
    func allowance(used: Int64) -> Int64 {
        switch self {
        case .percent(let p): return Int64(Double(used) * p / (100 - p))
        case .bytes(let n): return n
        case .unlimited: return .max
        }
    }
}

/// What a prune found and did.
public struct PruneReport: Sendable {
    /// Packs the index lists.
    public var packs = 0
    /// Packs holding no blob any snapshot uses (deleted unless a dry run).
    public var unusedPacks = 0
    /// Packs no index file lists: leftovers of interrupted backups (deleted unless a dry run).
    public var strayPacks = 0
    /// Packs partly in use that were repacked: their used blobs copied into new packs, then deleted.
    public var repackedPacks = 0
    /// Bytes of used blobs copied into new packs, and the new packs written.
    public var bytesRepacked: Int64 = 0
    public var newPacks = 0
    /// Packs kept because some of their blobs are in use, and the bytes of unused blobs they still hold.
    public var partlyUsedPacks = 0
    public var unusedBytesKept: Int64 = 0
    /// Bytes of blobs in use.
    public var usedBytes: Int64 = 0
    /// Bytes the deleted packs took (less the new packs' bytes: what the store shrinks by).
    public var bytesFreed: Int64 = 0
    /// Index files replaced by the new one(s).
    public var indexFilesReplaced = 0
    public var dryRun = false

    public init() {}
}

/// Removes from the store what no snapshot uses, in the order the format article requires:
/// 1. mark every blob the snapshots reach (a tree that cannot be read, or a blob the index lacks, stops the
///    prune: nothing is deleted);
/// 2. copy the used blobs of mostly unused packs into new packs (`maxUnused`), which no index lists yet;
/// 3. write new index files listing the packs that stay and the new ones, superseding every current index file;
/// 4. delete the superseded index files; then the packs no snapshot uses, the repacked ones, and packs no
///    index lists.
///
/// A pack leaves the index before it leaves the store, so a crash at any step leaves a store whose index names
/// only packs that exist (at worst packs no index lists, which the next prune removes). Runs under the store's
/// exclusive lock, checked before anything is written or deleted.
///
/// Memory: the index's own table is read in place (``MasterIndex/frozen()``); marks are one bit per blob, the
/// per-pack order four bytes per blob, and the new index is written file by file as it is built, so a prune
/// needs the index plus about a tenth of it.
public struct Pruner {
    let repository: Repository
    let lock: StoreLock?
    /// The target size of the packs a repack writes.
    let packSize: Int
    /// How much unused data may stay in partly used packs.
    let maxUnused: UnusedLimit
    /// Blobs kept beside what the snapshots use: the chunks of files a mount in this process has open (of
    /// snapshots a cleanup just forgot). Ones the index does not list are passed over.
    let extraBlobs: [BlobID]

    public init(
        repository: Repository,
        lock: StoreLock?,
        packSize: Int = 16 << 20,
        maxUnused: UnusedLimit = .default,
        extraBlobs: [BlobID] = []
    ) {
        self.repository = repository
        self.lock = lock
        self.packSize = packSize
        self.maxUnused = maxUnused
        self.extraBlobs = extraBlobs
    }

    /// What happens to one pack the index lists.
    private enum Fate { case keep, delete, repack }

    /// Prunes (or, with `dryRun`, says what it would do). After a prune, with `reloadingIndex`, this process's
    /// index is read again from the new files, so the repository goes on serving reads (a process that exits
    /// after the prune passes false).
    public func run(dryRun: Bool, reloadingIndex: Bool = true) throws(RepositoryError) -> PruneReport {
        let report = try prune(dryRun: dryRun)
        // Only now, with the prune's view of the old table gone, so the two are never held at once.
        if !dryRun && reloadingIndex { try repository.reloadIndex() }
        return report
    }

    private func prune(dryRun: Bool) throws(RepositoryError) -> PruneReport {
        var report = PruneReport()
        report.dryRun = dryRun
        try repository.loadIndex()
        let snapshots = try repository.snapshots()
        let table = repository.index.frozen()

        // 1. Mark, one bit per record of the table.
        var used = try mark(from: snapshots.map { $0.snapshot.tree }, in: table)
        for blob in extraBlobs { if let i = table.position(of: blob.hash) { used.insert(i) } }

        // Per pack: bytes in use and not.
        var usedBytes = [Int64](repeating: 0, count: table.packs.count)
        var unusedBytes = [Int64](repeating: 0, count: table.packs.count)
        for i in 0..<table.count {
            let p = table.pack(at: i)
            let length = Int64(table.records[i].length)
            if used[i] { usedBytes[p] += length } else { unusedBytes[p] += length }
        }
        var fate = [Fate](repeating: .keep, count: table.packs.count)
        var partly = [Int]()
        for p in fate.indices {
            report.usedBytes += usedBytes[p]
            if usedBytes[p] == 0 {
                fate[p] = .delete  // no blob in use, or every blob's record points into another pack
            } else if unusedBytes[p] > 0 {
                partly.append(p)
            }
        }
        // Repack the most wasteful packs first until the unused bytes left are within the limit.
        var unusedLeft = partly.reduce(Int64(0)) { $0 + unusedBytes[$1] }
        let allowance = maxUnused.allowance(used: report.usedBytes)
        partly.sort {
            let a = Double(unusedBytes[$0]) / Double(usedBytes[$0] + unusedBytes[$0])
            let b = Double(unusedBytes[$1]) / Double(usedBytes[$1] + unusedBytes[$1])
            return a != b ? a > b : table.packs[$0].hash < table.packs[$1].hash
        }
        for p in partly {
            if unusedLeft > allowance {
                fate[p] = .repack
                unusedLeft -= unusedBytes[p]
                report.repackedPacks += 1
                report.bytesRepacked += usedBytes[p]
            } else {
                report.partlyUsedPacks += 1
                report.unusedBytesKept += unusedBytes[p]
            }
        }

        // Every pack in the store not kept goes: unused and repacked ones, and ones no index lists.
        var fateByName = [String: Fate]()
        fateByName.reserveCapacity(table.packs.count)
        for p in fate.indices { fateByName[table.packs[p].hash.hex] = fate[p] }
        report.packs = table.packs.count
        let present = try repository.list(.data)
        var deletions = [ObjectInfo]()
        report.unusedPacks = fate.filter { $0 == .delete }.count
        for info in present {
            switch fateByName[info.handle.name] {
            case .keep: continue
            case .repack, .delete: break  // counted above
            case nil: report.strayPacks += 1
            }
            report.bytesFreed += info.size
            deletions.append(info)
        }
        let oldIndex = try repository.list(.index)
        report.indexFilesReplaced = oldIndex.count
        // (An unused pack the index lists but the store lacks changes only the index.)
        guard !dryRun, !deletions.isEmpty || fate.contains(where: { $0 != .keep }) else {
            report.bytesFreed -= report.bytesRepacked
            return report
        }

        // Positions of the table's records grouped by pack (a counting sort): the kept packs' entries for the
        // new index and the used blobs of the packs to repack, pack by pack.
        var start = [Int](repeating: 0, count: table.packs.count + 1)
        for i in 0..<table.count { start[table.pack(at: i) + 1] += 1 }
        for p in 0..<table.packs.count { start[p + 1] += start[p] }
        var order = [UInt32](repeating: 0, count: table.count)
        var next = start
        for i in 0..<table.count {
            let p = table.pack(at: i)
            order[next[p]] = UInt32(i)
            next[p] += 1
        }
        next = []

        // 2. Repack: the used blobs of the packs to repack, copied sealed as they are into new packs.
        try lock?.checkHeld()
        var newPacks = [IndexFile.Pack]()
        var repackedBytes: Int64 = 0
        if report.repackedPacks > 0 {
            let packers = [BlobType.data, .tree].map {
                Packer(repository: repository, type: $0, targetSize: packSize, indexing: false)
            }
            for p in fate.indices where fate[p] == .repack {
                try repack(pack: table.packs[p], positions: order[start[p]..<start[p + 1]], used: used, table: table) {
                    entry,
                    sealed throws(RepositoryError) in
                    try packers[entry.type == .data ? 0 : 1].add(
                        id: entry.id,
                        sealed: sealed,
                        rawLength: Int(entry.rawLength)
                    )
                }
            }
            for packer in packers {
                try packer.flush()
                newPacks += packer.packs
                repackedBytes += Int64(packer.bytesStored)
            }
            report.newPacks = newPacks.count
        }
        report.bytesFreed -= repackedBytes

        // 3. The new index, superseding every current file, before anything is deleted.
        try lock?.checkHeld()
        var writer = IndexWriter(
            repository: repository,
            superseding: oldIndex.compactMap { Hash256(hex: $0.handle.name) }
        )
        for p in fate.indices where fate[p] == .keep {
            let entries = order[start[p]..<start[p + 1]].map { table.entry(at: Int($0)) }
            try writer.append(IndexFile.Pack(id: table.packs[p], entries: entries))
        }
        for pack in newPacks { try writer.append(pack) }
        let written = try writer.finish()

        // 4. The superseded index files, then the packs.
        try lock?.checkHeld()
        for info in oldIndex where !written.contains(info.handle.name) { try repository.removeIfPresent(info.handle) }
        for info in deletions { try repository.removeIfPresent(info.handle) }
        return report
    }

    /// Marks every blob the trees `roots` reach, as bits by position in `table`.
    private func mark(from roots: [TreeID], in table: IndexTable) throws(RepositoryError) -> BitSet {
        var used = BitSet(count: table.count)
        var failure: RepositoryError?
        func markBlob(_ id: BlobID, _ what: String) -> Bool {
            guard let i = table.position(of: id.hash) else {
                failure = RepositoryError(
                    .damaged,
                    "\(what) \(id.shortHex) is used by a snapshot but no index file lists it; nothing was deleted: "
                        + "run `polyad repair index`, then `polyad verify`"
                )
                return false
            }
            used.insert(i)
            return true
        }
        TreeWalker(repository: repository).walk(from: roots) { event in
            switch event {
            case .unreadable(let id, _, let error):
                failure = RepositoryError(
                    .damaged,
                    "tree \(id.hash.shortHex) cannot be read (\(error.message)), so what the snapshots use is not "
                        + "known; nothing was deleted: run `polyad verify` and repair the store first"
                )
                return false
            case .tree(let id, _, _):
                return markBlob(id.blob, "tree")
            case .node(let node, _):
                for piece in node.content {
                    if case .chunk(let c, _) = piece, !markBlob(c.blob, "data blob") { return false }
                }
            }
            return failure == nil
        }
        if let failure { throw failure }
        return used
    }

    /// Reads `pack` whole and hands each used blob's sealed bytes to `copy`. The pack must match its name
    /// (SHA-256); if it does not, each used blob must still authenticate, or the prune stops naming the pack.
    private func repack(
        pack: PackID,
        positions: ArraySlice<UInt32>,
        used: BitSet,
        table: IndexTable,
        copy: (PackEntry, [UInt8]) throws(RepositoryError) -> Void
    ) throws(RepositoryError) {
        let handle = ObjectHandle(kind: .data, name: pack.hash.hex)
        let bytes = try KeyRing.load(repository.backend, handle)
        let intact = SHA256.hash(bytes).hexString == handle.name
        let reader = PackReader(repository: repository, handle: handle)
        for i in positions where used[Int(i)] {
            let entry = table.entry(at: Int(i))
            let end = Int(entry.offset) + Int(entry.length)
            guard end <= bytes.count else {
                throw RepositoryError.damaged(
                    "data/\(handle.name)",
                    "it is shorter than its index says; nothing was deleted"
                )
            }
            let sealed = Array(bytes[Int(entry.offset)..<end])
            if !intact, let problem = reader.problem(with: sealed, entry) {
                throw RepositoryError.damaged(
                    "data/\(handle.name)",
                    "\(problem); nothing was deleted: run `polyad verify --read-data` and repair the store"
                )
            }
            try copy(entry, sealed)
        }
    }
}

/// A fixed-size set of positions, one bit each.
struct BitSet {
    private var words: [UInt64]

    init(count: Int) { words = [UInt64](repeating: 0, count: (count + 63) / 64) }

    subscript(i: Int) -> Bool { words[i >> 6] & (1 << UInt64(i & 63)) != 0 }

    mutating func insert(_ i: Int) { words[i >> 6] |= 1 << UInt64(i & 63) }
}
