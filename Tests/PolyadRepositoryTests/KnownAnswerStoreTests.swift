import Foundation
import PolyadCompression
import PolyadConfig
import PolyadCrypto
import PolyadRepository
import PolyadService
import PolyadTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

// Checks `StoreFormat.md` (the format article) against stores polyad wrote: the store of a previous version kept
// in `PreviousVersionStore` and a store this version writes. The reader here follows the article alone: it uses
// only the primitives (scrypt, HMAC-SHA-256, SHA-256, AES-256-GCM, zlib inflate) and its own decoding of every
// structure, not PolyadFormat's or the repository's, so that it is an independent reading. A small writer built
// the same way gives polyad's reader what its own writer never makes (unknown versions, hostile names, a folder
// without a subtree, names that differ from the numbers). Each test names the article's section it checks.

// MARK: - An independent reader, following the article

private struct ArticleError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// The binary conventions of the article (section "Conventions").
private struct ArticleBytes {
    let bytes: [UInt8]
    var at = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { at == bytes.count }

    mutating func take(_ n: Int) throws -> [UInt8] {
        guard n >= 0, n <= bytes.count - at else { throw ArticleError("truncated at byte \(at) (needs \(n))") }
        defer { at += n }
        return Array(bytes[at..<at + n])
    }

    mutating func u8() throws -> UInt8 { try take(1)[0] }

    mutating func u32() throws -> UInt32 {
        let b = try take(4)
        return UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
    }

    /// At most 10 bytes, the value within 64 bits, and (writers use it) the shortest encoding.
    mutating func uvarint() throws -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<10 {
            let b = try u8()
            if i == 9, b > 1 { throw ArticleError("uvarint beyond 64 bits at byte \(at)") }
            if i > 0, b == 0 { throw ArticleError("uvarint not in its shortest form at byte \(at)") }
            value |= UInt64(b & 0x7F) << UInt64(7 * i)
            if b < 0x80 { return value }
        }
        throw ArticleError("uvarint longer than 10 bytes at byte \(at)")
    }

    mutating func u32varint() throws -> UInt32 {
        let v = try uvarint()
        guard v <= UInt64(UInt32.max) else { throw ArticleError("32-bit field holds \(v)") }
        return UInt32(v)
    }

    mutating func varint() throws -> Int64 {
        let u = try uvarint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    mutating func field() throws -> [UInt8] {
        let n = try uvarint()
        guard n <= UInt64(bytes.count - at) else { throw ArticleError("length \(n) beyond the end") }
        return try take(Int(n))
    }
}

private struct ArticleEntry: Equatable {
    var type: UInt8
    var id: [UInt8]
    var offset: UInt32
    var length: UInt32
    var rawLength: UInt32

    static func read(_ r: inout ArticleBytes) throws -> ArticleEntry {
        ArticleEntry(
            type: try r.u8(),
            id: try r.take(32),
            offset: try r.u32(),
            length: try r.u32(),
            rawLength: try r.u32()
        )
    }
}

private struct ArticleTime: Equatable, Comparable {
    var seconds: Int64
    var nanoseconds: Int64
    var double: Double { Double(seconds) + Double(nanoseconds) / 1e9 }
    static func < (a: ArticleTime, b: ArticleTime) -> Bool { (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds) }
}

private enum ArticlePiece: Equatable {
    case chunk(id: [UInt8], length: UInt64)
    case hole(length: UInt64)
    var length: UInt64 {
        switch self {
        case .chunk(_, let n), .hole(let n): n
        }
    }
}

private struct ArticleNode {
    var name: [UInt8]
    var kind: UInt8
    var mode: UInt32
    var uid: UInt32
    var gid: UInt32
    var user: [UInt8]
    var group: [UInt8]
    var size: UInt64
    var mtime: ArticleTime
    var atime: ArticleTime
    var ctime: ArticleTime
    var inode: UInt64
    var device: UInt64
    var links: UInt32
    var rdev: UInt64
    var linkTarget: [UInt8]
    var xattrs: [(name: [UInt8], value: [UInt8])]
    var pieces: [ArticlePiece]
    /// The node's `uvarint pieces × piece` bytes as the tree holds them (section "The content hash in the mount").
    var piecesEncoding: [UInt8]
    var subtree: [UInt8]?
}

/// `HMAC-SHA256(key, label || context)` (section "Conventions", subkeys).
private func articleSubkey(_ key: [UInt8], _ label: String, _ context: [UInt8]) -> [UInt8] {
    HMACSHA256(key: key).authenticationCode(for: Array(label.utf8) + context)
}

/// Section "Envelopes": `u8 1 | 16 salt | 12 nonce | ciphertext | 16 tag`, AES-256-GCM under
/// `subkey(K, "polyad/v1/envelope", salt)`.
private func articleOpen(_ sealed: [UInt8], key: [UInt8], aad: [UInt8]) throws -> [UInt8] {
    guard sealed.count >= 45 else { throw ArticleError("an envelope of \(sealed.count) bytes") }
    guard sealed[0] == 1 else { throw ArticleError("envelope version \(sealed[0])") }
    let salt = Array(sealed[1..<17])
    let nonce = Array(sealed[17..<29])
    let cipher = AESGCM(key: articleSubkey(key, "polyad/v1/envelope", salt))
    return try cipher.open(Array(sealed[29...]), nonce: nonce, aad: aad)
}

/// Seals an object on its own as the article says a writer does: a fresh random salt and the all-zero nonce.
private func articleSeal(_ plain: [UInt8], key: [UInt8], aad: [UInt8]) -> [UInt8] {
    var rng = SystemRandomNumberGenerator()
    let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
    let nonce = [UInt8](repeating: 0, count: 12)
    let cipher = AESGCM(key: articleSubkey(key, "polyad/v1/envelope", salt))
    return [1] + salt + nonce + cipher.seal(plain, nonce: nonce, aad: aad)
}

private func articleHex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

private func articleUnhex(_ text: String) -> [UInt8]? {
    let u = Array(text.utf8)
    guard u.count % 2 == 0 else { return nil }
    func v(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
    var out = [UInt8]()
    var i = 0
    while i < u.count {
        guard let h = v(u[i]), let l = v(u[i + 1]) else { return nil }
        out.append(h << 4 | l)
        i += 2
    }
    return out
}

private func isLowercaseHex(_ s: String, digits: Int) -> Bool {
    s.utf8.count == digits && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
}

/// RFC 4648 §4 with padding, no white space (section "Conventions", base64).
private func strictBase64(_ s: String) -> [UInt8]? {
    let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    let u = Array(s.utf8)
    guard u.count % 4 == 0 else { return nil }
    let body = u.prefix { $0 != UInt8(ascii: "=") }
    guard body.allSatisfy(alphabet.contains), u.count - body.count <= 2,
        u[body.count...].allSatisfy({ $0 == UInt8(ascii: "=") })
    else { return nil }
    return Data(base64Encoded: s).map { Array($0) }
}

private func articleJSON(_ bytes: [UInt8]) throws -> [String: Any] {
    guard let o = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
        throw ArticleError("not a JSON object")
    }
    return o
}

/// A time in JSON: `{"ns":N,"s":S}`, both required, N below 10^9.
private func articleTime(_ value: Any?) throws -> ArticleTime {
    guard let o = value as? [String: Any], Set(o.keys) == ["s", "ns"], let s = o["s"] as? Int, let ns = o["ns"] as? Int,
        (0..<1_000_000_000).contains(ns)
    else { throw ArticleError("not a time: \(String(describing: value))") }
    return ArticleTime(seconds: Int64(s), nanoseconds: Int64(ns))
}

/// Reads a store as the article describes it.
private final class ArticleStore {
    let dir: String
    let slotName: String
    let slotBytes: [UInt8]
    let material: [UInt8]
    var encryptionKey: [UInt8] { Array(material[1..<33]) }
    var idKey: [UInt8] { Array(material[33..<65]) }
    var chunkerSeed: [UInt8] { Array(material[65..<97]) }
    let configSealed: [UInt8]
    let config: [String: Any]
    /// Index files: name, sealed bytes, packs with their entries, superseded ids.
    private(set) var indexFiles:
        [(
            name: String, sealed: [UInt8], packs: [(pack: [UInt8], entries: [ArticleEntry])],
            superseded: [[UInt8]]
        )] = []
    /// The union of the index files: id → (pack name, entry).
    private(set) var blobs: [[UInt8]: (pack: String, entry: ArticleEntry)] = [:]

    init(dir: String, passphrase: [UInt8]) throws {
        self.dir = dir
        var found: (String, [UInt8], [UInt8])?
        for name in try Self.names(dir + "/keys") {
            let bytes = try Self.read(dir + "/keys/" + name)
            let slot = try articleJSON(bytes)
            guard slot["kdf"] as? String == "scrypt", slot["version"] as? Int == 1,
                let n = slot["n"] as? Int, let r = slot["r"] as? Int, let p = slot["p"] as? Int,
                let salt = strictBase64(slot["salt"] as? String ?? ""),
                let data = strictBase64(slot["data"] as? String ?? "")
            else { continue }
            let wrapping = try KeyDerivation.scrypt(
                passphrase: passphrase,
                salt: salt,
                n: UInt64(n),
                r: UInt64(r),
                p: UInt64(p),
                length: 32
            )
            guard let plain = try? articleOpen(data, key: wrapping, aad: Array("key slot".utf8)),
                plain.count == 97, plain[0] == 1
            else { continue }
            found = (name, bytes, plain)
            break
        }
        guard let (name, bytes, plain) = found else { throw ArticleError("no key slot opens") }
        slotName = name
        slotBytes = bytes
        material = plain
        configSealed = try Self.read(dir + "/config")
        config = try articleJSON(try articleOpen(configSealed, key: Array(plain[1..<33]), aad: Array("config".utf8)))
        guard config["version"] as? Int == 1 else { throw ArticleError("config version") }
        try readIndex()
    }

    static func names(_ folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    }

    static func read(_ path: String) throws -> [UInt8] {
        guard let d = FileManager.default.contents(atPath: path) else { throw ArticleError("cannot read \(path)") }
        return Array(d)
    }

    /// Every pack: `data/<first two digits>/<name>`.
    func packNames() throws -> [String] {
        var out = [String]()
        for sub in try Self.names(dir + "/data") {
            for name in try Self.names(dir + "/data/" + sub) {
                guard name.hasPrefix(sub) else { throw ArticleError("pack \(name) in folder \(sub)") }
                out.append(name)
            }
        }
        return out
    }

    func pack(_ name: String) throws -> [UInt8] { try Self.read(dir + "/data/" + name.prefix(2) + "/" + name) }

    /// Section "Packs": the trailer, the sealed header and its entries.
    func packHeader(_ bytes: [UInt8]) throws -> (sealed: [UInt8], plain: [UInt8], entries: [ArticleEntry]) {
        guard bytes.count >= 8, Array(bytes.suffix(4)) == Array("PYP1".utf8) else {
            throw ArticleError("no PYP1 trailer")
        }
        var t = ArticleBytes(Array(bytes[(bytes.count - 8)..<(bytes.count - 4)]))
        let headerLength = Int(try t.u32())
        let start = bytes.count - 8 - headerLength
        guard headerLength >= 45, start >= 0 else { throw ArticleError("header length \(headerLength)") }
        let sealed = Array(bytes[start..<(bytes.count - 8)])
        let plain = try articleOpen(sealed, key: encryptionKey, aad: Array("pack header".utf8))
        var r = ArticleBytes(plain)
        guard try r.u8() == 1 else { throw ArticleError("pack header version") }
        let count = try r.uvarint()
        var entries = [ArticleEntry]()
        for _ in 0..<count { entries.append(try ArticleEntry.read(&r)) }
        guard r.isAtEnd else { throw ArticleError("bytes after the pack header's entries") }
        return (sealed, plain, entries)
    }

    /// Section "Index".
    private func readIndex() throws {
        for name in try Self.names(dir + "/index") {
            let sealed = try Self.read(dir + "/index/" + name)
            guard articleHex(SHA256.hash(sealed)) == name else {
                throw ArticleError("index/\(name) is not named by its hash")
            }
            var r = ArticleBytes(try articleOpen(sealed, key: encryptionKey, aad: Array("index".utf8)))
            guard try r.u8() == 1 else { throw ArticleError("index version") }
            var packs = [(pack: [UInt8], entries: [ArticleEntry])]()
            for _ in 0..<(try r.uvarint()) {
                let pack = try r.take(32)
                var entries = [ArticleEntry]()
                for _ in 0..<(try r.uvarint()) { entries.append(try ArticleEntry.read(&r)) }
                packs.append((pack, entries))
            }
            var superseded = [[UInt8]]()
            for _ in 0..<(try r.uvarint()) { superseded.append(try r.take(32)) }
            guard r.isAtEnd else { throw ArticleError("bytes after the index's entries") }
            indexFiles.append((name, sealed, packs, superseded))
        }
        let ignored = Set(indexFiles.flatMap { $0.superseded.map(articleHex) })
        for file in indexFiles where !ignored.contains(file.name) {
            for p in file.packs { for e in p.entries { blobs[e.id] = (articleHex(p.pack), e) } }
        }
    }

    /// The sealed blob as its pack holds it.
    func sealedBlob(_ id: [UInt8]) throws -> (sealed: [UInt8], entry: ArticleEntry) {
        guard let (pack, e) = blobs[id] else { throw ArticleError("blob \(articleHex(id)) is in no index") }
        let bytes = try self.pack(pack)
        let end = Int(e.offset) + Int(e.length)
        guard end <= bytes.count else { throw ArticleError("blob beyond its pack") }
        return (Array(bytes[Int(e.offset)..<end]), e)
    }

    /// Section "Chunks and blobs": open, inflate when shorter than the raw length, check the keyed id.
    func blob(_ id: [UInt8]) throws -> [UInt8] {
        let (sealed, e) = try sealedBlob(id)
        let stored = try articleOpen(sealed, key: encryptionKey, aad: Array("blob".utf8) + [e.type] + id)
        let raw = Int(e.rawLength)
        let plain = stored.count == raw ? stored : try Zlib.decompress(stored, expectedSize: raw)
        guard HMACSHA256(key: idKey).authenticationCode(for: plain) == id else {
            throw ArticleError("blob id mismatch")
        }
        return plain
    }

    /// Section "Trees".
    func tree(_ id: [UInt8]) throws -> [ArticleNode] {
        guard blobs[id]?.entry.type == 1 else { throw ArticleError("tree \(articleHex(id)) is not a tree blob") }
        return try Self.decodeTree(try blob(id))
    }

    static func decodeTree(_ bytes: [UInt8]) throws -> [ArticleNode] {
        var r = ArticleBytes(bytes)
        guard try r.u8() == 1 else { throw ArticleError("tree version") }
        var nodes = [ArticleNode]()
        for _ in 0..<(try r.uvarint()) {
            let name = try r.field()
            guard !name.isEmpty, !name.contains(0x2F), !name.contains(0), name != [0x2E], name != [0x2E, 0x2E] else {
                throw ArticleError("bad name \(name)")
            }
            let kind = try r.u8()
            guard kind <= 6 else { throw ArticleError("kind \(kind)") }
            let mode = try r.u32varint()
            let uid = try r.u32varint()
            let gid = try r.u32varint()
            let user = try r.field()
            let group = try r.field()
            let size = try r.uvarint()
            var times = [ArticleTime]()
            for _ in 0..<3 {
                let s = try r.varint()
                let ns = try r.uvarint()
                guard ns < 1_000_000_000 else { throw ArticleError("nanoseconds \(ns)") }
                times.append(ArticleTime(seconds: s, nanoseconds: Int64(ns)))
            }
            let inode = try r.uvarint()
            let device = try r.uvarint()
            let links = try r.u32varint()
            let rdev = try r.uvarint()
            let target = try r.field()
            var xattrs = [(name: [UInt8], value: [UInt8])]()
            for _ in 0..<(try r.uvarint()) { xattrs.append((try r.field(), try r.field())) }
            let piecesStart = r.at
            var pieces = [ArticlePiece]()
            for _ in 0..<(try r.uvarint()) {
                switch try r.u8() {
                case 0:
                    let id = try r.take(32)
                    let n = try r.uvarint()
                    guard n < 1 << 32 else { throw ArticleError("chunk length \(n)") }
                    pieces.append(.chunk(id: id, length: n))
                case 1: pieces.append(.hole(length: try r.uvarint()))
                case let t: throw ArticleError("piece type \(t)")
                }
            }
            let piecesEncoding = Array(bytes[piecesStart..<r.at])
            var subtree: [UInt8]?
            switch try r.u8() {
            case 0: break
            case 1: subtree = try r.take(32)
            case let f: throw ArticleError("has subtree = \(f)")
            }
            if let last = nodes.last, !last.name.lexicographicallyPrecedes(name) {
                throw ArticleError("names not strictly ascending")
            }
            nodes.append(
                ArticleNode(
                    name: name,
                    kind: kind,
                    mode: mode,
                    uid: uid,
                    gid: gid,
                    user: user,
                    group: group,
                    size: size,
                    mtime: times[0],
                    atime: times[1],
                    ctime: times[2],
                    inode: inode,
                    device: device,
                    links: links,
                    rdev: rdev,
                    linkTarget: target,
                    xattrs: xattrs,
                    pieces: pieces,
                    piecesEncoding: piecesEncoding,
                    subtree: subtree
                )
            )
        }
        guard r.isAtEnd else { throw ArticleError("bytes after the tree's last node") }
        return nodes
    }

    /// Section "Snapshots": name, sealed bytes, plaintext JSON bytes and the object.
    func snapshots() throws -> [(name: String, sealed: [UInt8], plain: [UInt8], json: [String: Any])] {
        var out = [(name: String, sealed: [UInt8], plain: [UInt8], json: [String: Any])]()
        for name in try Self.names(dir + "/snapshots") {
            let sealed = try Self.read(dir + "/snapshots/" + name)
            let plain = try articleOpen(sealed, key: encryptionKey, aad: Array("snapshot".utf8))
            out.append((name, sealed, plain, try articleJSON(plain)))
        }
        return try out.sorted {
            (try articleTime($0.json["time"]), $0.name) < (try articleTime($1.json["time"]), $1.name)
        }
    }

    /// Every tree reachable from the snapshots, with the path (components) of each node.
    func walk(_ root: [UInt8], _ body: ([[UInt8]], ArticleNode) throws -> Void) throws {
        var stack: [([UInt8], [[UInt8]])] = [(root, [])]
        while let (id, path) = stack.popLast() {
            for node in try tree(id) {
                try body(path + [node.name], node)
                if node.kind == 1, let sub = node.subtree { stack.append((sub, path + [node.name])) }
            }
        }
    }
}

// MARK: - An independent writer, following the article (to give polyad's reader what its writer never makes)

private struct ArticleWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(8 * i))) } }
    mutating func uvarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }
    mutating func varint(_ v: Int64) { uvarint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }
    mutating func field(_ b: [UInt8]) {
        uvarint(UInt64(b.count))
        bytes += b
    }
    mutating func entry(_ e: ArticleEntry) {
        u8(e.type)
        bytes += e.id
        u32(e.offset)
        u32(e.length)
        u32(e.rawLength)
    }
}

private func articleNode(
    _ name: String,
    kind: UInt8,
    mode: UInt32,
    uid: UInt32 = 0,
    user: String = "",
    mtime: ArticleTime = ArticleTime(seconds: 1_700_000_000, nanoseconds: 0),
    subtree: [UInt8]? = nil
) -> ArticleNode {
    ArticleNode(
        name: Array(name.utf8),
        kind: kind,
        mode: mode,
        uid: uid,
        gid: uid,
        user: Array(user.utf8),
        group: Array(user.utf8),
        size: 0,
        mtime: mtime,
        atime: mtime,
        ctime: mtime,
        inode: 0,
        device: 0,
        links: kind == 1 ? 2 : 1,
        rdev: 0,
        linkTarget: [],
        xattrs: [],
        pieces: [],
        piecesEncoding: [0],
        subtree: subtree
    )
}

/// Section "Trees": the encoding of a listing (nodes given in name order).
private func articleEncodeTree(_ nodes: [ArticleNode]) -> [UInt8] {
    var w = ArticleWriter()
    w.u8(1)
    w.uvarint(UInt64(nodes.count))
    for n in nodes {
        w.field(n.name)
        w.u8(n.kind)
        for v in [UInt64(n.mode), UInt64(n.uid), UInt64(n.gid)] { w.uvarint(v) }
        w.field(n.user)
        w.field(n.group)
        w.uvarint(n.size)
        for t in [n.mtime, n.atime, n.ctime] {
            w.varint(t.seconds)
            w.uvarint(UInt64(t.nanoseconds))
        }
        for v in [n.inode, n.device, UInt64(n.links), n.rdev] { w.uvarint(v) }
        w.field(n.linkTarget)
        w.uvarint(UInt64(n.xattrs.count))
        for x in n.xattrs {
            w.field(x.name)
            w.field(x.value)
        }
        w.uvarint(0)  // no pieces: these are empty files
        if let s = n.subtree {
            w.u8(1)
            w.bytes += s
        } else {
            w.u8(0)
        }
    }
    return w.bytes
}

extension ArticleStore {
    fileprivate func write(_ area: String, _ bytes: [UInt8]) throws -> String {
        let name = articleHex(SHA256.hash(bytes))
        let folder = area == "data" ? dir + "/data/" + name.prefix(2) : dir + "/" + area
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: folder + "/" + name, contents: Data(bytes)))
        return name
    }

    /// Stores tree blobs (raw) in one pack, indexes it, and writes a snapshot of `root`; returns its id.
    fileprivate func writeSnapshot(trees: [[UInt8]], root: [UInt8], tags: [String], seconds: Int64) throws -> String {
        var rng = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let cipher = AESGCM(key: articleSubkey(encryptionKey, "polyad/v1/envelope", salt))
        var pack = [UInt8]()
        var entries = [ArticleEntry]()
        for (counter, tree) in trees.enumerated() {
            let id = HMACSHA256(key: idKey).authenticationCode(for: tree)
            var nonce = [UInt8](repeating: 0, count: 12)
            nonce[11] = UInt8(counter)
            let sealed = [1] + salt + nonce + cipher.seal(tree, nonce: nonce, aad: Array("blob".utf8) + [1] + id)
            entries.append(
                ArticleEntry(
                    type: 1,
                    id: id,
                    offset: UInt32(pack.count),
                    length: UInt32(sealed.count),
                    rawLength: UInt32(tree.count)
                )
            )
            pack += sealed
        }
        var header = ArticleWriter()
        header.u8(1)
        header.uvarint(UInt64(entries.count))
        for e in entries { header.entry(e) }
        let sealedHeader = articleSeal(header.bytes, key: encryptionKey, aad: Array("pack header".utf8))
        var trailer = ArticleWriter()
        trailer.u32(UInt32(sealedHeader.count))
        pack += sealedHeader + trailer.bytes + Array("PYP1".utf8)
        let packName = try write("data", pack)

        var index = ArticleWriter()
        index.u8(1)
        index.uvarint(1)
        index.bytes += try XCTUnwrap(articleUnhex(packName))
        index.uvarint(UInt64(entries.count))
        for e in entries { index.entry(e) }
        index.uvarint(0)
        _ = try write("index", articleSeal(index.bytes, key: encryptionKey, aad: Array("index".utf8)))

        let summary = [
            "added_bytes", "blobs_added", "directories", "errors", "files_changed", "files_new",
            "files_unchanged", "other_entries", "stored_bytes", "total_bytes",
        ].map { "\"\($0)\":0" }
        let json =
            "{\"gid\":0,\"hostname\":\"article-writer\",\"metadata\":{},\"paths\":[\"/\"],"
            + "\"program_version\":\"article\",\"summary\":{\"duration_seconds\":0.5,"
            + summary.joined(separator: ",") + "},\"tags\":[" + tags.map { "\"\($0)\"" }.joined(separator: ",")
            + "],\"time\":{\"ns\":0,\"s\":\(seconds)},\"tree\":\"\(articleHex(root))\",\"uid\":0,"
            + "\"username\":\"tester\",\"version\":1}"
        return try write("snapshots", articleSeal(Array(json.utf8), key: encryptionKey, aad: Array("snapshot".utf8)))
    }
}

// MARK: - Helpers for the file system (raw byte paths)

private func withCPath<R>(_ path: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
    let c = path.map { CChar(bitPattern: $0) } + [0]
    return c.withUnsafeBufferPointer { body($0.baseAddress!) }
}

private func statusOf(_ path: [UInt8]) -> stat? {
    var st = stat()
    return withCPath(path) { lstat($0, &st) } == 0 ? st : nil
}

private func contentsOf(_ path: [UInt8]) -> [UInt8]? {
    let fd = withCPath(path) { open($0, O_RDONLY) }
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return n == 0 ? out : nil }
        out += buffer[0..<n]
    }
}

private func namesIn(_ path: [UInt8]) -> [[UInt8]] {
    guard let d = withCPath(path, { opendir($0) }) else { return [] }
    defer { closedir(d) }
    var out = [[UInt8]]()
    while let e = readdir(d) {
        var tuple = e.pointee.d_name
        let name = withUnsafeBytes(of: &tuple) { Array($0.prefix { $0 != 0 }) }
        if name != [0x2E], name != [0x2E, 0x2E] { out.append(name) }
    }
    return out.sorted { $0.lexicographicallyPrecedes($1) }
}

private func linkTargetOf(_ path: [UInt8]) -> [UInt8]? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let size = buffer.count
    let n = withCPath(path) { readlink($0, &buffer, size) }
    return n < 0 ? nil : buffer[0..<n].map { UInt8(bitPattern: $0) }
}

/// `lgetxattr` (not in Swift's Glibc module map), looked up in the C library.
private func extendedAttribute(_ path: [UInt8], _ name: String) -> [UInt8]? {
    typealias Get = @convention(c) (UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafeMutableRawPointer?, Int) -> Int
    guard let symbol = dlsym(nil, "lgetxattr") else { return nil }
    let get = unsafeBitCast(symbol, to: Get.self)
    var buffer = [UInt8](repeating: 0, count: 65536)
    let n = withCPath(path) { p in
        name.withCString { n in buffer.withUnsafeMutableBytes { get(p, n, $0.baseAddress, $0.count) } }
    }
    return n < 0 ? nil : Array(buffer[0..<n])
}

private func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    gethostname(&buffer, 255)
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A private folder for one test, removed at the end.
private final class KnownAnswerFolder {
    // By its real path (no symlinks or doubled slashes), as the snapshot records it.
    private let folder = try! TemporaryFolder(prefix: "polyad-kat")
    /// The managers' local state, outside `folder` (whose own metadata a backup of something in it records).
    private let state = try! TemporaryFolder(prefix: "polyad-kat-state")
    var path: String { folder.path }
    deinit {
        folder.remove()
        state.remove()
    }

    /// The fixture's store, written out as it was kept: folders `0700`, objects `0400`.
    func previousVersionStore() throws -> String {
        let store = path + "/store"
        try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
        for f in PreviousVersionStore.folders {
            try FileManager.default.createDirectory(
                atPath: store + "/" + f,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        }
        for (rel, text) in PreviousVersionStore.objects {
            let data = try XCTUnwrap(Data(base64Encoded: text, options: .ignoreUnknownCharacters), rel)
            XCTAssertTrue(
                FileManager.default.createFile(
                    atPath: store + "/" + rel,
                    contents: data,
                    attributes: [.posixPermissions: 0o400]
                )
            )
        }
        return store
    }

    /// A manager for the store at `store`, with the passphrase in its environment.
    func manager(store: String, passphrase: String, verify: Bool = true) throws -> BackupManager {
        let text = "backup:\n  local_dir: \"\(store)\"\n  compression_level: 6\n  verify_integrity: \(verify)\n"
        let config = try Configuration.parse(text, file: path + "/mount.conf")
        // The local state (key uses, failures) in the scratch folder, not the user's ~/.local/state.
        return BackupManager(
            config: config,
            environment: ["POLYAD_PASSWORD": passphrase, "XDG_STATE_HOME": state.path]
        )
    }
}

/// Collects values from `@Sendable` callbacks.
private final class KnownAnswerBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [T] = []
    func append(_ v: T) { lock.withLock { stored.append(v) } }
    var values: [T] { lock.withLock { stored } }
}

/// Pseudo-random bytes (xorshift64*), so the test data needs nothing else.
private func knownAnswerRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed | 1
    var out = [UInt8]()
    out.reserveCapacity(count + 8)
    while out.count < count {
        x ^= x >> 12
        x ^= x << 25
        x ^= x >> 27
        withUnsafeBytes(of: (x &* 0x2545_F491_4F6C_DD1D).littleEndian) { out += $0 }
    }
    return Array(out.prefix(count))
}

// MARK: - The tests

final class KnownAnswerStoreTests: XCTestCase {
    private var passphrase: [UInt8] { Array(PreviousVersionStore.passphrase.utf8) }

    private func openFixture(_ folder: KnownAnswerFolder) throws -> ArticleStore {
        try ArticleStore(dir: try folder.previousVersionStore(), passphrase: passphrase)
    }

    /// The keys of `raw` (compact JSON) appear in byte order of the keys (section "Conventions", JSON).
    private func assertCompactSorted(_ raw: [UInt8], keys: [String], _ what: String) {
        let text = String(decoding: raw, as: UTF8.self)
        XCTAssertFalse(text.contains("\n") || text.contains("\": ") || text.contains(", \""), "\(what) is not compact")
        let sorted = keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        let positions = sorted.map { text.range(of: "\"\($0)\":")?.lowerBound }
        XCTAssertFalse(positions.contains(nil), "\(what) lacks a key of \(sorted)")
        let found = positions.compactMap { $0 }
        XCTAssertEqual(found, found.sorted(), "\(what): keys not in byte order")
    }

    // MARK: Keys, passphrases, base64 (sections "Keys", "Passphrases", "Conventions")

    private func checkKeySlot(_ store: ArticleStore, passphrase: [UInt8]) throws {
        XCTAssertEqual(
            store.slotName,
            articleHex(SHA256.hash(store.slotBytes)),
            "a key slot is named by the SHA-256 of its JSON"
        )
        let slot = try articleJSON(store.slotBytes)
        XCTAssertEqual(
            Set(slot.keys),
            ["created", "data", "hostname", "kdf", "n", "p", "r", "salt", "username", "version"]
        )
        assertCompactSorted(store.slotBytes, keys: Array(slot.keys), "key slot")
        XCTAssertEqual(slot["version"] as? Int, 1)
        XCTAssertEqual(slot["kdf"] as? String, "scrypt")
        XCTAssertEqual([slot["n"] as? Int, slot["r"] as? Int, slot["p"] as? Int], [32768, 8, 1])
        _ = try articleTime(slot["created"])
        let saltText = try XCTUnwrap(slot["salt"] as? String)
        let dataText = try XCTUnwrap(slot["data"] as? String)
        XCTAssertEqual(saltText.utf8.count, 44)
        XCTAssertEqual(dataText.utf8.count, 192)
        let salt = try XCTUnwrap(strictBase64(saltText))
        let data = try XCTUnwrap(strictBase64(dataText))
        XCTAssertEqual(salt.count, 32)
        XCTAssertEqual(data.count, 142, "45 bytes of envelope around 97 bytes of key material")
        XCTAssertEqual(Array(data[17..<29]), [UInt8](repeating: 0, count: 12), "sealed on its own: the all-zero nonce")

        let wrapping = try KeyDerivation.scrypt(passphrase: passphrase, salt: salt, n: 32768, r: 8, p: 1, length: 32)
        // The scrypt output is not the AES key: it goes through subkey(…, "polyad/v1/envelope", envelope salt).
        XCTAssertThrowsError(
            try AESGCM(key: wrapping).open(
                Array(data[29...]),
                nonce: Array(data[17..<29]),
                aad: Array("key slot".utf8)
            )
        )
        let plain = try articleOpen(data, key: wrapping, aad: Array("key slot".utf8))
        XCTAssertEqual(plain, store.material)
        XCTAssertEqual(plain.count, 97)
        XCTAssertEqual(plain[0], 1, "master key material version 1")
        XCTAssertThrowsError(try articleOpen(data, key: wrapping, aad: Array("config".utf8)), "the AAD binds the role")
    }

    func testKeysSectionScryptOutputIsTheEnvelopeKeyAndPassphraseBytesAreUsedAsTheyAre() throws {
        let folder = KnownAnswerFolder()
        let store = try openFixture(folder)
        try checkKeySlot(store, passphrase: passphrase)
        // Section "Passphrases": no normalisation, no trailing newline.
        let nfd = Array(PreviousVersionStore.passphrase.decomposedStringWithCanonicalMapping.utf8)
        XCTAssertNotEqual(nfd, passphrase)
        XCTAssertThrowsError(
            try ArticleStore(dir: store.dir, passphrase: nfd),
            "the NFD spelling is another passphrase"
        )
        XCTAssertThrowsError(
            try ArticleStore(dir: store.dir, passphrase: passphrase + [0x0A]),
            "a newline is part of it"
        )
    }

    /// Section "Keys": a labelled slot has one key more, `label`, in its sorted place, and is otherwise the
    /// slot the article describes (the article's reader opens it the same way). The previous version's slots,
    /// which have no label, list with none.
    func testKeysSectionALabelledSlotHasALabelKeyInItsSortedPlace() throws {
        let folder = KnownAnswerFolder()
        let pass = "labelled"
        let manager = try folder.manager(store: folder.path + "/store", passphrase: pass, verify: false)
        let label = "laptop \u{1F4BB} \"A/B\""
        try manager.initialize(label: label)
        let store = try ArticleStore(dir: folder.path + "/store", passphrase: Array(pass.utf8))
        let slot = try articleJSON(store.slotBytes)
        XCTAssertEqual(
            Set(slot.keys),
            ["created", "data", "hostname", "kdf", "label", "n", "p", "r", "salt", "username", "version"]
        )
        assertCompactSorted(store.slotBytes, keys: Array(slot.keys), "labelled key slot")
        XCTAssertEqual(slot["label"] as? String, label)
        XCTAssertEqual(slot["version"] as? Int, 1, "a label does not raise the version")
        XCTAssertEqual(store.slotName, articleHex(SHA256.hash(store.slotBytes)))
        XCTAssertEqual(try manager.keys().map(\.label), [label])

        let older = KnownAnswerFolder()
        let previous = try older.manager(
            store: try older.previousVersionStore(),
            passphrase: PreviousVersionStore.passphrase
        )
        let keys = try previous.keys()
        XCTAssertFalse(keys.isEmpty)
        XCTAssertEqual(keys.map(\.label), keys.map { _ in nil }, "slots written before labels have none")
    }

    // MARK: Config and envelopes (sections "Config", "Envelopes", "Versions")

    private func checkConfig(_ store: ArticleStore) throws {
        XCTAssertEqual(
            Set(store.config.keys),
            ["chunker_average_size", "chunker_max_size", "chunker_min_size", "created", "id", "version"]
        )
        let plain = try articleOpen(store.configSealed, key: store.encryptionKey, aad: Array("config".utf8))
        assertCompactSorted(plain, keys: Array(store.config.keys), "config")
        XCTAssertEqual(store.config["version"] as? Int, 1)
        XCTAssertTrue(isLowercaseHex(store.config["id"] as? String ?? "", digits: 32))
        XCTAssertEqual(store.config["chunker_min_size"] as? Int, 512 << 10)
        XCTAssertEqual(store.config["chunker_average_size"] as? Int, 1 << 20)
        XCTAssertEqual(store.config["chunker_max_size"] as? Int, 8 << 20)
        _ = try articleTime(store.config["created"])
        XCTAssertEqual(store.configSealed[0], 1, "envelope version 1")
        XCTAssertEqual(store.configSealed.count, plain.count + 45, "an envelope adds 45 bytes")
        XCTAssertEqual(Array(store.configSealed[17..<29]), [UInt8](repeating: 0, count: 12))
        XCTAssertThrowsError(try articleOpen(store.configSealed, key: store.encryptionKey, aad: Array("index".utf8)))
    }

    func testConfigAndEnvelopesSections() throws {
        let folder = KnownAnswerFolder()
        try checkConfig(try openFixture(folder))
    }

    // MARK: Packs and index (sections "Packs", "Index", "Overview")

    private func checkPacksAndIndex(_ store: ArticleStore) throws {
        let packs = try store.packNames()
        XCTAssertFalse(packs.isEmpty)
        var headers = [String: [ArticleEntry]]()
        for name in packs {
            let bytes = try store.pack(name)
            XCTAssertEqual(name, articleHex(SHA256.hash(bytes)), "a pack is named by the SHA-256 of its bytes")
            let (sealed, plain, entries) = try store.packHeader(bytes)
            // The u32 header length counts the sealed header: 45 bytes more than its plaintext.
            XCTAssertEqual(sealed.count, plain.count + 45)
            XCTAssertEqual(Array(sealed[17..<29]), [UInt8](repeating: 0, count: 12))
            XCTAssertFalse(entries.isEmpty, "a pack holds at least one blob")
            XCTAssertEqual(Set(entries.map(\.type)).count, 1, "data and tree blobs live in separate packs")
            // Blob envelopes tile the pack from byte 0, in header order, with no padding.
            var next: UInt32 = 0
            for e in entries {
                XCTAssertEqual(e.offset, next, "pack \(name.prefix(8))")
                next = e.offset + e.length
            }
            XCTAssertEqual(Int(next), bytes.count - 8 - sealed.count, "the sealed header follows the last blob")
            headers[name] = entries
        }
        XCTAssertFalse(store.indexFiles.isEmpty)
        var listed = Set<String>()
        for file in store.indexFiles {
            XCTAssertEqual(file.sealed[0], 1)
            XCTAssertEqual(Array(file.sealed[17..<29]), [UInt8](repeating: 0, count: 12))
            XCTAssertEqual(file.superseded.count, 0, "a backup writes empty superseded lists")
            for p in file.packs {
                let name = articleHex(p.pack)
                listed.insert(name)
                XCTAssertEqual(p.entries, headers[name], "an index lists a pack's header entries, in order")
            }
        }
        XCTAssertEqual(listed, Set(packs), "every pack is indexed; none is left over")
        XCTAssertTrue(Set(store.indexFiles.map(\.name)).allSatisfy { isLowercaseHex($0, digits: 64) })
    }

    func testPacksAndIndexSections() throws {
        let folder = KnownAnswerFolder()
        try checkPacksAndIndex(try openFixture(folder))
    }

    // MARK: Blobs (sections "Chunks and blobs", "Envelopes")

    /// Returns how many blobs were stored raw and compressed.
    @discardableResult
    private func checkBlobs(_ store: ArticleStore) throws -> (raw: Int, compressed: Int) {
        var raw = 0
        var compressed = 0
        var counters = [[UInt8]: Set<[UInt8]>]()
        for (id, (_, e)) in store.blobs {
            let (sealed, _) = try store.sealedBlob(id)
            let stored = try articleOpen(sealed, key: store.encryptionKey, aad: Array("blob".utf8) + [e.type] + id)
            let otherType = Array("blob".utf8) + [1 - e.type] + id
            XCTAssertThrowsError(
                try articleOpen(sealed, key: store.encryptionKey, aad: otherType),
                "the blob type is in the additional data"
            )
            XCTAssertEqual(stored.count + 45, Int(e.length))
            // One random salt per writer session; nonces are 4 zero bytes and a big-endian counter.
            let salt = Array(sealed[1..<17])
            let nonce = Array(sealed[17..<29])
            XCTAssertEqual(Array(nonce[0..<4]), [0, 0, 0, 0])
            XCTAssertTrue(counters[salt, default: []].insert(nonce).inserted, "a nonce repeats under one salt")
            let plain: [UInt8]
            if stored.count == Int(e.rawLength) {
                raw += 1
                plain = stored
            } else {
                compressed += 1
                XCTAssertLessThan(
                    stored.count,
                    Int(e.rawLength),
                    "compressed exactly when sealed length - 45 < raw length"
                )
                XCTAssertEqual(stored[0] & 0x0F, 8, "RFC 1950: deflate")
                XCTAssertEqual((Int(stored[0]) << 8 | Int(stored[1])) % 31, 0, "RFC 1950 header check")
                plain = try Zlib.decompress(stored, expectedSize: Int(e.rawLength))
            }
            XCTAssertEqual(
                HMACSHA256(key: store.idKey).authenticationCode(for: plain),
                id,
                "id = HMAC-SHA256(id key, plaintext)"
            )
            if e.type == 1 { _ = try ArticleStore.decodeTree(plain) }
        }
        for (_, nonces) in counters {
            let numbers = nonces.map { $0[4..<12].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }.sorted()
            XCTAssertEqual(numbers, Array(0..<UInt64(numbers.count)), "a session numbers its blobs from 0")
        }
        return (raw, compressed)
    }

    func testChunksAndBlobsSection() throws {
        let folder = KnownAnswerFolder()
        let (raw, compressed) = try checkBlobs(try openFixture(folder))
        XCTAssertGreaterThan(raw, 0, "small blobs zlib cannot shrink are stored raw")
        XCTAssertGreaterThan(compressed, 0, "text is stored compressed")
    }

    // MARK: Trees (section "Trees")

    /// The rules every tree of every snapshot follows.
    private func checkTrees(_ store: ArticleStore) throws {
        let emptyTreeID = HMACSHA256(key: store.idKey).authenticationCode(for: [1, 0])
        var groups = [[UInt64]: [ArticlePiece]]()
        for snapshot in try store.snapshots() {
            let root = try XCTUnwrap(articleUnhex(snapshot.json["tree"] as? String ?? ""))
            try store.walk(root) { path, n in
                let shown = String(decoding: Array(path.joined(separator: [0x2F])), as: UTF8.self)
                XCTAssertLessThanOrEqual(n.mode, 0o7777, shown)
                XCTAssertEqual(n.kind == 1, n.subtree != nil, "\(shown): has subtree = 1 exactly for directories")
                XCTAssertTrue(n.kind == 0 || n.pieces.isEmpty, "\(shown): only files have pieces")
                XCTAssertTrue(n.kind == 2 || n.linkTarget.isEmpty, shown)
                XCTAssertTrue(n.kind == 4 || n.kind == 5 || n.rdev == 0, "\(shown): rdev only for devices")
                switch n.kind {
                case 0: XCTAssertEqual(n.size, n.pieces.reduce(0) { $0 + $1.length }, "\(shown): size = sum of pieces")
                case 2: XCTAssertEqual(n.size, UInt64(n.linkTarget.count), "\(shown): a symlink's size is its target's")
                default: XCTAssertEqual(n.size, 0, shown)
                }
                if n.kind == 1 {
                    XCTAssertGreaterThanOrEqual(n.links, 2, shown)
                    if let sub = n.subtree, try store.tree(sub).isEmpty {
                        XCTAssertEqual(sub, emptyTreeID, "\(shown): an empty folder is the tree 01 00")
                        XCTAssertEqual(try store.blob(sub), [1, 0])
                    }
                }
                let xnames = n.xattrs.map(\.name)
                XCTAssertTrue(
                    zip(xnames, xnames.dropFirst()).allSatisfy { $0.lexicographicallyPrecedes($1) },
                    "\(shown): xattrs sorted by name"
                )
                XCTAssertFalse(xnames.contains { $0.contains(0) })
                if n.kind == 0, n.links > 1 {
                    let key = [n.device, n.inode]
                    if let known = groups[key] {
                        XCTAssertEqual(known, n.pieces, "\(shown): hard links share their pieces")
                    } else {
                        groups[key] = n.pieces
                    }
                }
            }
        }
    }

    func testTreesSection() throws {
        let folder = KnownAnswerFolder()
        let store = try openFixture(folder)
        try checkTrees(store)

        // The root tree stands for /: /tmp/polyad-store-fixture/src is tmp → polyad-store-fixture → src, and the
        // folders above list only what leads there.
        let snapshots = try store.snapshots()
        XCTAssertEqual(snapshots.count, PreviousVersionStore.snapshots.count)
        for (snapshot, expected) in zip(snapshots, PreviousVersionStore.snapshots) {
            var tree = try XCTUnwrap(articleUnhex(snapshot.json["tree"] as? String ?? ""))
            for component in PreviousVersionStore.sourcePath.split(separator: "/") {
                let nodes = try store.tree(tree)
                XCTAssertEqual(nodes.map(\.name), [Array(component.utf8)])
                XCTAssertEqual(nodes.first?.kind, 1)
                tree = try XCTUnwrap(nodes.first?.subtree)
            }
            var found = [[UInt8]: ArticleNode]()
            try store.walk(tree) { path, node in found[Array(path.joined(separator: [0x2F]))] = node }
            XCTAssertEqual(Set(found.keys), Set(expected.entries.map(\.path)))
            var inodes = [Int: [UInt64]]()
            for e in expected.entries {
                let n = try XCTUnwrap(found[e.path])
                let shown = String(decoding: e.path, as: UTF8.self)
                let kinds: [String: UInt8] = ["file": 0, "directory": 1, "symlink": 2, "fifo": 3]
                XCTAssertEqual(n.kind, kinds[e.kind], shown)
                XCTAssertEqual(n.mode, e.mode, shown)
                XCTAssertEqual(n.mtime, ArticleTime(seconds: e.mtime.seconds, nanoseconds: e.mtime.nanoseconds), shown)
                XCTAssertEqual(n.linkTarget, e.linkTarget, shown)
                XCTAssertEqual(n.uid, PreviousVersionStore.ownerUID, shown)
                if PreviousVersionStore.ownerUID == 0 { XCTAssertEqual(n.user, Array("root".utf8), shown) }
                XCTAssertEqual(n.xattrs.map { String(decoding: $0.name, as: UTF8.self) }, e.xattrs.map(\.name), shown)
                XCTAssertEqual(n.xattrs.map { Data($0.value).base64EncodedString() }, e.xattrs.map(\.base64), shown)
                if e.kind == "file" {
                    XCTAssertEqual(n.size, e.size, shown)
                    var content = [UInt8]()
                    for p in n.pieces {
                        switch p {
                        case .chunk(let id, let length):
                            let chunk = try store.blob(id)
                            XCTAssertEqual(UInt64(chunk.count), length)
                            content += chunk
                        case .hole(let length): content += [UInt8](repeating: 0, count: Int(length))
                        }
                    }
                    let data = Array(try XCTUnwrap(Data(base64Encoded: e.data, options: .ignoreUnknownCharacters)))
                    XCTAssertEqual(content, data + [UInt8](repeating: 0, count: Int(e.size) - data.count), shown)
                }
                if e.hardLinkGroup > 0 {
                    XCTAssertEqual(n.links, 2, shown)
                    if let known = inodes[e.hardLinkGroup] { XCTAssertEqual(known, [n.device, n.inode], shown) }
                    inodes[e.hardLinkGroup] = [n.device, n.inode]
                }
            }
            // A sparse file: one chunk for its data extent, then a hole.
            let sparse = try XCTUnwrap(found[Array("sparse.bin".utf8)])
            XCTAssertEqual(sparse.pieces.count, 2)
            guard case .hole? = sparse.pieces.last else { return XCTFail("sparse.bin should end in a hole") }
            XCTAssertEqual(try XCTUnwrap(found[Array("empty.txt".utf8)]).pieces, [])
            XCTAssertEqual(try XCTUnwrap(found[Array("fifo".utf8)]).rdev, 0)
            // Any non-directory kind can be hard-linked: a group of two symlinks.
            let link = try XCTUnwrap(found[Array("notes/link-to-todo".utf8)])
            let again = try XCTUnwrap(found[Array("notes/link-again".utf8)])
            XCTAssertEqual(link.mode, 0o777)
            XCTAssertEqual([link.device, link.inode, UInt64(link.links)], [again.device, again.inode, 2])
        }
    }

    // MARK: Snapshots (sections "Snapshots", "Conventions")

    private func checkSnapshots(_ store: ArticleStore) throws {
        let required: Set<String> = [
            "gid", "hostname", "metadata", "paths", "program_version", "summary", "tags",
            "time", "tree", "uid", "username", "version",
        ]
        let summaryKeys: Set<String> = [
            "added_bytes", "blobs_added", "directories", "duration_seconds", "errors",
            "files_changed", "files_new", "files_unchanged", "other_entries",
            "stored_bytes", "total_bytes",
        ]
        let names = Set(try store.snapshots().map(\.name))
        for s in try store.snapshots() {
            XCTAssertEqual(s.name, articleHex(SHA256.hash(s.sealed)), "a snapshot's id is the SHA-256 of its object")
            XCTAssertEqual(Array(s.sealed[17..<29]), [UInt8](repeating: 0, count: 12))
            let keys = Set(s.json.keys)
            XCTAssertTrue(keys == required || keys == required.union(["parent"]), "\(keys)")
            assertCompactSorted(s.plain, keys: Array(keys), "snapshot")
            XCTAssertFalse(String(decoding: s.plain, as: UTF8.self).contains("null"), "an absent parent is left out")
            XCTAssertEqual(s.json["version"] as? Int, 1)
            XCTAssertTrue(isLowercaseHex(s.json["tree"] as? String ?? "", digits: 64))
            if let parent = s.json["parent"] as? String {
                XCTAssertTrue(isLowercaseHex(parent, digits: 64))
                XCTAssertTrue(names.contains(parent))
            }
            let summary = try XCTUnwrap(s.json["summary"] as? [String: Any])
            XCTAssertEqual(Set(summary.keys), summaryKeys)
            XCTAssertNotNil(summary["duration_seconds"] as? Double)
            let tags = try XCTUnwrap(s.json["tags"] as? [String])
            XCTAssertEqual(tags, tags.sorted())
            let paths = try XCTUnwrap(s.json["paths"] as? [String])
            XCTAssertEqual(paths, paths.sorted())
            XCTAssertTrue(paths.allSatisfy { $0.hasPrefix("/") })
            XCTAssertNotNil(s.json["metadata"] as? [String: String])
            _ = try articleTime(s.json["time"])
        }
    }

    func testSnapshotsSection() throws {
        let folder = KnownAnswerFolder()
        let store = try openFixture(folder)
        try checkSnapshots(store)
        let snapshots = try store.snapshots()
        XCTAssertEqual(snapshots.count, 2)
        XCTAssertNil(snapshots[0].json["parent"], "the first backup has no parent")
        XCTAssertEqual(snapshots[1].json["parent"] as? String, snapshots[0].name, "the second used the first as cache")
        XCTAssertEqual(snapshots.map { $0.json["tags"] as? [String] ?? [] }, PreviousVersionStore.snapshots.map(\.tags))
        for s in snapshots {
            XCTAssertEqual(s.json["paths"] as? [String], [PreviousVersionStore.sourcePath])
            XCTAssertEqual(s.json["hostname"] as? String, PreviousVersionStore.host)
            XCTAssertEqual(s.json["program_version"] as? String, PreviousVersionStore.writtenBy)
        }
        // Times: the second run started after the first ended (time + duration_seconds).
        let first = try articleTime(snapshots[0].json["time"])
        let second = try articleTime(snapshots[1].json["time"])
        let duration = try XCTUnwrap((snapshots[0].json["summary"] as? [String: Any])?["duration_seconds"] as? Double)
        XCTAssertGreaterThanOrEqual(second.double, first.double + duration)
        XCTAssertGreaterThanOrEqual(first, try articleTime(store.config["created"]))
    }

    // MARK: The content hash (section "The content hash in the mount")

    func testContentHashSectionMatchesWhatTheMountShowed() throws {
        let folder = KnownAnswerFolder()
        let store = try openFixture(folder)
        let latest = try XCTUnwrap(try store.snapshots().last)
        var files = [[UInt8]: ArticleNode]()
        try store.walk(try XCTUnwrap(articleUnhex(latest.json["tree"] as? String ?? ""))) { path, node in
            files[Array(path.joined(separator: [0x2F]))] = node
        }
        let prefix = Array(PreviousVersionStore.sourcePath.dropFirst().utf8) + [0x2F]
        let emptyFileHash = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        XCTAssertEqual(articleHex(SHA256.hash([0])), emptyFileHash)
        XCTAssertEqual(
            articleHex(SHA256.hash(try XCTUnwrap(files[prefix + Array("empty.txt".utf8)]).piecesEncoding)),
            emptyFileHash
        )
        if PreviousVersionStore.mountContentHashes.isEmpty { throw XCTSkip("the fixture was made without FUSE") }
        for (path, hash) in PreviousVersionStore.mountContentHashes {
            let node = try XCTUnwrap(files[prefix + path])
            XCTAssertEqual(articleHex(SHA256.hash(node.piecesEncoding)), hash, String(decoding: path, as: UTF8.self))
        }
    }

    // MARK: A store this version writes follows the article too

    /// Section "Chunks and blobs": the gear table and normalized FastCDC as the article gives them.
    private func articleCuts(_ data: [UInt8], seed: [UInt8], min: Int, average: Int, max: Int) -> [Int] {
        func mix(_ x: UInt64) -> UInt64 {
            var z = x &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let w = (0..<4).map { j in (0..<8).reduce(UInt64(0)) { $0 | UInt64(seed[8 * j + $1]) << UInt64(8 * $1) } }
        let gear = (0..<256).map { i in
            (0..<4).reduce(UInt64(0)) { $0 ^ mix(w[$1] ^ (UInt64(i) << 8 | UInt64($1))) }
        }
        let k = average.trailingZeroBitCount
        let top = { (bits: Int) -> UInt64 in bits == 0 ? 0 : ~UInt64(0) << UInt64(64 - bits) }
        var cuts = [Int]()
        var start = 0
        while start < data.count {
            let length = data.count - start
            var cut = Swift.min(length, max)
            if length > min {
                var h: UInt64 = 0
                var i = min
                while i < Swift.min(length, max) {
                    h = (h << 1) &+ gear[Int(data[start + i])]
                    if h & (i < average ? top(k + 2) : top(Swift.max(k - 2, 0))) == 0 {
                        cut = i + 1
                        break
                    }
                    i += 1
                }
            }
            cuts.append(cut)
            start += cut
        }
        return cuts
    }

    func testAStoreThisVersionWritesFollowsTheArticle() throws {
        let folder = KnownAnswerFolder()
        let src = folder.path + "/src"
        try FileManager.default.createDirectory(atPath: src + "/empty", withIntermediateDirectories: true)
        let big = knownAnswerRandomBytes(3 << 20, seed: 7)
        XCTAssertTrue(FileManager.default.createFile(atPath: src + "/big.bin", contents: Data(big)))
        let text = Array(String(repeating: "known answers, written down in an article\n", count: 800).utf8)
        XCTAssertTrue(FileManager.default.createFile(atPath: src + "/text.txt", contents: Data(text)))
        try FileManager.default.createSymbolicLink(atPath: src + "/link", withDestinationPath: "text.txt")
        try FileManager.default.linkItem(atPath: src + "/text.txt", toPath: src + "/text-link")
        let pass = "fresh store \u{1F418}"
        let manager = try folder.manager(store: folder.path + "/store", passphrase: pass, verify: false)
        try manager.initialize()
        _ = try manager.repository()
        let t0 = Date().timeIntervalSince1970
        let result = try manager.createBackup(paths: [src])
        let t1 = Date().timeIntervalSince1970

        let store = try ArticleStore(dir: folder.path + "/store", passphrase: Array(pass.utf8))
        try checkKeySlot(store, passphrase: Array(pass.utf8))
        try checkConfig(store)
        try checkPacksAndIndex(store)
        let (raw, compressed) = try checkBlobs(store)
        XCTAssertGreaterThan(raw, 0, "random data is stored raw")
        XCTAssertGreaterThan(compressed, 0, "text is stored compressed")
        try checkTrees(store)
        try checkSnapshots(store)
        let snapshot = try XCTUnwrap(try store.snapshots().first)
        XCTAssertEqual(snapshot.name, result.id.description)

        // Chunk boundaries and ids, recomputed from the chunker seed.
        var nodes = [[UInt8]: ArticleNode]()
        try store.walk(try XCTUnwrap(articleUnhex(snapshot.json["tree"] as? String ?? ""))) { path, node in
            nodes[Array(path.joined(separator: [0x2F]))] = node
        }
        let base = Array(src.dropFirst().utf8)
        let bigNode = try XCTUnwrap(nodes[base + Array("/big.bin".utf8)])
        let cuts = articleCuts(big, seed: store.chunkerSeed, min: 512 << 10, average: 1 << 20, max: 8 << 20)
        XCTAssertGreaterThan(cuts.count, 1)
        XCTAssertEqual(bigNode.pieces.map(\.length), cuts.map(UInt64.init))
        var offset = 0
        for (piece, cut) in zip(bigNode.pieces, cuts) {
            let expected = HMACSHA256(key: store.idKey).authenticationCode(for: Array(big[offset..<offset + cut]))
            XCTAssertEqual(piece, .chunk(id: expected, length: UInt64(cut)))
            offset += cut
        }
        // inode, device (a dev_t, as the kernel gives it) and times are lstat's.
        var st = stat()
        XCTAssertEqual(lstat(src + "/big.bin", &st), 0)
        XCTAssertEqual([bigNode.inode, bigNode.device], [UInt64(st.st_ino), UInt64(st.st_dev)])
        XCTAssertEqual(
            bigNode.mtime,
            ArticleTime(
                seconds: Int64(st.st_mtim.tv_sec),
                nanoseconds: Int64(st.st_mtim.tv_nsec)
            )
        )
        XCTAssertEqual(
            bigNode.ctime,
            ArticleTime(
                seconds: Int64(st.st_ctim.tv_sec),
                nanoseconds: Int64(st.st_ctim.tv_nsec)
            )
        )
        XCTAssertEqual(bigNode.mode, UInt32(st.st_mode) & 0o7777)
        XCTAssertEqual(bigNode.uid, UInt32(st.st_uid))
        let a = try XCTUnwrap(nodes[base + Array("/text.txt".utf8)])
        let b = try XCTUnwrap(nodes[base + Array("/text-link".utf8)])
        XCTAssertEqual([a.device, a.inode, UInt64(a.links)], [b.device, b.inode, 2], "a hard-link group")
        XCTAssertEqual(
            try XCTUnwrap(nodes[base + Array("/empty".utf8)]).subtree,
            HMACSHA256(key: store.idKey).authenticationCode(for: [1, 0])
        )

        // Section "Snapshots": `time` is when the run started, not when it ended.
        let time = try articleTime(snapshot.json["time"]).double
        let duration = try XCTUnwrap((snapshot.json["summary"] as? [String: Any])?["duration_seconds"] as? Double)
        XCTAssertGreaterThanOrEqual(time, t0 - 0.001)
        XCTAssertLessThanOrEqual(time + duration, t1 + 0.001)
        XCTAssertLessThan(time - t0, (t1 - t0) / 2, "the time is nearer the start of the run than its end")
    }

    // MARK: Locks (section "Locks")

    func testLocksSection() throws {
        let folder = KnownAnswerFolder()
        let src = folder.path + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: src + "/file", contents: Data("locked\n".utf8)))
        let pass = "lock test"
        let storePath = folder.path + "/store"
        let manager = try folder.manager(store: storePath, passphrase: pass, verify: false)
        try manager.initialize()
        _ = try manager.createBackup(paths: [src])
        let store = try ArticleStore(dir: storePath, passphrase: Array(pass.utf8))
        let locks = storePath + "/locks"
        XCTAssertEqual(try ArticleStore.names(locks), [], "a finished backup removes its lock")

        // Written now unless told otherwise: a lock not rewritten for 30 minutes is stale.
        func forge(
            exclusive: Bool,
            host: String,
            pid: Int32,
            time: Int = Int(Date().timeIntervalSince1970)
        ) throws
            -> String
        {
            let json =
                "{\"exclusive\":\(exclusive),\"hostname\":\"\(host)\",\"operation\":\"prune\",\"pid\":\(pid),"
                + "\"time\":{\"ns\":0,\"s\":\(time)},\"username\":\"tester\"}"
            let sealed = articleSeal(Array(json.utf8), key: store.encryptionKey, aad: Array("lock".utf8))
            let name = articleHex(SHA256.hash(sealed))
            XCTAssertTrue(FileManager.default.createFile(atPath: locks + "/" + name, contents: Data(sealed)))
            return name
        }

        // An exclusive lock of a live holder (another host: it cannot be checked, so it is live) stops a reader.
        let exclusive = try forge(exclusive: true, host: "other-host", pid: 1)
        XCTAssertThrowsError(try manager.verifyBackupIntegrity(readData: false), "an exclusive lock refuses readers")
        XCTAssertEqual(try ArticleStore.names(locks), [exclusive], "a refreshed lock of another host stays")
        try FileManager.default.removeItem(atPath: locks + "/" + exclusive)
        // The same lock not rewritten for longer than 30 minutes is stale: it is removed, and reading goes on.
        let old = try forge(
            exclusive: true,
            host: "other-host",
            pid: 1,
            time: Int(Date().timeIntervalSince1970) - 1_801
        )
        XCTAssertNoThrow(try manager.verifyBackupIntegrity(readData: false))
        XCTAssertFalse(try ArticleStore.names(locks).contains(old), "a stale lock of another host is removed")

        // A lock of a dead process on this host is stale and removed; a shared lock elsewhere is left alone.
        let stale = try forge(exclusive: true, host: hostName(), pid: Int32.max)
        let shared = try forge(exclusive: false, host: "other-host", pid: 1)
        // A lock that does not authenticate is ignored, and left.
        let garbage = String(repeating: "ab", count: 32)
        XCTAssertTrue(FileManager.default.createFile(atPath: locks + "/" + garbage, contents: Data([1, 2, 3])))
        let seen = KnownAnswerBox<[String: [UInt8]]>()
        var options = VerifyOptions(readData: true)
        options.progress = { _, _ in
            var found = [String: [UInt8]]()
            for name in (try? ArticleStore.names(locks)) ?? [] {
                found[name] = try? ArticleStore.read(locks + "/" + name)
            }
            seen.append(found)
        }
        let report = try manager.verify(options: options)
        XCTAssertTrue(report.isClean, "\(report.damaged)")
        XCTAssertEqual(Set(try ArticleStore.names(locks)), [shared, garbage])

        // The lock verify held while it ran, read as the article says.
        let during = try XCTUnwrap(seen.values.first)
        XCTAssertNil(during[stale])
        let own = try XCTUnwrap(during.first { ![shared, garbage].contains($0.key) })
        XCTAssertEqual(own.key, articleHex(SHA256.hash(own.value)))
        let lock = try articleJSON(try articleOpen(own.value, key: store.encryptionKey, aad: Array("lock".utf8)))
        XCTAssertEqual(
            Set(lock.keys),
            ["boot", "exclusive", "hostname", "operation", "pid", "start", "time", "username"]
        )
        // `start`: field 22 of /proc/PID/stat, counted after the command name's closing parenthesis.
        let stat = try String(contentsOfFile: "/proc/self/stat", encoding: .utf8)
        let afterName = stat[stat.index(after: try XCTUnwrap(stat.lastIndex(of: ")")))...].split(separator: " ")
        XCTAssertEqual(lock["start"] as? Int, Int(afterName[19]))
        XCTAssertEqual(
            lock["boot"] as? String,
            try String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        )
        XCTAssertEqual(lock["exclusive"] as? Bool, false)
        XCTAssertEqual(lock["operation"] as? String, "verify")
        XCTAssertEqual(lock["pid"] as? Int, Int(getpid()))
        XCTAssertEqual(lock["hostname"] as? String, hostName())
        _ = try articleTime(lock["time"])
    }

    // MARK: Versions and limits (sections "Versions" and "Conventions")

    func testVersionsSectionUnknownVersionsAreRefusedNotGuessed() throws {
        let folder = KnownAnswerFolder()
        let storePath = try folder.previousVersionStore()
        let store = try ArticleStore(dir: storePath, passphrase: passphrase)

        // A key slot of another kdf is skipped; the store still opens with the passphrase of the other slot.
        let foreign = Array(
            ("{\"created\":{\"ns\":0,\"s\":1764036236},\"data\":\"AAAA\",\"hostname\":\"h\","
                + "\"kdf\":\"argon2id\",\"n\":1,\"p\":1,\"r\":1,\"salt\":\"AAAA\",\"username\":\"u\",\"version\":2}")
                .utf8
        )
        _ = try store.write("keys", foreign)
        let open = { try folder.manager(store: storePath, passphrase: PreviousVersionStore.passphrase) }
        XCTAssertEqual(try open().snapshots().count, 2)

        // An index file of version 2 is not read; verify names it. A tree whose uvarint runs past 10 bytes is damage.
        let index = try store.write(
            "index",
            articleSeal([2, 0, 0], key: store.encryptionKey, aad: Array("index".utf8))
        )
        var tree = ArticleWriter()
        tree.u8(1)
        tree.uvarint(1)
        tree.field(Array("x".utf8))
        tree.u8(0)
        tree.bytes += [UInt8](repeating: 0x80, count: 10) + [0]  // mode: an 11-byte uvarint
        let badTree = tree.bytes + [UInt8](repeating: 0, count: 40)
        let badID = HMACSHA256(key: store.idKey).authenticationCode(for: badTree)
        let bad = try store.writeSnapshot(trees: [badTree], root: badID, tags: ["bad"], seconds: 1_800_000_000)
        let report = try open().verifyBackupIntegrity(readData: false)
        XCTAssertTrue(report.damaged.contains { $0.object == "index/" + index }, "\(report.damaged)")
        XCTAssertEqual(report.affectedSnapshots.map(\.description), [bad], "only the snapshot of the bad tree")
        let restored = try open().restoreBackup(bad, to: folder.path + "/bad")
        XCTAssertTrue(restored.damaged, "an 11-byte uvarint is damage")

        // A snapshot of version 2 is refused (0.1.0: listing fails and names it).
        let future = try store.write(
            "snapshots",
            articleSeal(
                Array("{\"version\":2}".utf8),
                key: store.encryptionKey,
                aad: Array("snapshot".utf8)
            )
        )
        XCTAssertThrowsError(try open().snapshots()) {
            XCTAssertTrue("\($0)".contains(future), "\($0)")
        }

        // A config of version 2: the store does not open.
        var config = try articleOpen(store.configSealed, key: store.encryptionKey, aad: Array("config".utf8))
        let text = String(decoding: config, as: UTF8.self)
            .replacingOccurrences(of: "\"version\":1", with: "\"version\":2")
        config = Array(text.utf8)
        try FileManager.default.removeItem(atPath: storePath + "/config")
        XCTAssertTrue(
            FileManager.default.createFile(
                atPath: storePath + "/config",
                contents: Data(
                    articleSeal(
                        config,
                        key: store.encryptionKey,
                        aad: Array("config".utf8)
                    )
                )
            )
        )
        XCTAssertThrowsError(try open().snapshots())
    }

    // MARK: Restore (sections "Restore" and "Trees", as polyad's reader meets what its writer never makes)

    func testRestoreSectionNamesWinOverNumbersAndWhatAReaderMustCheck() throws {
        let folder = KnownAnswerFolder()
        let pass = "article writer"
        let storePath = folder.path + "/store"
        try folder.manager(store: storePath, passphrase: pass).initialize()
        let store = try ArticleStore(dir: storePath, passphrase: Array(pass.utf8))
        let empty: [UInt8] = [1, 0]
        let emptyID = HMACSHA256(key: store.idKey).authenticationCode(for: empty)
        let good = articleEncodeTree([
            articleNode(
                "by-name",
                kind: 0,
                mode: 0o4755,
                uid: 4242,
                user: "root",
                mtime: ArticleTime(seconds: 1_700_000_000, nanoseconds: 5)
            ),
            articleNode("by-number", kind: 0, mode: 0o640, uid: 4243),
            articleNode("file-with-subtree", kind: 0, mode: 0o600, subtree: emptyID),
            articleNode(
                "folder-without-subtree",
                kind: 1,
                mode: 0o750,
                mtime: ArticleTime(seconds: 1_700_000_100, nanoseconds: 0)
            ),
            articleNode("unknown-name", kind: 0, mode: 0o600, uid: 4244, user: "no-such-user-polyad-kat"),
        ])
        let hostile = articleEncodeTree([
            articleNode("..", kind: 0, mode: 0o600), articleNode("a/b", kind: 0, mode: 0o600),
            articleNode("ok", kind: 0, mode: 0o600),
        ])
        let hmac = HMACSHA256(key: store.idKey)
        let goodID = try store.writeSnapshot(
            trees: [empty, good],
            root: hmac.authenticationCode(for: good),
            tags: ["good"],
            seconds: 1_700_000_000
        )
        let hostileID = try store.writeSnapshot(
            trees: [hostile],
            root: hmac.authenticationCode(for: hostile),
            tags: ["hostile"],
            seconds: 1_700_000_001
        )

        let manager = try folder.manager(store: storePath, passphrase: pass)
        XCTAssertEqual(try manager.snapshots().map(\.id), [goodID, hostileID], "listed by time")
        let report = try manager.verifyBackupIntegrity(readData: true)
        XCTAssertTrue(report.isClean, "objects written from the article verify: \(report.damaged)")

        let target = folder.path + "/restored"
        let result = try manager.restoreBackup(goodID, to: target)
        XCTAssertEqual(result.errors, [])
        let root = Array(target.utf8) + [0x2F]
        let folderNode = try XCTUnwrap(statusOf(root + Array("folder-without-subtree".utf8)))
        XCTAssertEqual(folderNode.st_mode & S_IFMT, S_IFDIR, "a folder without a subtree is an empty folder")
        XCTAssertEqual(folderNode.st_mode & 0o7777, 0o750)
        XCTAssertEqual(folderNode.st_mtim.tv_sec, 1_700_000_100, "folders get their times after their children")
        XCTAssertEqual(namesIn(root + Array("folder-without-subtree".utf8)), [])
        let fileNode = try XCTUnwrap(statusOf(root + Array("file-with-subtree".utf8)))
        XCTAssertEqual(fileNode.st_mode & S_IFMT, S_IFREG, "a file's subtree id is ignored")
        XCTAssertEqual(fileNode.st_size, 0)
        let byName = try XCTUnwrap(statusOf(root + Array("by-name".utf8)))
        XCTAssertEqual(byName.st_mtim.tv_nsec, 5)
        if getuid() == 0 {
            XCTAssertEqual([byName.st_uid, byName.st_gid], [0, 0], "the name wins over the number")
            XCTAssertEqual(byName.st_mode & 0o7777, 0o4755, "the mode is set after the owner, so setuid stays")
            let byNumber = try XCTUnwrap(statusOf(root + Array("by-number".utf8)))
            XCTAssertEqual([byNumber.st_uid, byNumber.st_gid], [4243, 4243], "no name: the number")
            let unknown = try XCTUnwrap(statusOf(root + Array("unknown-name".utf8)))
            XCTAssertEqual([unknown.st_uid, unknown.st_gid], [4244, 4244], "an unknown name: the number")
        }

        // Names a reader must refuse: nothing is written outside the target, and the restore reports damage.
        let before = namesIn(Array(folder.path.utf8))
        let hostileTarget = folder.path + "/hostile/inner"
        let refused = try manager.restoreBackup(hostileID, to: hostileTarget)
        XCTAssertTrue(refused.damaged)
        XCTAssertEqual(refused.errors.count, 2, "\(refused.errors)")
        XCTAssertEqual(namesIn(Array(hostileTarget.utf8)), [Array("ok".utf8)])
        XCTAssertEqual(namesIn(Array((folder.path + "/hostile").utf8)), [Array("inner".utf8)])
        XCTAssertEqual(Set(namesIn(Array(folder.path.utf8))), Set(before + [Array("hostile".utf8)]))
    }

    // MARK: A store of the previous version opens, lists, restores and verifies

    private func assertRestored(_ entries: [PreviousVersionStore.Entry], under root: [UInt8]) throws {
        func listAll(_ dir: [UInt8], _ rel: [UInt8]) -> [[UInt8]] {
            namesIn(dir).flatMap { name -> [[UInt8]] in
                let r = rel.isEmpty ? name : rel + [0x2F] + name
                let p = dir + [0x2F] + name
                if let st = statusOf(p), st.st_mode & S_IFMT == S_IFDIR { return [r] + listAll(p, r) }
                return [r]
            }
        }
        XCTAssertEqual(Set(listAll(root, [])), Set(entries.map(\.path)), "exactly the backed-up entries")
        var inodes = [Int: UInt64]()
        for e in entries {
            let path = root + [0x2F] + e.path
            let shown = String(decoding: e.path, as: UTF8.self)
            let st = try XCTUnwrap(statusOf(path), shown)
            let types: [String: UInt32] = ["file": S_IFREG, "directory": S_IFDIR, "symlink": S_IFLNK, "fifo": S_IFIFO]
            XCTAssertEqual(st.st_mode & S_IFMT, types[e.kind], shown)
            if e.kind != "symlink" { XCTAssertEqual(st.st_mode & 0o7777, e.mode, shown) }
            let mtime = [Int64(st.st_mtim.tv_sec), Int64(st.st_mtim.tv_nsec)]
            XCTAssertEqual(mtime, [e.mtime.seconds, e.mtime.nanoseconds], shown)
            if getuid() == 0 { XCTAssertEqual(st.st_uid, PreviousVersionStore.ownerUID, shown) }
            for x in e.xattrs {
                XCTAssertEqual(
                    extendedAttribute(path, x.name).map { Data($0).base64EncodedString() },
                    x.base64,
                    "\(shown): \(x.name)"
                )
            }
            switch e.kind {
            case "file":
                let data = Array(try XCTUnwrap(Data(base64Encoded: e.data, options: .ignoreUnknownCharacters)))
                XCTAssertEqual(contentsOf(path), data + [UInt8](repeating: 0, count: Int(e.size) - data.count), shown)
                if e.size > 1 << 16 {
                    XCTAssertLessThan(Int(st.st_blocks) * 512, Int(st.st_size), "\(shown) stays sparse")
                }
                if e.hardLinkGroup > 0 {
                    if let first = inodes[e.hardLinkGroup] {
                        XCTAssertEqual(UInt64(st.st_ino), first, "\(shown) is a hard link")
                    }
                    inodes[e.hardLinkGroup] = UInt64(st.st_ino)
                    XCTAssertEqual(st.st_nlink, 2, shown)
                }
            case "symlink":
                XCTAssertEqual(linkTargetOf(path), e.linkTarget, shown)
            case "directory":
                if e.path == Array("empty-folder".utf8) { XCTAssertEqual(namesIn(path), [], "an empty folder") }
            default:
                break
            }
        }
    }

    func testPreviousVersionStoreStillOpensListsRestoresAndVerifies() throws {
        let folder = KnownAnswerFolder()
        let storePath = try folder.previousVersionStore()
        let manager = try folder.manager(store: storePath, passphrase: PreviousVersionStore.passphrase)

        let listed = try manager.snapshots()
        XCTAssertEqual(listed.map(\.tags), PreviousVersionStore.snapshots.map(\.tags))
        XCTAssertEqual(Set(listed.map(\.id)), Set(try ArticleStore.names(storePath + "/snapshots")))
        XCTAssertEqual(listed.map(\.hostname), [PreviousVersionStore.host, PreviousVersionStore.host])
        XCTAssertEqual(listed.map(\.paths), [[PreviousVersionStore.sourcePath], [PreviousVersionStore.sourcePath]])
        XCTAssertNil(listed.first?.parent)
        XCTAssertEqual(listed.last?.parent, listed.first?.id)

        for (i, (info, expected)) in zip(listed, PreviousVersionStore.snapshots).enumerated() {
            let target = folder.path + "/restore-\(i)"
            let result = try manager.restoreBackup(info.id, to: target)
            XCTAssertEqual(result.errors, [], "snapshot \(info.shortID)")
            XCTAssertFalse(result.damaged)
            try assertRestored(expected.entries, under: Array((target + PreviousVersionStore.sourcePath).utf8))
        }

        let report = try manager.verifyBackupIntegrity(readData: true)
        XCTAssertTrue(report.isClean, "\(report.damaged)")
        XCTAssertEqual(report.snapshotsChecked, 2)
        XCTAssertEqual(report.packsRead, PreviousVersionStore.objects.filter { $0.path.hasPrefix("data/") }.count)
        XCTAssertEqual(report.unreferencedPacks, 0)
        for info in listed {
            XCTAssertTrue(try manager.verifyBackupIntegrity(info.id, readData: true).isClean, info.shortID)
        }
        // The store is still as it was kept: reading it wrote nothing but (removed) locks.
        XCTAssertEqual(try ArticleStore.names(storePath + "/locks"), [])
        let store = try ArticleStore(dir: storePath, passphrase: passphrase)
        XCTAssertEqual(
            store.indexFiles.count,
            PreviousVersionStore.objects.filter { $0.path.hasPrefix("index/") }.count
        )
    }
}
