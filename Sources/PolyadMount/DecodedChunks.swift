import Dispatch
import PolyadFormat
import PolyadRepository
import Synchronization

/// The decoded (decrypted, authenticated, decompressed) chunks: a cache bounded by `mount.cache_mib`, one
/// decode per chunk at a time however many requests want it, decodes ahead of readers on the background
/// queue, and pushes of whole small files into the kernel's page cache.
final class DecodedChunks: Sendable {
    private let cache: LRUCache<ChunkID, [UInt8]>
    private let loads = SharedLoads<ChunkID, [UInt8], RepositoryError>()
    /// How far ahead of a sequential reader chunks are decoded: 4 MiB, or a quarter of the cache if smaller
    /// (measured: 16 MiB queues so many decodes at once that both a large file and a tree read slower).
    let readAheadBytes: Int
    private let repository: Repository
    private let background: DispatchQueue
    private let activity: MountActivity
    /// Hands a whole small file's bytes to the kernel's page cache (see `MountFileSystem.init`).
    private let pushToKernel: @Sendable (UInt64, [UInt8]) -> Void
    /// Files whose bytes were pushed, so that they are pushed once.
    private let pushed = Mutex<Set<UInt64>>([])

    /// - Parameters:
    ///   - cacheBytes: the most decoded chunk data kept in memory.
    ///   - background: where chunks are decoded ahead (the mount's read-ahead queue).
    init(
        repository: Repository,
        cacheBytes: Int,
        background: DispatchQueue,
        activity: MountActivity,
        pushToKernel: @escaping @Sendable (UInt64, [UInt8]) -> Void
    ) {
        self.repository = repository
        cache = LRUCache(capacity: cacheBytes)
        readAheadBytes = min(4 << 20, cacheBytes / 4)
        self.background = background
        self.activity = activity
        self.pushToKernel = pushToKernel
    }

    /// The chunk if it is cached (counted as a cache hit or miss).
    func cached(_ key: ChunkID) -> [UInt8]? { cache.value(for: key) }

    /// Decrypts, authenticates and decompresses a chunk into the cache, or waits for the load of it already
    /// under way (a read-ahead), so that no chunk is decoded twice at once.
    func load(_ key: ChunkID) throws(RepositoryError) -> [UInt8] {
        try loads.value(for: key) { () throws(RepositoryError) -> [UInt8] in
            // A read-ahead queued behind others may find its chunk decoded by a reader meanwhile.
            if let data = cache.peek(key) { return data }
            let data = try repository.loadBlob(key.blob)
            activity.recordDecode()
            cache.insert(data, for: key, cost: data.count)
            return data
        }
    }

    /// Decodes a chunk into the cache on the background queue, unless it is cached or on its way.
    func prefetch(_ key: ChunkID) {
        guard !cache.contains(key), !loads.isLoading(key) else { return }
        background.async { [self] in _ = try? load(key) }
    }

    /// Decodes a one-chunk file in the background and hands its bytes to the kernel (once per inode), so that
    /// the reader that opens it next finds them in the page cache.
    func prefetchWhole(_ key: ChunkID, into inode: UInt64) {
        guard
            pushed.withLock({ p in
                if p.count > 100_000 { p.removeAll() }
                return p.insert(inode).inserted
            })
        else { return prefetch(key) }
        background.async { [self] in
            // After the load has finished (a reader waiting for it must have its answer first: its pages are
            // locked until then).
            guard let data = try? load(key) else { return }
            pushToKernel(inode, data)
        }
    }

    /// (hits, misses, bytes held) of the cache.
    var statistics: (hits: Int, misses: Int, cost: Int) { cache.statistics }
}
