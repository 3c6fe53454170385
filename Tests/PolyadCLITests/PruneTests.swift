import Foundation
import PolyadTestSupport
import XCTest

/// `polyad prune` and `forget --prune` through the real binary: on a store built by several backups and
/// forgets, space comes back, every remaining snapshot restores byte-identical and verifies; a dry run deletes
/// nothing; a prune while a backup holds its lock exits 11 and changes nothing.
final class PruneTests: XCTestCase {
    private func storeFiles(_ f: CLIFixture) throws -> [String] {
        try FileManager.default.subpathsOfDirectory(atPath: f.root + "/store").filter { !$0.hasPrefix("locks") }
            .sorted()
    }

    private func storeBytes(_ f: CLIFixture) throws -> Int {
        try storeFiles(f).reduce(0) { sum, path in
            let attributes = try FileManager.default.attributesOfItem(atPath: f.root + "/store/" + path)
            return sum
                + ((attributes[.type] as? FileAttributeType) == .typeRegular ? (attributes[.size] as? Int ?? 0) : 0)
        }
    }

    private func ids(_ f: CLIFixture) throws -> [String] {
        let out = try f.expect(0, ["snapshots", "--json"])
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])
        return list.compactMap { $0["id"] as? String }
    }

    func testPruneGivesSpaceBackAndKeepsEverySnapshotWhole() throws {
        let f = try CLIFixture()
        let src = f.root + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try f.expect(0, ["init"])
        // Five backups; each replaces one 3 MiB file and keeps a shared one.
        try Data(pseudoRandomBytes(1 << 20, seed: 100)).write(to: URL(fileURLWithPath: src + "/shared.bin"))
        var contents = [String: Data]()
        for i in 0..<5 {
            try? FileManager.default.removeItem(atPath: src + "/changing-\(i - 1).bin")
            let data = Data(pseudoRandomBytes(3 << 20, seed: UInt64(i)))
            try data.write(to: URL(fileURLWithPath: src + "/changing-\(i).bin"))
            try f.expect(0, ["backup", "--time", "2026-06-0\(i + 1) 12:00:00", src])
            contents[try ids(f).last!] = data
        }
        let before = try storeBytes(f)
        let dry = try f.expect(0, ["prune", "--dry-run"])
        XCTAssertTrue(dry.stdout.contains("Would delete 0 packs"), "nothing is unused yet: \(dry.stdout)")

        let all = try ids(f)
        try f.expect(0, ["forget", String(all[0].prefix(8)), String(all[1].prefix(8)), String(all[2].prefix(8))])
        let files = try storeFiles(f)
        let dryAfter = try f.expect(0, ["prune", "--dry-run"])
        XCTAssertTrue(dryAfter.stdout.contains("Would delete"), dryAfter.stdout)
        XCTAssertEqual(try storeFiles(f), files, "a dry run deletes nothing")

        // The first backup's pack also holds shared.bin, still in use: with no repacking it is kept whole.
        let whole = try f.expect(0, ["prune", "--dry-run", "--max-unused", "unlimited"])
        XCTAssertTrue(whole.stdout.contains("0 to repack") && whole.stdout.contains("1 partly used kept"), whole.stdout)
        try f.expect(2, ["prune", "--max-unused", "120%"])
        XCTAssertEqual(try storeFiles(f), files, "a refused option deletes nothing")

        let run = try f.expect(0, ["prune"])
        XCTAssertTrue(run.stdout.contains("Deleted"), run.stdout)
        let after = try storeBytes(f)
        // The second and third backups' packs held only their forgotten files; the first one's pack is repacked
        // (3 of its 4 MiB unused is far above 5%): all 9 MiB of forgotten files come back.
        XCTAssertLessThan(after, before - (8 << 20), "the forgotten files' space came back: \(before) -> \(after)")
        XCTAssertTrue(run.stdout.contains("1 to repack") && run.stdout.contains("Repacked 1.0 MiB"), run.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: f.root + "/store/index").count, 1)
        try f.expect(0, ["verify", "--read-data"])
        for id in try ids(f) {
            let target = f.root + "/r-" + id.prefix(8)
            try f.expect(0, ["restore", id, "--target", target])
            let i = try XCTUnwrap(all.firstIndex(of: id))
            XCTAssertEqual(FileManager.default.contents(atPath: target + src + "/changing-\(i).bin"), contents[id])
            XCTAssertEqual(
                FileManager.default.contents(atPath: target + src + "/shared.bin"),
                Data(pseudoRandomBytes(1 << 20, seed: 100))
            )
        }
        let again = try f.expect(0, ["prune"])
        XCTAssertTrue(again.stdout.contains("Deleted 0 packs"), again.stdout)
        try f.expect(0, ["backup", src])
    }

    func testPruneWaitsForNoOneAndChangesNothingWhileABackupHoldsItsLock() throws {
        let f = try CLIFixture()
        let src = f.root + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try f.expect(0, ["init"])
        try Data(pseudoRandomBytes(64 << 20, seed: 7)).write(to: URL(fileURLWithPath: src + "/big.bin"))
        let (backup, sawLock) = try f.startBackupHoldingLock(src)
        kill(backup.processIdentifier, SIGSTOP)
        XCTAssertTrue(sawLock)
        let files = try storeFiles(f)
        let refused = try f.expect(11, ["prune"])
        XCTAssertTrue(refused.stderr.contains("locked by backup"), refused.stderr)
        XCTAssertEqual(try storeFiles(f), files, "nothing changed")
        kill(backup.processIdentifier, SIGCONT)
        backup.waitUntilExit()
        XCTAssertEqual(backup.terminationStatus, 0)
        try f.expect(0, ["prune"])
        try f.expect(0, ["verify", "--read-data"])
    }
}
