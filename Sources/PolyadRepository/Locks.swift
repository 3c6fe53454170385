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
            if record.hostname == host, kill(record.pid, 0) != 0, errno == ESRCH {
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
            operation: operation
        )
        let name = try saveObject(.locks, record.encoded(), aad: AdditionalData.lock)
        return StoreLock(repository: self, name: name)
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

#if canImport(Glibc)
import Glibc
#endif
