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

        let locks = f.root + "/store/locks"
        func lockCount() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: locks)) ?? []).filter { $0.count == 64 }.count
        }
        let errors = f.root + "/backup.err"
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        let backup = Process()
        backup.executableURL = URL(fileURLWithPath: CLIFixture.binary)
        backup.arguments = ["backup", "-q", src]
        backup.environment = f.environment
        backup.standardOutput = FileHandle.nullDevice
        backup.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        try backup.run()
        var sawLock = false
        for _ in 0..<12_000 {  // up to 60 s for the backup to take its lock
            if lockCount() > 0 {
                sawLock = true
                break
            }
            if !backup.isRunning { break }
            usleep(5_000)
        }
        kill(backup.processIdentifier, SIGSTOP)
        XCTAssertTrue(sawLock, "the backup took a lock")
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
