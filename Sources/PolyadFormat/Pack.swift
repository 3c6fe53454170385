/// One blob's place in a pack: what the pack header and the index record for it.
public struct PackEntry: Hashable, Sendable {
    public var type: BlobType
    /// The blob's id (a chunk's or a tree's).
    public var id: BlobID
    /// Byte offset of the sealed blob within the pack.
    public var offset: UInt32
    /// Length of the sealed blob (envelope included).
    public var length: UInt32
    /// Length of the blob's plaintext (after decompression).
    public var rawLength: UInt32

    public init(type: BlobType, id: BlobID, offset: UInt32, length: UInt32, rawLength: UInt32) {
        self.type = type
        self.id = id
        self.offset = offset
        self.length = length
        self.rawLength = rawLength
    }
}

/// The layout of a pack file:
///
///     sealed blob 0 | sealed blob 1 | … | sealed header | header length (u32 LE) | magic "PYP1"
///
/// The header is an `Envelope`-sealed `PackHeader` encoding. The pack's name is the SHA-256 of all its bytes.
public enum PackLayout {
    /// The last four bytes of every pack.
    public static let magic: [UInt8] = Array("PYP1".utf8)
    /// Length of the trailer: header length plus magic.
    public static let trailerLength = 8

    /// Splits a pack's trailer; returns the sealed header's range.
    public static func headerRange(packLength: Int, trailer: [UInt8]) throws(FormatError) -> Range<Int> {
        guard trailer.count == trailerLength else { throw FormatError("pack", "trailer must be 8 bytes") }
        guard Array(trailer[4..<8]) == magic else { throw FormatError("pack", "bad magic (not a Polyad pack)") }
        var r = BinaryReader(trailer, structure: "pack trailer")
        let headerLength = Int(try r.u32())
        let start = packLength - trailerLength - headerLength
        guard headerLength > 0, start >= 0 else {
            throw FormatError("pack", "header length \(headerLength) out of range")
        }
        return start..<(packLength - trailerLength)
    }

    /// The trailer for a sealed header of `headerLength` bytes.
    public static func trailer(headerLength: Int) -> [UInt8] {
        var w = BinaryWriter(capacity: 8)
        w.u32(UInt32(headerLength))
        w.raw(magic)
        return w.bytes
    }
}

/// The plaintext of a pack header: format version, then every blob's entry in pack order.
///
///     u8 version (1) | uvarint count | count × (u8 type | 32 id | u32 offset | u32 length | u32 rawLength)
public struct PackHeader: Equatable, Sendable {
    public static let version: UInt8 = 1
    public var entries: [PackEntry]

    public init(entries: [PackEntry]) { self.entries = entries }

    public func encoded() -> [UInt8] {
        var w = BinaryWriter(capacity: 8 + entries.count * 45)
        w.u8(Self.version)
        w.uvarint(UInt64(entries.count))
        for e in entries { Self.write(e, to: &w) }
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws(FormatError) {
        var r = BinaryReader(bytes, structure: "pack header")
        let v = try r.u8()
        guard v == Self.version else { throw FormatError("pack header", "version \(v) is not supported") }
        let n = try r.count(limit: r.remaining / 45)
        var entries = [PackEntry]()
        entries.reserveCapacity(n)
        for _ in 0..<n { entries.append(try Self.read(&r)) }
        try r.expectEnd()
        self.entries = entries
    }

    static func write(_ e: PackEntry, to w: inout BinaryWriter) {
        w.u8(e.type.rawValue)
        w.hash(e.id.hash)
        w.u32(e.offset)
        w.u32(e.length)
        w.u32(e.rawLength)
    }

    static func read(_ r: inout BinaryReader) throws(FormatError) -> PackEntry {
        let t = try r.u8()
        guard let type = BlobType(rawValue: t) else { throw FormatError("pack entry", "unknown blob type \(t)") }
        return PackEntry(
            type: type,
            id: BlobID(try r.hash()),
            offset: try r.u32(),
            length: try r.u32(),
            rawLength: try r.u32()
        )
    }
}

/// An index file's plaintext: which blobs each pack holds.
///
///     u8 version (1) | uvarint packCount | packCount × (32 pack id | uvarint n | n × entry as in PackHeader)
///     | uvarint supersededCount | supersededCount × 32 index id
public struct IndexFile: Equatable, Sendable {
    public static let version: UInt8 = 1

    public struct Pack: Equatable, Sendable {
        public var id: PackID
        public var entries: [PackEntry]
        public init(id: PackID, entries: [PackEntry]) {
            self.id = id
            self.entries = entries
        }
    }

    public var packs: [Pack]
    /// Index files this one replaces (written by prune); empty for a backup's index.
    public var supersedes: [Hash256]

    public init(packs: [Pack], supersedes: [Hash256] = []) {
        self.packs = packs
        self.supersedes = supersedes
    }

    public func encoded() -> [UInt8] {
        var w = BinaryWriter(capacity: 16 + packs.reduce(0) { $0 + 40 + $1.entries.count * 45 })
        w.u8(Self.version)
        w.uvarint(UInt64(packs.count))
        for p in packs {
            w.hash(p.id.hash)
            w.uvarint(UInt64(p.entries.count))
            for e in p.entries { PackHeader.write(e, to: &w) }
        }
        w.uvarint(UInt64(supersedes.count))
        for s in supersedes { w.hash(s) }
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws(FormatError) {
        var r = BinaryReader(bytes, structure: "index")
        let v = try r.u8()
        guard v == Self.version else { throw FormatError("index", "version \(v) is not supported") }
        let n = try r.count(limit: r.remaining / 33)
        var packs = [Pack]()
        packs.reserveCapacity(n)
        for _ in 0..<n {
            let id = PackID(try r.hash())
            let m = try r.count(limit: r.remaining / 45)
            var entries = [PackEntry]()
            entries.reserveCapacity(m)
            for _ in 0..<m { entries.append(try PackHeader.read(&r)) }
            packs.append(Pack(id: id, entries: entries))
        }
        let s = try r.count(limit: r.remaining / 32)
        var supersedes = [Hash256]()
        for _ in 0..<s { supersedes.append(try r.hash()) }
        try r.expectEnd()
        self.packs = packs
        self.supersedes = supersedes
    }
}
