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
        XCTAssertFalse(Repository.isStale(record))
    }
}
