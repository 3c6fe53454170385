import Foundation
import PolyadFileSystem
import PolyadFormat
import PolyadStorage

/// A lock held on the store; `release()` removes it.
public struct StoreLock: Sendable {
    let repository: Repository
    let name: Hash256

    /// Removes the lock object.
    public func release() {
        // Best effort, and nothing to report it to: release runs in a `defer` once the operation has already
        // succeeded or failed with its own error. A lock left behind names its holder to the next `lock`,
        // which removes it itself once that process is gone (same host, no such pid).
        try? repository.backend.remove(ObjectHandle(kind: .locks, name: name.hex))
    }
}

extension Repository {
    /// Takes a shared (backup, restore, verify) or exclusive (prune) lock. Fails with `.locked` (exit 11)
    /// naming the holder if a conflicting lock exists. Locks of dead processes on this host are removed.
    public func lock(exclusive: Bool, operation: String) throws(RepositoryError) -> StoreLock {
        let host = Accounts.hostName
        for info in try list(.locks) {
            guard let record = try lockRecord(info.handle) else { continue }
            if Self.isStale(record) {
                // Stale: its process is gone, so it conflicts with nothing. Removing it is tidying only; if
                // that fails (another process removed it first, or a read-only store) the next run tries again.
                try? backend.remove(info.handle)
                continue
            }
            if exclusive || record.exclusive {
                throw RepositoryError(
                    .locked,
                    "the store is locked by \(record.operation) (pid \(record.pid) on \(record.hostname), \(record.exclusive ? "exclusive" : "shared")); wait for it to finish, or remove locks/\(info.handle.name) if that process is gone"
                )
            }
        }
        let record = LockRecord(
            time: Clock.now(),
            hostname: host,
            username: Accounts.currentUserName,
            pid: getpid(),
            exclusive: exclusive,
            operation: operation,
            start: ProcessStart.ticks(of: getpid()),
            boot: ProcessStart.bootID
        )
        let name = try saveObject(.locks, record.encoded(), aad: AdditionalData.lock)
        return StoreLock(repository: self, name: name)
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

    /// Removes the locks whose holders are gone from this host (`polyad unlock`); a lock of a live process,
    /// or of a process on another host, is never removed.
    public func removeStaleLocks() throws(RepositoryError) -> LockCleanup {
        var out = LockCleanup()
        for info in try list(.locks) {
            guard let record = try lockRecord(info.handle) else {
                if (try? backend.size(info.handle)) != nil { out.damaged.append("locks/\(info.handle.name)") }
                continue
            }
            guard Self.isStale(record) else {
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

    /// A lock of this host whose process is gone: its PID does not exist, or belongs to a process started at
    /// another time or in another boot than the holder (the PID was given to someone else since).
    static func isStale(_ record: LockRecord) -> Bool {
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
