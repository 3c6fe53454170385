import Foundation
import PolyadFormat
import PolyadService
import PolyadStorage
import PolyadTestSupport
import XCTest

@testable import PolyadRepository

/// The prune's repacking: `--max-unused` parsed as restic's, mostly unused packs repacked until the unused data
/// left is within the limit, and a damaged blob in use stopping the prune before anything is deleted.
final class PrunerTests: XCTestCase {
    func testUnusedLimitReadsResticsForms() {
        XCTAssertEqual(UnusedLimit("5%"), .percent(5))
        XCTAssertEqual(UnusedLimit("0%"), .percent(0))
        XCTAssertEqual(UnusedLimit("12.5%"), .percent(12.5))
        XCTAssertEqual(UnusedLimit("unlimited"), .unlimited)
        XCTAssertEqual(UnusedLimit("500M"), .bytes(500 << 20))
        XCTAssertEqual(UnusedLimit("2g"), .bytes(2 << 30))
        XCTAssertEqual(UnusedLimit("1234"), .bytes(1234))
        for bad in ["", "100%", "-1%", "abc", "5%%", "1.5G", "-3", "99999999999T"] {
            XCTAssertNil(UnusedLimit(bad), bad)
        }
        // restic's rule: unused / (used + unused) ≤ p.
        XCTAssertEqual(UnusedLimit.percent(20).allowance(used: 800), 200)
        XCTAssertEqual(UnusedLimit.percent(0).allowance(used: 800), 0)
    }

    /// Two files in one pack, a backup that keeps only one, the first snapshot forgotten.
    private func halfUsedStore(_ scratch: Scratch) throws -> (BackupManager, keep: [UInt8]) {
        let keep = pseudoRandomBytes(1 << 20, seed: 7)
        scratch.write("src/a-keep.bin", keep)
        scratch.write("src/b-drop.bin", pseudoRandomBytes(3 << 20, seed: 8))
        let manager = try scratch.manager(verify: false)
        _ = try manager.initialize()
        let first = try manager.createBackup(paths: [scratch.sub("src")])
        try FileManager.default.removeItem(atPath: scratch.sub("src/b-drop.bin"))
        _ = try manager.createBackup(paths: [scratch.sub("src")])
        _ = try manager.forget(ids: [first.id.hash.hex])
        return (manager, keep)
    }

    private func storeListing(_ scratch: Scratch) throws -> [String] {
        try FileManager.default.subpathsOfDirectory(atPath: scratch.sub("store")).filter { !$0.hasPrefix("locks") }
            .sorted()
    }

    func testTheLimitDecidesWhetherAHalfUsedPackIsRepacked() throws {
        let scratch = Scratch()
        let (manager, keep) = try halfUsedStore(scratch)
        // 3 MiB unused beside 1 MiB used: 75 % of the pack. A limit above that keeps it, one below repacks it.
        let lenient = try manager.prune(dryRun: true, maxUnused: .percent(80))
        XCTAssertEqual(lenient.repackedPacks, 0)
        XCTAssertEqual(lenient.partlyUsedPacks, 1)
        XCTAssertEqual(try manager.prune(dryRun: true, maxUnused: .bytes(4 << 20)).repackedPacks, 0)

        let report = try manager.prune(maxUnused: .percent(50))
        XCTAssertEqual(report.repackedPacks, 1)
        XCTAssertEqual(report.newPacks, 1)
        XCTAssertGreaterThan(report.bytesFreed, 3 << 20 - (64 << 10))
        let check = try manager.verifyBackupIntegrity()
        XCTAssertTrue(check.isClean, check.damaged.map(\.description).joined(separator: "; "))
        let target = scratch.sub("restored")
        _ = try manager.restoreBackup("latest", to: target)
        XCTAssertEqual(FileManager.default.contents(atPath: target + scratch.sub("src/a-keep.bin")), Data(keep))
        XCTAssertEqual(try manager.prune().repackedPacks, 0, "nothing left to repack")
    }

    func testADamagedBlobInUseStopsTheRepackBeforeAnythingIsDeleted() throws {
        let scratch = Scratch()
        let (manager, _) = try halfUsedStore(scratch)
        // Damage the kept file's first chunk in its pack.
        let repo = try manager.repository()
        try repo.loadIndex()
        var chunk: BlobID?
        var walker = TreeWalker(repository: repo)
        walker.tracksPaths = true
        walker.walk(from: try repo.snapshots().map { $0.snapshot.tree }) { event in
            if case .node(let node, let path) = event, path.ends(with: Array("/a-keep.bin".utf8)),
                case .chunk(let c, _) = node.content.first
            {
                chunk = c.blob
            }
            return true
        }
        let location = try XCTUnwrap(repo.index.lookup(try XCTUnwrap(chunk)))
        let hex = location.pack.hash.hex
        try flipByte(at: Int(location.offset) + 100, in: scratch.sub("store/data/\(hex.prefix(2))/\(hex)"))
        let before = try storeListing(scratch)

        XCTAssertThrowsError(try manager.prune(maxUnused: .percent(0))) { error in
            let e = error as? RepositoryError
            XCTAssertEqual(e?.code, .damaged)
            XCTAssertTrue("\(error)".contains(hex), "names the pack: \(error)")
            XCTAssertTrue("\(error)".contains("nothing was deleted"), "\(error)")
        }
        // Nothing was deleted: every file there before is there after (a repack's new pack may be left, unlisted).
        XCTAssertEqual(Set(before).subtracting(try storeListing(scratch)), [])
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}
