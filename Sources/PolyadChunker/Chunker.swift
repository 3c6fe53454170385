// Content-defined chunking with a keyed gear hash (FastCDC with normalized chunking).
//
// Boundaries depend only on the bytes of the chunk being cut, so an insertion early in a file changes only
// the chunks around it. The gear table is derived from a secret seed, so boundaries reveal nothing about the
// content to someone without the key.

/// The size limits of content-defined chunks.
public struct ChunkerParameters: Sendable, Equatable {
    /// No chunk is shorter than this, except the last chunk of a stream.
    public var minSize: Int
    /// The target chunk size; a power of two. The cut mask switches from strict to loose at this length.
    public var averageSize: Int
    /// No chunk is longer than this.
    public var maxSize: Int

    /// The product's parameters: 512 KiB minimum, 1 MiB average, 8 MiB maximum.
    public static let `default` = ChunkerParameters(minSize: 512 << 10, averageSize: 1 << 20, maxSize: 8 << 20)

    /// Creates chunk size limits.
    ///
    /// - Precondition: `0 <= minSize <= averageSize <= maxSize`, and `averageSize` is a power of two between
    ///   1 and 2^61.
    public init(minSize: Int, averageSize: Int, maxSize: Int) {
        precondition(minSize >= 0, "ChunkerParameters: minSize must not be negative")
        precondition(
            minSize <= averageSize && averageSize <= maxSize,
            "ChunkerParameters: need minSize <= averageSize <= maxSize"
        )
        precondition(
            averageSize > 0 && averageSize & (averageSize - 1) == 0 && averageSize <= 1 << 61,
            "ChunkerParameters: averageSize must be a power of two"
        )
        self.minSize = minSize
        self.averageSize = averageSize
        self.maxSize = maxSize
    }
}

/// The 256 64-bit values of the gear hash, derived from a 32-byte secret seed.
///
/// Derivation (part of the repository format; an independent implementation must match it bit for bit):
///
/// 1. Read the seed as four little-endian 64-bit words: `w[j] = UInt64(littleEndianBytes: seed[8*j ..< 8*j+8])`
///    for `j` in `0..<4`.
/// 2. Let `mix(x)` be one step of SplitMix64 from state `x` (all arithmetic modulo 2^64):
///    ```
///    z = x + 0x9E3779B97F4A7C15
///    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
///    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
///    mix(x) = z ^ (z >> 31)
///    ```
/// 3. For each table index `i` in `0..<256`:
///    `gear[i] = mix(w[0] ^ (i << 8 | 0)) ^ mix(w[1] ^ (i << 8 | 1)) ^ mix(w[2] ^ (i << 8 | 2)) ^ mix(w[3] ^ (i << 8 | 3))`.
///
/// The per-word tag `j` in the low byte keeps the four terms distinct even when the seed words are equal.
/// For example, the all-zero seed gives `gear[0] == 0xF979A4EF3589484D`.
public struct GearTable: Sendable {
    /// The 256 gear values, indexed by byte value.
    let values: [UInt64]

    /// Derives the gear table from a 32-byte secret seed (see the type's documentation for the exact steps).
    ///
    /// - Precondition: `seed.count == 32`.
    public init(seed: [UInt8]) {
        precondition(seed.count == 32, "GearTable: the seed must be 32 bytes")
        var words = [UInt64](repeating: 0, count: 4)
        for j in 0..<4 {
            var word: UInt64 = 0
            for k in 0..<8 {
                word |= UInt64(seed[8 * j + k]) << (8 * k)
            }
            words[j] = word
        }
        var values = [UInt64](repeating: 0, count: 256)
        for i in 0..<256 {
            var value: UInt64 = 0
            for j in 0..<4 {
                value ^= GearTable.splitMix64(words[j] ^ (UInt64(i) << 8 | UInt64(j)))
            }
            values[i] = value
        }
        self.values = values
    }

    /// The gear value for a byte.
    public subscript(byte: UInt8) -> UInt64 {
        values[Int(byte)]
    }

    /// One SplitMix64 step from state `x`: its output for the state `x + golden gamma`.
    static func splitMix64(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Finds content-defined cut points with normalized FastCDC.
///
/// The algorithm (part of the repository format): for a chunk starting at byte 0 of `data`, with
/// `averageSize == 2^k`, hash `h = 0`; for each position `i` from `minSize` while `i < min(count, maxSize)`,
/// update `h = (h << 1) + gear[data[i]]` (modulo 2^64) and cut after byte `i` (chunk length `i + 1`) when
/// `h & mask == 0`, where `mask` is the top `k + 2` bits of a 64-bit word while `i < averageSize` and the top
/// `max(k - 2, 0)` bits from there on. Without a cut the chunk ends at `maxSize` (or at the end of the stream).
/// Each shift ages out one byte, so the top `b` bits of `h` depend only on the last `64 - b` bytes: a rolling
/// hash without an explicit window. An empty final buffer gives length 0.
public struct Chunker: Sendable {
    /// The gear table used for hashing.
    public let table: GearTable
    /// The size limits.
    public let parameters: ChunkerParameters
    /// The stricter mask used before `averageSize` (top k+2 bits).
    let strictMask: UInt64
    /// The looser mask used from `averageSize` on (top k-2 bits).
    let looseMask: UInt64

    /// Creates a chunker from a gear table and size limits.
    public init(table: GearTable, parameters: ChunkerParameters = .default) {
        self.table = table
        self.parameters = parameters
        let k = parameters.averageSize.trailingZeroBitCount
        strictMask = Chunker.topBits(k + 2)
        looseMask = Chunker.topBits(max(k - 2, 0))
    }

    /// A mask of the `count` most significant bits of a 64-bit word.
    static func topBits(_ count: Int) -> UInt64 {
        count == 0 ? 0 : ~UInt64(0) << UInt64(64 - count)
    }

    /// The length of the next chunk at the start of `data`.
    ///
    /// If `data.count <= minSize`, returns `data.count` (when `isFinal` is false and `data.count < maxSize`,
    /// returns nil instead, because more data could make the chunk longer). Otherwise scans for a cut point
    /// (stricter mask before `averageSize`, looser after) and returns at most `maxSize`.
    ///
    /// - Parameters:
    ///   - data: The bytes starting at the chunk's first byte.
    ///   - isFinal: False if more data may follow `data`. Then, if no cut point is found and
    ///     `data.count < maxSize`, the result is nil and the caller must call again with more data.
    /// - Returns: The chunk length, between 1 and `maxSize` for non-empty data (0 for empty final data),
    ///   or nil when more data is needed.
    public func nextCut(in data: UnsafeRawBufferPointer, isFinal: Bool) -> Int? {
        let count = data.count
        let minSize = parameters.minSize
        let maxSize = parameters.maxSize
        if count <= minSize {
            return isFinal || count >= maxSize ? count : nil
        }
        // count > minSize >= 0, so the buffer is non-empty and has a base address.
        let bytes = data.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let end = min(count, maxSize)
        let normal = min(parameters.averageSize, end)
        let cut = table.values.withUnsafeBufferPointer { gearBuffer -> Int in
            let gear = gearBuffer.baseAddress!
            var hash: UInt64 = 0
            var i = minSize
            if let found = Chunker.scan(bytes, gear, &hash, &i, normal, strictMask) { return found }
            if let found = Chunker.scan(bytes, gear, &hash, &i, end, looseMask) { return found }
            return -1
        }
        if cut >= 0 { return cut }
        if count >= maxSize { return maxSize }
        return isFinal ? count : nil
    }

    /// The hot loop: hashes `bytes[i ..< limit]` and returns the chunk length at the first position where
    /// `hash & mask == 0`, or nil with `hash` and `i` advanced to `limit`.
    ///
    /// Two bytes per iteration: `h2 = 4h + (2 g0 + g1)` does not wait for `h1 = 2h + g0`, which halves the
    /// length of the dependency chain; both are tested, so the result equals the byte-at-a-time definition.
    @inline(__always)
    private static func scan(
        _ bytes: UnsafePointer<UInt8>,
        _ gear: UnsafePointer<UInt64>,
        _ hash: inout UInt64,
        _ i: inout Int,
        _ limit: Int,
        _ mask: UInt64
    ) -> Int? {
        var h = hash
        var j = i
        while j &+ 1 < limit {
            let g0 = gear[Int(bytes[j])]
            let g1 = gear[Int(bytes[j &+ 1])]
            let h1 = (h &<< 1) &+ g0
            h = (h &<< 2) &+ ((g0 &<< 1) &+ g1)
            if h1 & mask == 0 { return j &+ 1 }
            if h & mask == 0 { return j &+ 2 }
            j &+= 2
        }
        if j < limit {
            h = (h &<< 1) &+ gear[Int(bytes[j])]
            j &+= 1
            if h & mask == 0 { return j }
        }
        hash = h
        i = j
        return nil
    }

    /// Splits an in-memory buffer into chunk lengths (all of it, as a final stream).
    public func chunkLengths(of data: UnsafeRawBufferPointer) -> [Int] {
        var lengths: [Int] = []
        var offset = 0
        while offset < data.count {
            let rest = UnsafeRawBufferPointer(rebasing: data[offset...])
            // A final buffer always yields a cut of at least one byte.
            let length = nextCut(in: rest, isFinal: true)!
            lengths.append(length)
            offset += length
        }
        return lengths
    }
}
