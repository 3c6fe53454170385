import Foundation
import PolyadFormat
import PolyadMetrics

/// `/.polyad`: read-only files generated on each open from the mount's counters and the store's statistics:
/// `status` (text), `stats.json` and `metrics` (Prometheus text format).
final class ControlFilesProvider: TreeProvider {
    /// The files of `/.polyad`, in name order (their inodes follow that order from
    /// `FixedInode.firstControlFile`).
    enum File: String, CaseIterable, Sendable {
        case metrics
        case statsJSON = "stats.json"
        case status
        case statusJSON = "status.json"

        private static let inOrder = allCases

        var name: [UInt8] { Array(rawValue.utf8) }
        var inode: UInt64 { FixedInode.firstControlFile + UInt64(Self.inOrder.firstIndex(of: self)!) }
        /// Whether only admins may read it (with an `access:` section): the metrics name every figure of the
        /// store and the mount.
        var adminOnly: Bool { self == .metrics }
    }

    /// The folder (`file` nil) or one of its files.
    private final class Entry: Sendable {
        let file: File?
        init(_ file: File?) { self.file = file }
    }

    let id: ProviderID
    private let mountTime: Timestamp
    private let mountedAt: Date
    private let storeLocation: String
    private let catalog: SnapshotCatalog
    private let counters: @Sendable () -> MountCounters
    private let incomingStatus: @Sendable () -> IncomingStatus
    private let cleanupStatus: @Sendable () -> CleanupStatus
    private let storeStatistics: @Sendable () throws -> any Encodable
    private let storeMetrics: @Sendable () throws -> StoreMetrics
    private let willBlock: @Sendable () -> Void

    /// - Parameters:
    ///   - counters: the mount's counters now.
    ///   - storeStatistics: the store's statistics (for `stats.json`; reads the store).
    ///   - storeMetrics: the store's metrics, to which `metrics` adds the mount's own (reads the store).
    init(
        id: ProviderID,
        table: InodeTable,
        mountedAt: Date,
        storeLocation: String,
        catalog: SnapshotCatalog,
        counters: @escaping @Sendable () -> MountCounters,
        incomingStatus: @escaping @Sendable () -> IncomingStatus,
        cleanupStatus: @escaping @Sendable () -> CleanupStatus,
        storeStatistics: @escaping @Sendable () throws -> any Encodable,
        storeMetrics: @escaping @Sendable () throws -> StoreMetrics,
        willBlock: @escaping @Sendable () -> Void
    ) {
        self.id = id
        self.mountedAt = mountedAt
        mountTime = Timestamp(seconds: Int64(mountedAt.timeIntervalSince1970), nanoseconds: 0)
        self.storeLocation = storeLocation
        self.catalog = catalog
        self.counters = counters
        self.incomingStatus = incomingStatus
        self.cleanupStatus = cleanupStatus
        self.storeStatistics = storeStatistics
        self.storeMetrics = storeMetrics
        self.willBlock = willBlock
        table.insertFixed(FixedInode.control, owner: id, entry: Entry(nil), parent: FixedInode.root, name: ".polyad")
        for file in File.allCases {
            table.insertFixed(
                file.inode,
                owner: id,
                entry: Entry(file),
                parent: FixedInode.control,
                name: file.rawValue
            )
        }
    }

    private func file(_ inode: Inode) throws(FileSystemErrno) -> File? {
        guard let e = inode.entry as? Entry else { throw FileSystemErrno(EIO) }
        return e.file
    }

    func lookup(_ name: [UInt8], in folder: Inode, caller: Caller) throws(FileSystemErrno) -> UInt64 {
        guard try file(folder) == nil else { throw FileSystemErrno(ENOTDIR) }
        guard let f = File.allCases.first(where: { $0.name == name }) else { throw FileSystemErrno(ENOENT) }
        return f.inode
    }

    func listing(of folder: Inode, caller: Caller) throws(FileSystemErrno) -> [DirectoryEntry] {
        guard try file(folder) == nil else { throw FileSystemErrno(ENOTDIR) }
        return File.allCases.map { DirectoryEntry(name: $0.name, inode: $0.inode, mode: S_IFREG) }
    }

    func attributes(of inode: Inode, caller: Caller) throws(FileSystemErrno) -> Attributes {
        var a = Attributes.folder(inode.number, time: mountTime)
        if let f = try file(inode) {
            a.mode = S_IFREG | 0o444
            a.links = 1
            // Size 0, as /proc's files: the content is made anew at each open, and readers read to the end
            // (the open is direct I/O, so the kernel does not cut a read at an older size).
            a.size = 0
            a.cacheSeconds = 0
        }
        return a
    }

    func open(_ inode: Inode, flags: Int32, caller: Caller) throws(FileSystemErrno) -> OpenedContent {
        try requireReadOnly(flags)
        guard let f = try file(inode) else { throw FileSystemErrno(EISDIR) }
        return .content(OpenFile(generated: content(f), inode: inode.number))
    }

    /// The `incoming:` lines of `status`, e.g. `incoming: 1204 files, 3.1 GB pending, 0 open for writing,
    /// commit in 2 s` and `last_commit: 5e1f0a2b at 2026-12-02T10:04:11Z, 38.2 s, 1204 files, 3.1 GB`.
    static func describe(_ i: IncomingStatus) -> [String] {
        var when: String
        if i.committing {
            when = "committing now"
        } else if i.openWriters > 0 {
            when = "commit once the writers close"
        } else if let s = i.secondsToCommit {
            when = "commit in \(Int(s.rounded(.up))) s"
        } else if i.pendingFiles > 0 {
            when = i.retryInSeconds.map { "commit retried in \(Int($0)) s" } ?? "commit waiting"
        } else {
            when = "nothing to commit"
        }
        var lines = [
            "incoming: \(i.pendingFiles) files, \(ByteCountFormatter.string(fromByteCount: Int64(clamping: i.pendingBytes), countStyle: .file)) pending, "
                + "\(i.openWriters) open for writing, \(when)",
            "staging: \(i.stagingFolder)",
        ]
        if let id = i.lastCommitSnapshot, let t = i.lastCommitTime {
            lines.append(
                "last_commit: \(id) at \(t), \(i.lastCommitSeconds ?? 0) s, \(i.lastCommitFiles ?? 0) files, "
                    + ByteCountFormatter.string(
                        fromByteCount: Int64(clamping: i.lastCommitBytes ?? 0),
                        countStyle: .file
                    )
            )
        } else {
            lines.append("last_commit: none since mounted")
        }
        if let e = i.lastError { lines.append("last_commit_error: \(i.lastErrorTime ?? "") \(e)") }
        return lines
    }

    /// The `cleanup:` lines of `status`, e.g. `cleanup: every 86400 s, 3 runs, 2 snapshots forgotten, 1.2 GB
    /// freed` and `last_cleanup: 2026-12-02T10:04:11Z forgot 1 snapshot, deleted 4 packs …`.
    static func describe(_ c: CleanupStatus) -> [String] {
        guard c.intervalSeconds > 0 else { return ["cleanup: off (backup.cleanup_interval: 0)"] }
        var lines = [
            "cleanup: every \(c.intervalSeconds) s, \(c.runs) run\(c.runs == 1 ? "" : "s"), "
                + "\(c.snapshotsForgotten) snapshot\(c.snapshotsForgotten == 1 ? "" : "s") forgotten, "
                + "\(ByteCountFormatter.string(fromByteCount: c.bytesFreed, countStyle: .file)) freed",
            "last_cleanup: " + (c.lastRunTime.map { "\($0) \(c.lastResult ?? "")" } ?? "none since mounted"),
        ]
        if let e = c.lastError { lines.append("last_cleanup_error: \(e)") }
        return lines
    }

    /// The bytes of a control file now.
    func content(_ file: File) -> [UInt8] {
        switch file {
        case .statsJSON:
            willBlock()
            guard let stats = try? storeStatistics() else { return Array("{}\n".utf8) }
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            return Array(((try? e.encode(stats)) ?? Data("{}".utf8))) + [10]
        case .status:
            let c = counters()
            let i = incomingStatus()
            var lines =
                [
                    "state: mounted (snapshots read-only, /incoming writable)",
                    "store: \(storeLocation)",
                    "mounted_at: \(ISO8601DateFormatter().string(from: mountedAt))",
                    "snapshots: \(c.snapshots)",
                    "latest: \(String(decoding: catalog.latestTarget(), as: UTF8.self))",
                    "reads: \(c.reads) (\(c.bytesRead) bytes)",
                    "read_errors: \(c.readErrors)",
                    "chunk_cache: \(c.chunkCacheBytes) bytes, \(c.chunkCacheHits) hits, \(c.chunkCacheMisses) misses",
                    "chunks_decoded: \(c.chunksDecoded)",
                ] + Self.describe(i) + Self.describe(cleanupStatus())
            if let e = c.lastError { lines.append("last_read_error: \(e)") }
            return Array((lines.joined(separator: "\n") + "\n").utf8)
        case .statusJSON:
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            return Array(((try? e.encode(incomingStatus())) ?? Data("{}".utf8))) + [10]
        case .metrics:
            let c = counters()
            let i = incomingStatus()
            willBlock()
            // The store's figures (as the CLI's textfile has them), then the mount's own, in one registry.
            let m = (try? storeMetrics()) ?? StoreMetrics()
            m.gauge("polyad_mount_snapshots", "Snapshots visible in the mount.", Double(c.snapshots))
            m.counter("polyad_mount_reads_total", "Read requests served.", Int64(clamping: c.reads))
            m.counter("polyad_mount_read_bytes_total", "Bytes served by reads.", Int64(clamping: c.bytesRead))
            m.counter(
                "polyad_mount_read_errors_total",
                "Reads that failed because data was damaged.",
                Int64(clamping: c.readErrors)
            )
            m.counter(
                "polyad_mount_chunks_decoded_total",
                "Chunks decrypted and decompressed.",
                Int64(clamping: c.chunksDecoded)
            )
            m.counter("polyad_mount_cache_hits_total", "Chunk cache hits.", Int64(clamping: c.chunkCacheHits))
            m.counter("polyad_mount_cache_misses_total", "Chunk cache misses.", Int64(clamping: c.chunkCacheMisses))
            m.gauge("polyad_mount_cache_bytes", "Bytes of decoded chunks held in the cache.", Double(c.chunkCacheBytes))
            m.gauge(
                "polyad_incoming_pending_files",
                "Files staged in /incoming and not yet in a snapshot.",
                Double(i.pendingFiles)
            )
            m.gauge(
                "polyad_incoming_pending_bytes",
                "Bytes staged in /incoming and not yet in a snapshot.",
                Double(i.pendingBytes)
            )
            m.gauge("polyad_incoming_open_writers", "Files open for writing under /incoming.", Double(i.openWriters))
            m.counter(
                "polyad_incoming_syncs_total",
                "Files and folders under /incoming synced to the staging disk.",
                Int64(clamping: i.syncs)
            )
            return Array(m.text().utf8)
        }
    }
}
