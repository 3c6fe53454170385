import Foundation
import PolyadCompression
import PolyadTestSupport
import XCTest

/// Deterministic test data.
private enum Sample {
    /// SplitMix64 bytes: incompressible for deflate.
    static func random(_ count: Int, seed: UInt64 = 1) -> [UInt8] { pseudoRandomBytes(count, seed: seed) }

    /// English-like text from a small vocabulary, with pseudo-random word order.
    static func text(_ count: Int) -> [UInt8] {
        let words = [
            "backup", "the", "chunk", "of", "repository", "snapshot", "and", "restore", "a", "pack", "index", "to",
            "encrypted", "file", "is", "data", "with", "deduplicated", "tree", "key", "in", "compressed", "log",
        ]
        let random = Sample.random(count / 2 + 16, seed: 7)
        var text = [UInt8]()
        text.reserveCapacity(count + 32)
        var index = 0
        while text.count < count {
            text.append(contentsOf: words[Int(random[index % random.count]) % words.count].utf8)
            text.append(random[(index + 1) % random.count] % 13 == 0 ? UInt8(ascii: "\n") : UInt8(ascii: " "))
            index += 1
        }
        return Array(text.prefix(count))
    }

    /// JSON-like records with numbers and ids.
    static func json(_ count: Int) -> [UInt8] {
        var text = "["
        var index = 0
        while text.utf8.count < count {
            text += #"{"id":\#(index),"name":"file-\#(index * 7919 % 100_003).dat","#
            text += #""size":\#(index * 4099 % 1_000_000),"#
            text += #""mtime":"2026-11-\#(index % 28 + 1)T10:\#(index % 60):00Z","tags":["a","b"]},"#
            index += 1
        }
        return Array(text.utf8.prefix(count))
    }
}

final class ZlibTests: XCTestCase {
    private func roundTrip(_ data: [UInt8], level: Int32, file: StaticString = #filePath, line: UInt = #line) throws {
        var output: [UInt8] = [0xAA, 0xBB]  // bytes already there must be kept
        let compressed = try data.withUnsafeBytes { try Zlib.compress($0, level: level, appendingTo: &output) }
        XCTAssertTrue(compressed, "level \(level) did not compress", file: file, line: line)
        XCTAssertEqual(Array(output.prefix(2)), [0xAA, 0xBB], file: file, line: line)
        let stream = Array(output.dropFirst(2))
        XCTAssertLessThan(stream.count, data.count, file: file, line: line)
        XCTAssertEqual(stream.first, 0x78, "zlib header", file: file, line: line)
        var restored: [UInt8] = [1]
        try stream.withUnsafeBytes { try Zlib.decompress($0, expectedSize: data.count, appendingTo: &restored) }
        XCTAssertEqual(restored.count, data.count + 1, file: file, line: line)
        XCTAssertTrue(Array(restored.dropFirst()) == data, "level \(level) round trip", file: file, line: line)
        // The array convenience functions agree.
        let convenience = try XCTUnwrap(Zlib.compress(data, level: level), file: file, line: line)
        XCTAssertEqual(try Zlib.decompress(convenience, expectedSize: data.count), data, file: file, line: line)
    }

    func testRoundTripTextAndZerosAtLevels() throws {
        for level: Int32 in [1, 6, 9] {
            try roundTrip(Sample.text(100_000), level: level)
            try roundTrip([UInt8](repeating: 0, count: 100_000), level: level)
            try roundTrip(Sample.json(50_000), level: level)
            try roundTrip(Sample.text(300), level: level)
        }
    }

    func testLevelZeroNeverCompresses() throws {
        var output: [UInt8] = [5]
        let zeros = [UInt8](repeating: 0, count: 100_000)
        XCTAssertFalse(try zeros.withUnsafeBytes { try Zlib.compress($0, level: 0, appendingTo: &output) })
        XCTAssertEqual(output, [5])
    }

    func testRandomDataIsNotCompressedAndOutputUnchanged() throws {
        let random = Sample.random(300_000)
        for level: Int32 in [0, 1, 6, 9] {
            var output: [UInt8] = [9, 8, 7]
            XCTAssertFalse(try random.withUnsafeBytes { try Zlib.compress($0, level: level, appendingTo: &output) })
            XCTAssertEqual(output, [9, 8, 7], "level \(level)")
            var empty: [UInt8] = []
            XCTAssertFalse(try random.withUnsafeBytes { try Zlib.compress($0, level: level, appendingTo: &empty) })
            XCTAssertEqual(empty, [])
        }
    }

    func testStreamsAreReusableAfterFailures() throws {
        // Pooled streams are reset after each run; a run that stopped early or failed must not spoil the next.
        let text = Sample.text(100_000)
        for _ in 0..<3 {
            XCTAssertNil(try Zlib.compress(Sample.random(50_000), level: 6))
            let stream = try XCTUnwrap(Zlib.compress(text, level: 6))
            XCTAssertThrowsError(try Zlib.decompress(Array(stream.prefix(100)), expectedSize: text.count))
            XCTAssertThrowsError(try Zlib.decompress(stream, expectedSize: text.count - 1))
            XCTAssertEqual(try Zlib.decompress(stream, expectedSize: text.count), text)
        }
    }

    func testEmptyAndTinyInput() throws {
        var output: [UInt8] = [1]
        XCTAssertFalse(try [UInt8]().withUnsafeBytes { try Zlib.compress($0, level: 6, appendingTo: &output) })
        XCTAssertFalse(
            try [UInt8](repeating: 0, count: 1).withUnsafeBytes {
                try Zlib.compress($0, level: 6, appendingTo: &output)
            }
        )
        XCTAssertEqual(output, [1])
        // The zlib stream of no bytes, as zlib writes it at the default level.
        let emptyStream: [UInt8] = [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]
        try emptyStream.withUnsafeBytes { try Zlib.decompress($0, expectedSize: 0, appendingTo: &output) }
        XCTAssertEqual(output, [1])
        XCTAssertEqual(try Zlib.decompress(emptyStream, expectedSize: 0), [])
        XCTAssertThrowsError(try Zlib.decompress(emptyStream, expectedSize: 1)) { error in
            XCTAssertEqual(error as? CompressionError, .sizeMismatch)
        }
        XCTAssertThrowsError(try Zlib.decompress([], expectedSize: 0)) { error in
            XCTAssertEqual(error as? CompressionError, .corruptInput)
        }
    }

    func testEightMiBRoundTrip() throws {
        var data = Sample.text(4 << 20)
        data.append(contentsOf: Sample.random(1 << 20, seed: 3))
        data.append(contentsOf: [UInt8](repeating: 0, count: 3 << 20))
        XCTAssertEqual(data.count, 8 << 20)
        try roundTrip(data, level: 6)
        try roundTrip(data, level: 1)
    }

    func testDecompressRejectsDamage() throws {
        let data = Sample.text(200_000)
        let stream = try XCTUnwrap(Zlib.compress(data, level: 6))

        func assertRejected(_ input: [UInt8], expectedSize: Int, _ code: CompressionError.Code, _ what: String) {
            var output: [UInt8] = [3, 3]
            do {
                try input.withUnsafeBytes { try Zlib.decompress($0, expectedSize: expectedSize, appendingTo: &output) }
                XCTFail("\(what): accepted")
            } catch let error as CompressionError {
                XCTAssertEqual(error.code, code, "\(what): \(error)")
                XCTAssertFalse(error.description.isEmpty)
            } catch {
                XCTFail("\(what): unexpected error \(error)")
            }
            XCTAssertEqual(output, [3, 3], "\(what): output changed")
            XCTAssertThrowsError(try Zlib.decompress(input, expectedSize: expectedSize), what)
        }

        assertRejected(Array(stream.dropLast()), expectedSize: data.count, .corruptInput, "last byte missing")
        assertRejected(Array(stream.prefix(stream.count / 2)), expectedSize: data.count, .corruptInput, "half")
        assertRejected(Array(stream.prefix(2)), expectedSize: 1000, .corruptInput, "header only")
        var checksum = stream
        checksum[checksum.count - 1] ^= 0x01  // Adler-32 trailer
        assertRejected(checksum, expectedSize: data.count, .corruptInput, "checksum")
        var header = stream
        header[0] = 0x00
        assertRejected(header, expectedSize: data.count, .corruptInput, "header")
        assertRejected(stream + [0], expectedSize: data.count, .corruptInput, "trailing byte")
        assertRejected(stream, expectedSize: data.count - 1, .sizeMismatch, "expected one byte fewer")
        assertRejected(stream, expectedSize: data.count + 1, .sizeMismatch, "expected one byte more")
        assertRejected(stream, expectedSize: -1, .sizeMismatch, "negative size")
        assertRejected(stream, expectedSize: Int.max / 2, .sizeMismatch, "impossible size")
        assertRejected(Sample.random(1000), expectedSize: 5000, .corruptInput, "random bytes")

        // Damage in the middle is caught, whatever part of the stream it hits.
        for index in stride(from: 2, to: stream.count - 4, by: max(1, stream.count / 40)) {
            var damaged = stream
            damaged[index] ^= 0x5A
            var output: [UInt8] = []
            XCTAssertThrowsError(
                try damaged.withUnsafeBytes { try Zlib.decompress($0, expectedSize: data.count, appendingTo: &output) },
                "byte \(index)"
            )
            XCTAssertEqual(output, [], "byte \(index)")
        }
    }

    func testInvalidLevel() {
        for level: Int32 in [-1, 10, 100] {
            var output: [UInt8] = []
            XCTAssertThrowsError(
                try [UInt8](repeating: 0, count: 100).withUnsafeBytes {
                    try Zlib.compress($0, level: level, appendingTo: &output)
                }
            ) { error in
                XCTAssertEqual(error as? CompressionError, .invalidLevel)
                XCTAssertTrue("\(error)".contains("\(level)"))
            }
        }
    }

    func testConcurrentUse() {
        let inputs = (0..<24).map { Sample.text(50_000 + $0 * 1000) }
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: inputs.count) { i in
            do {
                guard let stream = try Zlib.compress(inputs[i], level: Int32(1 + i % 9)) else {
                    return failures.increment()
                }
                if try Zlib.decompress(stream, expectedSize: inputs[i].count) != inputs[i] { failures.increment() }
            } catch {
                failures.increment()
            }
        }
        XCTAssertEqual(failures.value, 0)
    }
}

private final class Counter: @unchecked Sendable {  // every access holds `lock`
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

final class CompressibilityTests: XCTestCase {
    private func incompressible(_ data: [UInt8]) -> Bool {
        data.withUnsafeBytes { Compressibility.isLikelyIncompressible($0) }
    }

    func testRandomIsIncompressible() throws {
        for (size, seed) in [(16 << 10, UInt64(1)), (100_000, 2), (1 << 20, 3), (4 << 20, 4)] {
            let random = Sample.random(size, seed: seed)
            XCTAssertTrue(incompressible(random), "random, \(size) bytes")
            // And indeed zlib does not compress it.
            XCTAssertNil(try Zlib.compress(random, level: 6))
        }
    }

    func testAlreadyCompressedDataIsIncompressible() throws {
        let compressed = try XCTUnwrap(Zlib.compress(Sample.text(1 << 20) + Sample.json(1 << 20), level: 6))
        XCTAssertGreaterThan(compressed.count, Compressibility.minimumSize)
        XCTAssertTrue(incompressible(compressed), "a zlib stream")
    }

    func testCompressibleDataIsNotIncompressible() {
        XCTAssertFalse(incompressible(Sample.text(1 << 20)), "text")
        XCTAssertFalse(incompressible(Sample.json(1 << 20)), "JSON")
        XCTAssertFalse(incompressible([UInt8](repeating: 0, count: 1 << 20)), "zeros")
        XCTAssertFalse(incompressible(Sample.random(1 << 19) + [UInt8](repeating: 0, count: 1 << 19)), "half zeros")
        XCTAssertFalse(incompressible([UInt8](repeating: 0, count: 1 << 19) + Sample.random(1 << 19)), "zeros first")
        var interleaved = [UInt8]()
        for block in 0..<256 {
            interleaved +=
                block % 2 == 0 ? Sample.random(4096, seed: UInt64(block)) : [UInt8](repeating: 0, count: 4096)
        }
        XCTAssertFalse(incompressible(interleaved), "interleaved zero and random blocks")
        // High byte entropy but repetitive: the trial deflate catches it.
        let pattern = Sample.random(1024, seed: 9)
        let repeated = Array((0..<1024).map { _ in pattern }.joined())
        XCTAssertFalse(incompressible(repeated), "repeated random kilobyte")
        XCTAssertNotNil(try Zlib.compress(repeated, level: 6))
        // Hex text of random bytes: 4 bits of entropy per byte.
        XCTAssertFalse(incompressible(Array(Sample.random(1 << 19).map { String($0, radix: 16) }.joined().utf8)))
    }

    func testSmallBuffersAreLeftToTheCompressor() {
        XCTAssertFalse(incompressible([]))
        XCTAssertFalse(incompressible(Sample.random(Compressibility.minimumSize - 1)))
    }
}
