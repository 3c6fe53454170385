import Dispatch
import Foundation
import PolyadFileSystem
import PolyadFormat
import PolyadStorage
import Synchronization

/// How often a held lock is rewritten, and how long a lock may go without a rewrite before others take it as
/// stale: restic's 5 and 30 minutes by default.
public struct LockTiming: Sendable, Equatable {
    public var refreshSeconds: Double
    public var staleSeconds: Double
    /// How long taking a lock keeps trying while another process holds a conflicting one (restic's
    /// `--retry-lock`); 0 fails at once.
    public var waitSeconds: Double

    public init(refreshSeconds: Double = 300, staleSeconds: Double = 1_800, waitSeconds: Double = 0) {
        self.refreshSeconds = refreshSeconds
        self.staleSeconds = staleSeconds
        self.waitSeconds = waitSeconds
    }

    /// The environment variable `--retry-lock` sets (seconds).
    public static let waitVariable = "POLYAD_RETRY_LOCK"

    /// The defaults, or `POLYAD_LOCK_REFRESH_SECONDS`, `POLYAD_LOCK_STALE_SECONDS` (tests and experiments;
    /// every process using a store must agree on the stale time) and `POLYAD_RETRY_LOCK` when set.
    public static func from(environment: [String: String]) -> LockTiming {
        var t = LockTiming()
        if let r = environment["POLYAD_LOCK_REFRESH_SECONDS"].flatMap(Double.init), r > 0 { t.refreshSeconds = r }
        if let s = environment["POLYAD_LOCK_STALE_SECONDS"].flatMap(Double.init), s > 0 { t.staleSeconds = s }
        if let w = environment[waitVariable].flatMap(Double.init), w > 0 { t.waitSeconds = w }
        return t
    }
}

/// A lock held on the store. A thread rewrites it every `refreshSeconds` (a new object with the time of the
/// rewrite, then the old one removed), so that others do not take it as stale; `release()` stops that and
/// removes it.
///
/// A holder that went longer than `staleSeconds` without a rewrite (it was suspended, the store was
/// unreachable, the machine slept) may have been taken for dead, and a prune may have removed data it is about
/// to reference: `checkHeld()` then fails, for good, and a backup calls it before it writes its index and its
/// snapshot (restic #2715).
public final class StoreLock: Sendable {
    private struct State {
        var name: Hash256
        var record: LockRecord
        /// `Clock.monotonic()` of the last rewrite that succeeded (or of the taking).
        var refreshedAt: Double
        /// Set once a gap longer than the stale time was seen: never cleared.
        var lapsed = false
        var released = false
    }

    let repository: Repository
    let timing: LockTiming
    private let state: Mutex<State>
    private let wake = DispatchSemaphore(value: 0)
    private let stopped = DispatchGroup()

    init(repository: Repository, name: Hash256, record: LockRecord, timing: LockTiming) {
        self.repository = repository
        self.timing = timing
        state = Mutex(State(name: name, record: record, refreshedAt: Clock.monotonic()))
        stopped.enter()
        Thread.detachNewThread { [self] in
            defer { stopped.leave() }
            while wake.wait(timeout: .now() + timing.refreshSeconds) == .timedOut {
                if state.withLock({ $0.released }) { return }
                refresh()
            }
        }
    }

    /// Rewrites the lock with the time now. A failure is tried again at the next period; if they go on past the
    /// stale time, `checkHeld` says so.
    func refresh() {
        let now = Clock.monotonic()
        let (old, record) = state.withLock { s -> (Hash256, LockRecord) in
            if now - s.refreshedAt > timing.staleSeconds { s.lapsed = true }
            var r = s.record
            r.time = Clock.now()
            return (s.name, r)
        }
        guard let name = try? repository.saveObject(.locks, record.encoded(), aad: AdditionalData.lock) else { return }
        // Only the refresh thread (or a test, before release) calls this, and release waits for that thread.
        state.withLock { s in
            s.name = name
            s.record = record
            s.refreshedAt = now
        }
        if name != old { try? repository.backend.remove(ObjectHandle(kind: .locks, name: old.hex)) }
    }

    /// Fails if the lock may have been taken as stale since it was taken: more than `staleSeconds` without a
    /// rewrite, now or at any time before.
    public func checkHeld() throws(RepositoryError) {
        let (lapsed, age) = state.withLock { ($0.lapsed, Clock.monotonic() - $0.refreshedAt) }
        guard lapsed || age > timing.staleSeconds else { return }
        throw RepositoryError(
            .locked,
            "this process's lock on the store went more than \(Int(timing.staleSeconds)) s without being refreshed "
                + "(the process was suspended, or the store was unreachable), so another process may have taken it as "
                + "stale and removed data this run refers to; nothing more is written: run it again"
        )
    }

    /// Stops the refreshes and removes the lock object.
    public func release() {
        state.withLock { $0.released = true }
        wake.signal()
        stopped.wait()  // no rewrite under way from here on
        // Best effort, and nothing to report it to: release runs in a `defer` once the operation has already
        // succeeded or failed with its own error. A lock left behind names its holder to the next `lock`,
        // which removes it itself once that process is gone (same host, no such pid), or once it is stale.
        try? repository.backend.remove(ObjectHandle(kind: .locks, name: state.withLock { $0.name }.hex))
    }
}

extension Repository {
    /// Takes a shared (backup, restore, verify) or exclusive (prune) lock. Fails with `.locked` (exit 11)
    /// naming the holder if a conflicting lock exists. Locks of dead processes on this host are removed.
    public func lock(
        exclusive: Bool,
        operation: String,
        timing: LockTiming = LockTiming()
    ) throws(RepositoryError) -> StoreLock {
        let deadline = Clock.monotonic() + timing.waitSeconds
        var pause = 0.1
        while true {
            do {
                return try takeLock(exclusive: exclusive, operation: operation, timing: timing)
            } catch  where error.code == .locked && Clock.monotonic() < deadline {
                // Another holder: try again after a growing, jittered pause (so two waiters do not keep
                // meeting), never past the deadline.
                let sleep = min(Double.random(in: pause / 2...pause), max(0, deadline - Clock.monotonic()))
                usleep(UInt32(sleep * 1e6))
                pause = min(pause * 2, 5)
            }
        }
    }

    /// One attempt: refuse if a conflicting lock is there; write ours; look again, and if a conflicting lock
    /// appeared meanwhile (two processes that listed at the same moment), remove ours and refuse, so two
    /// conflicting holders never both go on.
    private func takeLock(exclusive: Bool, operation: String, timing: LockTiming) throws(RepositoryError) -> StoreLock {
        try refuseConflicts(exclusive: exclusive, timing: timing, except: nil)
        let record = LockRecord(
            time: Clock.now(),
            hostname: Accounts.hostName,
            username: Accounts.currentUserName,
            pid: getpid(),
            exclusive: exclusive,
            operation: operation,
            start: ProcessStart.ticks(of: getpid()),
            boot: ProcessStart.bootID
        )
        let name = try saveObject(.locks, record.encoded(), aad: AdditionalData.lock)
        do {
            try refuseConflicts(exclusive: exclusive, timing: timing, except: name.hex)
        } catch {
            try? backend.remove(ObjectHandle(kind: .locks, name: name.hex))
            throw error
        }
        return StoreLock(repository: self, name: name, record: record, timing: timing)
    }

    private func refuseConflicts(exclusive: Bool, timing: LockTiming, except ours: String?) throws(RepositoryError) {
        for info in try list(.locks) where info.handle.name != ours {
            guard let record = try lockRecord(info.handle) else { continue }
            if Self.isStale(record, timing: timing) {
                // Stale: its process is gone, so it conflicts with nothing. Removing it is tidying only; if
                // that fails (another process removed it first, or a read-only store) the next run tries again.
                try? backend.remove(info.handle)
                continue
            }
            if exclusive || record.exclusive {
                throw RepositoryError(
                    .locked,
                    "the store is locked by \(record.operation) (pid \(record.pid) on \(record.hostname), \(record.exclusive ? "exclusive" : "shared")); wait for it to finish (or pass --retry-lock), or run `polyad unlock` if that process is gone"
                )
            }
        }
    }

    /// What `removeStaleLocks` did.
    public struct LockCleanup: Sendable {
        /// The stale locks removed.
        public var removed: [LockRecord] = []
        /// The locks left: their holders may be alive (on this host, or on another, which cannot be checked
        /// from here).
        public var kept: [LockRecord] = []
        /// Locks that are damaged (they name no holder): left in place, as the format article says.
        public var damaged: [String] = []
    }

    /// Removes the stale locks (`polyad unlock`): those of processes gone from this host, and those not
    /// refreshed for longer than the stale time; a refreshed lock of a live process is never removed.
    public func removeStaleLocks(timing: LockTiming = LockTiming()) throws(RepositoryError) -> LockCleanup {
        var out = LockCleanup()
        for info in try list(.locks) {
            guard let record = try lockRecord(info.handle) else {
                if (try? backend.size(info.handle)) != nil { out.damaged.append("locks/\(info.handle.name)") }
                continue
            }
            guard Self.isStale(record, timing: timing) else {
                out.kept.append(record)
                continue
            }
            do { try backend.remove(info.handle) } catch  where error.code == .notFound {} catch {
                throw RepositoryError.storage(error)
            }
            out.removed.append(record)
        }
        return out
    }

    /// A lock not rewritten for longer than the stale time (its holder, on any host, stopped refreshing it), or
    /// a lock of this host whose process is gone: its PID does not exist, or belongs to a process started at
    /// another time or in another boot than the holder (the PID was given to someone else since).
    static func isStale(_ record: LockRecord, timing: LockTiming) -> Bool {
        let now = Clock.now()
        if Double(now.seconds - record.time.seconds) > timing.staleSeconds { return true }
        guard record.hostname == Accounts.hostName else { return false }
        if let boot = record.boot, let now = ProcessStart.bootID, boot != now { return true }
        if kill(record.pid, 0) != 0, errno == ESRCH { return true }
        if let start = record.start, let current = ProcessStart.ticks(of: record.pid), start != current { return true }
        return false
    }

    /// A lock's record, or nil for a lock to pass over: one removed since the listing (its holder finished),
    /// or a damaged one (it does not match its name, authenticate or decode). A damaged lock names no holder
    /// and no process would ever remove it, so refusing on it would stop every backup for good over one bad
    /// file: it is passed over and left in place, as the store format article says. A lock that cannot be
    /// read at all (the store unreachable, an I/O error) is not passed over: the error says why.
    private func lockRecord(_ handle: ObjectHandle) throws(RepositoryError) -> LockRecord? {
        let plain: [UInt8]
        do {
            plain = try loadObject(handle, aad: AdditionalData.lock)
        } catch  where error.code == .damaged {
            return nil  // damaged, or gone since the listing (loadObject reports a missing object as damage)
        }
        return try? LockRecord(decoding: plain)  // damaged too (see above)
    }
}

/// When a process started, as Linux tells it, so a lock's PID can be told from a later process given the same
/// number.
enum ProcessStart {
    /// `/proc/PID/stat` field 22 (start time in clock ticks after boot); nil where it cannot be read.
    static func ticks(of pid: Int32) -> UInt64? {
        guard let bytes = try? FileSystem.contents(of: Array("/proc/\(pid)/stat".utf8), limit: 4096),
            let close = bytes.lastIndex(of: UInt8(ascii: ")"))
        else { return nil }
        // After the command name in parentheses (which may hold spaces): field 3 onwards.
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 19 else { return nil }
        return UInt64(String(decoding: fields[19], as: UTF8.self))
    }

    /// This boot's id (`/proc/sys/kernel/random/boot_id`).
    static let bootID: String? = {
        guard let bytes = try? FileSystem.contents(of: Array("/proc/sys/kernel/random/boot_id".utf8), limit: 256)
        else { return nil }
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }()
}

#if canImport(Glibc)
import Glibc
#endif
