/// An error decoding a stored structure: the object is damaged or of a newer format.
public struct FormatError: Error, CustomStringConvertible, Equatable {
    /// What was being decoded, e.g. "tree" or "pack header".
    public var structure: String
    /// What is wrong with it.
    public var reason: String

    public init(_ structure: String, _ reason: String) {
        self.structure = structure
        self.reason = reason
    }

    public var description: String {
        "damaged or unsupported \(structure): \(reason) (run `polyad verify` to find damaged objects)"
    }
}

/// Appends little-endian integers, LEB128 varints and length-prefixed byte strings to a buffer.
public struct BinaryWriter {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }

    public mutating func u32(_ v: UInt32) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func u64(_ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Unsigned LEB128.
    public mutating func uvarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Signed values as zig-zag LEB128.
    public mutating func varint(_ v: Int64) {
        uvarint(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }

    /// A varint length followed by the bytes.
    public mutating func lengthPrefixed(_ v: some Collection<UInt8>) {
        uvarint(UInt64(v.count))
        bytes.append(contentsOf: v)
    }

    public mutating func string(_ s: String) { lengthPrefixed(Array(s.utf8)) }

    public mutating func hash(_ h: Hash256) {
        var words = (h.w0, h.w1, h.w2, h.w3)
        withUnsafeBytes(of: &words) { bytes.append(contentsOf: $0) }
    }

    public mutating func raw(_ v: some Collection<UInt8>) { bytes.append(contentsOf: v) }
}

/// Reads what `BinaryWriter` writes; every read checks bounds and throws `FormatError`.
public struct BinaryReader {
    private let bytes: [UInt8]
    /// The read position.
    public private(set) var position: Int
    private let structure: String

    public init(_ bytes: [UInt8], structure: String, position: Int = 0) {
        self.bytes = bytes
        self.structure = structure
        self.position = position
    }

    /// True when every byte has been read.
    public var isAtEnd: Bool { position == bytes.count }

    public var remaining: Int { bytes.count - position }

    private func fail(_ reason: String) -> FormatError { FormatError(structure, reason) }

    private mutating func need(_ n: Int) throws(FormatError) {
        guard n >= 0, n <= bytes.count - position else {
            throw fail("truncated at byte \(position) (needs \(n) more)")
        }
    }

    public mutating func u8() throws(FormatError) -> UInt8 {
        try need(1)
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func u32() throws(FormatError) -> UInt32 {
        try need(4)
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[position + i]) << (8 * UInt32(i)) }
        position += 4
        return v
    }

    public mutating func u64() throws(FormatError) -> UInt64 {
        try need(8)
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += 8
        return v
    }

    public mutating func uvarint() throws(FormatError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try u8()
            guard shift < 64 else { throw fail("varint too long at byte \(position)") }
            result |= UInt64(b & 0x7f) << shift
            if b < 0x80 { return result }
            shift += 7
        }
    }

    public mutating func varint() throws(FormatError) -> Int64 {
        let u = try uvarint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    /// A varint that must fit `limit`.
    public mutating func count(limit: Int) throws(FormatError) -> Int {
        let v = try uvarint()
        guard v <= UInt64(limit) else { throw fail("count \(v) exceeds \(limit)") }
        return Int(v)
    }

    public mutating func lengthPrefixed() throws(FormatError) -> [UInt8] {
        let n = try count(limit: remaining)
        return try raw(n)
    }

    public mutating func string() throws(FormatError) -> String {
        String(decoding: try lengthPrefixed(), as: UTF8.self)
    }

    public mutating func hash() throws(FormatError) -> Hash256 {
        try need(32)
        defer { position += 32 }
        return Hash256(bytes[position..<position + 32])
    }

    public mutating func raw(_ n: Int) throws(FormatError) -> [UInt8] {
        try need(n)
        defer { position += n }
        return Array(bytes[position..<position + n])
    }

    /// Throws unless every byte was read.
    public func expectEnd() throws(FormatError) {
        guard isAtEnd else { throw fail("\(remaining) unexpected trailing bytes") }
    }
}
