import Glibc
import PolyadFileSystem

/// Lexical path helpers over ``PathText`` strings (any bytes): no file-system access except `getcwd` and `stat`.
enum Paths {
    /// `path` made absolute against the current directory and normalized.
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        return normalize(currentDirectory() + "/" + path)
    }

    /// `path` resolved against `folder` when relative, then normalized.
    static func resolve(_ path: String, against folder: String) -> String {
        path.hasPrefix("/") ? normalize(path) : normalize(folder + "/" + path)
    }

    /// The folder holding `path` (`/` for top-level entries).
    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = path[..<slash]
        return parent.isEmpty ? "/" : String(parent)
    }

    /// Removes empty and `.` components and applies `..` lexically. `path` must be absolute.
    static func normalize(_ path: String) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..": if !components.isEmpty { components.removeLast() }
            default: components.append(component)
            }
        }
        return "/" + components.joined(separator: "/")
    }

    /// The current directory, or `/` if it cannot be determined.
    static func currentDirectory() -> String {
        PathText.string(FileSystem.currentDirectory())
    }

    /// Whether a regular file (or a symbolic link to one) exists at `path`.
    static func isFile(_ path: String) -> Bool {
        (try? FileSystem.stat(PathText.bytes(path)))?.kind == .regular
    }
}
