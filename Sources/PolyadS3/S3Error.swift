/// A transfer that did not complete (connection refused, reset, timed out, cut for being too slow).
public struct S3TransportError: Error, Sendable, CustomStringConvertible {
    public var url: String
    public var message: String
    public var description: String { "\(url): \(message)" }
}

/// Why an S3 call failed.
public enum S3Error: Error, Sendable, CustomStringConvertible {
    case transport(S3TransportError)
    /// An HTTP status S3 answered with, and its body (S3's XML error).
    case status(Int, String)
    case malformed(String)
    /// An answer retrying cannot change (its status), with what to fix.
    case failed(Int, String)
    /// Faults that lasted past the retry time (the store is unreachable).
    case unavailable(String)

    public var description: String {
        switch self {
        case .transport(let e): "\(e)"
        case .status(let code, let body): "S3 answered \(code): \(body.prefix(300))"
        case .malformed(let what): what
        case .failed(_, let message): message
        case .unavailable(let message): "S3 is unreachable: \(message)"
        }
    }
}
