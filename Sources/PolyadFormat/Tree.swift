/// A point in time with nanosecond precision, as seconds and nanoseconds since the Unix epoch.
public struct Timestamp: Hashable, Sendable, Comparable, Codable {
    public var seconds: Int64
    public var nanoseconds: Int64

    enum CodingKeys: String, CodingKey {
        case seconds = "s"
        case nanoseconds = "ns"
    }

    public init(seconds: Int64, nanoseconds: Int64) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static func < (a: Timestamp, b: Timestamp) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }
}

/// What a tree node is.
public enum NodeKind: UInt8, Sendable, CustomStringConvertible {
    case file = 0
    case directory = 1
    case symlink = 2
    case fifo = 3
    case characterDevice = 4
    case blockDevice = 5
    case socket = 6

    public var description: String {
        switch self {
        case .file: "file"
        case .directory: "dir"
        case .symlink: "symlink"
        case .fifo: "fifo"
        case .characterDevice: "chardev"
        case .blockDevice: "blockdev"
        case .socket: "socket"
        }
    }
}

/// A piece of a regular file's content, in file order.
public enum ContentPiece: Hashable, Sendable {
    /// A stored chunk and its plaintext length.
    case chunk(ChunkID, length: UInt32)
    /// A run of zeros that was a hole in a sparse file (restored as a hole).
    case hole(length: UInt64)

    /// Bytes this piece covers.
    public var length: UInt64 {
        switch self {
        case .chunk(_, let n): UInt64(n)
        case .hole(let n): n
        }
    }
}

/// An extended attribute: name and value are bytes.
public struct ExtendedAttribute: Hashable, Sendable {
    public var name: [UInt8]
    public var value: [UInt8]
    public init(name: [UInt8], value: [UInt8]) {
        self.name = name
        self.value = value
    }
}

/// One entry of a directory: its name (raw bytes), metadata and content.
public struct Node: Hashable, Sendable {
    public var name: [UInt8]
    public var kind: NodeKind
    /// Permission bits with setuid/setgid/sticky (`st_mode & 0o7777`).
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var user: String
    public var group: String
    /// Apparent size in bytes (regular files; symlinks: target length).
    public var size: UInt64
    public var mtime: Timestamp
    public var atime: Timestamp
    public var ctime: Timestamp
    /// Inode and device number at backup time: identify hard-link groups (with `links` > 1) and feed the files cache.
    public var inode: UInt64
    public var device: UInt64
    public var links: UInt32
    /// Device number of character and block devices.
    public var rdev: UInt64
    public var linkTarget: [UInt8]
    public var xattrs: [ExtendedAttribute]
    /// File content (regular files).
    public var content: [ContentPiece]
    /// The directory's own tree (directories).
    public var subtree: TreeID?

    public init(
        name: [UInt8],
        kind: NodeKind,
        mode: UInt32 = 0,
        uid: UInt32 = 0,
        gid: UInt32 = 0,
        user: String = "",
        group: String = "",
        size: UInt64 = 0,
        mtime: Timestamp = Timestamp(seconds: 0, nanoseconds: 0),
        atime: Timestamp = Timestamp(seconds: 0, nanoseconds: 0),
        ctime: Timestamp = Timestamp(seconds: 0, nanoseconds: 0),
        inode: UInt64 = 0,
        device: UInt64 = 0,
        links: UInt32 = 1,
        rdev: UInt64 = 0,
        linkTarget: [UInt8] = [],
        xattrs: [ExtendedAttribute] = [],
        content: [ContentPiece] = [],
        subtree: TreeID? = nil
    ) {
        self.name = name
        self.kind = kind
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.user = user
        self.group = group
        self.size = size
        self.mtime = mtime
        self.atime = atime
        self.ctime = ctime
        self.inode = inode
        self.device = device
        self.links = links
        self.rdev = rdev
        self.linkTarget = linkTarget
        self.xattrs = xattrs
        self.content = content
        self.subtree = subtree
    }
}

/// A directory listing: nodes sorted by name bytes, encoded as
///
///     u8 version (1) | uvarint count | count × node
///     node = bytes name | u8 kind | uvarint mode | uvarint uid | uvarint gid | bytes user | bytes group
///            | uvarint size | time mtime | time atime | time ctime | uvarint inode | uvarint device
///            | uvarint links | uvarint rdev | bytes linkTarget | uvarint xattrCount × (bytes name | bytes value)
///            | uvarint pieceCount × piece | u8 hasSubtree (0/1) [| 32 subtree id]
///     time  = zigzag varint seconds | uvarint nanoseconds
///     piece = u8 0 | 32 chunk id | uvarint length    (a chunk)
///           | u8 1 | uvarint length                  (a hole)
///     bytes = uvarint length | raw bytes
public struct Tree: Hashable, Sendable {
    public static let version: UInt8 = 1
    public var nodes: [Node]

    /// Creates a tree, sorting the nodes by name bytes.
    public init(nodes: [Node]) {
        self.nodes = nodes.sorted { $0.name.lexicographicallyPrecedes($1.name) }
    }

    /// The node named `name`, by binary search.
    public func node(named name: [UInt8]) -> Node? {
        let index = firstIndex(from: name)
        return index < nodes.count && nodes[index].name == name ? nodes[index] : nil
    }

    /// The index of the first node whose name sorts at or after `name` (after it only, with `inclusive` false),
    /// or `nodes.count`: a binary search over the names' bytes.
    public func firstIndex(from name: [UInt8], inclusive: Bool = true) -> Int {
        var low = 0
        var high = nodes.count
        while low < high {
            let middle = (low + high) / 2
            let before =
                inclusive
                ? nodes[middle].name.lexicographicallyPrecedes(name)
                : !name.lexicographicallyPrecedes(nodes[middle].name)
            if before { low = middle + 1 } else { high = middle }
        }
        return low
    }

    public func encoded() -> [UInt8] {
        var w = BinaryWriter(capacity: 64 + nodes.count * 96)
        w.u8(Self.version)
        w.uvarint(UInt64(nodes.count))
        for n in nodes {
            w.lengthPrefixed(n.name)
            w.u8(n.kind.rawValue)
            w.uvarint(UInt64(n.mode))
            w.uvarint(UInt64(n.uid))
            w.uvarint(UInt64(n.gid))
            w.string(n.user)
            w.string(n.group)
            w.uvarint(n.size)
            for t in [n.mtime, n.atime, n.ctime] {
                w.varint(t.seconds)
                w.uvarint(UInt64(max(0, t.nanoseconds)))
            }
            w.uvarint(n.inode)
            w.uvarint(n.device)
            w.uvarint(UInt64(n.links))
            w.uvarint(n.rdev)
            w.lengthPrefixed(n.linkTarget)
            w.uvarint(UInt64(n.xattrs.count))
            for x in n.xattrs {
                w.lengthPrefixed(x.name)
                w.lengthPrefixed(x.value)
            }
            Self.writeContent(n.content, to: &w)
            if let s = n.subtree {
                w.u8(1)
                w.hash(s.hash)
            } else {
                w.u8(0)
            }
        }
        return w.bytes
    }

    /// Writes a file's piece list as a tree stores it: `uvarint count | count × piece`.
    public static func writeContent(_ content: [ContentPiece], to w: inout BinaryWriter) {
        w.uvarint(UInt64(content.count))
        for p in content {
            switch p {
            case .chunk(let id, let length):
                w.u8(0)
                w.hash(id.hash)
                w.uvarint(UInt64(length))
            case .hole(let length):
                w.u8(1)
                w.uvarint(length)
            }
        }
    }

    public init(decoding bytes: [UInt8]) throws(FormatError) {
        var r = BinaryReader(bytes, structure: "tree")
        let v = try r.u8()
        guard v == Self.version else { throw FormatError("tree", "version \(v) is not supported") }
        let count = try r.count(limit: r.remaining / 20)
        var nodes = [Node]()
        nodes.reserveCapacity(count)
        for _ in 0..<count {
            let name = try r.lengthPrefixed()
            let k = try r.u8()
            guard let kind = NodeKind(rawValue: k) else { throw FormatError("tree", "unknown node kind \(k)") }
            var n = Node(name: name, kind: kind)
            n.mode = UInt32(truncatingIfNeeded: try r.uvarint())
            n.uid = UInt32(truncatingIfNeeded: try r.uvarint())
            n.gid = UInt32(truncatingIfNeeded: try r.uvarint())
            n.user = try r.string()
            n.group = try r.string()
            n.size = try r.uvarint()
            var times = [Timestamp]()
            for _ in 0..<3 {
                let s = try r.varint()
                let ns = try r.uvarint()
                guard ns < 1_000_000_000 else { throw FormatError("tree", "nanoseconds out of range") }
                times.append(Timestamp(seconds: s, nanoseconds: Int64(ns)))
            }
            n.mtime = times[0]
            n.atime = times[1]
            n.ctime = times[2]
            n.inode = try r.uvarint()
            n.device = try r.uvarint()
            n.links = UInt32(truncatingIfNeeded: try r.uvarint())
            n.rdev = try r.uvarint()
            n.linkTarget = try r.lengthPrefixed()
            let xc = try r.count(limit: r.remaining / 2)
            for _ in 0..<xc {
                n.xattrs.append(ExtendedAttribute(name: try r.lengthPrefixed(), value: try r.lengthPrefixed()))
            }
            let pc = try r.count(limit: r.remaining / 2)
            n.content.reserveCapacity(pc)
            for _ in 0..<pc {
                switch try r.u8() {
                case 0:
                    let id = ChunkID(try r.hash())
                    let length = try r.uvarint()
                    guard length <= UInt64(UInt32.max) else { throw FormatError("tree", "chunk length out of range") }
                    n.content.append(.chunk(id, length: UInt32(length)))
                case 1: n.content.append(.hole(length: try r.uvarint()))
                case let t: throw FormatError("tree", "unknown content piece \(t)")
                }
            }
            switch try r.u8() {
            case 0: break
            case 1: n.subtree = TreeID(try r.hash())
            case let t: throw FormatError("tree", "bad subtree flag \(t)")
            }
            if let last = nodes.last, !last.name.lexicographicallyPrecedes(n.name) {
                throw FormatError("tree", "names not strictly sorted")
            }
            nodes.append(n)
        }
        try r.expectEnd()
        self.nodes = nodes
    }
}
