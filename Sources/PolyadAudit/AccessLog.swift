import Foundation
import PolyadFileSystem
import Synchronization

/// The access log: JSON lines an auditor reads, written by a thread of its own so that recording never waits.
///
/// ## The access log
///
/// The mount daemon (`polyadfs`) writes one line for every access decision; the CLI (`polyad`) writes one line
/// for every command it runs. Both append to the same file. Each line is one JSON object, with the keys in
/// this order; a key without a value is left out:
///
/// | key | JSON type | value |
/// |---|---|---|
/// | `time` | string | when, in UTC, ISO 8601 with milliseconds: `"2026-12-02T10:04:11.123Z"` |
/// | `uid` | number | the caller's user id |
/// | `user` | string | the caller's user name, if known |
/// | `pid` | number | the caller's process id |
/// | `process` | string | the caller's process name (`comm`) |
/// | `role` | string | the caller's role: `none`, `reader`, `writer` or `admin` |
/// | `op` | string | `open`, `readdir`, `lookup`, `getattr`, `getxattr`, `create`, `mount`, `unmount`, `commit`, `prune`, `backup`, `restore`, `forget`, `key-add`, `key-remove`, …; `dropped` and `log-reopen` are the log's own |
/// | `path` | string | the path acted on |
/// | `result` | string | `ok`; `denied` (refused by the access check: the caller got `EACCES`); `error` (allowed, but it failed) |
/// | `errno` | number | only with `"result":"error"`: the error number |
/// | `error` | string | only with `"result":"error"`: its symbolic name (`ENOENT`, `EACCES`, `EIO`, `ENOSPC`, `EROFS`, …), or the number as text |
/// | `bytes` | number | the bytes read or written between open and release |
/// | others | string | extra fields of the operation, in its order, such as `snapshot` or `message` |
///
/// Strings are lossless: a path (or any other string) is written in its display form (valid UTF-8 as is,
/// other bytes as `\xNN`, newline, tab and carriage return as `\n`, `\t`, `\r`, other control characters
/// as `\xNN`, a backslash doubled), and that is JSON-escaped. So after JSON decoding, read `\\` as a
/// backslash, `\n` `\t` `\r` as those bytes and `\xNN` as the byte NN: that gives back the exact bytes. A line
/// never contains a raw newline. An extra field never repeats a key: one named like a standard key (or
/// `dropped`, or an earlier field) gets `_` appended.
///
/// ```
/// {"time":"2026-12-02T10:04:11.123Z","uid":1000,"user":"anna","pid":4242,"process":"cat","role":"reader","op":"open","path":"/snapshots/latest/etc/hosts","result":"ok","bytes":220}
/// {"time":"2026-12-02T10:04:12.007Z","uid":1001,"user":"bob","pid":4250,"process":"ls","role":"none","op":"readdir","path":"/snapshots/latest/home/anna","result":"denied"}
/// {"time":"2026-12-02T10:04:12.310Z","uid":1000,"pid":4260,"process":"cp","role":"writer","op":"create","path":"/incoming/caf\xC3","result":"error","errno":30,"error":"EROFS"}
/// {"time":"2026-12-02T10:05:00.000Z","uid":0,"user":"root","pid":5100,"process":"polyad","op":"backup","result":"ok","snapshot":"5e1f0a2b"}
/// ```
///
/// No line goes missing in silence. When the daemon's queue is full (the disk cannot keep up) or a write
/// fails (disk full, I/O error), the lines lost are counted, and a record at their place in the log says how
/// many:
///
/// ```
/// {"time":"2026-12-02T10:06:01.250Z","op":"dropped","result":"error","dropped":312,"message":"312 access log lines dropped: the queue was full"}
/// ```
///
/// (`"message"` ends `writing the log failed (ENOSPC)` after a failed write. A failed write counts its whole
/// batch, though lines before the failure may have reached the file; a line cut short there is ended with a
/// newline before the next one, so it alone does not parse.) When the log cannot be opened anew after a
/// rotation, a line with `"op":"log-reopen"`, `"result":"error"` and a `message` goes to the old file, and
/// writing goes on there.
///
/// The file is created with mode `0600`. An existing log that group or others may read or write is refused
/// (`chmod 600` it), as is a path that is not a regular file; the folder is never created. Lines are appended
/// (`O_APPEND`), each batch with one `write`, so the daemon and the CLI can share the file. For logrotate,
/// rename the file and send `polyadfs` `SIGHUP`: lines written before are in the renamed file, lines after in
/// the new one, none lost (no `copytruncate` needed).
///
/// ## Writing
///
/// `record(_:)` only appends the event to a queue under a mutex: it never waits for the disk. The writer thread
/// formats and writes the queue as one batch at least every `flushInterval` seconds, as soon as the queue is
/// more than half full, and on `flush()` and `close()`.
public final class AccessLog: Sendable {
    /// The log file's path.
    public let path: [UInt8]

    private let shared: Shared

    /// Opens the log at `path`, creating the file with mode `0600` (and nothing else: not its folder), and
    /// starts the writer thread.
    ///
    /// - Parameters:
    ///   - capacity: the most events waiting to be written; beyond it events are dropped and counted.
    ///   - flushInterval: the longest time in seconds an event waits before it is written (at least 0.01).
    /// - Throws: `AccessLogError` when the path is not a regular file, when group or others may read or write
    ///   the file (`chmod 600` it; its mode is never changed here), or when it cannot be opened.
    public init(path: [UInt8], capacity: Int = 65_536, flushInterval: Double = 1.0) throws(AccessLogError) {
        self.path = path
        let fd = try LogFile.open(path)
        let interval = flushInterval.isFinite ? max(flushInterval, 0.01) : 1.0
        let shared = Shared(capacity: max(1, capacity))
        self.shared = shared
        let thread = Thread {
            var writer = Writer(shared: shared, path: path, fd: fd)
            writer.run(interval: interval)
        }
        thread.name = "polyad-access-log"
        thread.start()
    }

    deinit {
        close()
    }

    /// Queues the event for the writer thread; never waits for I/O. When `capacity` events wait already, the
    /// event is dropped and counted (a `dropped` record in the log says how many). Nothing after `close()`.
    public func record(_ event: AccessEvent) {
        let post = shared.state.withLock { state -> Bool in
            if state.closed { return false }
            state.recorded &+= 1
            if state.queue.count >= shared.capacity {
                if state.queueDrops == 0 { state.firstDropTime = event.time }
                state.queueDrops += 1
                state.droppedTotal += 1
                return false  // a full queue is more than half full: the writer was woken already
            }
            state.queue.append(event)
            return state.queue.count > shared.capacity / 2 ? state.postWake() : false
        }
        if post { shared.wake.post() }
    }

    /// Has the writer open the path anew before its next write (after logrotate renamed the file): events
    /// queued before go to the old file or the new one, none is lost. If the path cannot be opened, the writer
    /// stays with the old file, says so there, and tries again at each batch.
    public func reopen() {
        let post = shared.state.withLock { state -> Bool in
            if state.closed { return false }
            state.reopenRequested = true
            return state.postWake()
        }
        if post { shared.wake.post() }
    }

    /// Returns once every event recorded before the call is written (or, if its write failed, counted as
    /// dropped).
    public func flush() {
        let (target, post) = shared.state.withLock { state -> (UInt64, Bool) in
            (state.recorded, state.closed ? false : state.postWake())
        }
        if post { shared.wake.post() }
        shared.progress.wait(forHandled: target)
    }

    /// Writes what is queued, stops the writer thread and closes the file. Later calls of `record` do nothing;
    /// calling `close` again only waits for the first to finish.
    public func close() {
        let post = shared.state.withLock { state -> Bool in
            if state.closed { return false }
            state.closed = true
            return state.postWake()
        }
        if post { shared.wake.post() }
        shared.progress.waitForExit()
    }

    /// The number of events dropped so far, because the queue was full or their write failed.
    public var droppedCount: UInt64 {
        shared.state.withLock { $0.droppedTotal }
    }

    /// Appends the events to the log at `path` with one `write` and returns: for a one-shot writer (the CLI),
    /// no thread. Creates and checks the file as `init` does.
    public static func append(_ events: [AccessEvent], to path: [UInt8]) throws(AccessLogError) {
        let fd = try LogFile.open(path)
        defer { FileSystem.close(fd) }
        var buffer: [UInt8] = []
        for event in events { AccessLogLine.append(event, to: &buffer) }
        if !buffer.isEmpty { try LogFile.write(fd, buffer, path: path) }
    }

    // MARK: Test hooks

    /// Keeps the writer from taking events until `resumeWriter()` (not after `close()`): so tests can fill the
    /// queue. `flush()` waits for the resume.
    func pauseWriter() {
        shared.state.withLock { $0.paused = true }
    }

    /// Lets the writer take events again, at once.
    func resumeWriter() {
        shared.state.withLock { state in
            state.paused = false
            state.wakePosted = true
        }
        shared.wake.post()
    }
}

/// What the recording threads and the writer thread share.
private final class Shared: Sendable {
    struct State {
        /// The events waiting for the writer, oldest first.
        var queue: [AccessEvent] = []
        /// Events dropped since the writer last took the queue, for want of room: all after the queue's events.
        var queueDrops: UInt64 = 0
        var firstDropTime = Date()
        /// Calls of `record` before `close`, queued or dropped.
        var recorded: UInt64 = 0
        var droppedTotal: UInt64 = 0
        var reopenRequested = false
        var closed = false
        var paused = false
        /// A wake-up was posted that the writer has not yet answered by taking the queue.
        var wakePosted = false

        /// Marks a wake-up as posted; true if the caller is to post it (none is outstanding).
        mutating func postWake() -> Bool {
            if wakePosted { return false }
            wakePosted = true
            return true
        }
    }

    let capacity: Int
    let state: Mutex<State>
    let wake = WakeSignal()
    let progress = WriterProgress()

    init(capacity: Int) {
        self.capacity = capacity
        var initial = State()
        initial.queue.reserveCapacity(min(capacity, 1024))
        state = Mutex(initial)
    }
}

/// One batch as the writer took it from the shared state.
private struct Batch {
    var queueDrops: UInt64
    var firstDropTime: Date
    /// `recorded` when the batch was taken: once it is written, so are all events recorded before.
    var handled: UInt64
    var reopen: Bool
    var closing: Bool
}

/// The writer thread's own state and loop; used by that thread alone.
private struct Writer {
    let shared: Shared
    let path: [UInt8]
    var fd: Int32

    /// The events of the batch at hand: swapped with the shared queue, so the recording threads get back an
    /// emptied array with its room.
    var events: [AccessEvent] = []
    var buffer: [UInt8] = []
    /// Lines lost in failed writes, not yet reported in the log.
    var failedLines: UInt64 = 0
    var failedTime = Date()
    var failedErrno: Int32 = 0
    /// Lines dropped for want of room in batches whose write failed, not yet reported.
    var carriedQueueDrops: UInt64 = 0
    var carriedQueueDropTime = Date()
    var reopenPending = false
    var reopenFailureReported = false
    /// The last failed write may have left part of a line: start the next batch with a newline.
    var lineBreakNeeded = false

    init(shared: Shared, path: [UInt8], fd: Int32) {
        self.shared = shared
        self.path = path
        self.fd = fd
    }

    mutating func run(interval: Double) {
        while true {
            shared.wake.wait(timeout: interval)
            guard let batch = take() else { continue }
            if batch.reopen { reopenPending = true }
            write(batch)
            shared.progress.advance(to: batch.handled)
            events.removeAll(keepingCapacity: events.capacity <= 4096)
            if buffer.capacity > 1 << 20 { buffer = [] }
            if batch.closing {
                try? FileSystem.fsync(fd)
                FileSystem.close(fd)
                shared.progress.markExited()
                return
            }
        }
    }

    /// Takes the whole queue at once (nil while paused).
    private mutating func take() -> Batch? {
        shared.state.withLock { state -> Batch? in
            if state.paused && !state.closed { return nil }
            swap(&state.queue, &events)
            let batch = Batch(
                queueDrops: state.queueDrops,
                firstDropTime: state.firstDropTime,
                handled: state.recorded,
                reopen: state.reopenRequested,
                closing: state.closed
            )
            state.queueDrops = 0
            state.reopenRequested = false
            state.wakePosted = false
            return batch
        }
    }

    private mutating func write(_ batch: Batch) {
        buffer.removeAll(keepingCapacity: true)
        let reopenFailure = reopenPending ? reopenFile() : nil
        if lineBreakNeeded { buffer.append(0x0A) }
        let start = buffer.count
        if let reopenFailure { AccessLogLine.append(reopenFailure, to: &buffer) }
        if failedLines > 0 {
            let reason = "writing the log failed (\(AccessLogLine.errnoName(failedErrno)))"
            AccessLogLine.appendDropped(failedLines, time: failedTime, reason: reason, to: &buffer)
        }
        if carriedQueueDrops > 0 {
            AccessLogLine.appendDropped(
                carriedQueueDrops,
                time: carriedQueueDropTime,
                reason: "the queue was full",
                to: &buffer
            )
        }
        for event in events { AccessLogLine.append(event, to: &buffer) }
        if batch.queueDrops > 0 {
            AccessLogLine.appendDropped(
                batch.queueDrops,
                time: batch.firstDropTime,
                reason: "the queue was full",
                to: &buffer
            )
        }
        guard buffer.count > start else { return }
        do {
            try LogFile.write(fd, buffer, path: path)
            failedLines = 0
            carriedQueueDrops = 0
            lineBreakNeeded = false
        } catch {
            // Never crash, never hold up the recording threads: count the lines, report them with the next batch.
            if failedLines == 0 { failedTime = Date() }
            failedLines += UInt64(events.count)
            failedErrno = error.errno
            if batch.queueDrops > 0 {
                if carriedQueueDrops == 0 { carriedQueueDropTime = batch.firstDropTime }
                carriedQueueDrops += batch.queueDrops
            }
            let lost = UInt64(events.count)
            shared.state.withLock { $0.droppedTotal += lost }
            lineBreakNeeded = LogFile.endsMidLine(fd)
        }
    }

    /// Opens the path anew; on failure keeps the old file and returns the event that says so (the first time).
    private mutating func reopenFile() -> AccessEvent? {
        do {
            let newFd = try LogFile.open(path)
            FileSystem.close(fd)
            fd = newFd
            reopenPending = false
            reopenFailureReported = false
            lineBreakNeeded = false
            return nil
        } catch {
            guard !reopenFailureReported else { return nil }
            reopenFailureReported = true
            return AccessEvent(
                op: "log-reopen",
                path: path,
                result: .error(error.errno),
                fields: [("message", "\(error); writing on to the file opened before")]
            )
        }
    }
}
