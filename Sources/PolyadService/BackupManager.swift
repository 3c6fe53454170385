import Foundation
import PolyadConfig
import PolyadFileSystem
import PolyadFormat
import PolyadMirror
import PolyadRepository
import PolyadStorage
import Synchronization

/// The library API (README, "The library"), mirroring the seed's `BackupManager`: the CLI and the mount are thin layers
/// over it. Opens the store described by a `Configuration` on first use and keeps it open.
public final class BackupManager: Sendable {
    public let configuration: Configuration
    private let environment: [String: String]
    /// How locks are refreshed and when they are stale (`POLYAD_LOCK_*_SECONDS` may shorten them for tests).
    public var lockTiming: LockTiming { LockTiming.from(environment: environment) }
    private let opened = Mutex<Repository?>(nil)
    private let madeBackend = Mutex<(any Backend)?>(nil)
    /// Set by a signal handler to stop long work at the next safe point.
    public let cancellation = Cancellation()

    /// - Parameters:
    ///   - config: the parsed mount.conf.
    ///   - environment: where `POLYAD_PASSWORD` is looked up, and `XDG_STATE_HOME` for the local state
    ///     (default: the process environment).
    public init(config: Configuration, environment: [String: String] = ProcessInfo.processInfo.environment) {
        configuration = config
        self.environment = environment
    }

    /// The store's backend: `local_dir`, `s3_bucket`, or a mirror of both.
    public func backend() throws(RepositoryError) -> any Backend {
        if let b = madeBackend.withLock({ $0 }) { return b }
        let b = try BackendFactory.backend(for: configuration, environment: environment)
        madeBackend.withLock { $0 = b }
        return b
    }

    /// Creates the store with one key slot for `passphrase` (or the configured one), labelled `label`.
    @discardableResult
    public func initialize(passphrase: [UInt8]? = nil, label: String? = nil) throws -> Repository {
        let secret = try passphrase ?? configuration.passphrase(environment: environment)
        let repo = try Repository.create(backend: backend(), passphrase: secret, label: label)
        opened.withLock { $0 = repo }
        return repo
    }

    /// The open store (opened on first use). With `indexInBackground` the index is read on another thread
    /// (for a mount that should be ready before a large index is read; lookups wait for it).
    public func repository(indexInBackground: Bool = false) throws -> Repository {
        if let r = opened.withLock({ $0 }) { return r }
        // These bytes are ours and wiped once the key is derived; the Strings the passphrase came through
        // (`$POLYAD_PASSWORD`, the config's `encryption_key`) cannot be wiped in Swift.
        var secret = try configuration.passphrase(environment: environment)
        defer { KeyRing.wipe(&secret) }
        let repo = try Repository.open(backend: backend(), passphrase: secret, indexInBackground: indexInBackground)
        opened.withLock { $0 = repo }
        // On this machine only: the store is not written when a key is used (read-only users, S3 requests).
        LocalState.recordKeyUse(storeID: repo.config.id, environment: environment, slot: repo.key.slot)
        return repo
    }

    // MARK: Keys

    /// The store's key slots, oldest first, with when each last opened the store on this machine.
    public func keys() throws -> [KeyInfo] {
        let repo = try repository()
        let used = LocalState.keysLastUsed(storeID: repo.config.id, environment: environment)
        return try repo.keys().map { k in
            KeyInfo(
                id: k.id,
                inUse: k.id == repo.key.slot,
                created: TimeFormat.iso8601(k.slot.created),
                hostname: k.slot.hostname,
                username: k.slot.username,
                label: k.slot.label,
                kdf: k.slot.kdf,
                n: k.slot.n,
                r: k.slot.r,
                p: k.slot.p,
                lastUsed: used[k.id]
            )
        }
    }

    // MARK: Backup

    /// Backs up files and folders (given as paths; stored under their absolute path).
    public func createBackup(
        paths: [String],
        tags: [String] = [],
        host: String? = nil,
        excludes: [String] = [],
        oneFileSystem: Bool = false,
        progress: (@Sendable (BackupProgress) -> Void)? = nil
    ) throws -> BackupResult {
        var options = BackupOptions(paths: paths.map { Array($0.utf8) })
        options.tags = tags
        options.host = host
        options.excludes = excludes
        options.oneFileSystem = oneFileSystem
        return try createBackup(options: options, progress: progress)
    }

    /// Backs up with full control over the options.
    public func createBackup(
        options: BackupOptions,
        progress: (@Sendable (BackupProgress) -> Void)? = nil
    ) throws -> BackupResult {
        var options = options
        options.compressionLevel = configuration.compressionLevel
        options.packSize = configuration.packSizeMiB << 20
        let repo = try repository()
        let lock = try repo.lock(exclusive: false, operation: "backup", timing: lockTiming)
        defer { lock.release() }
        options.lockCheck = { () throws(RepositoryError) in try lock.checkHeld() }
        do {
            let result = try Archiver(
                repository: repo,
                options: options,
                progress: progress,
                cancellation: cancellation
            ).run()
            if configuration.verifyIntegrity {
                var check = VerifyOptions(snapshot: result.id)
                check.packsToRead = result.packsWritten
                let report = try Verifier(repository: repo, options: check).run()
                if !report.isClean {
                    throw RepositoryError(
                        .damaged,
                        "the backup was written but does not verify: "
                            + report.damaged.map(\.description).joined(separator: "; ")
                    )
                }
            }
            LocalState.recordRun(
                storeID: repo.config.id,
                environment: environment,
                "backup",
                result.snapshot.summary.errors > 0 ? "partial" : "success",
                added: Int64(clamping: result.snapshot.summary.addedBytes)
            )
            return result
        } catch {
            LocalState.recordFailure(storeID: repo.config.id, environment: environment, message: "\(error)")
            throw error
        }
    }

    /// Backs up in-memory data as one file (named by `metadata["name"]`, default "data") in a new snapshot.
    public func createBackup(data: [UInt8], metadata: [String: String] = [:]) throws -> BackupResult {
        let scratch = try PrivateScratch()
        defer { scratch.remove() }
        let name = metadata["name"].flatMap { $0.isEmpty || $0.contains("/") ? nil : $0 } ?? "data"
        let file = scratch.path + "/" + name
        try Data(data).write(to: URL(fileURLWithPath: file))
        var options = BackupOptions(paths: [Array(file.utf8)])
        options.metadata = metadata
        options.tags = ["data"]
        return try createBackup(options: options)
    }

    /// The content of a snapshot made by `createBackup(data:metadata:)` (or of its only file).
    public func readData(_ id: String) throws -> [UInt8] {
        let repo = try repository()
        let (_, snapshot) = try repo.findSnapshot(id)
        var tree = try repo.loadTree(snapshot.tree)
        while true {
            guard tree.nodes.count == 1, let node = tree.nodes.first else {
                throw RepositoryError(.invalidArgument, "snapshot \(id) holds more than one file; use restoreBackup")
            }
            if node.kind == .file {
                var out = [UInt8]()
                out.reserveCapacity(Int(node.size))
                for piece in node.content {
                    switch piece {
                    case .chunk(let c, _): out += try repo.loadBlob(c.blob)
                    case .hole(let n): out += [UInt8](repeating: 0, count: Int(n))
                    }
                }
                return out
            }
            guard let sub = node.subtree else { throw RepositoryError(.notFound, "snapshot \(id) holds no file") }
            tree = try repo.loadTree(sub)
        }
    }

    // MARK: Listing, verify, restore, statistics

    /// Every snapshot, oldest first.
    public func snapshots() throws -> [SnapshotInfo] {
        try repository().snapshots().map { SnapshotInfo(id: $0.id, snapshot: $0.snapshot) }
    }

    /// What `forget` decided for each snapshot it judged, and whether it removed the forgotten ones.
    public struct ForgetResult: Sendable {
        public var decisions: [Retention.Decision]
        public var removed: Bool
        public var forgotten: [Retention.Decision] { decisions.filter { !$0.isKept } }
    }

    /// Forgets snapshots: those named by `ids` (ids, prefixes or `latest`), or else those the config's retention
    /// (`retention_days` and `retention:`, or `policy` in place of `retention:`) does not keep, grouped by `grouping`. With `dryRun` nothing is
    /// removed. Only the snapshot objects go; their data stays until a prune. Holds the store's exclusive lock.
    ///
    /// - Throws: `.invalidArgument` (exit 2) when no snapshot is named and no retention rule is set.
    public func forget(
        ids: [String] = [],
        policy: RetentionPolicy? = nil,
        grouping: Retention.Grouping = [.host, .paths],
        dryRun: Bool = false,
        now: Date = Date()
    ) throws -> ForgetResult {
        let repo = try repository()
        let lock = try repo.lock(exclusive: !dryRun, operation: "forget", timing: lockTiming)
        defer { lock.release() }
        let all = try repo.snapshots()
        func candidate(_ s: (id: SnapshotID, snapshot: Snapshot)) -> Retention.Candidate {
            Retention.Candidate(
                id: s.id.hash.hex,
                time: Date(
                    timeIntervalSince1970: Double(s.snapshot.time.seconds) + Double(s.snapshot.time.nanoseconds) / 1e9
                ),
                host: s.snapshot.hostname,
                paths: s.snapshot.paths,
                tags: s.snapshot.tags
            )
        }
        var decisions: [Retention.Decision]
        if ids.isEmpty {
            let retention = Retention(
                policy: policy ?? configuration.retention,
                retentionDays: configuration.retentionDays,
                grouping: grouping
            )
            guard retention.hasRules else {
                throw RepositoryError(
                    .invalidArgument,
                    "no retention rule is set and no snapshot named: set backup.retention_days or retention: "
                        + "keep_last/keep_daily/… in mount.conf, or give the ids to forget; nothing was removed"
                )
            }
            decisions = retention.decide(all.map(candidate), now: now)
        } else {
            var named = Set<String>()
            for id in ids { named.insert(try repo.findSnapshot(id).id.hash.hex) }
            decisions = all.filter { named.contains($0.id.hash.hex) }.map {
                Retention.Decision(snapshot: candidate($0), group: "named", reasons: [])
            }
        }
        if !dryRun {
            for d in decisions where !d.isKept {
                guard let id = Hash256(hex: d.snapshot.id) else { continue }
                try repo.removeSnapshot(SnapshotID(id))
            }
        }
        return ForgetResult(decisions: decisions, removed: !dryRun)
    }

    /// Deletes the packs no snapshot uses (and packs no index lists), after writing the index that no longer
    /// lists them; packs partly in use are repacked until their unused bytes are within `maxUnused`. With
    /// `dryRun` it only says what it would do. Holds the store's exclusive lock.
    /// `keeping` names blobs to keep beside what the snapshots use (a mount's open files). With `lastUse` the
    /// store is not read again after the prune (a command that ends with it saves reading the new index).
    public func prune(
        dryRun: Bool = false,
        maxUnused: UnusedLimit = .default,
        keeping extraBlobs: [BlobID] = [],
        lastUse: Bool = false
    ) throws -> PruneReport {
        let repo = try repository()
        let lock = try repo.lock(exclusive: true, operation: "prune", timing: lockTiming)
        defer { lock.release() }
        let report = try Pruner(
            repository: repo,
            lock: lock,
            packSize: configuration.packSizeMiB << 20,
            maxUnused: maxUnused,
            extraBlobs: extraBlobs
        ).run(dryRun: dryRun, reloadingIndex: !lastUse)
        if !dryRun { LocalState.recordPrune(storeID: repo.config.id, environment: environment, report) }
        return report
    }

    /// Rebuilds the index from the packs' headers (`polyad repair index`), under the exclusive lock.
    public func repairIndex() throws -> IndexRepairReport {
        let repo = try repository()
        let lock = try repo.lock(exclusive: true, operation: "repair index", timing: lockTiming)
        defer { lock.release() }
        return try IndexRepair(repository: repo, lock: lock).run()
    }

    /// Verifies the store, or only what snapshot `id` references (then every byte of it is read).
    public func verifyBackupIntegrity(_ id: String? = nil, readData: Bool = true) throws -> VerifyReport {
        let repo = try repository()
        var options = VerifyOptions(readData: readData)
        if let id { options.snapshot = try repo.findSnapshot(id).id }
        return try verify(options: options)
    }

    /// Verifies with full control over the options.
    public func verify(options: VerifyOptions) throws -> VerifyReport {
        let repo = try repository()
        let lock = try repo.lock(exclusive: false, operation: "verify", timing: lockTiming)
        defer { lock.release() }
        let report = try Verifier(repository: repo, options: options).run()
        // A whole check counts; the one after each backup (`verify_integrity`) is part of the backup.
        if options.snapshot == nil {
            LocalState.recordRun(
                storeID: repo.config.id,
                environment: environment,
                "verify",
                report.isClean ? "clean" : "damaged"
            )
        }
        return report
    }

    /// What this machine's runs did to the store: counts by kind and outcome (`backup.success`,
    /// `backup.partial`, `backup.failed`, `verify.clean`, `verify.damaged`) and the bytes its backups added.
    public func localRuns() throws -> (runs: [String: Int], addedBytes: Int64) {
        let state = LocalState.load(storeID: try repository().config.id, environment: environment)
        return (state.runs ?? [:], state.addedBytes ?? 0)
    }

    /// The mirror's copies compared object by object (hashed with `readData`), and with `repair` a copy that
    /// lacks an object or holds it damaged rewritten from the good one (`polyad sync`, `verify --repair`).
    /// `nil` for a store kept in one place.
    public func reconcileCopies(
        readData: Bool,
        repair: Bool,
        progress: (@Sendable (Int, Int) -> Void)? = nil
    ) throws -> MirrorReport? {
        guard let mirror = try backend() as? MirrorBackend else { return nil }
        let repo = try repository()
        let lock = try repo.lock(exclusive: false, operation: repair ? "sync" : "verify", timing: lockTiming)
        defer { lock.release() }
        do {
            return try mirror.reconcile(
                readData: readData,
                repair: repair,
                workers: configuration.s3.connections,
                progress: progress
            )
        } catch { throw RepositoryError.storage(error) }
    }

    /// Restores snapshot `id` ("latest", an id or prefix) into `target`; `paths` limits it to these patterns.
    public func restoreBackup(_ id: String, to target: String, paths: [String]? = nil) throws -> RestoreResult {
        var options = RestoreOptions(target: Array(target.utf8))
        options.includes = paths ?? []
        return try restore(id, options: options)
    }

    /// Restores with full control over the options.
    public func restore(_ id: String, options: RestoreOptions) throws -> RestoreResult {
        let repo = try repository()
        let (_, snapshot) = try repo.findSnapshot(id)
        let lock = try repo.lock(exclusive: false, operation: "restore", timing: lockTiming)
        defer { lock.release() }
        return try Restorer(repository: repo, options: options, cancellation: cancellation).run(snapshot: snapshot)
    }

    /// The store's statistics.
    public func backupStatistics() throws -> BackupStatistics {
        let repo = try repository()
        let all = try repo.snapshots()
        let totals = repo.index.dataTotals()
        var stored: UInt64 = 0
        var packs = 0
        for kind in ObjectKind.allCases where kind != .locks {
            for info in try repo.list(kind) {
                stored += UInt64(max(0, info.size))
                if kind == .data { packs += 1 }
            }
        }
        let logical = all.reduce(UInt64(0)) { $0 + $1.snapshot.summary.totalBytes }
        let state = LocalState.load(storeID: repo.config.id, environment: environment)
        return BackupStatistics(
            snapshotCount: all.count,
            totalLogicalBytes: logical,
            latestLogicalBytes: all.last?.snapshot.summary.totalBytes ?? 0,
            uniqueBytes: totals.raw,
            storedBytes: stored,
            chunkCount: totals.count,
            packCount: packs,
            deduplicationRatio: totals.raw > 0 ? Double(logical) / Double(totals.raw) : 1,
            compressionRatio: totals.stored > 0 ? Double(totals.raw) / Double(totals.stored) : 1,
            lastBackupTime: all.last.map { TimeFormat.iso8601($0.snapshot.time) },
            lastBackupDurationSeconds: all.last?.snapshot.summary.durationSeconds,
            failedBackups: state.failedBackups,
            partialBackups: all.filter { $0.snapshot.summary.errors > 0 }.count,
            lastFailure: state.lastFailure,
            pruneRuns: state.pruneRuns ?? 0,
            prunedBytes: state.bytesPruned ?? 0,
            lastPrune: state.lastPrune
        )
    }
}

/// One key slot as `polyad key list` shows it (`--json`: these keys, `label` and `last_used` null when unset).
public struct KeyInfo: Encodable, Sendable {
    public var id: String
    /// Whether this slot opened the store for this listing.
    public var inUse: Bool
    /// When the slot was written (ISO 8601, UTC).
    public var created: String
    public var hostname: String
    public var username: String
    public var label: String?
    public var kdf: String
    public var n: UInt64
    public var r: UInt64
    public var p: UInt64
    /// When the slot last opened the store on this machine (ISO 8601, UTC), to the minute or better: nil when
    /// it never did here. Kept in the local state, not in the store.
    public var lastUsed: String?

    enum CodingKeys: String, CodingKey {
        case id, created, hostname, username, label, kdf, n, r, p
        case inUse = "in_use"
        case lastUsed = "last_used"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(inUse, forKey: .inUse)
        try c.encode(created, forKey: .created)
        try c.encode(hostname, forKey: .hostname)
        try c.encode(username, forKey: .username)
        try c.encode(label, forKey: .label)  // null rather than absent: every entry has the same keys
        try c.encode(kdf, forKey: .kdf)
        try c.encode(n, forKey: .n)
        try c.encode(r, forKey: .r)
        try c.encode(p, forKey: .p)
        try c.encode(lastUsed, forKey: .lastUsed)
    }
}
