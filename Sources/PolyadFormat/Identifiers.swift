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

/// The id of a data chunk: HMAC-SHA-256 of its plaintext under the store's id key.
public struct ChunkID: Hashable, Sendable, CustomStringConvertible {
    public var hash: Hash256
    public init(_ hash: Hash256) { self.hash = hash }
    public var description: String { hash.hex }
}

/// The id of a tree (directory listing): HMAC-SHA-256 of its encoded plaintext under the store's id key.
public struct TreeID: Hashable, Sendable, CustomStringConvertible {
    public var hash: Hash256
    public init(_ hash: Hash256) { self.hash = hash }
    public var description: String { hash.hex }
}

/// The name of a pack file: SHA-256 of its bytes.
public struct PackID: Hashable, Sendable, CustomStringConvertible {
    public var hash: Hash256
    public init(_ hash: Hash256) { self.hash = hash }
    public var description: String { hash.hex }
}

/// The id of a snapshot: SHA-256 of its stored (encrypted) object, which is also its name.
public struct SnapshotID: Hashable, Sendable, CustomStringConvertible {
    public var hash: Hash256
    public init(_ hash: Hash256) { self.hash = hash }
    public var description: String { hash.hex }
    /// Eight hexadecimal digits, as shown to users and in the mount.
    public var short: String { hash.shortHex }
}

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
