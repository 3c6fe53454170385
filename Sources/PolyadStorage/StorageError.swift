/// A failure of a ``Backend`` operation: what kind of failure, which store and object, and what to do about it.
public struct StorageError: Error, CustomStringConvertible {
    /// The kind of failure; callers branch on this, people read ``StorageError/message``.
    public enum Code: Sendable, Hashable {
        /// The object (or the store) does not exist.
        case notFound
        /// A store already exists (``Backend/create()``), or an object exists with a different size.
        case alreadyExists
        /// The target has no space (or quota) left.
        case noSpace
        /// The operating system or the service refused access.
        case permissionDenied
        /// The store cannot be reached (network, stale mount).
        case unreachable
        /// An object is shorter than it must be or otherwise unreadable as stored.
        case damaged
        /// Any other I/O failure.
        case io
        /// The request itself is invalid: a handle whose name is not valid for its kind, a negative range.
        case invalidRequest
        /// The service refused the store as configured (an access key it does not accept, a bucket that does not
        /// exist, the wrong region): retrying cannot help, the configuration must change.
        case misconfigured
    }

    /// The kind of failure.
    public var code: Code
    /// The object involved, if any.
    public var handle: ObjectHandle?
    /// The store's location (``Backend/location``).
    public var location: String
    /// What failed and how to remedy it, with the path or key involved.
    public var message: String
    /// The operating system's error number behind the failure, if any.
    public var systemError: Int32?

    /// Creates a storage error.
    public init(code: Code, handle: ObjectHandle?, location: String, message: String, systemError: Int32? = nil) {
        self.code = code
        self.handle = handle
        self.location = location
        self.message = message
        self.systemError = systemError
    }

    /// `store <location>: <handle>: <message>`.
    public var description: String {
        if let handle {
            return "store \(location): \(handle): \(message)"
        }
        return "store \(location): \(message)"
    }
}
