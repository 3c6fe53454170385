import Foundation
import PolyadFileSystem
import PolyadFormat
import PolyadStorage
import XCTest

@testable import PolyadRepository

/// `removeStaleLocks` (`polyad unlock`) removes only the locks of processes gone from this host: a dead PID, or
/// a PID now held by a process that started at another time; a live holder's lock, and one of another host, stay.
final class StaleLockTests: XCTestCase {
    private func deadPID() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    private func store(_ scratch: Scratch) throws -> Repository {
        try Repository.create(
            backend: LocalBackend(path: scratch.sub("store")),
            passphrase: Array("pw".utf8),
            keyParameters: ErrorCauseTests.fast
        )
    }

    func testOnlyLocksOfGoneProcessesAreRemoved() throws {
        let scratch = Scratch()
        let repo = try store(scratch)
        let me = getpid()
        let myStart = try XCTUnwrap(ProcessStart.ticks(of: me))
        let host = Accounts.hostName
        func put(_ operation: String, pid: Int32, host: String, start: UInt64?) throws {
            let record = LockRecord(
                time: Clock.now(),
                hostname: host,
                username: "test",
                pid: pid,
                exclusive: false,
                operation: operation,
                start: start,
                boot: ProcessStart.bootID
            )
            try repo.saveObject(.locks, record.encoded(), aad: AdditionalData.lock)
        }
        try put("live", pid: me, host: host, start: myStart)
        try put("written-before-start-times", pid: me, host: host, start: nil)
        try put("dead", pid: try deadPID(), host: host, start: 1)
        try put("pid-reused", pid: me, host: host, start: myStart + 1)
        try put("other-host", pid: try deadPID(), host: "elsewhere.example", start: 1)

        let cleanup = try repo.removeStaleLocks()
        XCTAssertEqual(Set(cleanup.removed.map(\.operation)), ["dead", "pid-reused"])
        XCTAssertEqual(Set(cleanup.kept.map(\.operation)), ["live", "written-before-start-times", "other-host"])
        XCTAssertEqual(try repo.list(.locks).count, 3)
        XCTAssertThrowsError(try repo.lock(exclusive: true, operation: "prune")) { error in
            XCTAssertEqual((error as? RepositoryError)?.code, .locked, "the live locks still hold")
        }
        XCTAssertEqual(try repo.removeStaleLocks().removed.count, 0, "nothing more is stale")
    }

    func testALockTakenNowRecordsItsProcessStart() throws {
        let scratch = Scratch()
        let repo = try store(scratch)
        let held = try repo.lock(exclusive: false, operation: "backup")
        defer { held.release() }
        let info = try XCTUnwrap(try repo.list(.locks).first)
        let record = try LockRecord(decoding: try repo.loadObject(info.handle, aad: AdditionalData.lock))
        XCTAssertEqual(record.start, ProcessStart.ticks(of: getpid()))
        XCTAssertNotNil(record.boot)
        XCTAssertFalse(Repository.isStale(record, timing: LockTiming()))
    }

    /// A lock not rewritten for longer than the stale time is stale on any host; one that is refreshed is not.
    func testLocksAreRefreshedAndAnUnrefreshedOneGoesStale() throws {
        let scratch = Scratch()
        let repo = try store(scratch)
        let old = LockRecord(
            time: Timestamp(seconds: Clock.now().seconds - 3_600, nanoseconds: 0),
            hostname: "elsewhere.example",
            username: "test",
            pid: 1,
            exclusive: true,
            operation: "prune"
        )
        try repo.saveObject(.locks, old.encoded(), aad: AdditionalData.lock)
        let held = try repo.lock(
            exclusive: false,
            operation: "backup",
            timing: LockTiming(refreshSeconds: 0.2, staleSeconds: 1_800)
        )
        defer { held.release() }
        XCTAssertEqual(try repo.list(.locks).count, 1, "the hour-old exclusive lock was stale: taken over")
        let first = try XCTUnwrap(try repo.list(.locks).first).handle.name
        var rewritten = false
        for _ in 0..<300 {  // up to 30 s for a rewrite every 0.2 s
            usleep(100_000)
            let names = try repo.list(.locks).map(\.handle.name)
            if names.count == 1, names[0] != first {
                rewritten = true
                break
            }
        }
        XCTAssertTrue(rewritten, "the lock was rewritten (one lock object, a new one)")
        XCTAssertNoThrow(try held.checkHeld())
        XCTAssertEqual(try repo.removeStaleLocks().removed.count, 0)
    }

    /// A holder that went longer than the stale time without a rewrite fails `checkHeld`, and keeps failing even
    /// after a rewrite succeeds again (restic #2715: a prune may have run in between).
    func testALapsedLockStaysLapsed() throws {
        let scratch = Scratch()
        let repo = try store(scratch)
        let held = try repo.lock(
            exclusive: false,
            operation: "backup",
            timing: LockTiming(refreshSeconds: 3_600, staleSeconds: 0.3)
        )
        defer { held.release() }
        XCTAssertNoThrow(try held.checkHeld())
        usleep(600_000)
        XCTAssertThrowsError(try held.checkHeld()) { error in
            XCTAssertEqual((error as? RepositoryError)?.code, .locked)
            XCTAssertTrue("\(error)".contains("without being refreshed"), "\(error)")
        }
        held.refresh()
        XCTAssertThrowsError(try held.checkHeld(), "a gap seen once is not forgotten")
    }
}
