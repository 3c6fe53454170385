import Glibc

/// A failed system call: its `errno`, the operation and the path it was applied to.
///
/// `description` reads like `open /x/y: Permission denied`; `remedy` suggests what to do for common causes.
public struct SystemError: Error, CustomStringConvertible, Equatable {
    /// The `errno` value the call set.
    public var errno: Int32
    /// The operation, usually the C function's name (`open`, `lstat`, `mkdir`, …).
    public var operation: String
    /// The path the operation was applied to, if any.
    public var path: [UInt8]?
    /// The second path of two-path operations (the destination of `rename`, the new name of `link`).
    public var secondPath: [UInt8]?

    /// Creates an error from its parts.
    public init(errno: Int32, operation: String, path: [UInt8]? = nil, secondPath: [UInt8]? = nil) {
        self.errno = errno
        self.operation = operation
        self.path = path
        self.secondPath = secondPath
    }

    /// The C library's text for `errno`, such as "Permission denied".
    public var reason: String {
        String(cString: strerror(errno))
    }

    /// `operation path: reason`, or `operation path -> second: reason`; paths shown with `PathBytes.display`.
    public var description: String {
        var text = operation
        if let path {
            text += " " + PathBytes.display(path)
        }
        if let secondPath {
            text += " -> " + PathBytes.display(secondPath)
        }
        return text + ": " + reason
    }

    /// A suggestion for the user for common errors, or nil.
    public var remedy: String? {
        switch errno {
        case EACCES, EPERM: "check the permissions, or run as a user who may access it"
        case ENOENT: "check that the path exists"
        case ENOSPC, EDQUOT: "free some disk space or raise the quota, then retry"
        case EROFS: "the file system is read-only; choose a writable location"
        case ENAMETOOLONG: "shorten the path"
        case EMFILE, ENFILE: "raise the open file limit (ulimit -n)"
        case EIO: "the device reported an I/O error; check the disk"
        default: nil
        }
    }
}

/// Calls `body` with the path as a NUL-terminated C string.
///
/// - Throws: `SystemError(EINVAL)` if the path contains a NUL byte (it would be silently truncated).
@inline(__always)
func withCPath<R>(
    _ path: [UInt8],
    operation: String,
    _ body: (UnsafePointer<CChar>) throws(SystemError) -> R
) throws(SystemError) -> R {
    if path.contains(0) {
        throw SystemError(errno: EINVAL, operation: operation, path: path)
    }
    let count = path.count
    let storage = UnsafeMutablePointer<CChar>.allocate(capacity: count + 1)
    defer { storage.deallocate() }
    path.withUnsafeBufferPointer { bytes in
        if count > 0 {
            UnsafeMutableRawPointer(storage).copyMemory(from: bytes.baseAddress!, byteCount: count)
        }
    }
    storage[count] = 0
    return try body(storage)
}

/// Runs a call that returns -1 and sets `errno` on failure, retrying on `EINTR`.
@inline(__always)
func retrying<T: BinaryInteger>(_ call: () -> T) -> (value: T, errno: Int32) {
    while true {
        let value = call()
        if value == -1 {
            let code = errno
            if code == EINTR { continue }
            return (value, code)
        }
        return (value, 0)
    }
}

/// Runs a call that returns -1 on failure, retrying on `EINTR`, and throws a `SystemError` naming the path.
@inline(__always)
func check<T: BinaryInteger>(
    _ operation: String,
    _ path: [UInt8]?,
    secondPath: [UInt8]? = nil,
    _ call: () -> T
) throws(SystemError) -> T {
    let (value, code) = retrying(call)
    if value == -1 {
        throw SystemError(errno: code, operation: operation, path: path, secondPath: secondPath)
    }
    return value
}
