import XCTest

@testable import PolyadFormat

final class CodecTests: XCTestCase {
    private func hash(_ seed: UInt8) -> Hash256 {
        Hash256((0..<32).map { UInt8(truncatingIfNeeded: Int($0) &* 7 &+ Int(seed)) })
    }

    func testHashHexRoundTripAndOrdering() {
        let h = hash(3)
        XCTAssertEqual(Hash256(hex: h.hex), h)
        XCTAssertEqual(h.bytes, (0..<32).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) })
        XCTAssertEqual(h.shortHex, String(h.hex.prefix(8)))
        XCTAssertNil(Hash256(hex: "zz"))
        XCTAssertNil(Hash256(hex: String(repeating: "g", count: 64)))
        XCTAssertTrue(Hash256([UInt8](repeating: 0, count: 32)) < Hash256([1] + [UInt8](repeating: 0, count: 31)))
    }

    func testVarintsRoundTrip() throws {
        var w = BinaryWriter()
        let unsigned: [UInt64] = [0, 1, 127, 128, 300, 1 << 35, .max]
        let signed: [Int64] = [0, -1, 1, -64, 64, .min, .max]
        for v in unsigned { w.uvarint(v) }
        for v in signed { w.varint(v) }
        var r = BinaryReader(w.bytes, structure: "test")
        for v in unsigned { XCTAssertEqual(try r.uvarint(), v) }
        for v in signed { XCTAssertEqual(try r.varint(), v) }
        XCTAssertTrue(r.isAtEnd)
        XCTAssertThrowsError(try r.u8())
    }

    func testPackHeaderRoundTripAndTruncation() throws {
        let h = PackHeader(entries: [
            PackEntry(type: .data, id: BlobID(hash(1)), offset: 0, length: 100, rawLength: 90),
            PackEntry(type: .tree, id: BlobID(hash(2)), offset: 100, length: 50, rawLength: 200),
        ])
        let bytes = h.encoded()
        XCTAssertEqual(try PackHeader(decoding: bytes), h)
        XCTAssertThrowsError(try PackHeader(decoding: Array(bytes.dropLast())))
        var bad = bytes
        bad[0] = 9
        XCTAssertThrowsError(try PackHeader(decoding: bad))
        let trailer = PackLayout.trailer(headerLength: 77)
        XCTAssertEqual(try PackLayout.headerRange(packLength: 1000, trailer: trailer), 915..<992)
        XCTAssertThrowsError(try PackLayout.headerRange(packLength: 50, trailer: trailer))
        XCTAssertThrowsError(try PackLayout.headerRange(packLength: 1000, trailer: [0, 0, 0, 1, 0, 0, 0, 0]))
    }

    func testIndexRoundTrip() throws {
        let idx = IndexFile(
            packs: [
                .init(
                    id: PackID(hash(9)),
                    entries: [PackEntry(type: .data, id: BlobID(hash(4)), offset: 0, length: 10, rawLength: 10)]
                ),
                .init(id: PackID(hash(8)), entries: []),
            ],
            supersedes: [hash(5)]
        )
        XCTAssertEqual(try IndexFile(decoding: idx.encoded()), idx)
    }

    func testTreeWithOddNamesRoundTripsAndSorts() throws {
        let names: [[UInt8]] = [[0xff, 0xfe, 0x41], Array("new\nline".utf8), Array("Résumé".utf8), Array("a".utf8)]
        var nodes = [Node]()
        for (i, name) in names.enumerated() {
            nodes.append(
                Node(
                    name: name,
                    kind: i == 0 ? .file : .directory,
                    mode: 0o4755,
                    uid: 1000,
                    gid: 100,
                    user: "alice",
                    group: "users",
                    size: 5_000_000_000,
                    mtime: Timestamp(seconds: -5, nanoseconds: 999_999_999),
                    atime: Timestamp(seconds: 1_700_000_000, nanoseconds: 1),
                    inode: 42,
                    device: 2049,
                    links: 2,
                    rdev: 0,
                    linkTarget: [0x80, 0x2f],
                    xattrs: [ExtendedAttribute(name: Array("user.x".utf8), value: [0, 1, 2])],
                    content: i == 0 ? [.chunk(ChunkID(hash(1)), length: 1 << 20), .hole(length: 1 << 33)] : [],
                    subtree: i == 0 ? nil : TreeID(hash(UInt8(i)))
                )
            )
        }
        let tree = Tree(nodes: nodes)
        XCTAssertEqual(tree.nodes.map(\.name), names.sorted { $0.lexicographicallyPrecedes($1) })
        let decoded = try Tree(decoding: tree.encoded())
        XCTAssertEqual(decoded, tree)
        XCTAssertEqual(decoded.node(named: [0xff, 0xfe, 0x41])?.content.count, 2)
        XCTAssertNil(decoded.node(named: Array("missing".utf8)))
        XCTAssertEqual(
            decoded.nodes.first { $0.kind == .file }?.content.reduce(0) { $0 + $1.length },
            (1 << 20) + (1 << 33)
        )
    }

    func testTreeRejectsUnsortedAndTrailingBytes() {
        var w = BinaryWriter()
        w.u8(1)
        w.uvarint(2)
        let one = Tree(nodes: [Node(name: Array("b".utf8), kind: .fifo)]).encoded()
        let two = Tree(nodes: [Node(name: Array("a".utf8), kind: .fifo)]).encoded()
        w.raw(one.dropFirst(2))
        w.raw(two.dropFirst(2))
        XCTAssertThrowsError(try Tree(decoding: w.bytes))
        XCTAssertThrowsError(try Tree(decoding: one + [0]))
    }

    func testRecordsRoundTrip() throws {
        let snap = Snapshot(
            time: Timestamp(seconds: 1_764_000_000, nanoseconds: 5),
            hostname: "h",
            username: "u",
            uid: 1,
            gid: 2,
            paths: ["/etc"],
            tags: ["daily"],
            parent: SnapshotID(hash(1)),
            tree: TreeID(hash(2)),
            summary: BackupSummary(),
            programVersion: "test"
        )
        XCTAssertEqual(try Snapshot(decoding: snap.encoded()), snap)
        XCTAssertEqual(snap.encoded(), snap.encoded())
        let key = MasterKeyMaterial(
            encryptionKey: .init(repeating: 1, count: 32),
            idKey: .init(repeating: 2, count: 32),
            chunkerSeed: .init(repeating: 3, count: 32)
        )
        XCTAssertEqual(try MasterKeyMaterial(decoding: key.encoded()), key)
        XCTAssertThrowsError(try MasterKeyMaterial(decoding: [2] + key.encoded().dropFirst()))
        let slot = KeySlot(
            created: Timestamp(seconds: 1, nanoseconds: 0),
            hostname: "h",
            username: "u",
            n: 32768,
            r: 8,
            p: 1,
            salt: [1, 2, 3],
            data: [4, 5]
        )
        let decoded = try KeySlot(decoding: slot.encoded())
        XCTAssertEqual(decoded.saltBytes, [1, 2, 3])
        XCTAssertEqual(decoded.dataBytes, [4, 5])
        XCTAssertThrowsError(try Snapshot(decoding: Array("{}".utf8)))
    }

    /// A label is an optional JSON key: a slot without one encodes as slots did before labels (no `label` key,
    /// the same bytes, so the same SHA-256 name), old slots decode with none, and a labelled slot round-trips.
    func testKeySlotLabelIsOptionalAndBackwardCompatible() throws {
        let old = Array(
            ("{\"created\":{\"ns\":0,\"s\":1},\"data\":\"BAU=\",\"hostname\":\"h\",\"kdf\":\"scrypt\","
                + "\"n\":32768,\"p\":1,\"r\":8,\"salt\":\"AQID\",\"username\":\"u\",\"version\":1}").utf8
        )
        let decoded = try KeySlot(decoding: old)
        XCTAssertNil(decoded.label)
        XCTAssertEqual(decoded.encoded(), old, "an unlabelled slot encodes to the bytes of before")
        var slot = KeySlot(
            created: Timestamp(seconds: 1, nanoseconds: 0),
            hostname: "h",
            username: "u",
            n: 32768,
            r: 8,
            p: 1,
            salt: [1, 2, 3],
            data: [4, 5]
        )
        XCTAssertEqual(slot.encoded(), old)
        slot.label = "laptop \u{1F4BB} of A. B."
        let labelled = slot.encoded()
        XCTAssertTrue(
            String(decoding: labelled, as: UTF8.self).contains(
                "\"kdf\":\"scrypt\",\"label\":\"laptop \u{1F4BB} of A. B.\",\"n\":32768"
            ),
            "in its sorted place: \(String(decoding: labelled, as: UTF8.self))"
        )
        XCTAssertEqual(try KeySlot(decoding: labelled), slot)
    }

    func testKeySlotLabelRules() {
        XCTAssertNil(KeySlot.problem(withLabel: "backup server (root)"))
        XCTAssertNil(KeySlot.problem(withLabel: "ключ Ärger \u{1F511}"))
        XCTAssertNil(KeySlot.problem(withLabel: String(repeating: "x", count: 200)))
        XCTAssertNil(KeySlot.problem(withLabel: String(repeating: "é", count: 100)), "200 bytes of UTF-8")
        XCTAssertNotNil(KeySlot.problem(withLabel: String(repeating: "é", count: 101)), "202 bytes, 101 characters")
        XCTAssertNotNil(KeySlot.problem(withLabel: String(repeating: "x", count: 201)))
        XCTAssertNotNil(KeySlot.problem(withLabel: ""))
        for bad in ["a\nb", "a\tb", "a\rb", "\u{0}", "a\u{7F}", "a\u{85}b", "a\u{2028}b", "\u{1B}[31mred"] {
            XCTAssertNotNil(KeySlot.problem(withLabel: bad), bad.debugDescription)
        }
        XCTAssertEqual(
            KeySlot.problem(withLabel: "a\nb"),
            "a key label must not hold control characters or line breaks; this one holds U+000A"
        )
    }

    /// Names sort by their bytes; lookups and "first name from" searches are binary searches over them.
    func testTreeSearchByName() {
        let names: [[UInt8]] = [
            Array("a".utf8), Array("b".utf8), Array("b\u{0}".utf8.dropLast()) + [0xFF], Array("d".utf8),
        ]
        let tree = Tree(nodes: names.reversed().map { Node(name: $0, kind: .fifo) })
        XCTAssertEqual(tree.nodes.map(\.name), names)
        XCTAssertEqual(tree.node(named: [0x62, 0xFF])?.name, [0x62, 0xFF])
        XCTAssertNil(tree.node(named: Array("c".utf8)))
        XCTAssertEqual(tree.firstIndex(from: Array("b".utf8)), 1)
        XCTAssertEqual(tree.firstIndex(from: Array("b".utf8), inclusive: false), 2)
        XCTAssertEqual(tree.firstIndex(from: Array("c".utf8)), 3)
        XCTAssertEqual(tree.firstIndex(from: Array("e".utf8)), 4)
        XCTAssertEqual(tree.firstIndex(from: []), 0)
    }
}
