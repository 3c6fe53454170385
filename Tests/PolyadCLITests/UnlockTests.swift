import Foundation
import PolyadTestSupport
import XCTest

/// `polyad unlock` through the real binary: the lock of a backup killed with SIGKILL is removed, and on a
/// store without stale locks it removes nothing.
final class UnlockTests: XCTestCase {
    func testTheLockOfAKilledBackupIsRemoved() throws {
        let f = try CLIFixture()
        let src = f.root + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try Data(pseudoRandomBytes(64 << 20, seed: 3)).write(to: URL(fileURLWithPath: src + "/big.bin"))
        try f.expect(0, ["init"])
        let clean = try f.expect(0, ["unlock"])
        XCTAssertTrue(clean.stdout.contains("No stale locks"), clean.stdout)

        let locks = f.root + "/store/locks"
        let (backup, sawLock) = try f.startBackupHoldingLock(src)
        kill(backup.processIdentifier, SIGKILL)
        backup.waitUntilExit()
        XCTAssertTrue(sawLock, "the backup took a lock")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: locks).filter { $0.count == 64 }.count, 1)

        let out = try f.expect(0, ["unlock"])
        XCTAssertTrue(out.stdout.contains("removed: shared lock of backup"), out.stdout)
        XCTAssertTrue(out.stdout.contains("Removed 1 stale lock"), out.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: locks).filter { $0.count == 64 }, [])
        try f.expect(0, ["backup", src])
        try f.expect(0, ["verify", "--read-data"])
    }
}
