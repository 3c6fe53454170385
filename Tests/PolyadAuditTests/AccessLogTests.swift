import Foundation
import Glibc
import PolyadFileSystem
import PolyadTestSupport
import XCTest

@testable import PolyadAudit

final class AccessLogTests: XCTestCase {
    private var folder: TemporaryFolder!

    override func setUpWithError() throws {
        folder = try TemporaryFolder(prefix: "polyad-audit-test")
    }

    override func tearDown() {
        folder.remove()
    }

    private func path(_ name: String) -> [UInt8] { Array(folder.sub(name).utf8) }

    // MARK: 1. The lines

    func testLinesAreJSONWithKeysInTheDocumentedOrder() throws {
        let file = path("access.log")
        let time = Date(timeIntervalSince1970: 1_796_205_851.1235)
        let events = [
            AccessEvent(
                time: time,
                uid: 1000,
                user: "anna",
                pid: 4242,
                process: "cat",
                role: "reader",
                op: "open",
                path: Array("/snapshots/latest/etc/hosts".utf8),
                result: .ok,
                bytes: 220,
                fields: [("snapshot", "5e1f0a2b"), ("message", "read \"all\"")]
            ),
            AccessEvent(time: time, uid: 1001, role: "none", op: "readdir", path: [0x2F], result: .denied),
            AccessEvent(time: time, pid: 7, op: "create", result: .error(EROFS)),
            AccessEvent(op: "backup", result: .error(9999)),
        ]
        try AccessLog.append(events, to: file)
        let lines = try readLines(file)
        guard lines.count == 4 else { return XCTFail("\(lines.count) lines, not 4") }

        XCTAssertEqual(
            try keys(lines[0]),
            ["time", "uid", "user", "pid", "process", "role", "op", "path", "result", "bytes", "snapshot", "message"]
        )
        XCTAssertEqual(try keys(lines[1]), ["time", "uid", "role", "op", "path", "result"])
        XCTAssertEqual(try keys(lines[2]), ["time", "pid", "op", "result", "errno", "error"])
        XCTAssertEqual(try keys(lines[3]), ["time", "op", "result", "errno", "error"])

        let first = try object(lines[0])
        XCTAssertEqual(first["time"] as? String, "2026-12-02T10:04:11.123Z")
        XCTAssertEqual(first["uid"] as? Int, 1000)
        XCTAssertEqual(first["user"] as? String, "anna")
        XCTAssertEqual(first["pid"] as? Int, 4242)
        XCTAssertEqual(first["process"] as? String, "cat")
        XCTAssertEqual(first["role"] as? String, "reader")
        XCTAssertEqual(first["op"] as? String, "open")
        XCTAssertEqual(first["path"] as? String, "/snapshots/latest/etc/hosts")
        XCTAssertEqual(first["result"] as? String, "ok")
        XCTAssertEqual(first["bytes"] as? Int, 220)
        XCTAssertEqual(first["snapshot"] as? String, "5e1f0a2b")
        XCTAssertEqual(first["message"] as? String, "read \"all\"")
        XCTAssertEqual(try object(lines[1])["result"] as? String, "denied")
        let third = try object(lines[2])
        XCTAssertEqual(third["result"] as? String, "error")
        XCTAssertEqual(third["errno"] as? Int, Int(EROFS))
        XCTAssertEqual(third["error"] as? String, "EROFS")
        XCTAssertEqual(try object(lines[3])["error"] as? String, "9999")

        let parser = ISO8601DateFormatter()
        parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for line in lines {
            let text = try XCTUnwrap(try object(line)["time"] as? String)
            XCTAssertNotNil(parser.date(from: text), text)
            XCTAssertEqual(text.count, 24, text)
        }
        let now = try XCTUnwrap(parser.date(from: try XCTUnwrap(try object(lines[3])["time"] as? String)))
        XCTAssertLessThan(abs(now.timeIntervalSince(events[3].time)), 0.002)
    }

    func testTimesAreUTCWithMillisecondsRoundedDown() {
        func text(_ seconds: Double) -> String {
            var out: [UInt8] = []
            AccessLogLine.appendTime(Date(timeIntervalSince1970: seconds), to: &out)
            return String(decoding: out, as: UTF8.self)
        }
        XCTAssertEqual(text(0), "\"1970-01-01T00:00:00.000Z\"")
        XCTAssertEqual(text(951_782_400.9999), "\"2000-02-29T00:00:00.999Z\"")
        XCTAssertEqual(text(-0.5), "\"1969-12-31T23:59:59.500Z\"")
        XCTAssertEqual(text(1_796_205_851.0015), "\"2026-12-02T10:04:11.001Z\"")
    }

    func testNonUTF8PathAndOddNamesRoundTrip() throws {
        let file = path("access.log")
        let odd: [UInt8] = [0x2F, 0xFF, 0x0A, 0x5C, 0x22]
        let event = AccessEvent(
            user: "an\"na\\",
            process: "evil\nproc\u{1B}[31m",
            op: "open",
            path: odd,
            result: .ok,
            fields: [("message", "two\nlines\ttab \u{7F} é 日本")]
        )
        let log = try AccessLog(path: file)
        log.record(event)
        log.close()
        let contents = try FileSystem.contents(of: file, limit: 1 << 20)
        XCTAssertEqual(contents.filter { $0 == 0x0A }.count, 1, "one line, no raw newline inside")
        XCTAssertEqual(contents.last, 0x0A)
        let line = Array(contents.dropLast())
        XCTAssertFalse(line.contains { $0 < 0x20 }, "no raw control characters")
        let object = try object(line)
        let shown = try XCTUnwrap(object["path"] as? String)
        XCTAssertEqual(undisplay(shown), odd)
        XCTAssertEqual(undisplay(try XCTUnwrap(object["user"] as? String)), Array("an\"na\\".utf8))
        XCTAssertEqual(undisplay(try XCTUnwrap(object["process"] as? String)), Array("evil\nproc\u{1B}[31m".utf8))
        XCTAssertEqual(
            undisplay(try XCTUnwrap(object["message"] as? String)),
            Array("two\nlines\ttab \u{7F} é 日本".utf8)
        )
    }

    func testExtraFieldsCannotRepeatOrPoseAsStandardKeys() throws {
        var out: [UInt8] = []
        let event = AccessEvent(
            op: "open",
            result: .denied,
            fields: [("result", "ok"), ("result_", "x"), ("snapshot", "a"), ("snapshot", "b"), ("dropped", "9")]
        )
        AccessLogLine.append(event, to: &out)
        XCTAssertEqual(out.last, 0x0A)
        let line = Array(out.dropLast())
        XCTAssertEqual(
            try keys(line),
            ["time", "op", "result", "result_", "result__", "snapshot", "snapshot_", "dropped_"]
        )
        let object = try object(line)
        XCTAssertEqual(object["result"] as? String, "denied")
        XCTAssertEqual(object["result_"] as? String, "ok")
        XCTAssertEqual(object["snapshot_"] as? String, "b")
    }

    // MARK: 2. The file

    func testCreatesTheFileWithMode0600AndNothingElse() throws {
        let file = path("access.log")
        let log = try AccessLog(path: file)
        XCTAssertEqual(try FileSystem.stat(file).permissions, 0o600)
        log.close()

        let missing = path("no-such-folder/access.log")
        XCTAssertThrowsError(try AccessLog(path: missing)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(folder.sub("no-such-folder")), text)
        }
        XCTAssertFalse(FileSystem.exists(path("no-such-folder")))
    }

    func testRefusesAFileGroupOrOthersMayAccess() throws {
        let file = path("access.log")
        let fd = try FileSystem.createExclusive(file, mode: 0o600)
        FileSystem.close(fd)
        for mode: UInt32 in [0o644, 0o640, 0o620, 0o606, 0o602] {
            try FileSystem.changeMode(file, mode: mode)
            XCTAssertThrowsError(try AccessLog(path: file), "mode \(String(mode, radix: 8))") { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("chmod 600"), text)
                XCTAssertTrue(text.contains(folder.sub("access.log")), text)
            }
            XCTAssertThrowsError(try AccessLog.append([AccessEvent(op: "backup", result: .ok)], to: file))
            XCTAssertEqual(try FileSystem.stat(file).permissions, mode, "the mode is left alone")
            XCTAssertEqual(try FileSystem.stat(file).size, 0)
        }
        try FileSystem.changeMode(file, mode: 0o600)
        try AccessLog(path: file).close()
        if getuid() != 0 {  // root may write any file
            try FileSystem.changeMode(file, mode: 0o400)
            XCTAssertThrowsError(try AccessLog(path: file), "not writable by its owner") { error in
                XCTAssertTrue("\(error)".contains(folder.sub("access.log")))
            }
        }
    }

    func testRefusesAPathThatIsNoRegularFile() throws {
        let directory = path("logs")
        try FileSystem.makeDirectory(directory, mode: 0o700)
        XCTAssertThrowsError(try AccessLog(path: directory)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("directory"), text)
            XCTAssertTrue(text.contains(folder.sub("logs")), text)
        }
        let fifo = path("fifo")
        try FileSystem.makeNode(fifo, mode: FileKind.fifo.modeBits | 0o600, device: 0)
        XCTAssertThrowsError(try AccessLog(path: fifo)) { error in
            XCTAssertTrue("\(error)".contains("named pipe"), "\(error)")
        }
    }

    // MARK: 3. Flushing, many threads

    func testFlushMakesRecordedLinesVisible() throws {
        let file = path("access.log")
        let log = try AccessLog(path: file, flushInterval: 1000)
        defer { log.close() }
        for i in 0..<3 { log.record(AccessEvent(op: "lookup", result: .ok, fields: [("seq", "\(i)")])) }
        XCTAssertEqual(try readLines(file).count, 0, "batched: nothing written before the interval or a flush")
        log.flush()
        XCTAssertEqual(try readLines(file).map { try object($0)["seq"] as? String }, ["0", "1", "2"])
        log.flush()
        XCTAssertEqual(try readLines(file).count, 3)
    }

    func testEightThreadsRecordEveryLineExactlyOnce() throws {
        let file = path("access.log")
        let threads = 8
        let perThread = 20_000
        let log = try AccessLog(path: file, capacity: threads * perThread)
        let done = DispatchSemaphore(value: 0)
        for t in 0..<threads {
            Thread {
                for i in 0..<perThread {
                    log.record(AccessEvent(uid: UInt32(t), op: "getattr", result: .ok, fields: [("seq", "\(t)-\(i)")]))
                }
                done.signal()
            }.start()
        }
        for _ in 0..<threads { done.wait() }
        log.flush()
        let lines = try readLines(file)
        XCTAssertEqual(lines.count, threads * perThread)
        var seen = Set<String>()
        var lastIndex = [Int](repeating: -1, count: threads)
        for line in lines {
            let seq = try XCTUnwrap(try object(line)["seq"] as? String)
            XCTAssertTrue(seen.insert(seq).inserted, "\(seq) twice")
            let parts = seq.split(separator: "-").compactMap { Int($0) }
            XCTAssertGreaterThan(parts[1], lastIndex[parts[0]], "a thread's lines in its order")
            lastIndex[parts[0]] = parts[1]
        }
        XCTAssertEqual(seen.count, threads * perThread)
        XCTAssertEqual(log.droppedCount, 0)
        log.close()
    }

    // MARK: 4. Overflow and failed writes

    func testAFullQueueDropsAndCountsAtTheGap() throws {
        let file = path("access.log")
        let log = try AccessLog(path: file, capacity: 10, flushInterval: 1000)
        log.pauseWriter()
        for i in 0..<10_000 { log.record(AccessEvent(op: "read", result: .ok, fields: [("seq", "\(i)")])) }
        XCTAssertEqual(log.droppedCount, 9_990)
        log.resumeWriter()
        log.flush()
        log.record(AccessEvent(op: "read", result: .ok, fields: [("seq", "after")]))
        log.close()
        let objects = try readLines(file).map { try object($0) }
        guard objects.count == 12 else { return XCTFail("\(objects.count) lines, not 12") }
        XCTAssertEqual(objects[0..<10].map { $0["seq"] as? String }, (0..<10).map { "\($0)" })
        let dropped = objects[10]
        XCTAssertEqual(try keys(try readLines(file)[10]), ["time", "op", "result", "dropped", "message"])
        XCTAssertEqual(dropped["op"] as? String, "dropped")
        XCTAssertEqual(dropped["result"] as? String, "error")
        XCTAssertEqual(dropped["dropped"] as? Int, 9_990)
        XCTAssertEqual(dropped["message"] as? String, "9990 access log lines dropped: the queue was full")
        XCTAssertEqual(objects[11]["seq"] as? String, "after")
    }

    func testEveryEventIsWrittenOrCountedUnderLoad() throws {
        let file = path("access.log")
        let log = try AccessLog(path: file, capacity: 10)
        let total = 10_000
        for i in 0..<total { log.record(AccessEvent(op: "read", result: .ok, fields: [("seq", "\(i)")])) }
        log.flush()
        let objects = try readLines(file).map { try object($0) }
        let records = objects.filter { $0["op"] as? String == "read" }
        let droppedRecords = objects.filter { $0["op"] as? String == "dropped" }
        let droppedSum = droppedRecords.reduce(0) { $0 + ($1["dropped"] as? Int ?? 0) }
        XCTAssertEqual(records.count + droppedSum, total)
        XCTAssertEqual(UInt64(droppedSum), log.droppedCount)
        if log.droppedCount > 0 { XCTAssertFalse(droppedRecords.isEmpty) }
        let seqs = records.compactMap { ($0["seq"] as? String).flatMap { Int($0) } }
        XCTAssertEqual(seqs, seqs.sorted(), "in order")
        XCTAssertEqual(Set(seqs).count, seqs.count)
        log.close()
    }

    func testAFailedWriteIsCountedAndReportedInTheNextBatch() throws {
        let file = path("access.log")
        let log = try AccessLog(path: file, flushInterval: 1000)
        defer { log.close() }
        for i in 0..<5 { log.record(AccessEvent(op: "read", result: .ok, fields: [("seq", "a\(i)")])) }
        log.flush()
        let size = try FileSystem.stat(file).size

        // The file may grow no further: the writer's next write fails with EFBIG (SIGXFSZ ignored meanwhile).
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var limit = rlimit()
        XCTAssertEqual(getrlimit(resourceFileSize, &limit), 0)
        var lowered = limit
        lowered.rlim_cur = rlim_t(size)
        XCTAssertEqual(setrlimit(resourceFileSize, &lowered), 0)
        for i in 0..<7 { log.record(AccessEvent(op: "read", result: .ok, fields: [("seq", "b\(i)")])) }
        log.flush()
        let droppedWhileFull = log.droppedCount
        let restored = setrlimit(resourceFileSize, &limit)
        signal(SIGXFSZ, previousHandler)
        XCTAssertEqual(restored, 0)
        XCTAssertEqual(droppedWhileFull, 7)
        XCTAssertEqual(try FileSystem.stat(file).size, size)

        for i in 0..<3 { log.record(AccessEvent(op: "read", result: .ok, fields: [("seq", "c\(i)")])) }
        log.flush()
        let lines = try readLines(file)
        let objects = try lines.map { try object($0) }
        guard objects.count == 9 else { return XCTFail("\(objects.count) lines, not 9") }
        XCTAssertEqual(objects[0..<5].map { $0["seq"] as? String }, ["a0", "a1", "a2", "a3", "a4"])
        XCTAssertEqual(objects[5]["op"] as? String, "dropped")
        XCTAssertEqual(objects[5]["dropped"] as? Int, 7)
        XCTAssertEqual(objects[5]["message"] as? String, "7 access log lines dropped: writing the log failed (EFBIG)")
        XCTAssertEqual(objects[6..<9].map { $0["seq"] as? String }, ["c0", "c1", "c2"])
        XCTAssertEqual(log.droppedCount, 7)
    }

    // MARK: 5. Rotation

    func testReopenAfterRenameLosesNoLine() throws {
        let file = path("access.log")
        let rotated = path("access.log.1")
        let log = try AccessLog(path: file)
        for i in 0..<1000 { log.record(AccessEvent(op: "open", result: .ok, fields: [("seq", "\(i)")])) }
        try FileSystem.rename(file, rotated)
        log.reopen()
        for i in 1000..<2000 { log.record(AccessEvent(op: "open", result: .ok, fields: [("seq", "\(i)")])) }
        log.flush()
        XCTAssertEqual(try FileSystem.stat(file).permissions, 0o600)
        let old = try readLines(rotated).map { try XCTUnwrap(try object($0)["seq"] as? String) }
        let new = try readLines(file).map { try XCTUnwrap(try object($0)["seq"] as? String) }
        XCTAssertEqual(old.count + new.count, 2000)
        XCTAssertEqual(Set(old + new), Set((0..<2000).map { "\($0)" }))
        XCTAssertTrue(
            Set(new).isSuperset(of: (1000..<2000).map { "\($0)" }),
            "lines after the reopen go to the new file"
        )
        log.close()
    }

    func testAFailedReopenKeepsWritingToTheOldFileAndSaysSo() throws {
        let file = path("access.log")
        let rotated = path("access.log.1")
        let log = try AccessLog(path: file)
        log.record(AccessEvent(op: "open", result: .ok, fields: [("seq", "0")]))
        log.flush()
        try FileSystem.rename(file, rotated)
        try FileSystem.makeDirectory(file, mode: 0o700)  // the new path cannot be the log
        log.reopen()
        log.record(AccessEvent(op: "open", result: .ok, fields: [("seq", "1")]))
        log.flush()
        let objects = try readLines(rotated).map { try object($0) }
        XCTAssertEqual(objects.map { $0["op"] as? String }, ["open", "log-reopen", "open"])
        XCTAssertEqual(objects.dropFirst().first?["error"] as? String, "EISDIR")
        XCTAssertEqual(objects.last?["seq"] as? String, "1")

        try FileSystem.removeDirectory(file)
        log.reopen()
        log.record(AccessEvent(op: "open", result: .ok, fields: [("seq", "2")]))
        log.close()
        XCTAssertEqual(try readLines(file).map { try object($0)["seq"] as? String }, ["2"])
    }

    // MARK: 6. The CLI's append

    func testAppendSharesTheDaemonsLog() throws {
        let file = path("access.log")
        try AccessLog.append([AccessEvent(op: "mount", result: .ok)], to: file)
        XCTAssertEqual(try FileSystem.stat(file).permissions, 0o600)
        let log = try AccessLog(path: file)
        log.record(AccessEvent(op: "open", result: .ok, fields: [("seq", "daemon-1")]))
        log.flush()
        try AccessLog.append(
            [
                AccessEvent(uid: 0, op: "backup", result: .ok, fields: [("seq", "cli-1")]),
                AccessEvent(uid: 0, op: "forget", result: .error(EBUSY), fields: [("seq", "cli-2")]),
            ],
            to: file
        )
        log.record(AccessEvent(op: "open", result: .ok, fields: [("seq", "daemon-2")]))
        log.close()
        let objects = try readLines(file).map { try object($0) }
        XCTAssertEqual(objects.map { $0["op"] as? String }, ["mount", "open", "backup", "forget", "open"])
        XCTAssertEqual(objects.map { $0["seq"] as? String }, [nil, "daemon-1", "cli-1", "cli-2", "daemon-2"])
        XCTAssertEqual(objects.dropFirst(3).first?["error"] as? String, "EBUSY")
    }

    // MARK: 7. Closing

    func testRecordAfterCloseDoesNothing() throws {
        let file = path("access.log")
        let log = try AccessLog(path: file, capacity: 4)
        log.record(AccessEvent(op: "open", result: .ok))
        log.close()
        XCTAssertEqual(try readLines(file).count, 1, "close writes what was queued")
        for _ in 0..<100 { log.record(AccessEvent(op: "open", result: .ok)) }
        log.reopen()
        log.flush()
        log.close()
        XCTAssertEqual(try readLines(file).count, 1)
        XCTAssertEqual(log.droppedCount, 0)
    }

    // MARK: Helpers

    private var resourceFileSize: __rlimit_resource_t { __rlimit_resource_t(RLIMIT_FSIZE.rawValue) }

    /// The file's lines without their newlines; a last line without one fails the test.
    private func readLines(_ file: [UInt8]) throws -> [[UInt8]] {
        let contents = try FileSystem.contents(of: file, limit: 1 << 30)
        if contents.isEmpty { return [] }
        XCTAssertEqual(contents.last, 0x0A, "the file ends with a whole line")
        return contents.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast().map { Array($0) }
    }

    private func object(_ line: [UInt8]) throws -> [String: Any] {
        let parsed = try JSONSerialization.jsonObject(with: Data(line))
        return try XCTUnwrap(parsed as? [String: Any], String(decoding: line, as: UTF8.self))
    }

    private struct NotFlatJSON: Error {
        var line: String
    }

    /// The keys of a flat JSON object in their order, checking the line strictly: `{`, then `"key":value`
    /// pairs split by `,`, then `}`, the values strings or integers.
    private func keys(_ line: [UInt8]) throws -> [String] {
        let failure = NotFlatJSON(line: String(decoding: line, as: UTF8.self))
        var i = 0
        func string() throws -> String {
            guard i < line.count, line[i] == 0x22 else { throw failure }
            let start = i
            i += 1
            while i < line.count, line[i] != 0x22 {
                if line[i] == 0x5C { i += 1 }
                i += 1
            }
            guard i < line.count else { throw failure }
            i += 1
            let decoded = try JSONSerialization.jsonObject(with: Data(line[start..<i]), options: .fragmentsAllowed)
            guard let text = decoded as? String else { throw failure }
            return text
        }
        guard line.first == 0x7B, line.last == 0x7D else { throw failure }
        i = 1
        var keys: [String] = []
        while true {
            keys.append(try string())
            guard i < line.count, line[i] == 0x3A else { throw failure }
            i += 1
            if i < line.count, line[i] == 0x22 {
                _ = try string()
            } else {
                let start = i
                if i < line.count, line[i] == 0x2D { i += 1 }
                while i < line.count, (0x30...0x39).contains(line[i]) { i += 1 }
                guard i > start else { throw failure }
            }
            guard i < line.count else { throw failure }
            if line[i] == 0x7D { break }
            guard line[i] == 0x2C else { throw failure }
            i += 1
        }
        guard i == line.count - 1 else { throw failure }
        return keys
    }

    /// The bytes a `PathBytes.display` string stands for: `\\`, `\n`, `\t`, `\r` and `\xNN` undone.
    private func undisplay(_ text: String) -> [UInt8] {
        let utf8 = Array(text.utf8)
        var bytes: [UInt8] = []
        var i = 0
        while i < utf8.count {
            guard utf8[i] == 0x5C, i + 1 < utf8.count else {
                bytes.append(utf8[i])
                i += 1
                continue
            }
            switch utf8[i + 1] {
            case UInt8(ascii: "\\"): bytes.append(0x5C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "x"):
                let hex = String(decoding: utf8[(i + 2)..<min(i + 4, utf8.count)], as: UTF8.self)
                bytes.append(UInt8(hex, radix: 16) ?? 0)
                i += 2
            default:
                XCTFail("unknown escape in \(text)")
            }
            i += 2
        }
        return bytes
    }
}
