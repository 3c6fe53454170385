import Foundation
import PolyadTestSupport
import XCTest

/// restic #2715 with the real binary: a backup suspended (SIGSTOP) past the stale time while another process
/// takes the store's exclusive lock (as a prune would, here `forget`) must not write a snapshot once it is
/// resumed (SIGCONT); it exits 11 saying why, and the store stays whole.
final class LockLapseTests: XCTestCase {
    func testABackupSuspendedPastTheStaleTimeWritesNoSnapshot() throws {
        let f = try CLIFixture()
        f.environment["POLYAD_LOCK_REFRESH_SECONDS"] = "0.5"
        f.environment["POLYAD_LOCK_STALE_SECONDS"] = "2"
        let src = f.root + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try Data("first\n".utf8).write(to: URL(fileURLWithPath: src + "/small.txt"))
        try f.expect(0, ["init"])
        try f.expect(0, ["backup", src])
        try Data(pseudoRandomBytes(64 << 20, seed: 4)).write(to: URL(fileURLWithPath: src + "/big.bin"))

        let errors = f.root + "/backup.err"
        let snapshots = f.root + "/store/snapshots"
        func count() -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: snapshots)) ?? []).count }
        // The backup must be stopped before it writes its snapshot. On a loaded machine this process may see
        // its lock only after it is done; then that run is undone (its snapshot forgotten) and tried again.
        var backup: Process!
        for attempt in 1...3 {
            let started = try f.startBackupHoldingLock(src, errors: errors)
            backup = started.backup
            kill(backup.processIdentifier, SIGSTOP)
            XCTAssertTrue(started.sawLock, "the backup took a lock")
            if count() == 1 { break }
            print("LockLapseTests: attempt \(attempt): the backup wrote its snapshot before it was stopped; again")
            kill(backup.processIdentifier, SIGCONT)
            backup.waitUntilExit()
            try f.expect(0, ["forget", "latest"])
            XCTAssertLessThan(attempt, 3, "the backup was never stopped before its snapshot: the machine is too busy")
        }
        // Past the stale time, another process takes the exclusive lock and forgets the first snapshot.
        sleep(3)
        let forget = try f.expect(0, ["forget", "latest"])
        XCTAssertTrue(forget.stdout.contains("Forgot 1 snapshot"), forget.stdout)
        kill(backup.processIdentifier, SIGCONT)
        backup.waitUntilExit()
        let said = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        XCTAssertEqual(backup.terminationStatus, 11, said)
        XCTAssertTrue(said.contains("without being refreshed"), said)
        let list = try f.expect(0, ["snapshots"])
        XCTAssertTrue(list.stdout.contains("0 snapshots"), "the resumed backup wrote no snapshot: \(list.stdout)")
        try f.expect(0, ["verify", "--read-data"])
        try f.expect(0, ["backup", src])
    }
}
