import Foundation

/// The outcome of one access: allowed and done, refused by the access check, or failed.
public enum AccessResult: Sendable, Equatable {
    /// Allowed, and the operation succeeded.
    case ok
    /// Refused by the access check (the caller got `EACCES`); written as `"result":"denied"` with no `errno`.
    case denied
    /// Allowed, but the operation failed with this `errno`.
    case error(Int32)
    /// Allowed, but the work failed for a reason that is no `errno` (a CLI run's exit code, a commit's
    /// message: in the event's fields); written as `"result":"error"` with no `errno`.
    case failed
}

/// One line of the access log: who did what to which path, and how it ended.
///
/// It becomes one JSON object on one line (the full schema is in ``AccessLog``'s documentation). Keys come in
/// this order, and a key whose value is nil is left out:
///
/// `time`, `uid`, `user`, `pid`, `process`, `role`, `op`, `path`, `result`, `errno`, `error`, `bytes`, then
/// the extra `fields` in their order.
///
/// - `time`: UTC, ISO 8601 with milliseconds, such as `"2026-12-02T10:04:11.123Z"`.
/// - `uid`, `pid`, `bytes`, `errno`: JSON numbers.
/// - `result`: `"ok"`, `"denied"` or `"error"`; only `"error"` adds `errno` (a number) and `error` (its
///   symbolic name, such as `"ENOENT"`, or the number as text when it has none here).
/// - Every string (`user`, `process`, `role`, `op`, `path`, the extra keys and values) is written in the
///   display form of `PathBytes.display` (valid UTF-8 as is, other bytes as `\xNN`, controls escaped, a
///   backslash doubled), then JSON-escaped: lossless, and a line never holds a raw newline.
/// - An extra key equal to a standard key (or to `dropped`, or to an earlier extra key) gets `_` appended
///   until it is unique: no line has a key twice, and no field can pose as a standard one.
public struct AccessEvent: Sendable {
    /// When the access was decided.
    public var time: Date
    /// The caller's user id, if known.
    public var uid: UInt32?
    /// The caller's user name, if known.
    public var user: String?
    /// The caller's process id, if known.
    public var pid: Int32?
    /// The caller's process name (`comm`), if known.
    public var process: String?
    /// The caller's role: `"none"`, `"reader"`, `"writer"`, `"admin"`, or nil where roles do not apply.
    public var role: String?
    /// The operation: `"open"`, `"readdir"`, `"lookup"`, `"getattr"`, `"getxattr"`, `"create"`, `"mount"`,
    /// `"unmount"`, `"commit"`, `"prune"`, `"backup"`, `"restore"`, `"forget"`, `"key-add"`, `"key-remove"`, …
    public var op: String
    /// The path acted on, as raw bytes.
    public var path: [UInt8]?
    /// How the access ended.
    public var result: AccessResult
    /// Bytes read or written over an open-to-release span.
    public var bytes: UInt64?
    /// Extra string fields, written after the standard keys in this order (such as `("snapshot", "5e1f0a2b")`
    /// or `("message", "…")`).
    public var fields: [(String, String)]

    /// An event; `time` defaults to now.
    public init(
        time: Date = Date(),
        uid: UInt32? = nil,
        user: String? = nil,
        pid: Int32? = nil,
        process: String? = nil,
        role: String? = nil,
        op: String,
        path: [UInt8]? = nil,
        result: AccessResult,
        bytes: UInt64? = nil,
        fields: [(String, String)] = []
    ) {
        self.time = time
        self.uid = uid
        self.user = user
        self.pid = pid
        self.process = process
        self.role = role
        self.op = op
        self.path = path
        self.result = result
        self.bytes = bytes
        self.fields = fields
    }
}
