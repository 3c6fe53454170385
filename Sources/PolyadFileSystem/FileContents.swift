import Glibc

extension FileSystem {
    /// Everything `fd` yields until end of file: a regular file, a pipe or a terminal alike.
    ///
    /// - Throws: `SystemError` for a failed read, or with `EFBIG` once more than `limit` bytes have come.
    public static func readToEnd(_ fd: Int32, limit: Int) throws(SystemError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let (count, code) = chunk.withUnsafeMutableBytes { buffer in
                retrying { Glibc.read(fd, buffer.baseAddress, buffer.count) }
            }
            if count < 0 { throw SystemError(errno: code, operation: "read") }
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
            if bytes.count > limit { throw SystemError(errno: EFBIG, operation: "read") }
        }
    }

    /// The whole content of the file at `path` (following symlinks), read as a stream, so a pipe such as
    /// `/dev/fd/63` from the shell's `<(…)` works as well as a file.
    ///
    /// - Throws: `SystemError` naming `path` (`EFBIG` when it holds more than `limit` bytes).
    public static func contents(of path: [UInt8], limit: Int) throws(SystemError) -> [UInt8] {
        let fd = try open(path, flags: O_RDONLY | O_NOCTTY | O_CLOEXEC, mode: 0)
        defer { close(fd) }
        do {
            return try readToEnd(fd, limit: limit)
        } catch {
            throw SystemError(errno: error.errno, operation: error.operation, path: path)
        }
    }
}

extension FileSystem {
    /// Writes all of `bytes` to `fd` (see ``writeAll(_:_:)``).
    public static func writeAll(_ fd: Int32, bytes: [UInt8]) throws(SystemError) {
        let failure = bytes.withUnsafeBytes { (buffer) -> SystemError? in
            do throws(SystemError) {
                try writeAll(fd, buffer)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }
}
