import PolyadFormat
import PolyadRepository

/// A snapshot as listed to users and API callers.
public struct SnapshotInfo: Sendable, Codable {
    public var id: String
    public var shortID: String
    /// ISO 8601 in UTC, with nanoseconds.
    public var time: String
    public var hostname: String
    public var username: String
    /// The user and group the snapshot was made by (for an `/incoming` commit, the writer's).
    public var uid: UInt32
    public var gid: UInt32
    public var tags: [String]
    public var paths: [String]
    public var files: Int
    public var logicalBytes: UInt64
    /// Bytes this snapshot added to the store.
    public var storedBytes: UInt64
    public var parent: String?
    public var tree: String
    public var metadata: [String: String]
    public var summary: BackupSummary

    enum CodingKeys: String, CodingKey {
        case id
        case shortID = "short_id"
        case time, hostname, username, uid, gid, tags, paths, files, parent, tree, metadata, summary
        case logicalBytes = "logical_bytes"
        case storedBytes = "stored_bytes"
    }

    init(id: SnapshotID, snapshot s: Snapshot) {
        self.id = id.hash.hex
        shortID = id.short
        time = TimeFormat.iso8601(s.time)
        hostname = s.hostname
        username = s.username
        uid = s.uid
        gid = s.gid
        tags = s.tags
        paths = s.paths
        files = s.summary.filesNew + s.summary.filesChanged + s.summary.filesUnchanged
        logicalBytes = s.summary.totalBytes
        storedBytes = s.summary.storedBytes
        parent = s.parent?.hash.hex
        tree = s.tree.hash.hex
        metadata = s.metadata
        summary = s.summary
    }
}

/// The store's statistics, as README shows them: `polyad stats`, `/.polyad/stats.json`, `backupStatistics()`.
public struct BackupStatistics: Sendable, Codable {
    public var snapshotCount: Int
    /// Sum of the logical size of every snapshot.
    public var totalLogicalBytes: UInt64
    /// Logical size of the newest snapshot.
    public var latestLogicalBytes: UInt64
    /// Plaintext bytes of the unique data chunks.
    public var uniqueBytes: UInt64
    /// Bytes of every object in the store (packs, index, snapshots, keys).
    public var storedBytes: UInt64
    public var chunkCount: Int
    public var packCount: Int
    /// totalLogicalBytes ÷ uniqueBytes.
    public var deduplicationRatio: Double
    /// uniqueBytes ÷ stored data bytes.
    public var compressionRatio: Double
    public var lastBackupTime: String?
    public var lastBackupDurationSeconds: Double?
    /// Backups that ended without a snapshot, as recorded on this machine.
    public var failedBackups: Int
    /// Backups that left out unreadable sources.
    public var partialBackups: Int
    public var lastFailure: String?
    /// Prunes run on this machine (CLI and mount), the bytes they freed, and the last one's result.
    public var pruneRuns: Int
    public var prunedBytes: Int64
    public var lastPrune: String?

    enum CodingKeys: String, CodingKey {
        case snapshotCount = "snapshot_count"
        case totalLogicalBytes = "total_logical_bytes"
        case latestLogicalBytes = "latest_logical_bytes"
        case uniqueBytes = "unique_bytes"
        case storedBytes = "stored_bytes"
        case chunkCount = "chunk_count"
        case packCount = "pack_count"
        case deduplicationRatio = "deduplication_ratio"
        case compressionRatio = "compression_ratio"
        case lastBackupTime = "last_backup_time"
        case lastBackupDurationSeconds = "last_backup_duration_seconds"
        case failedBackups = "failed_backups"
        case partialBackups = "partial_backups"
        case lastFailure = "last_failure"
        case pruneRuns = "prune_runs"
        case prunedBytes = "pruned_bytes"
        case lastPrune = "last_prune"
    }
}
