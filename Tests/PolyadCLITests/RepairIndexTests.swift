import Foundation
import PolyadTestSupport
import XCTest

/// `polyad repair index` through the real binary: with every index file lost, or one damaged, the index is
/// rebuilt from the packs and the snapshots restore again; a pack whose header is damaged is left out and
/// named (exit 13).
final class RepairIndexTests: XCTestCase {
    func testALostIndexIsRebuiltFromThePacks() throws {
        let f = try CLIFixture()
        let src = f.root + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        let data = Data(pseudoRandomBytes(3 << 20, seed: 11))
        try data.write(to: URL(fileURLWithPath: src + "/file.bin"))
        try f.expect(0, ["init"])
        try f.expect(0, ["backup", src])
        try Data("second\n".utf8).write(to: URL(fileURLWithPath: src + "/note.txt"))
        try f.expect(0, ["backup", src])
        let index = f.root + "/store/index"
        for name in try FileManager.default.contentsOfDirectory(atPath: index) {
            try FileManager.default.removeItem(atPath: index + "/" + name)
        }
        try f.expect(13, ["restore", "latest", "--target", f.root + "/broken"])

        let repaired = try f.expect(0, ["repair", "index"])
        XCTAssertTrue(repaired.stdout.contains("Indexed"), repaired.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: index).count, 1)
        try f.expect(0, ["restore", "latest", "--target", f.root + "/r"])
        XCTAssertEqual(FileManager.default.contents(atPath: f.root + "/r" + src + "/file.bin"), data)
        try f.expect(0, ["verify", "--read-data"])

        // A pack whose trailer is damaged: left out of the index and named.
        let packs = try FileManager.default.subpathsOfDirectory(atPath: f.root + "/store/data").filter { $0.count > 64 }
        let victim = f.root + "/store/data/" + (try XCTUnwrap(packs.first))
        var bytes = [UInt8](try XCTUnwrap(FileManager.default.contents(atPath: victim)))
        bytes[bytes.count - 2] ^= 0xFF
        chmod(victim, 0o600)
        try Data(bytes).write(to: URL(fileURLWithPath: victim))
        let partly = try f.expect(13, ["repair", "index"])
        XCTAssertTrue(partly.stdout.contains("left out: data/"), partly.stdout)
    }
}
