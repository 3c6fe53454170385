import Foundation

/// What one backup run did; stored in its snapshot.
public struct BackupSummary: Codable, Hashable, Sendable {
    public var filesNew = 0
    public var filesChanged = 0
    public var filesUnchanged = 0
    public var directories = 0
    public var otherEntries = 0
    /// Logical bytes of the regular files in the snapshot (hard-linked data counted once).
    public var totalBytes: UInt64 = 0
    /// Plaintext bytes of blobs this run added to the store.
    public var addedBytes: UInt64 = 0
    /// Bytes this run wrote to packs (compressed and encrypted).
    public var storedBytes: UInt64 = 0
    public var blobsAdded = 0
    /// Sources that could not be read (the run exits 3).
    public var errors = 0
    public var durationSeconds: Double = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case filesNew = "files_new"
        case filesChanged = "files_changed"
        case filesUnchanged = "files_unchanged"
        case directories
        case otherEntries = "other_entries"
        case totalBytes = "total_bytes"
        case addedBytes = "added_bytes"
        case storedBytes = "stored_bytes"
        case blobsAdded = "blobs_added"
        case errors
        case durationSeconds = "duration_seconds"
    }
}

/// A snapshot: the root tree of one backup and what describes it. Stored as JSON in an encrypted object.
public struct Snapshot: Codable, Hashable, Sendable {
    public static let currentVersion = 1
    public var version = Snapshot.currentVersion
    /// When the backup started, seconds and nanoseconds since the epoch (UTC).
    public var time: Timestamp
    public var hostname: String
    public var username: String
    public var uid: UInt32
    public var gid: UInt32
    /// The backed-up paths as given (absolute); bytes that are not UTF-8 are escaped as \xNN.
    public var paths: [String]
    public var tags: [String]
    /// The snapshot whose files cache this run used.
    public var parent: SnapshotID?
    public var tree: TreeID
    public var summary: BackupSummary
    /// Free-form metadata (from `createBackup(data:metadata:)`).
    public var metadata: [String: String]
    public var programVersion: String

    public init(
        time: Timestamp,
        hostname: String,
        username: String,
        uid: UInt32,
        gid: UInt32,
        paths: [String],
        tags: [String],
        parent: SnapshotID?,
        tree: TreeID,
        summary: BackupSummary,
        metadata: [String: String] = [:],
        programVersion: String
    ) {
        self.time = time
        self.hostname = hostname
        self.username = username
        self.uid = uid
        self.gid = gid
        self.paths = paths
        self.tags = tags
        self.parent = parent
        self.tree = tree
        self.summary = summary
        self.metadata = metadata
        self.programVersion = programVersion
    }

    enum CodingKeys: String, CodingKey {
        case version, time, hostname, username, uid, gid, paths, tags, parent, tree, summary, metadata
        case programVersion = "program_version"
    }

    public func encoded() -> [UInt8] { JSONCoding.encode(self) }

    public init(decoding bytes: [UInt8]) throws(FormatError) {
        self = try JSONCoding.decode(Snapshot.self, from: bytes, structure: "snapshot")
        guard version == Snapshot.currentVersion else {
            throw FormatError("snapshot", "version \(version) is not supported")
        }
    }
}

/// A key slot, stored unencrypted as JSON in `keys/<sha256>`: the master key sealed under a key derived
/// from a passphrase with scrypt. Several slots may hold the same master key.
public struct KeySlot: Codable, Hashable, Sendable {
    /// The most UTF-8 bytes a ``label`` may have.
    public static let labelLimit = 200
    public static let currentVersion = 1
    public var version = KeySlot.currentVersion
    public var created: Timestamp
    public var hostname: String
    public var username: String
    /// Always "scrypt".
    public var kdf: String
    public var n: UInt64
    public var r: UInt64
    public var p: UInt64
    /// Base64 of the 32-byte scrypt salt.
    public var salt: String
    /// Base64 of the master key sealed in an `Envelope` under the scrypt output.
    public var data: String
    /// What the slot is for, as its owner named it (`polyad key add --label`): at most ``labelLimit`` UTF-8
    /// bytes, no control characters. Optional: slots written without one (and before labels existed) have no
    /// `label` key in their JSON, and encode to the same bytes as before.
    public var label: String?

    public init(
        created: Timestamp,
        hostname: String,
        username: String,
        n: UInt64,
        r: UInt64,
        p: UInt64,
        salt: [UInt8],
        data: [UInt8],
        label: String? = nil
    ) {
        self.created = created
        self.hostname = hostname
        self.username = username
        kdf = "scrypt"
        self.n = n
        self.r = r
        self.p = p
        self.salt = Data(salt).base64EncodedString()
        self.data = Data(data).base64EncodedString()
        self.label = label
    }

    /// Why `label` cannot label a key slot, or nil if it can: it must be 1 to ``labelLimit`` UTF-8 bytes with
    /// no control character (C0, DEL, C1) and no line or paragraph separator (U+2028, U+2029), so that it
    /// stays on its line in a listing.
    public static func problem(withLabel label: String) -> String? {
        if label.isEmpty { return "a key label must not be empty" }
        let size = label.utf8.count
        if size > labelLimit {
            return "a key label may have at most \(labelLimit) bytes (UTF-8); this one has \(size)"
        }
        let breaking: Set<Unicode.GeneralCategory> = [.control, .lineSeparator, .paragraphSeparator]
        if let bad = label.unicodeScalars.first(where: { breaking.contains($0.properties.generalCategory) }) {
            let code = "U+" + String(bad.value, radix: 16, uppercase: true).leftPadded(to: 4)
            return "a key label must not hold control characters or line breaks; this one holds \(code)"
        }
        return nil
    }

    public var saltBytes: [UInt8] { Array(Data(base64Encoded: salt) ?? Data()) }
    public var dataBytes: [UInt8] { Array(Data(base64Encoded: data) ?? Data()) }

    public func encoded() -> [UInt8] { JSONCoding.encode(self) }

    public init(decoding bytes: [UInt8]) throws(FormatError) {
        self = try JSONCoding.decode(KeySlot.self, from: bytes, structure: "key slot")
        guard version == KeySlot.currentVersion, kdf == "scrypt" else {
            throw FormatError("key slot", "version \(version) / kdf \(kdf) is not supported")
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}

/// The master key material (plaintext inside a key slot):
///
///     u8 version (1) | 32 encryption key | 32 id key | 32 chunker seed
public struct MasterKeyMaterial: Sendable, Equatable {
    public var encryptionKey: [UInt8]
    public var idKey: [UInt8]
    public var chunkerSeed: [UInt8]

    public init(encryptionKey: [UInt8], idKey: [UInt8], chunkerSeed: [UInt8]) {
        precondition(encryptionKey.count == 32 && idKey.count == 32 && chunkerSeed.count == 32)
        self.encryptionKey = encryptionKey
        self.idKey = idKey
        self.chunkerSeed = chunkerSeed
    }

    public func encoded() -> [UInt8] { [1] + encryptionKey + idKey + chunkerSeed }

    public init(decoding bytes: [UInt8]) throws(FormatError) {
        guard bytes.count == 97, bytes[0] == 1 else { throw FormatError("master key", "unexpected length or version") }
        self.init(encryptionKey: Array(bytes[1..<33]), idKey: Array(bytes[33..<65]), chunkerSeed: Array(bytes[65..<97]))
    }
}

/// The store's `config` object (encrypted JSON): format version, store id and chunker parameters.
public struct StoreConfig: Codable, Hashable, Sendable {
    public static let currentVersion = 1
    public var version = StoreConfig.currentVersion
    /// 32 random hex digits naming this store (for caches).
    public var id: String
    public var chunkerMinSize: Int
    public var chunkerAverageSize: Int
    public var chunkerMaxSize: Int
    public var created: Timestamp

    public init(id: String, chunkerMinSize: Int, chunkerAverageSize: Int, chunkerMaxSize: Int, created: Timestamp) {
        self.id = id
        self.chunkerMinSize = chunkerMinSize
        self.chunkerAverageSize = chunkerAverageSize
        self.chunkerMaxSize = chunkerMaxSize
        self.created = created
    }

    enum CodingKeys: String, CodingKey {
        case version, id, created
        case chunkerMinSize = "chunker_min_size"
        case chunkerAverageSize = "chunker_average_size"
        case chunkerMaxSize = "chunker_max_size"
    }

    public func encoded() -> [UInt8] { JSONCoding.encode(self) }

    public init(decoding bytes: [UInt8]) throws(FormatError) {
        self = try JSONCoding.decode(StoreConfig.self, from: bytes, structure: "store config")
        guard version == StoreConfig.currentVersion else {
            throw FormatError("store config", "version \(version) is not supported by this polyad; upgrade it")
        }
    }
}

/// A lock object (`locks/<sha256>`, encrypted JSON): who holds the store and how.
public struct LockRecord: Codable, Hashable, Sendable {
    public var time: Timestamp
    public var hostname: String
    public var username: String
    public var pid: Int32
    /// Exclusive locks (prune) exclude every other lock; shared locks (backup, restore, verify) only exclusive ones.
    public var exclusive: Bool
    public var operation: String
    /// When the holder started, in clock ticks after boot (`/proc/PID/stat` field 22), and the boot it started
    /// in (`/proc/sys/kernel/random/boot_id`): with them a PID the kernel gave to another process since, or a
    /// reboot, shows the lock stale. Absent in locks written before they were added.
    public var start: UInt64?
    public var boot: String?

    public init(
        time: Timestamp,
        hostname: String,
        username: String,
        pid: Int32,
        exclusive: Bool,
        operation: String,
        start: UInt64? = nil,
        boot: String? = nil
    ) {
        self.time = time
        self.hostname = hostname
        self.username = username
        self.pid = pid
        self.exclusive = exclusive
        self.operation = operation
        self.start = start
        self.boot = boot
    }

    public func encoded() -> [UInt8] { JSONCoding.encode(self) }

    public init(decoding bytes: [UInt8]) throws(FormatError) {
        self = try JSONCoding.decode(LockRecord.self, from: bytes, structure: "lock")
    }
}

/// JSON with sorted keys, so that equal records encode to equal bytes.
public enum JSONCoding {
    public static func encode(_ value: some Encodable) -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain records cannot fail.
        return Array((try? e.encode(value)) ?? Data())
    }

    public static func decode<T: Decodable>(
        _ type: T.Type,
        from bytes: [UInt8],
        structure: String
    ) throws(FormatError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch {
            throw FormatError(structure, "not valid JSON for this version (\(error))")
        }
    }
}
