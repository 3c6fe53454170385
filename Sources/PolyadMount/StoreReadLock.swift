import Foundation
import PolyadRepository
import Synchronization

/// The mount's shared lock on the store, held while it reads: from the first tree or file it reads until no
/// snapshot file is open and `idleSeconds` have passed without a read of the store. While it is held no prune
/// (of any host) can run, so nothing a reader uses disappears under it; while the mount is idle it holds
/// nothing, so a prune elsewhere is not kept waiting by a mount nobody reads.
///
/// Taking it again after a gap, the index is read again (a prune may have superseded it) and the snapshots
/// listed again (`onTaken`), before the read that needed it goes on.
final class StoreReadLock: Sendable {
    private struct State {
        var lock: StoreLock?
        /// Snapshot files open.
        var openFiles = 0
        /// `Clock.monotonic()` of the last use.
        var lastUse = 0.0
    }

    private let state = Mutex(State())
    /// Held while the lock is taken or given up (store round trips): one taker at a time.
    private let turn = Mutex(())
    private let repository: Repository
    private let timing: LockTiming
    private let idleSeconds: Double
    private let onTaken: @Sendable () -> Void
    private let log: @Sendable (String) -> Void
    private let ticker = DispatchSemaphore(value: 0)
    private let finished = DispatchGroup()

    init(
        repository: Repository,
        timing: LockTiming,
        idleSeconds: Double = 5,
        onTaken: @escaping @Sendable () -> Void,
        log: @escaping @Sendable (String) -> Void
    ) {
        self.repository = repository
        var t = timing
        // A read waits at most this long for a prune elsewhere before it fails with EBUSY.
        t.waitSeconds = max(t.waitSeconds, 10)
        self.timing = t
        self.idleSeconds = idleSeconds
        self.onTaken = onTaken
        self.log = log
    }

    /// Makes sure the lock is held for a read of the store now.
    func use() throws(RepositoryError) {
        let now = Clock.monotonic()
        let held = state.withLock { s -> StoreLock? in
            s.lastUse = now
            return s.lock
        }
        if let held, (try? held.checkHeld()) != nil { return }
        try take()
    }

    /// A snapshot file was opened: the lock stays until it is closed.
    func retain() throws(RepositoryError) {
        try use()
        state.withLock { $0.openFiles += 1 }
    }

    /// A snapshot file was closed.
    func releaseOne() {
        let now = Clock.monotonic()
        state.withLock { s in
            s.openFiles = max(0, s.openFiles - 1)
            s.lastUse = now
        }
    }

    /// Whether the lock is held now.
    var isHeld: Bool { state.withLock { $0.lock != nil } }

    private func take() throws(RepositoryError) {
        try turn.withLock { _ throws(RepositoryError) in
            // Taken by another thread while this one waited for the turn.
            if let held = state.withLock({ $0.lock }) {
                if (try? held.checkHeld()) != nil { return }
                // Lapsed (the process was suspended past the stale time): a prune may have run; take a new one.
                dropLock()
            }
            let lock = try repository.lock(exclusive: false, operation: "mount", timing: timing)
            state.withLock { $0.lock = lock }
            onTaken()
        }
    }

    /// Gives the lock up for `body` (the mount's own forget and prune, which take the exclusive lock), and
    /// keeps other threads from taking it again until `body` has returned; reads of files already open go on.
    func withoutLock<T>(_ body: () throws -> T) rethrows -> T {
        try turn.withLock { _ in
            dropLock()
            return try body()
        }
    }

    /// Starts the thread that gives the lock up once the mount is idle.
    func start() {
        finished.enter()
        Thread.detachNewThread { [self] in
            defer { finished.leave() }
            while ticker.wait(timeout: .now() + 1) == .timedOut {
                releaseIfIdle()
            }
        }
    }

    private func releaseIfIdle() {
        turn.withLock { _ in
            let idle = state.withLock { s in
                s.lock != nil && s.openFiles == 0 && Clock.monotonic() - s.lastUse >= idleSeconds
            }
            if idle { dropLock() }
        }
    }

    /// Gives the lock up, if held (with `turn` held: no taker runs meanwhile).
    private func dropLock() {
        state.withLock { s -> StoreLock? in
            defer { s.lock = nil }
            return s.lock
        }?.release()
    }

    /// At unmount: stops the thread and gives the lock up.
    func stop() {
        ticker.signal()
        finished.wait()
        turn.withLock { _ in dropLock() }
    }
}
