import Glibc

/// Paths and arguments carried in a `String` without losing a byte.
///
/// Linux hands a program its arguments, environment and file names as bytes that need not be UTF-8. `String`
/// repairs invalid UTF-8 into U+FFFD, which would make `tgt\xFF` and `tgt\xFE` the same folder. `PathText`
/// keeps them apart: every byte that is not part of well-formed UTF-8 travels as the private-use scalar
/// U+10FF00 + byte, and ``bytes(_:)`` turns it back into that byte. A scalar from that range in the input is
/// itself escaped byte by byte, so the mapping is lossless both ways for every byte string.
///
/// Text from the command line, `getcwd`, `realpath` and the environment enters through ``string(_:)``; it
/// leaves through ``bytes(_:)`` (for a C call) or ``display(_:)`` (for a message, invalid bytes as `\xNN`).
public enum PathText {
    /// The first scalar of the escape range: byte `b` travels as `U+10FF00 + b`.
    static let escapeBase: UInt32 = 0x10_FF00

    /// `bytes` as a `String`; ``bytes(_:)`` gives exactly `bytes` back.
    public static func string<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out = String.UnicodeScalarView()
        var input = Array(bytes)[...]
        while let first = input.first {
            if first < 0x80 {
                out.append(Unicode.Scalar(first))
                input = input.dropFirst()
                continue
            }
            if let (scalar, length) = UTF8Sequence.decode(input), scalar.value < escapeBase {
                out.append(scalar)
                input = input.dropFirst(length)
            } else {
                out.append(Unicode.Scalar(escapeBase + UInt32(first))!)
                input = input.dropFirst()
            }
        }
        return String(out)
    }

    /// The bytes `text` stands for: its UTF-8, with each escaped scalar (see ``string(_:)``) as its byte.
    public static func bytes(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if scalar.value >= escapeBase {
                out.append(UInt8(truncatingIfNeeded: scalar.value - escapeBase))
            } else {
                out.append(contentsOf: UTF8.encode(scalar)!)
            }
        }
        return out
    }

    /// Whether `text` holds bytes that are not UTF-8 (so it cannot be stored as text, only used as a path).
    public static func hasRawBytes(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value >= escapeBase }
    }

    /// `text` for people to read, as ``PathBytes/display(_:)`` shows its bytes.
    public static func display(_ text: String) -> String {
        PathBytes.display(bytes(text))
    }

    /// Every escaped byte of `message` as `\xNN`, the rest as it is: for messages built from path texts.
    public static func displayMessage(_ message: String) -> String {
        guard hasRawBytes(message) else { return message }
        var out = ""
        for scalar in message.unicodeScalars {
            if scalar.value >= escapeBase {
                out += PathBytes.display([UInt8(truncatingIfNeeded: scalar.value - escapeBase)])
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// The value of the environment variable `name` as the kernel gave it, or nil.
    public static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return string(PathBytes.bytes(ofCString: value))
    }

    /// This process's arguments after the program name, as the kernel gave them.
    public static func commandLineArguments() -> [String] {
        (1..<Int(CommandLine.argc)).map { index in
            guard let argument = CommandLine.unsafeArgv[index] else { return "" }
            return string(PathBytes.bytes(ofCString: argument))
        }
    }
}

/// Well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
enum UTF8Sequence {
    /// The scalar of the two-to-four-byte sequence at the start of `bytes`, and its length; nil if ill-formed.
    static func decode(_ bytes: ArraySlice<UInt8>) -> (Unicode.Scalar, Int)? {
        guard let lead = bytes.first else { return nil }
        let length: Int
        var value: UInt32
        var lowest: UInt8 = 0x80
        var highest: UInt8 = 0xBF  // allowed range of the second byte
        switch lead {
        case 0xC2...0xDF:
            length = 2
            value = UInt32(lead & 0x1F)
        case 0xE0:
            length = 3
            value = 0
            lowest = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF:
            length = 3
            value = UInt32(lead & 0x0F)
        case 0xED:
            length = 3
            value = 0xD
            highest = 0x9F
        case 0xF0:
            length = 4
            value = 0
            lowest = 0x90
        case 0xF1...0xF3:
            length = 4
            value = UInt32(lead & 0x07)
        case 0xF4:
            length = 4
            value = 4
            highest = 0x8F
        default: return nil
        }
        guard bytes.count >= length else { return nil }
        let start = bytes.startIndex
        for k in 1..<length {
            let byte = bytes[start + k]
            let (low, high) = k == 1 ? (lowest, highest) : (0x80, 0xBF)
            guard byte >= low && byte <= high else { return nil }
            value = value << 6 | UInt32(byte & 0x3F)
        }
        guard let scalar = Unicode.Scalar(value) else { return nil }
        return (scalar, length)
    }
}
