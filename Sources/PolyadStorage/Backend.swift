/// The kinds of object a store holds. Each kind lives under its own prefix (a folder locally, a key prefix on S3).
public enum ObjectKind: String, Sendable, CaseIterable {
    /// The store's single config object, named `config`.
    case config
    /// Key slots: the master keys wrapped by passphrase-derived keys.
    case keys
    /// Snapshot objects, written last in a backup.
    case snapshots
    /// Index objects: which chunk lives in which pack.
    case index
    /// Packs of encrypted chunks.
    case data
    /// Lock objects; the only kind that may be overwritten in place.
    case locks

    /// Whether objects of this kind are named by the SHA-256 of their bytes (64 lowercase hex digits).
    public var isHashed: Bool { self != .config }
}

/// Names one object in a store: its kind and its name.
///
/// Hashed objects (every kind except ``ObjectKind/config``) are named by 64 lowercase hex digits; the config
/// object is named `config`. Backends reject any other name with ``StorageError/Code/invalidRequest``, so a
/// handle can never point outside the store.
public struct ObjectHandle: Hashable, Sendable, CustomStringConvertible {
    /// The object's kind.
    public var kind: ObjectKind
    /// The object's name: 64 lowercase hex digits, or `config` for the config object.
    public var name: String

    /// Creates a handle; its validity is checked by the backend when used (see ``isValid``).
    public init(kind: ObjectKind, name: String) {
        self.kind = kind
        self.name = name
    }

    /// The handle of the store's config object.
    public static let config = ObjectHandle(kind: .config, name: "config")

    /// Whether `name` is a valid name for `kind`: `config` for the config kind, 64 lowercase hex digits otherwise.
    public var isValid: Bool { Self.isValidName(name, for: kind) }

    /// Whether `name` is a valid object name for `kind`.
    public static func isValidName(_ name: String, for kind: ObjectKind) -> Bool {
        if kind == .config { return name == "config" }
        let utf8 = name.utf8
        guard utf8.count == 64 else { return false }
        return utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// `kind/name`, e.g. `data/3f9c…`, as shown in messages.
    public var description: String {
        kind == .config ? "config" : "\(kind.rawValue)/\(name)"
    }
}

/// An object found by ``Backend/list(_:)``: its handle and its size in bytes.
public struct ObjectInfo: Hashable, Sendable {
    /// The object's handle.
    public var handle: ObjectHandle
    /// The object's size in bytes.
    public var size: Int64

    /// Creates an object description.
    public init(handle: ObjectHandle, size: Int64) {
        self.handle = handle
        self.size = size
    }
}

/// A place that stores objects: a local folder, an S3 bucket, or a decorator around either (retry, mirror).
///
/// The contract is written so that an object store such as S3 can honour it: there is no rename, objects are
/// listed by kind (prefix), and an object is immutable once written (locks excepted). Every method may be called
/// from several threads at once. Content hashes are checked by the layer above; a backend only moves bytes and
/// reports sizes. Every error is a ``StorageError`` naming the store and, where one is involved, the handle.
public protocol Backend: Sendable {
    /// Where the store is, for messages: a directory path, `s3://bucket/prefix`, ….
    var location: String { get }

    /// Makes an empty store's layout.
    ///
    /// Creating over an existing layout without a config object is allowed (an interrupted `create`).
    /// - Throws: ``StorageError/Code/alreadyExists`` if a config object is already present.
    func create() throws(StorageError)

    /// Whether a store exists here, that is, whether its config object is present.
    ///
    /// - Throws: only when the answer cannot be known (unreachable, permission denied); a missing store is `false`.
    func exists() throws(StorageError) -> Bool

    /// Stores `data` under `handle`, atomically: the object becomes visible only complete and durable.
    ///
    /// If an object with this handle exists already: for ``ObjectKind/locks`` it is replaced; for every other
    /// kind nothing is written and the call succeeds when the sizes match (objects are content-addressed), or
    /// fails with ``StorageError/Code/alreadyExists`` when they differ. A backend where asking first costs a
    /// round trip (S3) may instead write a hashed kind's object again whole: its name, the SHA-256 of its bytes,
    /// vouches that they are the same, and a damaged copy is healed. A failed save leaves nothing visible.
    /// - Throws: ``StorageError/Code/noSpace`` when the target is full, ``StorageError/Code/invalidRequest``
    ///   for an invalid handle, and the other codes for I/O failures.
    func save(_ handle: ObjectHandle, _ data: UnsafeRawBufferPointer) throws(StorageError)

    /// Reads `length` bytes of the object starting at `offset`, or everything from `offset` to the end when
    /// `length` is `nil`.
    ///
    /// - Throws: ``StorageError/Code/notFound`` for a missing object, ``StorageError/Code/damaged`` when the
    ///   object is shorter than `offset + length` (or than `offset`), ``StorageError/Code/invalidRequest`` for a
    ///   negative offset or length or an invalid handle.
    func load(_ handle: ObjectHandle, offset: Int64, length: Int?) throws(StorageError) -> [UInt8]

    /// The object's size in bytes.
    ///
    /// - Throws: ``StorageError/Code/notFound`` for a missing object.
    func size(_ handle: ObjectHandle) throws(StorageError) -> Int64

    /// Deletes the object.
    ///
    /// - Throws: ``StorageError/Code/notFound`` if it does not exist.
    func remove(_ handle: ObjectHandle) throws(StorageError)

    /// Every complete object of `kind`, in no particular order.
    ///
    /// Temporary files, objects being written and names that are not valid for the kind are never listed. A kind
    /// with no objects (or a store without that prefix yet) gives an empty list.
    func list(_ kind: ObjectKind) throws(StorageError) -> [ObjectInfo]

    /// Whether every read costs a round trip worth avoiding (a network store): readers then fetch more of a pack
    /// than the blob they need and keep it for the blobs after it. False by default (a local disk, where a
    /// read of exactly the blob is cheapest).
    var readsAreRemote: Bool { get }
}

extension Backend {
    public var readsAreRemote: Bool { false }

    /// Stores `bytes` under `handle`; see ``Backend/save(_:_:)``.
    public func save(_ handle: ObjectHandle, _ bytes: [UInt8]) throws(StorageError) {
        let result: Result<Void, StorageError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(StorageError) in try save(handle, buffer) }
        }
        try result.get()
    }

    /// Reads the whole object; see ``Backend/load(_:offset:length:)``.
    public func load(_ handle: ObjectHandle) throws(StorageError) -> [UInt8] {
        try load(handle, offset: 0, length: nil)
    }
}

/// A backend that keeps more than one copy of each object (the mirror): when the bytes of a range read from one
/// copy do not check out (a pack's blob that fails its authentication), the caller asks again with its check,
/// and the range comes from a copy that passes it.
public protocol RedundantBackend: Backend {
    /// The bytes of the range from the first copy whose bytes `accept` takes. Copies that gave refused bytes, or
    /// lacked the object, are repaired from the accepted copy once its whole object checks out by its name.
    ///
    /// - Throws: the first copy's error when no copy gives accepted bytes (``StorageError/Code/damaged`` when
    ///   they read but were refused).
    func load(
        _ handle: ObjectHandle,
        offset: Int64,
        length: Int?,
        accept: ([UInt8]) -> Bool
    ) throws(StorageError)
        -> [UInt8]
}
