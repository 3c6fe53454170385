import Dispatch
import PolyadFormat
import Synchronization

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

    /// The value if present, without counting a hit or a miss (for loaders that check before they work).
    func peek(_ key: Key) -> Value? { state.withLock { $0.entries[key]?.value } }

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

/// Loads under way, by key: a second caller for the same key waits for the first load's result instead of
/// loading (reading, decrypting, decompressing) the object again.
final class SharedLoads<Key: Hashable & Sendable, Value: Sendable, Failure: Error>: Sendable {
    private final class Load: Sendable {
        let done = DispatchGroup()
        let result = Mutex<Result<Value, Failure>?>(nil)
        init() { done.enter() }
    }

    private let loads = Mutex<[Key: Load]>([:])

    init() {}

    /// True while a load of `key` is under way.
    func isLoading(_ key: Key) -> Bool { loads.withLock { $0[key] != nil } }

    /// The value of `key`: from the load under way if there is one, else by running `load` (which should also
    /// put the value where later callers find it, such as a cache, before it returns).
    func value(for key: Key, load: () throws(Failure) -> Value) throws(Failure) -> Value {
        let (entry, owner) = loads.withLock { loads -> (Load, Bool) in
            if let existing = loads[key] { return (existing, false) }
            let fresh = Load()
            loads[key] = fresh
            return (fresh, true)
        }
        if owner {
            let result: Result<Value, Failure>
            do { result = .success(try load()) } catch { result = .failure(error) }
            entry.result.withLock { $0 = result }
            loads.withLock { $0[key] = nil }
            entry.done.leave()
            return try result.get()
        }
        entry.done.wait()
        return try entry.result.withLock { $0! }.get()
    }
}
