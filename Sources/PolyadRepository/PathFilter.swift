import PolyadFileSystem

/// Glob patterns over byte paths, as restic users know them: a pattern that starts with `/` is anchored at the
/// root; any other pattern may match starting at any path component. `*`, `?` and `[...]` match within one
/// component (fnmatch), `**` matches any number of components. A pattern matches a path if it matches the path
/// or one of its parent directories (so `*.log` excludes `a/b.log`, and `cache` excludes everything below it).
public struct PathFilter: Sendable {
    struct Pattern: Sendable {
        var components: [[UInt8]]
        var anchored: Bool
    }

    private let excludes: [Pattern]
    private let includes: [Pattern]

    /// Creates a filter from ``PathText`` patterns (any bytes); throws for an empty pattern.
    public init(excludes: [String] = [], includes: [String] = []) throws(RepositoryError) {
        func parse(_ s: String) throws(RepositoryError) -> Pattern {
            let trimmed = s.trimmingWhitespace
            guard !trimmed.isEmpty else {
                throw RepositoryError(.invalidArgument, "an empty pattern matches nothing; remove it")
            }
            let bytes = PathText.bytes(trimmed)
            return Pattern(components: PathBytes.components(bytes), anchored: bytes.first == UInt8(ascii: "/"))
        }
        var ex = [Pattern]()
        for e in excludes { ex.append(try parse(e)) }
        var inc = [Pattern]()
        for i in includes { inc.append(try parse(i)) }
        self.excludes = ex
        self.includes = inc
    }

    public var hasIncludes: Bool { !includes.isEmpty }

    /// True if `path` (absolute or snapshot-relative) or one of its parents matches an exclude pattern.
    public func isExcluded(_ path: [UInt8]) -> Bool {
        guard !excludes.isEmpty else { return false }
        let parts = PathBytes.components(path)
        return excludes.contains { Self.matchesPrefix($0, parts) }
    }

    /// For selective restore: whether `path` is included itself (or by a parent), or lies on the way to
    /// something that may be (so its directory must be walked).
    public func inclusion(_ path: [UInt8]) -> (included: Bool, mayContain: Bool) {
        guard !includes.isEmpty else { return (true, true) }
        let parts = PathBytes.components(path)
        if includes.contains(where: { Self.matchesPrefix($0, parts) }) { return (true, true) }
        let may = includes.contains { Self.couldMatchBelow($0, parts) }
        return (false, may)
    }

    /// The pattern matches `parts` or a leading part of it.
    static func matchesPrefix(_ p: Pattern, _ parts: [[UInt8]]) -> Bool {
        let starts = p.anchored ? [0] : Array(0..<max(1, parts.count))
        for s in starts where s <= parts.count {
            for end in s...parts.count where end > s || p.components.isEmpty {
                if match(p.components[...], parts[s..<end]) { return true }
            }
        }
        return false
    }

    /// Something below `parts` could still match the pattern.
    static func couldMatchBelow(_ p: Pattern, _ parts: [[UInt8]]) -> Bool {
        if !p.anchored { return true }
        return prefixCompatible(p.components[...], parts[...])
    }

    private static func prefixCompatible(_ pat: ArraySlice<[UInt8]>, _ path: ArraySlice<[UInt8]>) -> Bool {
        guard let first = path.first else { return true }
        guard let pf = pat.first else { return false }
        if pf == Array("**".utf8) { return true }
        return component(pf, first) && prefixCompatible(pat.dropFirst(), path.dropFirst())
    }

    private static func match(_ pat: ArraySlice<[UInt8]>, _ path: ArraySlice<[UInt8]>) -> Bool {
        guard let pf = pat.first else { return path.isEmpty }
        if pf == Array("**".utf8) {
            let rest = pat.dropFirst()
            var i = path.startIndex
            while true {
                if match(rest, path[i...]) { return true }
                if i == path.endIndex { return false }
                i += 1
            }
        }
        guard let first = path.first else { return false }
        return component(pf, first) && match(pat.dropFirst(), path.dropFirst())
    }

    private static func component(_ pattern: [UInt8], _ name: [UInt8]) -> Bool {
        (pattern + [0]).withUnsafeBufferPointer { p in
            (name + [0]).withUnsafeBufferPointer { n in
                p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { pp in
                    n.baseAddress!.withMemoryRebound(to: CChar.self, capacity: n.count) { nn in
                        fnmatch(pp, nn, FNM_PERIOD & 0) == 0
                    }
                }
            }
        }
    }
}

/// Lexical path normalisation on bytes.
enum PathNormalizer {
    /// `path` made absolute against the working directory, with `.`, `..` and repeated slashes removed.
    static func absolute(_ path: [UInt8]) -> [UInt8] {
        let base = path.first == UInt8(ascii: "/") ? path : FileSystem.currentDirectory() + [UInt8(ascii: "/")] + path
        var out = [[UInt8]]()
        for c in PathBytes.components(base) {
            if c == [UInt8(ascii: ".")] { continue }
            if c == [UInt8(ascii: "."), UInt8(ascii: ".")] {
                _ = out.popLast()
                continue
            }
            out.append(c)
        }
        if out.isEmpty { return [UInt8(ascii: "/")] }
        var result = [UInt8]()
        for c in out {
            result.append(UInt8(ascii: "/"))
            result.append(contentsOf: c)
        }
        return result
    }
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}

#if canImport(Glibc)
import Glibc
#endif
