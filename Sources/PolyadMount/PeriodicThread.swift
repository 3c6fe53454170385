import Foundation
import Synchronization

/// A thread of its own that runs `body` every `interval` seconds until stopped (or until `body` returns false):
/// the daemon's background jobs (mirror catch-up, cleanup). A thread, not a dispatch queue: a run may block
/// on the store for long, and must not hold up the queue's other work.
final class PeriodicThread: Sendable {
    private let interval: Double
    private let stopped = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchGroup()

    init(interval: Double) { self.interval = interval }

    /// Starts the thread (nothing when `interval` is 0).
    func start(_ body: @escaping @Sendable () -> Bool) {
        guard interval > 0 else { return }
        finished.enter()
        Thread.detachNewThread { [self] in
            defer { finished.leave() }
            while wake.wait(timeout: .now() + interval) == .timedOut {
                if stopped.load(ordering: .relaxed) { return }
                guard body() else { return }
            }
        }
    }

    /// Stops the thread, after the run under way (if any) has finished.
    func stop() {
        stopped.store(true, ordering: .relaxed)
        wake.signal()
        finished.wait()
    }
}
