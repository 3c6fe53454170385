import Foundation
import PolyadFormat

/// Time formatting for users and JSON.
public enum TimeFormat {
    /// `2026-11-25T02:03:56.123456789Z`.
    public static func iso8601(_ t: Timestamp) -> String {
        let c = calendarFields(t, localTime: false)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ",
            c.year,
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second,
            t.nanoseconds
        )
    }

    /// `2026-11-25`, the day in the local time zone (the mount's `/snapshots/<day>` folders).
    public static func localDay(_ t: Timestamp) -> String {
        let c = calendarFields(t, localTime: true)
        return String(format: "%04d-%02d-%02d", c.year, c.month, c.day)
    }

    /// Parses `2026-01-02 03:04:05` (or `2026-01-02T03:04:05`, or a day alone) as local time, as restic's
    /// `backup --time` reads it; nil for anything else.
    public static func parseLocal(_ text: String, timeZone: TimeZone = .current) -> Timestamp? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = timeZone
        f.isLenient = false
        for format in ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm", "yyyy-MM-dd"] {
            f.dateFormat = format
            if let d = f.date(from: text), f.string(from: d) == text {
                return Timestamp(seconds: Int64(d.timeIntervalSince1970.rounded(.down)), nanoseconds: 0)
            }
        }
        return nil
    }

    /// `2026-11-25 03:03:56` in the local time zone.
    public static func local(_ t: Timestamp) -> String {
        let c = calendarFields(t, localTime: true)
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d",
            c.year,
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second
        )
    }

    /// The calendar fields of `t`'s second, in UTC or in this machine's time zone.
    private static func calendarFields(
        _ t: Timestamp,
        localTime: Bool
    )
        -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int)
    {
        var fields = tm()
        var seconds = time_t(t.seconds)
        if localTime { localtime_r(&seconds, &fields) } else { gmtime_r(&seconds, &fields) }
        return (
            Int(fields.tm_year) + 1900, Int(fields.tm_mon) + 1, Int(fields.tm_mday), Int(fields.tm_hour),
            Int(fields.tm_min), Int(fields.tm_sec)
        )
    }
}
