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
        let backup = Process()
        backup.executableURL = URL(fileURLWithPath: CLIFixture.binary)
        backup.arguments = ["backup", "-q", src]
        backup.environment = f.environment
        backup.standardOutput = FileHandle.nullDevice
        backup.standardError = FileHandle.nullDevice
        try backup.run()
        // Killed as soon as its lock is there (it holds it for the whole run); gives up after 60 s.
        var sawLock = false
        for _ in 0..<12_000 {
            if ((try? FileManager.default.contentsOfDirectory(atPath: locks)) ?? []).contains(where: { $0.count == 64 })
            {
                sawLock = true
                break
            }
            if !backup.isRunning { break }
            usleep(5_000)
        }
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
