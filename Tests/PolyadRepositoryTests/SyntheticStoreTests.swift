import Foundation
import PolyadCrypto
import PolyadFormat
import PolyadStorage
import PolyadTestSupport
import XCTest

@testable import PolyadRepository

/// A store with a synthetic index of any size, for prune's memory at scale (`Scripts/bench-prune-scale` builds
/// one of 10 M chunks with `POLYAD_SYNTHETIC_STORE` and `POLYAD_SYNTHETIC_CHUNKS`, then measures the real
/// `polyad prune` on it). Data packs are listed in the index but not written (a prune reads only the trees);
/// half of them are wholly used by the snapshot's trees, half wholly unused, so a prune drops half the index
/// and repacks nothing. Here, at a small size, the prune's figures are checked.
final class SyntheticStoreTests: XCTestCase {
    static let passphrase = "synthetic"
    static let entriesPerPack = 4_000
    static let chunksPerFile = 1_000
    static let filesPerTree = 50

    /// Builds the store at `path` with `chunks` data chunks; returns the packs used and unused.
    static func build(at path: String, chunks: Int) throws -> (used: Int, unused: Int) {
        let repo = try Repository.create(
            backend: LocalBackend(path: path),
            passphrase: Array(passphrase.utf8),
            keyParameters: ErrorCauseTests.fast
        )
        func chunkID(_ i: Int) -> BlobID {
            var n = UInt64(i).littleEndian
            return BlobID(Hash256(withUnsafeBytes(of: &n) { SHA256.hash(Array($0)) }))
        }
        let packs = (chunks + entriesPerPack - 1) / entriesPerPack
        var writer = IndexWriter(repository: repo)
        var usedChunks = [Int]()
        for p in 0..<packs {
            var seed = UInt64(p).littleEndian
            let pack = PackID(Hash256(withUnsafeBytes(of: &seed) { SHA256.hash(Array("pack".utf8) + Array($0)) }))
            let range = (p * entriesPerPack)..<min(chunks, (p + 1) * entriesPerPack)
            let entries = range.enumerated().map { k, i in
                PackEntry(type: .data, id: chunkID(i), offset: UInt32(k * 4_096), length: 4_096, rawLength: 8_192)
            }
            try writer.append(IndexFile.Pack(id: pack, entries: entries))
            if p % 2 == 0 { usedChunks += range }
        }
        _ = try writer.finish()

        // Trees: files of 1,000 chunks, 50 files a folder, the folders under one root.
        let store = ChunkStore(repository: repo, level: 1, packSize: 16 << 20)
        var folders = [Node]()
        var files = [Node]()
        func storeTree(_ nodes: [Node]) throws -> TreeID {
            let bytes = Tree(nodes: nodes).encoded()
            let id = repo.blobID(bytes)
            try store.storeTree(bytes, id: id)
            return TreeID(id.hash)
        }
        func flushFolder() throws {
            guard !files.isEmpty else { return }
            let id = try storeTree(files)
            folders.append(Node(name: Array("folder-\(folders.count)".utf8), kind: .directory, subtree: id))
            files = []
        }
        var start = 0
        while start < usedChunks.count {
            let slice = usedChunks[start..<min(usedChunks.count, start + chunksPerFile)]
            files.append(
                Node(
                    name: Array("file-\(files.count)".utf8),
                    kind: .file,
                    size: UInt64(slice.count * 8_192),
                    content: slice.map { .chunk(ChunkID(chunkID($0).hash), length: 8_192) }
                )
            )
            if files.count == filesPerTree { try flushFolder() }
            start += chunksPerFile
        }
        try flushFolder()
        let root = try storeTree(folders)
        try store.finish()
        try repo.saveIndex(for: store.treePacker.packs)
        try repo.saveSnapshot(
            Snapshot(
                time: Clock.now(),
                hostname: "synthetic",
                username: "u",
                uid: 0,
                gid: 0,
                paths: ["/synthetic"],
                tags: [],
                parent: nil,
                tree: root,
                summary: BackupSummary(),
                metadata: [:],
                programVersion: "test"
            )
        )
        return ((packs + 1) / 2, packs / 2)
    }

    func testBuildsAStoreOfTheSizeAskedAndPruneDropsTheUnusedHalf() throws {
        let env = ProcessInfo.processInfo.environment
        let scratch = Scratch()
        let path = env["POLYAD_SYNTHETIC_STORE"] ?? scratch.sub("store")
        let chunks = env["POLYAD_SYNTHETIC_CHUNKS"].flatMap(Int.init) ?? 40_000
        let (used, unused) = try Self.build(at: path, chunks: chunks)
        print("synthetic store: \(chunks) chunks in \(used + unused) packs (\(unused) unused) at \(path)")
        guard env["POLYAD_SYNTHETIC_STORE"] == nil else { return }  // built for Scripts/bench-prune-scale

        let repo = try Repository.open(backend: LocalBackend(path: path), passphrase: Array(Self.passphrase.utf8))
        let dry = try Pruner(repository: repo, lock: nil).run(dryRun: true)
        XCTAssertEqual(dry.repackedPacks, 0)
        XCTAssertEqual(dry.partlyUsedPacks, 0)
        XCTAssertEqual(dry.packs, used + unused + 1, "the data packs and one tree pack")
        XCTAssertEqual(dry.unusedPacks, unused)
        XCTAssertEqual(dry.bytesFreed, 0, "the unused packs are not in the store: only the index shrinks")
        let blobs = repo.index.count
        XCTAssertGreaterThan(blobs, chunks)

        let run = try Pruner(repository: repo, lock: nil).run(dryRun: false)
        XCTAssertEqual(run.unusedPacks, unused)
        let reopened = try Repository.open(backend: LocalBackend(path: path), passphrase: Array(Self.passphrase.utf8))
        try reopened.loadIndex()
        XCTAssertEqual(reopened.index.count, blobs - unused * Self.entriesPerPack, "the unused packs left the index")
        XCTAssertEqual(reopened.index.packs.count, used + 1)
    }
}
