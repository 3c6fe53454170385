import PolyadCrypto
import PolyadFormat
import XCTest

@testable import PolyadRepository

final class EnvelopeTests: XCTestCase {
    func testSealOpenAndTamper() throws {
        let key = SecureRandom.bytes(32)
        let sealed = Envelope.seal(Array("secret".utf8), key: key, aad: Array("x".utf8))
        XCTAssertEqual(sealed.count, 6 + Envelope.overhead)
        XCTAssertEqual(try Envelope.open(sealed, key: key, aad: Array("x".utf8)), Array("secret".utf8))
        XCTAssertThrowsError(try Envelope.open(sealed, key: key, aad: Array("y".utf8)))
        XCTAssertThrowsError(try Envelope.open(sealed, key: SecureRandom.bytes(32), aad: Array("x".utf8)))
        for i in [0, 5, 20, sealed.count - 1] {
            var bad = sealed
            bad[i] ^= 1
            XCTAssertThrowsError(try Envelope.open(bad, key: key, aad: Array("x".utf8)), "byte \(i)")
        }
    }

    func testBlobSealerNoncesNeverRepeat() throws {
        let key = SecureRandom.bytes(32)
        let sealer = BlobSealer(encryptionKey: key)
        var nonces = Set<[UInt8]>()
        let id = BlobID(Hash256([UInt8](repeating: 9, count: 32)))
        for _ in 0..<1000 {
            var out = [UInt8]()
            [UInt8]([1, 2, 3]).withUnsafeBytes { sealer.seal($0, type: .data, id: id, appendingTo: &out) }
            XCTAssertTrue(nonces.insert(Array(out[17..<29])).inserted)
            XCTAssertEqual(try Envelope.open(out, key: key, aad: AdditionalData.blob(type: .data, id: id)), [1, 2, 3])
            XCTAssertThrowsError(try Envelope.open(out, key: key, aad: AdditionalData.blob(type: .tree, id: id)))
        }
    }
}

final class PathFilterTests: XCTestCase {
    private func b(_ s: String) -> [UInt8] { Array(s.utf8) }

    func testExcludes() throws {
        let f = try PathFilter(excludes: ["*.log", "/home/alice/cache", "node_modules", "**/tmp/*.o"])
        XCTAssertTrue(f.isExcluded(b("/var/app.log")))
        XCTAssertTrue(f.isExcluded(b("/var/logs/x/app.log/inner")))
        XCTAssertTrue(f.isExcluded(b("/home/alice/cache")))
        XCTAssertTrue(f.isExcluded(b("/home/alice/cache/deep/file")))
        XCTAssertFalse(f.isExcluded(b("/srv/home/alice/cache")))
        XCTAssertTrue(f.isExcluded(b("/src/web/node_modules/x/y.js")))
        XCTAssertTrue(f.isExcluded(b("/a/b/tmp/x.o")))
        XCTAssertFalse(f.isExcluded(b("/a/b/tmp/x.c")))
        XCTAssertFalse(f.isExcluded(b("/var/app.txt")))
        XCTAssertThrowsError(try PathFilter(excludes: ["  "]))
    }

    func testIncludes() throws {
        let f = try PathFilter(includes: ["projects/app/**"])
        XCTAssertEqual(f.inclusion(b("/home/alice/projects/app/main.swift")).included, true)
        XCTAssertEqual(f.inclusion(b("/home/alice/projects/other.swift")).included, false)
        XCTAssertEqual(f.inclusion(b("/home/alice")).mayContain, true)
        let anchored = try PathFilter(includes: ["/home/alice/**"])
        XCTAssertTrue(anchored.inclusion(b("/home/alice/x")).included)
        XCTAssertTrue(anchored.inclusion(b("/home")).mayContain)
        XCTAssertFalse(anchored.inclusion(b("/etc")).mayContain)
    }

    func testAbsolutePaths() {
        XCTAssertEqual(PathNormalizer.absolute(b("/a/./b/../c//d/")), b("/a/c/d"))
        XCTAssertEqual(PathNormalizer.absolute(b("/..")), b("/"))
    }
}

final class MasterIndexTests: XCTestCase {
    func testReserveAndAdd() {
        let index = MasterIndex()
        let id = BlobID(Hash256([UInt8](repeating: 1, count: 32)))
        XCTAssertTrue(index.reserve(id))
        XCTAssertFalse(index.reserve(id), "a second writer does not store it again")
        XCTAssertNil(index.lookup(id))
        let pack = PackID(Hash256([UInt8](repeating: 2, count: 32)))
        index.add(pack: pack, entries: [PackEntry(type: .data, id: id, offset: 5, length: 10, rawLength: 20)])
        XCTAssertEqual(index.lookup(id), BlobLocation(pack: pack, type: .data, offset: 5, length: 10, rawLength: 20))
        XCTAssertEqual(index.dataTotals().raw, 20)
        XCTAssertFalse(index.reserve(id))
    }

    /// The sorted table, the entries added since, and their merges: every id is found where it was put.
    func testLoadThenAddAcrossMergesFindsEveryEntry() {
        @Sendable func id(_ n: Int) -> BlobID { BlobID(Hash256(SHA256.hash(Array("blob \(n)".utf8)))) }
        @Sendable func pack(_ n: Int) -> PackID { PackID(Hash256(SHA256.hash(Array("pack \(n)".utf8)))) }
        @Sendable func entries(_ range: Range<Int>, type: BlobType = .data) -> [PackEntry] {
            range.map { PackEntry(type: type, id: id($0), offset: UInt32($0), length: 10, rawLength: 20) }
        }
        let index = MasterIndex()
        // Three index files of 4,000 entries, loaded at once; one blob (7) is in two packs.
        let files: [[(pack: PackID, entries: [PackEntry])]] = [
            [(pack(0), entries(0..<4000))],
            [(pack(1), entries(4000..<8000, type: .tree))],
            [(pack(2), entries(8000..<12000) + entries(7..<8))],
        ]
        index.load(count: files.count, estimatedEntries: 12_001) { files[$0] }
        XCTAssertEqual(index.count, 12_000, "one entry per id")
        XCTAssertTrue([pack(0), pack(2)].contains(index.lookup(id(7))!.pack))
        XCTAssertEqual(index.lookup(id(5000))?.type, .tree)
        XCTAssertEqual(index.lookup(id(5000))?.pack, pack(1))
        // Packs written afterwards, one at a time: well past the point where they are merged into the table.
        XCTAssertTrue(index.reserve(id(20_000)))
        for p in 0..<40 {
            index.add(pack: pack(10 + p), entries: entries((12_000 + p * 500)..<(12_500 + p * 500)))
        }
        XCTAssertEqual(index.count, 32_000)
        XCTAssertFalse(index.reserve(id(20_000)), "stored now")
        for n in stride(from: 0, to: 32_000, by: 7) {
            XCTAssertEqual(index.lookup(id(n))?.offset, UInt32(n), "blob \(n)")
        }
        XCTAssertNil(index.lookup(id(40_000)))
        XCTAssertFalse(index.contains(id(40_000)))
        XCTAssertEqual(index.dataTotals().count, 28_000)
        XCTAssertEqual(index.entriesByPack()[pack(1)]?.count, 4000)
        XCTAssertEqual(index.entriesByPack().values.reduce(0) { $0 + $1.count }, 32_000)
        // A second load (index files written by another process) merges into the table.
        index.load(count: 1, estimatedEntries: 100) { _ in [(pack(99), entries(40_000..<40_100))] }
        XCTAssertEqual(index.count, 32_100)
        XCTAssertEqual(index.lookup(id(40_050))?.pack, pack(99))
        XCTAssertEqual(index.lookup(id(3))?.pack, pack(0))
    }
}
