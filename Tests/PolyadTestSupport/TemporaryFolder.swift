import Glibc
import PolyadFileSystem

/// A fresh private folder for one test (`mkdtemp`, mode 0700) under `/tmp`, named by its real path (no symlinks,
/// no doubled slashes, so it reads as the programs under test print it); ``remove()`` deletes it with all inside.
public final class TemporaryFolder {
    /// The folder's absolute path.
    public let path: String

    /// The folder's path as bytes.
    public var bytes: [UInt8] { Array(path.utf8) }

    /// Makes `/tmp/<prefix>-XXXXXX`.
    public init(prefix: String = "polyad-test") throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SystemError(errno: errno, operation: "mkdtemp")
        }
        path = String(decoding: try FileSystem.realPath(Array(String(cString: made).utf8)), as: UTF8.self)
    }

    /// `path/relative`.
    public func sub(_ relative: String) -> String { path + "/" + relative }

    /// Deletes the folder and everything in it (names need not be UTF-8).
    public func remove() {
        try? FileSystem.removeTree(bytes)
    }
}
