import PolyadFileSystem
import PolyadFormat
import PolyadStorage

/// A lock held on the store; `release()` removes it.
public struct StoreLock: Sendable {
    let repository: Repository
    let name: Hash256

    /// Removes the lock object.
    public func release() {
        try? repository.backend.remove(ObjectHandle(kind: .locks, name: name.hex))
    }
}

extension Repository {
    /// Takes a shared (backup, restore, verify) or exclusive (prune) lock. Fails with `.locked` (exit 11)
    /// naming the holder if a conflicting lock exists. Locks of dead processes on this host are removed.
    public func lock(exclusive: Bool, operation: String) throws(RepositoryError) -> StoreLock {
        let host = Accounts.hostName
        for info in try list(.locks) {
            guard let plain = try? loadObject(info.handle, aad: Self.lockAAD),
                  let record = try? LockRecord(decoding: plain) else { continue }
            if record.hostname == host, kill(record.pid, 0) != 0, errno == ESRCH {
                try? backend.remove(info.handle)   // stale: its process is gone
                continue
            }
            if exclusive || record.exclusive {
                throw RepositoryError(.locked,
                                      "the store is locked by \(record.operation) (pid \(record.pid) on \(record.hostname), \(record.exclusive ? "exclusive" : "shared")); wait for it to finish, or remove locks/\(info.handle.name) if that process is gone")
            }
        }
        let record = LockRecord(time: Clock.now(), hostname: host, username: Accounts.currentUserName, pid: getpid(),
                                exclusive: exclusive, operation: operation)
        let name = try saveObject(.locks, record.encoded(), aad: Self.lockAAD)
        return StoreLock(repository: self, name: name)
    }
}

#if canImport(Glibc)
import Glibc
#endif
