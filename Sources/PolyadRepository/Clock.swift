import PolyadFormat
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The wall clock and a monotonic clock, in the store's `Timestamp` form.
public enum Clock {
    /// The wall clock.
    public static func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(seconds: Int64(ts.tv_sec), nanoseconds: Int64(ts.tv_nsec))
    }

    /// Seconds on a monotonic clock, for durations.
    public static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` that keeps the body's typed error.
    func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var result: Result<R, E>?
        withUnsafeBytes { b in
            do throws(E) { result = .success(try body(b)) } catch { result = .failure(error) }
        }
        return try result!.get()
    }
}

/// Says when a progress line is due: at most four times a second, from any thread.
final class ProgressThrottle: Sendable {
    private let last = Mutex<Double>(0)

    func due() -> Bool {
        let now = Clock.monotonic()
        return last.withLock {
            guard now - $0 >= 0.25 else { return false }
            $0 = now
            return true
        }
    }
}
