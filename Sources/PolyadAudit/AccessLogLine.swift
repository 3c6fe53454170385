import Foundation
import Glibc
import PolyadFileSystem

/// Formats access log lines (the schema is in ``AccessLog``'s documentation) into a byte buffer.
enum AccessLogLine {
    /// The keys an extra field may not take: the standard ones, and `dropped` of the dropped-lines record.
    static let reservedKeys: [[UInt8]] = [
        "time", "uid", "user", "pid", "process", "role", "op", "path", "result", "errno", "error", "bytes", "dropped",
    ].map { Array($0.utf8) }

    /// Appends the event as one line, newline included.
    static func append(_ event: AccessEvent, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        appendKey("time", first: true, to: &out)
        appendTime(event.time, to: &out)
        if let uid = event.uid {
            appendKey("uid", to: &out)
            appendNumber(UInt64(uid), to: &out)
        }
        if let user = event.user {
            appendKey("user", to: &out)
            appendText(user, to: &out)
        }
        if let pid = event.pid {
            appendKey("pid", to: &out)
            appendNumber(Int64(pid), to: &out)
        }
        if let process = event.process {
            appendKey("process", to: &out)
            appendText(process, to: &out)
        }
        if let role = event.role {
            appendKey("role", to: &out)
            appendText(role, to: &out)
        }
        appendKey("op", to: &out)
        appendText(event.op, to: &out)
        if let path = event.path {
            appendKey("path", to: &out)
            appendDisplayed(path, to: &out)
        }
        appendKey("result", to: &out)
        switch event.result {
        case .ok:
            appendRaw("\"ok\"", to: &out)
        case .denied:
            appendRaw("\"denied\"", to: &out)
        case .error(let code):
            appendRaw("\"error\"", to: &out)
            appendKey("errno", to: &out)
            appendNumber(Int64(code), to: &out)
            appendKey("error", to: &out)
            appendRaw("\"" + errnoName(code) + "\"", to: &out)
        case .failed:
            appendRaw("\"error\"", to: &out)
        }
        if let bytes = event.bytes {
            appendKey("bytes", to: &out)
            appendNumber(bytes, to: &out)
        }
        if !event.fields.isEmpty {
            var used = reservedKeys
            for (key, value) in event.fields {
                var name = Array(key.utf8)
                while used.contains(name) { name.append(UInt8(ascii: "_")) }
                used.append(name)
                out.append(UInt8(ascii: ","))
                appendDisplayed(name, to: &out)
                out.append(UInt8(ascii: ":"))
                appendText(value, to: &out)
            }
        }
        appendRaw("}\n", to: &out)
    }

    /// Appends the record of `count` lines lost at this place in the log:
    /// `{"time":…,"op":"dropped","result":"error","dropped":N,"message":"N access log lines dropped: <why>"}`.
    static func appendDropped(_ count: UInt64, time: Date, reason: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        appendKey("time", first: true, to: &out)
        appendTime(time, to: &out)
        appendRaw(",\"op\":\"dropped\",\"result\":\"error\",\"dropped\":", to: &out)
        appendNumber(count, to: &out)
        appendKey("message", to: &out)
        appendText("\(count) access log lines dropped: \(reason)", to: &out)
        appendRaw("}\n", to: &out)
    }

    // MARK: Parts

    private static func appendRaw(_ text: String, to out: inout [UInt8]) {
        out.append(contentsOf: text.utf8)
    }

    private static func appendKey(_ key: String, first: Bool = false, to out: inout [UInt8]) {
        if !first { out.append(UInt8(ascii: ",")) }
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: key.utf8)
        appendRaw("\":", to: &out)
    }

    /// A string value: the display form of its UTF-8 bytes, JSON-escaped.
    private static func appendText(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { appendDisplayed($0, to: &out) }
    }

    /// `"…"`: the bytes in `PathBytes.display` form, JSON-escaped.
    static func appendDisplayed<Bytes: Collection<UInt8>>(_ bytes: Bytes, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Printable ASCII without a backslash displays as itself: skip building the display string.
        if bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != 0x5C }) {
            for byte in bytes {
                if byte == 0x22 { out.append(0x5C) }
                out.append(byte)
            }
        } else {
            appendEscaped(PathBytes.display(Array(bytes)).utf8, to: &out)
        }
        out.append(UInt8(ascii: "\""))
    }

    /// JSON string escaping: `"` and `\` get a backslash, controls become `\u00XX`; the rest is copied.
    private static func appendEscaped(_ utf8: String.UTF8View, to out: inout [UInt8]) {
        for byte in utf8 {
            switch byte {
            case 0x22, 0x5C:
                out.append(0x5C)
                out.append(byte)
            case 0x00..<0x20:
                appendRaw("\\u00", to: &out)
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0xF)])
            default:
                out.append(byte)
            }
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    static func appendNumber(_ value: UInt64, to out: inout [UInt8]) {
        // Twenty digits at most: written backwards into scratch space, then copied.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var index = digits.count
            var rest = value
            repeat {
                index -= 1
                digits[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            out.append(contentsOf: digits[index...])
        }
    }

    static func appendNumber(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        appendNumber(value.magnitude, to: &out)
    }

    private static func appendPadded(_ value: Int, width: Int, to out: inout [UInt8]) {
        var text = Array(String(value).utf8)
        if text.count < width {
            text.insert(contentsOf: repeatElement(UInt8(ascii: "0"), count: width - text.count), at: 0)
        }
        out.append(contentsOf: text)
    }

    /// `"YYYY-MM-DDTHH:MM:SS.mmmZ"` in UTC, the milliseconds rounded down.
    static func appendTime(_ date: Date, to out: inout [UInt8]) {
        let milliseconds = (date.timeIntervalSince1970 * 1000).rounded(.down)
        // ±2^53 ms (beyond ±285,000 years) is far outside any clock; clamp rather than trap.
        let limit = 9_007_199_254_740_992.0
        let total = Int64(milliseconds.isFinite ? min(max(milliseconds, -limit), limit) : 0)
        var (seconds, millisecond) = total.quotientAndRemainder(dividingBy: 1000)
        if millisecond < 0 {
            seconds -= 1
            millisecond += 1000
        }
        var clock = time_t(seconds)
        var fields = tm()
        gmtime_r(&clock, &fields)
        out.append(UInt8(ascii: "\""))
        appendPadded(Int(fields.tm_year) + 1900, width: 4, to: &out)
        out.append(UInt8(ascii: "-"))
        appendPadded(Int(fields.tm_mon) + 1, width: 2, to: &out)
        out.append(UInt8(ascii: "-"))
        appendPadded(Int(fields.tm_mday), width: 2, to: &out)
        out.append(UInt8(ascii: "T"))
        appendPadded(Int(fields.tm_hour), width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendPadded(Int(fields.tm_min), width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendPadded(Int(fields.tm_sec), width: 2, to: &out)
        out.append(UInt8(ascii: "."))
        appendPadded(Int(millisecond), width: 3, to: &out)
        appendRaw("Z\"", to: &out)
    }

    /// The symbolic name of an `errno` value (`"ENOENT"`), or the number as text.
    static func errnoName(_ code: Int32) -> String {
        errnoNames[code] ?? String(code)
    }

    private static let errnoNames: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO", ENXIO: "ENXIO",
        E2BIG: "E2BIG", EBADF: "EBADF", EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT",
        EBUSY: "EBUSY", EEXIST: "EEXIST", EXDEV: "EXDEV", ENODEV: "ENODEV", ENOTDIR: "ENOTDIR", EISDIR: "EISDIR",
        EINVAL: "EINVAL", ENFILE: "ENFILE", EMFILE: "EMFILE", ETXTBSY: "ETXTBSY", EFBIG: "EFBIG",
        ENOSPC: "ENOSPC", ESPIPE: "ESPIPE", EROFS: "EROFS", EMLINK: "EMLINK", ERANGE: "ERANGE",
        ENAMETOOLONG: "ENAMETOOLONG", ENOLCK: "ENOLCK", ENOSYS: "ENOSYS", ENOTEMPTY: "ENOTEMPTY", ELOOP: "ELOOP",
        ENODATA: "ENODATA", EOVERFLOW: "EOVERFLOW", EOPNOTSUPP: "EOPNOTSUPP", ETIMEDOUT: "ETIMEDOUT",
        ESTALE: "ESTALE", EDQUOT: "EDQUOT", ECANCELED: "ECANCELED", EBADMSG: "EBADMSG", ENOTCONN: "ENOTCONN",
    ]
}
