import Yams

/// Bounded work on hostile YAML: aliases are sized before the document is composed.
extension ConfigParser {
    /// The most values aliases may add to a config file: far more than a `mount.conf` could use, and little work.
    static let aliasExpansionLimit = 10_000

    /// Refuses, before the YAML is composed, aliases that would add more than ``aliasExpansionLimit`` values
    /// (each counted as the whole of its anchor's node, aliases inside it included) and aliases used as keys or
    /// inside keys.
    ///
    /// Yams composes an alias as the very node of its anchor, shared, which is cheap; but its check for duplicate
    /// keys hashes every key node in full, so an alias bomb used as a key (`*h` standing for 10^8 values) kept
    /// `Yams.compose` busy for about a minute. Yams 6.2.2 makes no parse events public, so this check composes a
    /// copy of the text in which every `*` that could begin an alias is replaced by a character the text does not
    /// hold: there each alias is a plain scalar (composing is linear), the anchors are still on their nodes while
    /// the parser lives, and lines and columns are unchanged. One walk in document order then sizes each anchored
    /// node once, as Yams resolves aliases: to the latest anchor of that name that has ended.
    func checkAliases(_ text: String) throws(ConfigError) {
        // An alias is `*` and an anchor name (ASCII letters, digits, `-`, `_`, as libyaml scans them). Any `*`
        // followed by such a character is replaced, also in quotes, comments and plain text: a superset of the
        // aliases, and text just the same to the parser there (one character for one, so Yams' offsets and
        // columns still hold). Only a tag (`!a*b`) no longer parses: such a file gets a syntax error there.
        let bytes = Array(text.utf8)
        let starts = bytes.indices.dropLast().filter {
            bytes[$0] == UInt8(ascii: "*") && Self.isAnchorByte(bytes[$0 + 1])
        }
        guard !starts.isEmpty else { return }
        guard let marker = Self.unusedCharacter(in: text) else {
            throw ConfigError(
                file: file,
                message: "the YAML uses aliases (*alias) and every private-use character, so its aliases cannot be "
                    + "checked; a mount.conf needs neither"
            )
        }
        let markerBytes = Array(String(marker).utf8)
        var copy: [UInt8] = []
        copy.reserveCapacity(bytes.count + (markerBytes.count - 1) * starts.count)
        var next = 0
        for start in starts {
            copy += bytes[next..<start]
            copy += markerBytes
            next = start + 1
        }
        copy += bytes[next...]

        let parser: Yams.Parser
        let root: Node?
        do {
            parser = try Yams.Parser(yaml: String(decoding: copy, as: UTF8.self))
            root = try parser.singleRoot()
        } catch let error as YamlError {
            throw syntaxError(error, text, marker: marker)
        } catch {
            throw ConfigError(file: file, message: "cannot read the YAML (\(type(of: error)))")
        }
        // The anchors are weak references on the nodes, held by the parser.
        defer { withExtendedLifetime(parser) {} }
        guard let root else { return }
        var sizer = AliasSizer(marker: marker, limit: Self.aliasExpansionLimit)
        do {
            _ = try sizer.size(of: root, inKey: false)
        } catch {
            let message: String
            switch error.kind {
            case .tooLarge:
                message =
                    "the YAML expands to more than \(Self.aliasExpansionLimit) values through aliases "
                    + "(&anchor/*alias); a mount.conf needs no aliases this large"
            case .key(let name):
                message = "keys must be plain names, found an alias (*\(name)); write the name itself"
            }
            throw ConfigError(file: file, line: error.line, column: error.column, message: message)
        }
    }

    /// Whether `byte` may be part of an anchor or alias name.
    private static func isAnchorByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    /// A private-use character (which YAML allows in plain scalars) that `text` does not contain, if any.
    private static func unusedCharacter(in text: String) -> Unicode.Scalar? {
        let ranges: [ClosedRange<UInt32>] = [0xE000...0xF8FF, 0xF_0000...0xF_FFFD, 0x10_0000...0x10_FFFD]
        let used = Set(text.unicodeScalars.lazy.map(\.value).filter { value in ranges.contains { $0 ~= value } })
        for range in ranges {
            if let value = range.first(where: { !used.contains($0) }) { return Unicode.Scalar(value) }
        }
        return nil
    }

    /// Sizes the nodes of a document whose aliases were replaced by plain scalars starting with `marker`.
    private struct AliasSizer {
        /// A problem at an alias: its line and column.
        struct Problem: Error {
            enum Kind {
                /// The values added by aliases passed the limit here.
                case tooLarge
                /// An alias in a key.
                case key(name: String)
            }

            var kind: Kind
            var line: Int?
            var column: Int?

            init(_ kind: Kind, at node: Node) {
                self.kind = kind
                (line, column) = (node.mark?.line, node.mark?.column)
            }
        }

        let marker: Unicode.Scalar
        let limit: Int
        /// The size of each anchored node that has ended, by anchor name (a later anchor hides an earlier one).
        var anchored: [String: Int] = [:]
        /// The values added by the aliases so far.
        var added = 0

        /// The number of values `node` stands for, each alias counted as its anchor's node. `inKey`: `node` is a
        /// mapping's key or inside one.
        mutating func size(of node: Node, inKey: Bool) throws(Problem) -> Int {
            var size = 1
            switch node {
            case .scalar(let scalar):
                if let name = aliasName(scalar) {
                    if inKey { throw Problem(.key(name: name), at: node) }
                    // An undefined alias is one value here; composing the real text reports it.
                    let aliasSize = anchored[name] ?? 1
                    added += aliasSize
                    if added > limit { throw Problem(.tooLarge, at: node) }
                    return aliasSize
                }
            case .sequence(let sequence):
                for item in sequence { size += try self.size(of: item, inKey: inKey) }
            case .mapping(let mapping):
                for (key, value) in mapping {
                    size += try self.size(of: key, inKey: true)
                    size += try self.size(of: value, inKey: inKey)
                }
            case .alias:
                break  // Parsing makes no alias nodes: it resolves them.
            }
            if let anchor = node.anchor { anchored[anchor.rawValue] = size }
            return size
        }

        /// The alias name of a replaced alias: a plain scalar that starts with the marker.
        private func aliasName(_ scalar: Node.Scalar) -> String? {
            guard scalar.style == .plain, scalar.string.unicodeScalars.first == marker else { return nil }
            let name = scalar.string.unicodeScalars.dropFirst().prefix {
                $0.isASCII && ConfigParser.isAnchorByte(UInt8($0.value))
            }
            return String(Substring(name))
        }
    }
}
