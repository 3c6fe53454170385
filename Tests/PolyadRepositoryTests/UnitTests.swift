import XCTest
import PolyadCrypto
import PolyadFormat
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
        let id = Hash256([UInt8](repeating: 9, count: 32))
        for _ in 0..<1000 {
            var out = [UInt8]()
            [UInt8]([1, 2, 3]).withUnsafeBytes { sealer.seal($0, type: .data, id: id, appendingTo: &out) }
            XCTAssertTrue(nonces.insert(Array(out[17..<29])).inserted)
            XCTAssertEqual(try Envelope.open(out, key: key, aad: Envelope.blobAAD(type: .data, id: id)), [1, 2, 3])
            XCTAssertThrowsError(try Envelope.open(out, key: key, aad: Envelope.blobAAD(type: .tree, id: id)))
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
        let id = Hash256([UInt8](repeating: 1, count: 32))
        XCTAssertTrue(index.reserve(id))
        XCTAssertFalse(index.reserve(id), "a second writer does not store it again")
        XCTAssertNil(index.lookup(id))
        let pack = PackID(Hash256([UInt8](repeating: 2, count: 32)))
        index.add(pack: pack, entries: [PackEntry(type: .data, id: id, offset: 5, length: 10, rawLength: 20)])
        XCTAssertEqual(index.lookup(id), BlobLocation(pack: pack, type: .data, offset: 5, length: 10, rawLength: 20))
        XCTAssertEqual(index.dataTotals().raw, 20)
        XCTAssertFalse(index.reserve(id))
    }
}
