/// A 32-byte value: a SHA-256 digest or an HMAC-SHA-256 tag. Stored as four words so that it hashes and
/// compares without heap traffic; the byte order of `bytes` is the digest's own order.
public struct Hash256: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    /// The number of bytes in the value.
    public static let byteCount = 32

    /// Hashes the first word only: the value is already a cryptographic digest (uniform; an adversary cannot
    /// choose it), so eight bytes spread dictionary keys as well as 32 do, at a quarter of the hashing work
    /// (the in-memory index of a store with millions of chunks hashes every id when it loads). Equality still
    /// compares all 32 bytes.
    public func hash(into hasher: inout Hasher) { hasher.combine(w0) }

    /// Creates a value from exactly 32 bytes.
    public init(_ bytes: some Collection<UInt8>) {
        precondition(bytes.count == 32, "a Hash256 needs 32 bytes")
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { dst in
            for (i, b) in bytes.enumerated() { dst[i] = b }
        }
        (w0, w1, w2, w3) = words
    }

    /// Parses 64 hexadecimal digits; nil if `hex` is anything else.
    public init?(hex: some StringProtocol) {
        guard hex.utf8.count == 64, let bytes = HexCoding.decode(hex) else { return nil }
        self.init(bytes)
    }

    /// The 32 bytes, in digest order.
    public var bytes: [UInt8] {
        var words = (w0, w1, w2, w3)
        return withUnsafeBytes(of: &words) { Array($0) }
    }

    /// 64 lowercase hexadecimal digits.
    public var hex: String { HexCoding.encode(bytes) }

    /// The first eight hexadecimal digits, as shown to users.
    public var shortHex: String { String(hex.prefix(8)) }

    public var description: String { hex }

    public static func < (a: Hash256, b: Hash256) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

/// What an ``ObjectID`` names. Each kind makes its own id type, so a tree id cannot go where a chunk id is meant.
public protocol ObjectIDKind: Sendable {
    /// The kind's name in messages ("tree", "snapshot").
    static var name: String { get }
}

/// A 256-bit id of one kind of stored thing; JSON encodes it as 64 lowercase hex digits.
public struct ObjectID<Kind: ObjectIDKind>: Hashable, Sendable, CustomStringConvertible, Codable {
    public var hash: Hash256
    public init(_ hash: Hash256) { self.hash = hash }
    /// 64 lowercase hex digits.
    public var description: String { hash.hex }
    /// Eight hexadecimal digits, as shown to users and in the mount.
    public var short: String { hash.shortHex }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let hash = Hash256(hex: text) else { throw FormatError(Kind.name, "bad \(Kind.name) id \(text)") }
        self.init(hash)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hash.hex)
    }
}

/// Data chunks: the id is HMAC-SHA-256 of the plaintext under the store's id key.
public enum ChunkKind: ObjectIDKind { public static let name = "chunk" }
/// Trees (directory listings): the id is HMAC-SHA-256 of the encoded plaintext under the store's id key.
public enum TreeKind: ObjectIDKind { public static let name = "tree" }
/// Pack files: the id is SHA-256 of the file's bytes, which is also its name.
public enum PackKind: ObjectIDKind { public static let name = "pack" }
/// Snapshots: the id is SHA-256 of the stored (encrypted) object, which is also its name.
public enum SnapshotKind: ObjectIDKind { public static let name = "snapshot" }

/// Blobs in packs and the index: a chunk's or a tree's id, the same HMAC either way.
public enum BlobKind: ObjectIDKind { public static let name = "blob" }

/// The id of a blob (a data chunk or a tree) as packs and the index know it.
public typealias BlobID = ObjectID<BlobKind>
/// The id of a data chunk.
public typealias ChunkID = ObjectID<ChunkKind>
/// The id of a tree.
public typealias TreeID = ObjectID<TreeKind>
/// The name of a pack file.
public typealias PackID = ObjectID<PackKind>
/// The id of a snapshot.
public typealias SnapshotID = ObjectID<SnapshotKind>

/// What a blob holds; data and tree blobs live in separate packs.
public enum BlobType: UInt8, Sendable, CustomStringConvertible {
    case data = 0
    case tree = 1
    public var description: String { self == .data ? "data" : "tree" }
}

/// Lowercase hexadecimal encoding.
public enum HexCoding {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Encodes bytes as lowercase hex.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes hex digits (either case); nil on an odd count or another character.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = value(utf8[i]), let lo = value(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension ObjectID where Kind == ChunkKind {
    /// The chunk's id as a blob of a pack.
    public var blob: BlobID { BlobID(hash) }
}

extension ObjectID where Kind == TreeKind {
    /// The tree's id as a blob of a pack.
    public var blob: BlobID { BlobID(hash) }
}

extension ObjectID where Kind == BlobKind {
    /// Eight hexadecimal digits, for messages.
    public var shortHex: String { hash.shortHex }
}
