import PolyadCrypto
import PolyadFormat
import XCTest

@testable import PolyadRepository

/// The index's in-place sort gives the order `MasterIndex.precedes` defines, on random, sorted, reversed and
/// repeated ids (the index's lookups binary-search that order).
final class IndexSortTests: XCTestCase {
    private func records(_ ids: [Hash256]) -> [MasterIndex.Record] {
        ids.enumerated().map { i, id in
            MasterIndex.Record(
                id: id,
                pack: UInt32(i % 7),
                entry: PackEntry(type: .data, id: BlobID(id), offset: UInt32(i), length: 1, rawLength: 1)
            )
        }
    }

    private func hash(_ i: Int) -> Hash256 {
        var n = UInt64(i).littleEndian
        return Hash256(withUnsafeBytes(of: &n) { SHA256.hash(Array($0)) })
    }

    func testSortsEveryShapeOfInput() {
        let random = (0..<5_000).map(hash)
        let sorted = random.sorted { MasterIndex.precedes($0, $1) }
        let cases: [(String, [Hash256])] = [
            ("random", random), ("sorted", sorted), ("reversed", sorted.reversed()),
            ("repeated", (0..<3_000).map { hash($0 % 5) }), ("one", [hash(1)]), ("empty", []),
            ("short", Array(random.prefix(15))),
        ]
        for (name, ids) in cases {
            var r = records(ids)
            r.withUnsafeMutableBufferPointer { MasterIndex.introsort($0) }
            XCTAssertEqual(r.count, ids.count, name)
            XCTAssertEqual(r.map(\.id), ids.sorted { MasterIndex.precedes($0, $1) }, name)
            XCTAssertEqual(Set(r.map(\.offset)).count, ids.count, "\(name): every record kept once")
        }
    }
}
