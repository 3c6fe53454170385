/// An error from PolyadCompression: a ``Code`` saying what kind of failure it is, the zlib status if zlib
/// reported one, and a detail saying what failed.
///
/// Two errors are equal when their codes are equal, so `catch CompressionError.corruptInput` matches whatever
/// the detail says.
public struct CompressionError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure. New codes may be added; do not switch over them exhaustively.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The compressed data is not a valid zlib stream (damaged, truncated, or trailing bytes).
        public static let corruptInput = Code("corruptInput")
        /// The data decompressed to a different size than expected.
        public static let sizeMismatch = Code("sizeMismatch")
        /// The compression level is outside 0...9.
        public static let invalidLevel = Code("invalidLevel")
        /// zlib failed for another reason (usually out of memory).
        public static let zlib = Code("zlib")

        /// The code's name, for logs.
        public var description: String { name }
    }

    /// The kind of failure.
    public let code: Code
    /// The zlib status code (`Z_DATA_ERROR` is -3, `Z_MEM_ERROR` -4, ...), if zlib reported one.
    public let zlibStatus: Int32?
    /// What failed, in words.
    public let detail: String

    /// Makes an error with `code`, an optional zlib status, and `detail`.
    public init(code: Code, zlibStatus: Int32? = nil, detail: String = "") {
        self.code = code
        self.zlibStatus = zlibStatus
        self.detail = detail
    }

    /// Corrupt input (no detail), for matching.
    public static let corruptInput = CompressionError(code: .corruptInput)
    /// Size mismatch (no detail), for matching.
    public static let sizeMismatch = CompressionError(code: .sizeMismatch)
    /// Invalid level (no detail), for matching.
    public static let invalidLevel = CompressionError(code: .invalidLevel)
    /// zlib failure (no detail), for matching.
    public static let zlib = CompressionError(code: .zlib)

    /// A message for the user that says what happened and what to do.
    public var description: String {
        let status = zlibStatus.map { ", zlib status \($0)" } ?? ""
        switch code {
        case .corruptInput:
            return "compressed data is corrupt (\(detail)\(status)). The stored object was damaged; run verify "
                + "and restore the affected data from another copy of the repository."
        case .sizeMismatch:
            return "decompressed size does not match the recorded size (\(detail)). The object or the index entry "
                + "describing it is damaged; run verify and restore it from another copy of the repository."
        case .invalidLevel:
            return "compression level \(detail) is out of range; use 0 (store) to 9 (smallest)."
        default:
            return "zlib failed (\(detail)\(status)). This usually means the machine ran out of memory; free "
                + "some memory or use fewer parallel jobs, and try again."
        }
    }

    /// Errors are equal when their codes are equal; status and detail are not compared.
    public static func == (lhs: CompressionError, rhs: CompressionError) -> Bool { lhs.code == rhs.code }

    /// Lets `catch CompressionError.corruptInput` match an untyped error by code.
    public static func ~= (pattern: CompressionError, value: any Error) -> Bool {
        (value as? CompressionError)?.code == pattern.code
    }
}
