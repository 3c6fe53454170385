import Foundation

/// The writer thread's wake-up: `post()` sets a flag, `wait(timeout:)` returns once it is set (clearing it) or the
/// time is up. A post before the wait is not lost, and posts in a row wake once.
///
/// `@unchecked Sendable` is safe: `pending` is read and written only while holding `condition`'s lock, and
/// `NSCondition` itself may be used from any thread.
final class WakeSignal: @unchecked Sendable {
    private let condition = NSCondition()
    private var pending = false

    /// Sets the flag and wakes the waiting thread, if any.
    func post() {
        condition.lock()
        pending = true
        condition.signal()
        condition.unlock()
    }

    /// Returns when the flag is set, clearing it, or after `timeout` seconds.
    func wait(timeout: Double) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while !pending {
            if !condition.wait(until: deadline) { break }
        }
        pending = false
    }
}

/// How far the writer has got: the number of recorded events it has handled (written, or counted as dropped),
/// and whether it has ended. `flush()` and `close()` wait on it.
///
/// `@unchecked Sendable` is safe: `handled` and `exited` are read and written only while holding `condition`'s
/// lock.
final class WriterProgress: @unchecked Sendable {
    private let condition = NSCondition()
    private var handled: UInt64 = 0
    private var exited = false

    /// The writer has handled the first `count` events recorded.
    func advance(to count: UInt64) {
        condition.lock()
        handled = max(handled, count)
        condition.broadcast()
        condition.unlock()
    }

    /// The writer thread has ended (its descriptor closed).
    func markExited() {
        condition.lock()
        exited = true
        condition.broadcast()
        condition.unlock()
    }

    /// Returns once the first `count` recorded events are handled, or the writer has ended.
    func wait(forHandled count: UInt64) {
        condition.lock()
        while handled < count && !exited { condition.wait() }
        condition.unlock()
    }

    /// Returns once the writer thread has ended.
    func waitForExit() {
        condition.lock()
        while !exited { condition.wait() }
        condition.unlock()
    }
}
