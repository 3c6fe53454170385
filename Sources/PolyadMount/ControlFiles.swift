import Foundation
import PolyadFormat

/// `/.polyad`: read-only files generated on each open from the mount's counters and the store's statistics:
/// `status` (text), `stats.json` and `metrics` (Prometheus text format).
final class ControlFilesProvider: TreeProvider {
    /// The files of `/.polyad`, in name order (their inodes follow that order from
    /// `FixedInode.firstControlFile`).
    enum File: String, CaseIterable, Sendable {
        case metrics
        case statsJSON = "stats.json"
        case status

        private static let inOrder = allCases

        var name: [UInt8] { Array(rawValue.utf8) }
        var inode: UInt64 { FixedInode.firstControlFile + UInt64(Self.inOrder.firstIndex(of: self)!) }
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
    private let storeStatistics: @Sendable () throws -> any Encodable
    private let willBlock: @Sendable () -> Void

    /// - Parameters:
    ///   - counters: the mount's counters now.
    ///   - storeStatistics: the store's statistics (for `stats.json`; reads the store).
    init(
        id: ProviderID,
        table: InodeTable,
        mountedAt: Date,
        storeLocation: String,
        catalog: SnapshotCatalog,
        counters: @escaping @Sendable () -> MountCounters,
        storeStatistics: @escaping @Sendable () throws -> any Encodable,
        willBlock: @escaping @Sendable () -> Void
    ) {
        self.id = id
        self.mountedAt = mountedAt
        mountTime = Timestamp(seconds: Int64(mountedAt.timeIntervalSince1970), nanoseconds: 0)
        self.storeLocation = storeLocation
        self.catalog = catalog
        self.counters = counters
        self.storeStatistics = storeStatistics
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
            a.size = UInt64(content(f).count)
            a.cacheSeconds = 0
        }
        return a
    }

    func open(_ inode: Inode, flags: Int32, caller: Caller) throws(FileSystemErrno) -> OpenFile {
        try requireReadOnly(flags)
        guard let f = try file(inode) else { throw FileSystemErrno(EISDIR) }
        return OpenFile(generated: content(f), inode: inode.number)
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
            var lines = [
                "state: mounted (read-only snapshots)",
                "store: \(storeLocation)",
                "mounted_at: \(ISO8601DateFormatter().string(from: mountedAt))",
                "snapshots: \(c.snapshots)",
                "latest: \(String(decoding: catalog.latestTarget(), as: UTF8.self))",
                "reads: \(c.reads) (\(c.bytesRead) bytes)",
                "read_errors: \(c.readErrors)",
                "chunk_cache: \(c.chunkCacheBytes) bytes, \(c.chunkCacheHits) hits, \(c.chunkCacheMisses) misses",
                "chunks_decoded: \(c.chunksDecoded)",
                "incoming: not writable yet (commits from /incoming come with a later version)",
            ]
            if let e = c.lastError { lines.append("last_error: \(e)") }
            return Array((lines.joined(separator: "\n") + "\n").utf8)
        case .metrics:
            let c = counters()
            let text = """
                # HELP polyad_mount_snapshots Snapshots visible in the mount.
                # TYPE polyad_mount_snapshots gauge
                polyad_mount_snapshots \(c.snapshots)
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
                polyad_mount_chunks_decoded_total \(c.chunksDecoded)
                # HELP polyad_mount_cache_hits_total Chunk cache hits.
                # TYPE polyad_mount_cache_hits_total counter
                polyad_mount_cache_hits_total \(c.chunkCacheHits)
                # HELP polyad_mount_cache_misses_total Chunk cache misses.
                # TYPE polyad_mount_cache_misses_total counter
                polyad_mount_cache_misses_total \(c.chunkCacheMisses)

                """
            return Array(text.utf8)
        }
    }
}
