import Glibc
import XCTest

@testable import PolyadChunker

/// Deterministic pseudo-random bytes (a 64-bit LCG; the top byte of each state).
func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        for i in 0..<count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            buffer[i] = UInt8(truncatingIfNeeded: state >> 56)
        }
        initialized = count
    }
}

/// FNV-1a over a chunk's bytes: enough to tell chunks apart in tests.
func fingerprint(_ bytes: some Collection<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes {
        hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
    }
    return hash
}

let smallParameters = ChunkerParameters(minSize: 2 << 10, averageSize: 8 << 10, maxSize: 64 << 10)
let countingSeed = (0..<32).map { UInt8($0) }

func lengths(_ chunker: Chunker, _ data: [UInt8]) -> [Int] {
    data.withUnsafeBytes { chunker.chunkLengths(of: $0) }
}

func chunks(_ chunker: Chunker, _ data: [UInt8]) -> [ArraySlice<UInt8>] {
    var result: [ArraySlice<UInt8>] = []
    var offset = 0
    for length in lengths(chunker, data) {
        result.append(data[offset..<offset + length])
        offset += length
    }
    return result
}

final class ChunkerTests: XCTestCase {
    /// The gear table derivation is part of the repository format; these values come from an independent
    /// implementation of the documented steps.
    func testGearTableMatchesDocumentedDerivation() {
        let zero = GearTable(seed: [UInt8](repeating: 0, count: 32))
        XCTAssertEqual(zero[0], 0xF979_A4EF_3589_484D)
        XCTAssertEqual(zero[1], 0xF4FF_95BF_B181_1487)
        XCTAssertEqual(zero[255], 0xF540_2901_C9CF_007A)
        let counting = GearTable(seed: countingSeed)
        XCTAssertEqual(counting[0], 0x1926_7867_DBBE_30F0)
        XCTAssertEqual(counting[1], 0xB28B_E54B_317C_1D4A)
        XCTAssertEqual(counting[255], 0x9E85_6200_5B26_CDAA)
    }

    /// Cut points for fixed data, computed by an independent implementation of the documented algorithm.
    func testBoundariesMatchDocumentedAlgorithm() {
        let chunker = Chunker(table: GearTable(seed: countingSeed), parameters: smallParameters)
        let data = pseudoRandomBytes(count: 256 << 10, seed: 42)
        XCTAssertEqual(Array(data.prefix(8)), [145, 57, 105, 161, 174, 6, 5, 39])
        XCTAssertEqual(
            lengths(chunker, data),
            [
                10048, 8746, 8443, 8289, 10051, 4144, 9913, 8893, 8286, 13367, 13872, 14673, 8318, 9029, 9474, 9781,
                10873, 9312, 20930, 10041, 12931, 9170, 9584, 9070, 4714, 3588, 6604,
            ]
        )
        let zeroSeeded = Chunker(table: GearTable(seed: [UInt8](repeating: 0, count: 32)), parameters: smallParameters)
        XCTAssertEqual(
            Array(lengths(zeroSeeded, data).prefix(10)),
            [3545, 6687, 8274, 9222, 7083, 9061, 10567, 10728, 11380, 11622]
        )
    }

    func testDeterministic() {
        let data = pseudoRandomBytes(count: 1 << 20, seed: 7)
        let first = lengths(Chunker(table: GearTable(seed: countingSeed), parameters: smallParameters), data)
        let second = lengths(Chunker(table: GearTable(seed: countingSeed), parameters: smallParameters), data)
        XCTAssertEqual(first, second)
        XCTAssertGreaterThan(first.count, 50)
    }

    func testChunksStayWithinLimitsAndConcatenateToInput() {
        let data = pseudoRandomBytes(count: 4 << 20, seed: 1)
        let chunker = Chunker(table: GearTable(seed: countingSeed), parameters: smallParameters)
        let pieces = chunks(chunker, data)
        XCTAssertGreaterThan(pieces.count, 4 << 20 / (64 << 10))
        for piece in pieces.dropLast() {
            XCTAssertGreaterThanOrEqual(piece.count, smallParameters.minSize)
            XCTAssertLessThanOrEqual(piece.count, smallParameters.maxSize)
        }
        XCTAssertGreaterThan(pieces.last?.count ?? 0, 0)
        XCTAssertEqual(Array(pieces.joined()), data)
        // The mean lands near the average size (normalized chunking keeps it within a factor of two).
        let mean = data.count / pieces.count
        XCTAssertGreaterThan(mean, smallParameters.averageSize / 2)
        XCTAssertLessThan(mean, smallParameters.averageSize * 2)
    }

    func testInsertionNearStartChangesOnlyTheFirstChunks() {
        let data = pseudoRandomBytes(count: 4 << 20, seed: 3)
        var edited = data
        edited.insert(contentsOf: [1, 2, 3, 4, 5], at: 100)
        let chunker = Chunker(table: GearTable(seed: countingSeed), parameters: smallParameters)
        let before = chunks(chunker, data).map { fingerprint($0) }
        let after = chunks(chunker, edited).map { fingerprint($0) }
        // Count the chunks shared at the end of both sequences.
        var common = 0
        while common < min(before.count, after.count),
            before[before.count - 1 - common] == after[after.count - 1 - common]
        {
            common += 1
        }
        XCTAssertGreaterThanOrEqual(common, before.count - 2, "more than two chunks changed")
        XCTAssertLessThanOrEqual(after.count - common, 2)
        XCTAssertGreaterThan(common, 100)
        XCTAssertNotEqual(before.first, after.first)
    }

    func testDifferentSeedsGiveDifferentBoundaries() {
        let data = pseudoRandomBytes(count: 1 << 20, seed: 11)
        var otherSeed = countingSeed
        otherSeed[31] ^= 1
        let a = lengths(Chunker(table: GearTable(seed: countingSeed), parameters: smallParameters), data)
        let b = lengths(Chunker(table: GearTable(seed: otherSeed), parameters: smallParameters), data)
        XCTAssertNotEqual(a, b)
        // Cut positions, not just lengths, differ almost everywhere.
        let cutsA = Set(a.reduce(into: [Int]()) { $0.append(($0.last ?? 0) + $1) })
        let cutsB = Set(b.reduce(into: [Int]()) { $0.append(($0.last ?? 0) + $1) })
        XCTAssertLessThan(cutsA.intersection(cutsB).count, cutsA.count / 4)
    }

    func testAllZeroInputCutsAtMaxSize() {
        let chunker = Chunker(table: GearTable(seed: countingSeed), parameters: smallParameters)
        let max = smallParameters.maxSize
        let data = [UInt8](repeating: 0, count: 3 * max + 123)
        XCTAssertEqual(lengths(chunker, data), [max, max, max, 123])
        let defaultChunker = Chunker(table: GearTable(seed: countingSeed))
        let big = [UInt8](repeating: 0, count: 20 << 20)
        XCTAssertEqual(lengths(defaultChunker, big), [8 << 20, 8 << 20, 4 << 20])
    }

    func testShortAndEmptyInput() {
        let chunker = Chunker(table: GearTable(seed: countingSeed), parameters: smallParameters)
        let short = pseudoRandomBytes(count: smallParameters.minSize, seed: 5)
        short.withUnsafeBytes { raw in
            XCTAssertEqual(chunker.nextCut(in: raw, isFinal: true), short.count)
            XCTAssertNil(chunker.nextCut(in: raw, isFinal: false))
        }
        [UInt8]().withUnsafeBytes { raw in
            XCTAssertEqual(chunker.nextCut(in: raw, isFinal: true), 0)
            XCTAssertNil(chunker.nextCut(in: raw, isFinal: false))
        }
        XCTAssertEqual(lengths(chunker, []), [])
    }

    /// With `isFinal == false`, a partial buffer either asks for more data or gives the same cut as the whole.
    func testPartialDataGivesSameCutOrAsksForMore() {
        let chunker = Chunker(table: GearTable(seed: countingSeed), parameters: smallParameters)
        let data = pseudoRandomBytes(count: 200 << 10, seed: 9)
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let rest = UnsafeRawBufferPointer(rebasing: raw[offset...])
                let full = chunker.nextCut(in: rest, isFinal: true)!
                var sawNil = false
                for prefix in stride(from: 0, through: min(rest.count, smallParameters.maxSize), by: 997) {
                    let partial = UnsafeRawBufferPointer(rebasing: rest[0..<prefix])
                    if let cut = chunker.nextCut(in: partial, isFinal: false) {
                        XCTAssertEqual(cut, full)
                    } else {
                        sawNil = true
                        XCTAssertLessThan(prefix, max(full, smallParameters.minSize + 1))
                    }
                }
                XCTAssertTrue(sawNil)
                offset += full
            }
        }
    }
}
