import PolyadCrypto
import PolyadFormat
import PolyadStorage
import Synchronization

/// Gathers sealed blobs of one type into packs of about `targetSize` bytes and stores each full pack
/// (blobs, sealed header, trailer; named by its SHA-256). Thread-safe: workers add concurrently; the worker
/// whose blob fills a pack finishes and stores that pack outside the lock while others go on filling the next.
final class Packer: Sendable {
    private struct Open {
        var bytes: [UInt8] = []
        var entries: [PackEntry] = []
    }

    private let repository: Repository
    private let type: BlobType
    private let targetSize: Int
    private let indexing: Bool
    private let open = Mutex(Open())
    private let written = Mutex<[IndexFile.Pack]>([])
    private let storedBytes = Atomic<UInt64>(0)

    /// With `indexing` off, stored packs are not added to the repository's index (a prune's repacked packs:
    /// they reach the index through the new index files, and the prune's view of the index stays as it was).
    init(repository: Repository, type: BlobType, targetSize: Int, indexing: Bool = true) {
        self.repository = repository
        self.type = type
        self.targetSize = targetSize
        self.indexing = indexing
    }

    /// Adds a sealed blob; stores the pack if it is now full.
    func add(id: BlobID, sealed: [UInt8], rawLength: Int) throws(RepositoryError) {
        let full: Open? = open.withLock { o in
            if o.bytes.isEmpty { o.bytes.reserveCapacity(targetSize + (1 << 20)) }
            o.entries.append(
                PackEntry(
                    type: type,
                    id: id,
                    offset: UInt32(o.bytes.count),
                    length: UInt32(sealed.count),
                    rawLength: UInt32(rawLength)
                )
            )
            o.bytes.append(contentsOf: sealed)
            guard o.bytes.count >= targetSize else { return nil }
            var taken = Open()
            swap(&taken, &o)
            return taken
        }
        if let full { try store(full) }
    }

    /// Stores the partly filled pack, if any.
    func flush() throws(RepositoryError) {
        let rest: Open = open.withLock { o in
            var taken = Open()
            swap(&taken, &o)
            return taken
        }
        if !rest.entries.isEmpty { try store(rest) }
    }

    /// The packs stored so far, for the index.
    var packs: [IndexFile.Pack] { written.withLock { $0 } }

    /// Bytes of packs stored so far.
    var bytesStored: UInt64 { storedBytes.load(ordering: .relaxed) }

    private func store(_ pack: consuming Open) throws(RepositoryError) {
        var pack = pack
        let header = Envelope.seal(
            PackHeader(entries: pack.entries).encoded(),
            key: repository.key.encryptionKey,
            aad: AdditionalData.packHeader
        )
        // The pack's buffer is uniquely owned here, so the header is appended in place (no 16 MiB copy).
        pack.bytes.append(contentsOf: header)
        pack.bytes.append(contentsOf: PackLayout.trailer(headerLength: header.count))
        let bytes = pack.bytes
        let id = PackID(Hash256(SHA256.hash(bytes)))
        try KeyRing.save(repository.backend, ObjectHandle(kind: .data, name: id.hash.hex), bytes)
        if indexing { repository.index.add(pack: id, entries: pack.entries) }
        storedBytes.add(UInt64(bytes.count), ordering: .relaxed)
        written.withLock { $0.append(IndexFile.Pack(id: id, entries: pack.entries)) }
    }
}

/// Writes index files one after another as packs are handed to it (at most 20,000 blobs each, whole packs), so a
/// prune or an index repair never holds the whole new index at once. Each file supersedes the files
/// `superseding` names; with something to supersede, at least one file is written, even for no pack.
struct IndexWriter {
    private let repository: Repository
    private let superseding: [Hash256]
    private var batch = [IndexFile.Pack]()
    private var count = 0
    /// The names of the files written so far.
    private(set) var written = Set<String>()

    init(repository: Repository, superseding: [Hash256] = []) {
        self.repository = repository
        self.superseding = superseding
    }

    mutating func append(_ pack: IndexFile.Pack) throws(RepositoryError) {
        batch.append(pack)
        count += pack.entries.count
        if count >= 20_000 { try flush() }
    }

    /// Writes what is left; returns the names of every file written.
    mutating func finish() throws(RepositoryError) -> Set<String> {
        if !batch.isEmpty || (written.isEmpty && !superseding.isEmpty) { try flush() }
        return written
    }

    private mutating func flush() throws(RepositoryError) {
        let file = IndexFile(packs: batch, supersedes: superseding)
        written.insert(try repository.saveObject(.index, file.encoded(), aad: AdditionalData.index).hex)
        batch = []
        count = 0
    }
}

extension Repository {
    /// Writes index files for `packs` (see ``IndexWriter``); returns their names.
    @discardableResult
    func saveIndex(for packs: [IndexFile.Pack], superseding: [Hash256] = []) throws(RepositoryError) -> Set<String> {
        var writer = IndexWriter(repository: self, superseding: superseding)
        for p in packs { try writer.append(p) }
        return try writer.finish()
    }
}
