import Glibc

/// Helpers for paths kept as raw bytes.
///
/// Linux file names are arbitrary bytes except `/` and NUL: they may be invalid UTF-8 or contain newlines, so
/// paths stay `[UInt8]` from the kernel to the repository and back, and become `String` only for display.
public enum PathBytes {
    /// The byte value of `/`.
    public static let separator: UInt8 = 0x2F

    /// Joins two paths with exactly one `/` between them.
    ///
    /// Trailing slashes of `a` and leading slashes of `b` are collapsed, so `join("/target", "/home/x")` is
    /// `/target/home/x`. An empty side returns the other unchanged.
    public static func join(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        if a.isEmpty { return b }
        if b.isEmpty { return a }
        var result = a
        while result.count > 1, result.last == separator {
            result.removeLast()
        }
        let rest = b.drop { $0 == separator }
        if result.last != separator {
            result.append(separator)
        }
        result.append(contentsOf: rest)
        return result
    }

    /// The bytes of a NUL-terminated C string (a name or path the kernel or the C library gave).
    public static func bytes(ofCString pointer: UnsafePointer<CChar>) -> [UInt8] {
        [UInt8](UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)))
    }

    /// The components of a path: split on `/`, dropping empty components (so `/a//b/` gives `a`, `b`).
    public static func components(_ path: [UInt8]) -> [[UInt8]] {
        path.split(separator: separator, omittingEmptySubsequences: true).map { Array($0) }
    }

    /// The last component of a path (`/a/b/` gives `b`; `/` gives `/`; empty gives empty).
    public static func lastComponent(_ path: [UInt8]) -> [UInt8] {
        components(path).last ?? (path.isEmpty ? [] : [separator])
    }

    /// The path without its last component (`/a/b` gives `/a`; `/a` gives `/`; `a` gives `.`).
    public static func parent(_ path: [UInt8]) -> [UInt8] {
        var trimmed = path[...]
        while trimmed.count > 1, trimmed.last == separator { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: separator) else { return [0x2E] }
        var parent = trimmed[..<slash]
        while parent.count > 1, parent.last == separator { parent = parent.dropLast() }
        return parent.isEmpty ? [separator] : Array(parent)
    }

    /// A path for people to read: valid UTF-8 as is; invalid bytes as `\xNN`.
    ///
    /// Control characters are escaped too, so a name cannot forge log lines or terminal sequences: newline as
    /// `\n`, tab as `\t`, carriage return as `\r`, other C0 controls and DEL as `\xNN`; a backslash is doubled
    /// so the output is unambiguous.
    public static func display(_ path: [UInt8]) -> String {
        var out = ""
        out.reserveCapacity(path.count)
        var i = 0
        let n = path.count
        while i < n {
            let byte = path[i]
            if byte < 0x80 {
                switch byte {
                case 0x0A: out += "\\n"
                case 0x09: out += "\\t"
                case 0x0D: out += "\\r"
                case 0x5C: out += "\\\\"
                case 0x00..<0x20, 0x7F: out += hexEscape(byte)
                default: out.unicodeScalars.append(Unicode.Scalar(byte))
                }
                i += 1
                continue
            }
            if let (scalar, length) = UTF8Sequence.decode(path[i...]) {
                if (0x80..<0xA0).contains(scalar.value) {
                    // C1 controls (valid UTF-8, but terminal escapes): escape their bytes.
                    for k in i..<i + length { out += hexEscape(path[k]) }
                } else {
                    out.unicodeScalars.append(scalar)
                }
                i += length
            } else {
                out += hexEscape(byte)
                i += 1
            }
        }
        return out
    }

    private static func hexEscape(_ byte: UInt8) -> String {
        let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"]
        return "\\x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0xF)])
    }
}
