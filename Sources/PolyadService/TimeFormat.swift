import Foundation
import PolyadFormat

/// Time formatting for users and JSON.
public enum TimeFormat {
    /// `2026-11-25T02:03:56.123456789Z`.
    public static func iso8601(_ t: Timestamp) -> String {
        var tm = tm()
        var secs = time_t(t.seconds)
        gmtime_r(&secs, &tm)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ",
            Int(tm.tm_year) + 1900,
            Int(tm.tm_mon) + 1,
            Int(tm.tm_mday),
            Int(tm.tm_hour),
            Int(tm.tm_min),
            Int(tm.tm_sec),
            t.nanoseconds
        )
    }

    /// `2026-11-25`, the day in the local time zone (the mount's `/snapshots/<day>` folders).
    public static func localDay(_ t: Timestamp) -> String {
        String(local(t).prefix(10))
    }

    /// `2026-11-25 03:03:56` in the local time zone.
    public static func local(_ t: Timestamp) -> String {
        var tm = tm()
        var secs = time_t(t.seconds)
        localtime_r(&secs, &tm)
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d",
            Int(tm.tm_year) + 1900,
            Int(tm.tm_mon) + 1,
            Int(tm.tm_mday),
            Int(tm.tm_hour),
            Int(tm.tm_min),
            Int(tm.tm_sec)
        )
    }
}
