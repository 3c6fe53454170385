import Dispatch
import Foundation
import PolyadChunker
import PolyadCompression
import PolyadCrypto
import PolyadFileSystem
import PolyadFormat
import PolyadStorage
import Synchronization

/// An open store: its backend, master key, config and index. Thread-safe: the backup and restore workers,
/// and later the FUSE threads, share one instance.
public final class Repository: Sendable {
    public let backend: any Backend
    public let key: MasterKey
    public let config: StoreConfig
    public let index: MasterIndex
    public let chunker: Chunker
    private let problems = Mutex<[DamagedObject]>([])
    private let loadedIndexes = Mutex<Set<String>>([])
    /// Index files another index file supersedes (a prune's): never read into the index.
    private let supersededIndexes = Mutex<Set<String>>([])
    /// While the index loads in the background: lookups that miss wait for it (see `loadIndexInBackground`).
    private let indexLoading = Mutex<DispatchGroup?>(nil)
    /// Why the background index load failed, if it did.
    private let indexFailure = Mutex<RepositoryError?>(nil)
    /// Held while index files are read: a second reader waits, then finds them loaded.
    private let indexReading = Mutex(())
    /// Read-ahead of packs, when the backend's reads are round trips.
    private let spans: PackSpans?

    /// Index files that could not be read when the store was opened (verify reports them).
    public var indexProblems: [DamagedObject] { problems.withLock { $0 } }

    init(backend: any Backend, key: MasterKey, config: StoreConfig) {
        self.backend = backend
        self.key = key
        self.config = config
        index = MasterIndex()
        spans = backend.readsAreRemote ? PackSpans() : nil
        chunker = Chunker(
            table: key.gearTable(),
            parameters: ChunkerParameters(
                minSize: config.chunkerMinSize,
                averageSize: config.chunkerAverageSize,
                maxSize: config.chunkerMaxSize
            )
        )
    }

    // MARK: Creating and opening

    /// Creates a new store on `backend` with one key slot for `passphrase`, labelled `label` (checked first:
    /// a bad label creates nothing).
    public static func create(
        backend: any Backend,
        passphrase: [UInt8],
        label: String? = nil,
        keyParameters: KeyRing.Parameters = .default
    ) throws(RepositoryError) -> Repository {
        try KeyRing.checkLabel(label)
        try storeCalls {
            if try backend.exists() {
                throw RepositoryError(
                    .storeExists,
                    "a store already exists at \(backend.location); nothing was changed"
                )
            }
            try backend.create()
        }
        let secret = MasterKey.generate()
        let slot = try KeyRing.addSlot(
            secret: secret,
            passphrase: passphrase,
            label: label,
            backend: backend,
            parameters: keyParameters
        )
        let key = MasterKey(secret: secret, slot: slot)
        let params = ChunkerParameters.default
        let config = StoreConfig(
            id: SecureRandom.bytes(16).hexString,
            chunkerMinSize: params.minSize,
            chunkerAverageSize: params.averageSize,
            chunkerMaxSize: params.maxSize,
            created: Clock.now()
        )
        let sealed = Envelope.seal(config.encoded(), key: key.encryptionKey, aad: AdditionalData.config)
        try KeyRing.save(backend, ObjectHandle(kind: .config, name: "config"), sealed)
        return Repository(backend: backend, key: key, config: config)
    }

    /// Opens the store on `backend`: unlocks a key slot, reads the config and loads the index (or, with
    /// `indexInBackground`, starts loading it on another thread: a mount is then ready before a large index
    /// is read, and the first blob lookups wait for it).
    public static func open(
        backend: any Backend,
        passphrase: [UInt8],
        indexInBackground: Bool = false
    ) throws(RepositoryError) -> Repository {
        // The key slots are listed first: a store has at least one, so only an empty listing needs the extra
        // request that tells a missing store from one without slots (one round trip less per run on S3).
        let slots = try storeCalls {
            let slots = try backend.list(.keys)
            if slots.isEmpty, try !backend.exists() {
                throw RepositoryError(
                    .storeMissing,
                    "no store at \(backend.location): run `polyad init` to create one, or check local_dir in "
                        + "mount.conf"
                )
            }
            return slots
        }
        let key = try KeyRing.unlock(passphrase: passphrase, backend: backend, slots: slots)
        let configHandle = ObjectHandle(kind: .config, name: "config")
        var sealed = try KeyRing.load(backend, configHandle)
        // The config has no hash for a name to check it by: on a mirror, a copy that does not authenticate is
        // replaced by one that does (which also rewrites the bad copy).
        let opens = { (bytes: [UInt8]) in
            (try? Envelope.open(bytes, key: key.encryptionKey, aad: AdditionalData.config)) != nil
        }
        if !opens(sealed), let copies = backend as? any RedundantBackend,
            let good = try? copies.load(configHandle, offset: 0, length: nil, accept: opens)
        {
            sealed = good
        }
        let config: StoreConfig
        do {
            config = try StoreConfig(
                decoding: try Envelope.open(sealed, key: key.encryptionKey, aad: AdditionalData.config)
            )
        } catch let e as FormatError {
            throw RepositoryError(.damaged, "the store's config: \(e)")
        } catch {
            throw RepositoryError.damaged("config", "it does not authenticate")
        }
        let repo = Repository(backend: backend, key: key, config: config)
        if indexInBackground { repo.loadIndexInBackground() } else { try repo.loadIndex() }
        return repo
    }

    /// Runs backend calls that may also throw a `RepositoryError` of their own: a storage error becomes
    /// ``RepositoryError/storage(_:)``, a repository error goes through as it is.
    private static func storeCalls<T>(_ body: () throws -> T) throws(RepositoryError) -> T {
        do { return try body() } catch let e as StorageError {
            throw RepositoryError.storage(e)
        } catch let e as RepositoryError {
            throw e
        } catch {
            throw RepositoryError(.io, "\(error)", cause: error)
        }
    }

    /// Loads the index on another thread; until it is done, a lookup that finds nothing waits for it.
    func loadIndexInBackground() {
        let done = DispatchGroup()
        done.enter()
        indexLoading.withLock { $0 = done }
        Thread { [self] in
            do throws(RepositoryError) { try loadIndex() } catch { indexFailure.withLock { $0 = error } }
            indexLoading.withLock { $0 = nil }
            done.leave()
        }.start()
    }

    /// Where a blob is stored. A miss waits for an index load under way, then reads index files written
    /// since (another process's new backup), before it says "nowhere".
    public func location(of id: BlobID) throws(RepositoryError) -> BlobLocation? {
        if let loc = index.lookup(id) { return loc }
        if let loading = indexLoading.withLock({ $0 }) {
            loading.wait()
            if let failure = indexFailure.withLock({ $0 }) { throw failure }
            if let loc = index.lookup(id) { return loc }
        }
        try loadIndex()
        return index.lookup(id)
    }

    /// Reads every index file not read yet into memory (so calling it again picks up what other processes
    /// have added since). A damaged index file is recorded in `indexProblems` and skipped:
    /// what it listed then shows up as missing where it is needed.
    public func loadIndex() throws(RepositoryError) {
        try indexReading.withLock { _ throws(RepositoryError) in try readNewIndexFiles() }
    }

    /// Reads the index again from the files that stand now (after this process pruned: its old table is dropped
    /// first, so the two are never held at once).
    func reloadIndex() throws(RepositoryError) {
        try indexReading.withLock { _ throws(RepositoryError) in try rereadIndexFiles() }
    }

    private func readNewIndexFiles() throws(RepositoryError) {
        let listed = try list(.index)
        let files = listed.filter { info in loadedIndexes.withLock { $0.insert(info.handle.name).inserted } }
        guard !files.isEmpty else { return }
        // Reading, decrypting and decoding index files runs on every core; each file's entries go straight
        // into the index's new table (sorted once at the end), so no second copy of them is held. A file that
        // supersedes others (a prune's) is known only once it is decoded: the files it names are then left
        // out, and if some of them were read before, the index is read again from the files that stand.
        let failure = Mutex<RepositoryError?>(nil)
        let newlySuperseded = Mutex<Set<String>>([])
        let alreadySuperseded = supersededIndexes.withLock { $0 }
        // An index entry takes 45 bytes in its file: room for all of them at once, without regrowing.
        let estimate = files.reduce(0) { $0 + Int(max(0, $1.size)) / 45 }
        index.load(count: files.count, estimatedEntries: estimate) { i in
            let info = files[i]
            guard !alreadySuperseded.contains(info.handle.name) else { return [] }
            do {
                let plain = try loadObject(info.handle, aad: AdditionalData.index)
                let file = try IndexFile(decoding: plain)
                if !file.supersedes.isEmpty {
                    newlySuperseded.withLock { $0.formUnion(file.supersedes.map(\.hex)) }
                }
                return file.packs.map { (pack: $0.id, entries: $0.entries) }
            } catch let e as RepositoryError where e.code != .damaged {
                failure.withLock { $0 = $0 ?? e }
            } catch {
                problems.withLock { $0.append(DamagedObject(object: "index/\(info.handle.name)", problem: "\(error)")) }
            }
            return []
        }
        if let e = failure.withLock({ $0 }) {
            // Not read after all: a later call tries these again.
            loadedIndexes.withLock { loaded in for info in files { loaded.remove(info.handle.name) } }
            throw e
        }
        let superseded = newlySuperseded.withLock { $0 }.subtracting(alreadySuperseded)
        guard !superseded.isEmpty else { return }
        supersededIndexes.withLock { $0.formUnion(superseded) }
        // Entries of superseded files are in the table now: read it again from the files that stand.
        try rereadIndexFiles()
    }

    /// Drops the table and reads every index file that stands (under `indexReading`).
    private func rereadIndexFiles() throws(RepositoryError) {
        index.removeAll()
        loadedIndexes.withLock { $0.removeAll() }
        try readNewIndexFiles()
    }

    // MARK: Objects

    /// The objects of `kind` in the store.
    public func list(_ kind: ObjectKind) throws(RepositoryError) -> [ObjectInfo] {
        do { return try backend.list(kind) } catch { throw RepositoryError.storage(error) }
    }

    /// Deletes `handle`; one already gone is no failure.
    func removeIfPresent(_ handle: ObjectHandle) throws(RepositoryError) {
        do { try backend.remove(handle) } catch  where error.code == .notFound {} catch {
            throw RepositoryError.storage(error)
        }
    }

    /// Seals and stores an object named by the SHA-256 of its sealed bytes; returns that name.
    @discardableResult
    func saveObject(_ kind: ObjectKind, _ plaintext: [UInt8], aad: [UInt8]) throws(RepositoryError) -> Hash256 {
        let sealed = Envelope.seal(plaintext, key: key.encryptionKey, aad: aad)
        let name = Hash256(SHA256.hash(sealed))
        try KeyRing.save(backend, ObjectHandle(kind: kind, name: name.hex), sealed)
        return name
    }

    /// Loads an object, checks its name against its hash and opens it.
    func loadObject(_ handle: ObjectHandle, aad: [UInt8]) throws(RepositoryError) -> [UInt8] {
        let sealed = try KeyRing.load(backend, handle)
        let what = "\(handle.kind.rawValue)/\(handle.name)"
        if handle.kind != .config, SHA256.hash(sealed).hexString != handle.name {
            throw RepositoryError.damaged(what, "its content does not match its name (SHA-256)")
        }
        do { return try Envelope.open(sealed, key: key.encryptionKey, aad: aad) } catch {
            throw RepositoryError.damaged(what, "it does not authenticate (GCM tag mismatch)")
        }
    }

    // MARK: Blobs

    /// The keyed id of a blob's plaintext.
    public func blobID(_ bytes: UnsafeRawBufferPointer) -> BlobID {
        BlobID(Hash256(key.idMAC.authenticationCode(for: bytes)))
    }

    public func blobID(_ bytes: [UInt8]) -> BlobID {
        bytes.withUnsafeBytes { blobID($0) }
    }

    /// Reads, authenticates and decompresses a blob.
    public func loadBlob(_ id: BlobID) throws(RepositoryError) -> [UInt8] {
        guard let loc = try location(of: id) else {
            throw RepositoryError(
                .damaged,
                "blob \(id.shortHex) is referenced but not in the index; run `polyad verify`"
            )
        }
        let pack = ObjectHandle(kind: .data, name: loc.pack.hash.hex)
        let sealed: [UInt8]
        do {
            if let spans, let end = index.dataEnd(of: loc.pack) {
                sealed = try spans.read(
                    pack: loc.pack,
                    location: backend.location,
                    offset: Int(loc.offset),
                    length: Int(loc.length),
                    dataEnd: end
                ) { [backend] (offset, length) throws(StorageError) in
                    try backend.load(pack, offset: Int64(offset), length: length)
                }
            } else {
                sealed = try backend.load(pack, offset: Int64(loc.offset), length: Int(loc.length))
            }
        } catch { throw RepositoryError.storage(error) }
        do {
            return try openBlob(sealed, id: id, location: loc)
        } catch {
            spans?.forget(loc.pack)
            // A mirror has another copy of the pack: read the blob from a copy where it opens (that repairs this one).
            guard let copies = backend as? any RedundantBackend else { throw error }
            var plain: [UInt8]?
            do {
                _ = try copies.load(pack, offset: Int64(loc.offset), length: Int(loc.length)) { bytes in
                    plain = try? openBlob(bytes, id: id, location: loc)
                    return plain != nil
                }
            } catch let e where e.code == .damaged { throw error } catch let e { throw RepositoryError.storage(e) }
            guard let plain else { throw error }
            return plain
        }
    }

    /// Starts reading the part of a pack that holds blob `id` in the background, where the store's reads are
    /// round trips (see `PackSpans`): for a reader that knows which blobs it wants next. Nothing otherwise.
    public func prefetchBlob(_ id: BlobID) {
        guard let spans, let loc = index.lookup(id), let end = index.dataEnd(of: loc.pack) else { return }
        let pack = ObjectHandle(kind: .data, name: loc.pack.hash.hex)
        spans.prefetch(pack: loc.pack, offset: Int(loc.offset), dataEnd: end) {
            [backend] (offset, length) throws(StorageError) in
            try backend.load(pack, offset: Int64(offset), length: length)
        }
    }

    /// Opens a sealed blob read from its pack.
    func openBlob(_ sealed: [UInt8], id: BlobID, location loc: BlobLocation) throws(RepositoryError) -> [UInt8] {
        try BlobCodec.decode(sealed, key: key.encryptionKey, id: id, location: loc)
    }

    /// Loads and decodes a tree.
    public func loadTree(_ id: TreeID) throws(RepositoryError) -> Tree {
        let bytes = try loadBlob(id.blob)
        do { return try Tree(decoding: bytes) } catch {
            throw RepositoryError.damaged("tree \(id.hash.shortHex)", "\(error)")
        }
    }

    // MARK: Snapshots

    /// Every snapshot, oldest first.
    public func snapshots() throws(RepositoryError) -> [(id: SnapshotID, snapshot: Snapshot)] {
        var out = [(id: SnapshotID, snapshot: Snapshot)]()
        for info in try list(.snapshots) {
            guard let h = Hash256(hex: info.handle.name) else { continue }
            let plain: [UInt8]
            do { plain = try loadObject(info.handle, aad: AdditionalData.snapshot) } catch {
                // Forgotten since the listing (a `forget` running at the same time): not a snapshot any more.
                if (error.cause as? StorageError)?.code == .notFound { continue }
                throw error
            }
            do {
                out.append((SnapshotID(h), try Snapshot(decoding: plain)))
            } catch {
                throw RepositoryError.damaged("snapshots/\(info.handle.name)", "\(error)")
            }
        }
        return out.sorted { ($0.snapshot.time, $0.id.hash) < ($1.snapshot.time, $1.id.hash) }
    }

    /// The ids of every snapshot (a listing; nothing is decrypted).
    public func snapshotIDs() throws(RepositoryError) -> [SnapshotID] {
        try list(.snapshots).compactMap { Hash256(hex: $0.handle.name).map(SnapshotID.init) }
    }

    /// Loads and decrypts one snapshot.
    public func loadSnapshot(_ id: SnapshotID) throws(RepositoryError) -> Snapshot {
        let plain = try loadObject(ObjectHandle(kind: .snapshots, name: id.hash.hex), aad: AdditionalData.snapshot)
        do { return try Snapshot(decoding: plain) } catch {
            throw RepositoryError.damaged("snapshots/\(id.hash.hex)", "\(error)")
        }
    }

    /// Stores a snapshot; returns its id.
    public func saveSnapshot(_ snapshot: Snapshot) throws(RepositoryError) -> SnapshotID {
        SnapshotID(try saveObject(.snapshots, snapshot.encoded(), aad: AdditionalData.snapshot))
    }

    /// Finds a snapshot by "latest", a full id or a unique prefix of at least 4 hex digits.
    public func findSnapshot(_ text: String) throws(RepositoryError) -> (id: SnapshotID, snapshot: Snapshot) {
        let all = try snapshots()
        if text == "latest" {
            guard let last = all.last else { throw RepositoryError(.notFound, "the store has no snapshots yet") }
            return last
        }
        let lower = text.lowercased()
        guard lower.count >= 4, HexCoding.decode(lower.count % 2 == 0 ? lower : lower + "0") != nil else {
            throw RepositoryError(
                .invalidArgument,
                "'\(text)' is not a snapshot id: give `latest` or at least 4 hex digits (see `polyad snapshots`)"
            )
        }
        let matches = all.filter { $0.id.hash.hex.hasPrefix(lower) }
        guard let first = matches.first else {
            throw RepositoryError(.notFound, "no snapshot \(text) in this store (see `polyad snapshots`)")
        }
        guard matches.count == 1 else {
            throw RepositoryError(.invalidArgument, "snapshot id \(text) is ambiguous: give more digits")
        }
        return first
    }

    /// Removes snapshot `id` from the store (its data stays until a prune). A snapshot already gone is no
    /// failure (another forget got there first).
    public func removeSnapshot(_ id: SnapshotID) throws(RepositoryError) {
        try removeIfPresent(ObjectHandle(kind: .snapshots, name: id.hash.hex))
    }

    // MARK: Keys

    /// Adds a key slot for `passphrase`, labelled `label` (at most 200 bytes, no control characters; else
    /// `.invalidArgument` and nothing is written); returns its id.
    public func addKey(
        passphrase: [UInt8],
        label: String? = nil,
        parameters: KeyRing.Parameters = .default
    ) throws(RepositoryError) -> String {
        try KeyRing.addSlot(
            secret: key.secret,
            passphrase: passphrase,
            label: label,
            backend: backend,
            parameters: parameters
        )
    }

    /// The store's key slots.
    public func keys() throws(RepositoryError) -> [(id: String, slot: KeySlot)] {
        var out = [(id: String, slot: KeySlot)]()
        for info in try list(.keys) {
            let bytes = try KeyRing.load(backend, info.handle)
            let slot: KeySlot
            do { slot = try KeySlot(decoding: bytes) } catch {
                throw RepositoryError.damaged("keys/\(info.handle.name)", "not a key slot: \(error)")
            }
            out.append((info.handle.name, slot))
        }
        return out.sorted { $0.slot.created < $1.slot.created }
    }

    /// Removes a key slot by id or unique prefix; refuses the slot in use and the last slot.
    public func removeKey(_ prefix: String) throws(RepositoryError) -> String {
        let all = try keys()
        let matches = all.filter { $0.id.hasPrefix(prefix.lowercased()) }
        guard matches.count == 1, let target = matches.first else {
            throw RepositoryError(
                matches.isEmpty ? .notFound : .invalidArgument,
                matches.isEmpty ? "no key \(prefix) (see `polyad key list`)" : "key id \(prefix) is ambiguous"
            )
        }
        if target.id == key.slot {
            throw RepositoryError(
                .invalidArgument,
                "key \(prefix) is the one this command was opened with: open with another passphrase to remove it, or use `polyad key passwd`"
            )
        }
        do { try backend.remove(ObjectHandle(kind: .keys, name: target.id)) } catch {
            throw RepositoryError.storage(error)
        }
        return target.id
    }

    /// Replaces the slot in use by one for `newPassphrase`, with the same label; nothing else is re-encrypted.
    public func changePassphrase(to newPassphrase: [UInt8]) throws(RepositoryError) -> String {
        let inUse = try KeyRing.load(backend, ObjectHandle(kind: .keys, name: key.slot))
        let id = try addKey(passphrase: newPassphrase, label: (try? KeySlot(decoding: inUse))?.label)
        do { try backend.remove(ObjectHandle(kind: .keys, name: key.slot)) } catch {
            throw RepositoryError.storage(error)
        }
        return id
    }
}
