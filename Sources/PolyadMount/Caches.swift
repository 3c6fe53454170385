import Synchronization
import PolyadFormat

/// A least-recently-used cache bounded by a cost (bytes, or a count), safe to share between FUSE threads.
final class LRUCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Entry {
        var value: Value
        var cost: Int
        var stamp: UInt64
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var total = 0
        var clock: UInt64 = 0
        var hits = 0
        var misses = 0
    }

    private let state = Mutex(State())
    private let capacity: Int

    /// - Parameter capacity: the largest total cost kept.
    init(capacity: Int) { self.capacity = max(1, capacity) }

    func value(for key: Key) -> Value? {
        state.withLock { s in
            guard var e = s.entries[key] else {
                s.misses += 1
                return nil
            }
            s.clock += 1
            e.stamp = s.clock
            s.entries[key] = e
            s.hits += 1
            return e.value
        }
    }

    func contains(_ key: Key) -> Bool { state.withLock { $0.entries[key] != nil } }

    func insert(_ value: Value, for key: Key, cost: Int) {
        state.withLock { s in
            s.clock += 1
            if let old = s.entries[key] { s.total -= old.cost }
            s.entries[key] = Entry(value: value, cost: cost, stamp: s.clock)
            s.total += cost
            guard s.total > capacity else { return }
            // Evict the oldest entries down to 7/8 of the capacity (amortises the sort).
            let goal = capacity - capacity / 8
            for (k, e) in s.entries.sorted(by: { $0.value.stamp < $1.value.stamp }) {
                if s.total <= goal || k == key { break }
                s.entries[k] = nil
                s.total -= e.cost
            }
        }
    }

    /// (hits, misses, bytes held).
    var statistics: (hits: Int, misses: Int, cost: Int) { state.withLock { ($0.hits, $0.misses, $0.total) } }
}
