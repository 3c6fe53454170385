import Foundation
import PolyadCrypto
import PolyadFormat
import PolyadStorage
import PolyadTestSupport
import Synchronization
import XCTest

@testable import PolyadRepository

/// `verify` names as affected only the snapshots that reference a blob that is actually damaged, and does not
/// call the duplicate packs of two concurrent backups "left by an interrupted backup".
final class VerifyBlameTests: XCTestCase {
    /// The tree of `path` (absolute, below the snapshot's root) in `snapshot`.
    private func treeID(of path: String, in snapshot: Snapshot, _ repo: Repository) throws -> TreeID {
        var id = snapshot.tree
        for component in path.split(separator: "/") {
            let tree = try repo.loadTree(id)
            let node = try XCTUnwrap(
                tree.nodes.first { $0.name == Array(component.utf8) },
                "no \(component) in \(path)"
            )
            id = try XCTUnwrap(node.subtree, "\(component) is not a folder")
        }
        return id
    }

    private func packPath(_ pack: PackID, _ scratch: Scratch) -> String {
        let hex = pack.hash.hex
        return scratch.sub("store/data/\(hex.prefix(2))/\(hex)")
    }

    private func files(under root: String) -> [String: Data] {
        var out = [String: Data]()
        for case let rel as String in FileManager.default.enumerator(atPath: root)?.allObjects ?? [] {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), !isDir.boolValue {
                out[rel] = FileManager.default.contents(atPath: root + "/" + rel)
            }
        }
        return out
    }

    /// Snapshot A, then B with one folder changed: A's tree pack holds the old folder's tree (A only) and the
    /// unchanged folder's tree (A and B). A flipped byte in the A-only tree blob makes the pack's SHA-256 wrong,
    /// but only A references a damaged blob: B is not named, and restores complete and identical.
    func testDamagedTreeUsedOnlyByTheOlderSnapshotBlamesOnlyIt() throws {
        let scratch = Scratch()
        let manager = try scratch.manager(verify: false)
        try manager.initialize()
        scratch.write("src/kept/k.txt", textBytes(5_000))
        scratch.write("src/changed/c.txt", textBytes(3_000))
        let a = try manager.createBackup(paths: [scratch.sub("src")])
        scratch.write("src/changed/c.txt", textBytes(4_000))
        let b = try manager.createBackup(paths: [scratch.sub("src")])
        let repo = try manager.repository()

        // The layout this test needs: one pack holds a tree only A uses and a tree B uses too.
        let changedInA = try treeID(of: scratch.sub("src/changed"), in: a.snapshot, repo)
        let changedInB = try treeID(of: scratch.sub("src/changed"), in: b.snapshot, repo)
        let keptInA = try treeID(of: scratch.sub("src/kept"), in: a.snapshot, repo)
        let keptInB = try treeID(of: scratch.sub("src/kept"), in: b.snapshot, repo)
        XCTAssertNotEqual(changedInA, changedInB)
        XCTAssertEqual(keptInA, keptInB, "B shares the unchanged folder's tree")
        let loc = try XCTUnwrap(repo.index.lookup(changedInA.blob))
        XCTAssertEqual(repo.index.lookup(keptInA.blob)?.pack, loc.pack, "both trees are in A's tree pack")
        XCTAssertTrue(try manager.verify(options: VerifyOptions(readData: true)).isClean)

        try flipByte(at: Int(loc.offset) + Int(loc.length) / 2, in: packPath(loc.pack, scratch))

        for readData in [false, true] {
            let report = try manager.verify(options: VerifyOptions(readData: readData))
            let what = "readData: \(readData), damaged: \(report.damaged), affected: \(report.affected)"
            XCTAssertFalse(report.isClean, what)
            XCTAssertTrue(report.damaged.contains { $0.object == "data/\(loc.pack.hash.hex)" }, what)
            XCTAssertTrue(
                report.affected.contains { $0.hasPrefix("snapshot \(a.id.short):") && $0.contains("changed") },
                what
            )
            XCTAssertFalse(report.affected.contains { $0.contains(b.id.short) }, what)
            XCTAssertFalse(report.affected.contains { $0.contains("kept") }, what)
            XCTAssertEqual(report.affectedSnapshots, [a.id], what)
        }
        // --read-data names the pack (its SHA-256) and the one blob that fails, not the blobs that are intact.
        let full = try manager.verify(options: VerifyOptions(readData: true))
        XCTAssertTrue(full.damaged.contains { $0.problem.contains("SHA-256") }, "\(full.damaged)")
        XCTAssertTrue(full.damaged.contains { $0.problem.contains(changedInA.hash.shortHex) }, "\(full.damaged)")
        XCTAssertFalse(full.damaged.contains { $0.problem.contains(keptInA.hash.shortHex) }, "\(full.damaged)")

        let target = scratch.sub("restored")
        let result = try manager.restoreBackup("latest", to: target)
        XCTAssertFalse(result.damaged, "\(result.errors)")
        XCTAssertEqual(result.errors, [])
        let restored = files(under: target + scratch.sub("src"))
        XCTAssertEqual(restored.count, 2)
        XCTAssertEqual(restored, files(under: scratch.sub("src")), "B restores complete and identical")
    }

    /// A pack whose header is damaged is named, but its blobs are checked one by one: they all authenticate,
    /// so no snapshot is affected.
    func testDamagedPackHeaderWithIntactBlobsAffectsNoSnapshot() throws {
        let scratch = Scratch()
        let manager = try scratch.manager(verify: false)
        try manager.initialize()
        scratch.write("src/one/a.txt", textBytes(2_000))
        scratch.write("src/two/b.txt", textBytes(2_500))
        let a = try manager.createBackup(paths: [scratch.sub("src")])
        let repo = try manager.repository()
        let loc = try XCTUnwrap(repo.index.lookup(a.snapshot.tree.blob))
        let path = packPath(loc.pack, scratch)
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        try flipByte(at: size - PackLayout.trailerLength - 3, in: path)  // inside the sealed header

        for readData in [false, true] {
            let report = try manager.verify(options: VerifyOptions(readData: readData))
            let what = "readData: \(readData), damaged: \(report.damaged), affected: \(report.affected)"
            XCTAssertFalse(report.isClean, what)
            XCTAssertTrue(report.damaged.contains { $0.object == "data/\(loc.pack.hash.hex)" }, what)
            XCTAssertEqual(report.affected, [], what)
            XCTAssertEqual(report.affectedSnapshots, [], what)
        }
        // A missing pack still blames every blob in it.
        try FileManager.default.removeItem(atPath: path)
        let report = try manager.verify(options: VerifyOptions())
        XCTAssertTrue(
            report.damaged.contains { $0.object == "data/\(loc.pack.hash.hex)" && $0.problem.contains("missing") }
        )
        XCTAssertEqual(report.affectedSnapshots, [a.id])
        XCTAssertTrue(report.affected.contains { $0.contains("the whole snapshot") }, "\(report.affected)")
    }

    /// Two backups of the same folder at once (two processes, here two managers with their own index): both
    /// started before either wrote its index, so both store every blob, and each writes an index file that lists
    /// its own packs. The in-memory index keeps one location per blob, so one backup's packs get no entries;
    /// verify must not call them unreferenced ("left by an interrupted backup"): an index file lists them.
    func testConcurrentBackupsOfTheSamePathLeaveDuplicatePacksNotInterruptedOnes() throws {
        let scratch = Scratch()
        try scratch.manager().initialize()
        // Above the chunker's minimum: it reports progress.
        scratch.write("src/big.bin", pseudoRandomBytes(1_200_000, seed: 11))
        scratch.write("src/sub/small.txt", textBytes(4_000))
        let one = try scratch.manager()
        let two = try scratch.manager()
        _ = try one.repository()
        _ = try two.repository()

        // Each backup waits in its first progress report (after it looked for a parent snapshot, before it
        // wrote anything but packs) until the other one got there too: they truly overlap.
        let meeting = Rendezvous(parties: 2)
        let results = Mutex<[Result<BackupResult, any Error>]>([])
        let done = DispatchGroup()
        let source = scratch.sub("src")
        for (party, manager) in [one, two].enumerated() {
            done.enter()
            Thread {
                let r = Result { () throws -> BackupResult in
                    try manager.createBackup(paths: [source]) { _ in meeting.arrive(party) }
                }
                results.withLock { $0.append(r) }
                done.leave()
            }.start()
        }
        done.wait()
        let backups = try results.withLock { $0 }.map { try $0.get() }
        XCTAssertEqual(backups.count, 2)
        XCTAssertEqual(
            backups.map(\.snapshot.summary.blobsAdded),
            [backups[0].snapshot.summary.blobsAdded, backups[0].snapshot.summary.blobsAdded]
        )
        XCTAssertGreaterThan(backups[0].snapshot.summary.blobsAdded, 0)
        XCTAssertEqual(backups.map(\.snapshot.parent), [nil, nil], "neither saw the other's snapshot")
        XCTAssertTrue(backups[0].packsWritten.isDisjoint(with: backups[1].packsWritten))

        // What the store holds: every pack file is listed by an index file; the merged index attributes the
        // blobs of one backup's packs to the other's.
        let fresh = try scratch.manager()
        let repo = try fresh.repository()
        let packFiles = Set(try repo.backend.list(.data).compactMap { Hash256(hex: $0.handle.name).map(PackID.init) })
        XCTAssertEqual(packFiles, backups[0].packsWritten.union(backups[1].packsWritten))
        var listed = Set<PackID>()
        for info in try repo.backend.list(.index) {
            let file = try IndexFile(decoding: repo.loadObject(info.handle, aad: AdditionalData.index))
            listed.formUnion(file.packs.map(\.id))
        }
        XCTAssertEqual(listed, packFiles, "the index files list every pack")
        let attributed = Set(repo.index.entriesByPack().keys)
        XCTAssertTrue(
            attributed == backups[0].packsWritten || attributed == backups[1].packsWritten,
            "the merged index attributes every blob to one backup's packs"
        )

        for readData in [false, true] {
            let report = try fresh.verify(options: VerifyOptions(readData: readData))
            XCTAssertTrue(report.isClean, "\(report.damaged)")
            XCTAssertEqual(report.unreferencedPacks, 0, "not left by an interrupted backup")
            XCTAssertEqual(report.duplicatePacks, backups[1].packsWritten.count)
            XCTAssertEqual(report.packsChecked, packFiles.count)
            if readData { XCTAssertEqual(report.packsRead, packFiles.count) }
        }
        // A pack no index lists is still unreferenced.
        let orphan = Array(repeating: UInt8(7), count: 64)
        try repo.backend.save(ObjectHandle(kind: .data, name: Hash256(SHA256.hash(orphan)).hex), orphan)
        XCTAssertEqual(try fresh.verify(options: VerifyOptions()).unreferencedPacks, 1)
    }
}

/// Lets each of `parties` threads wait, the first time it arrives, until all have arrived.
private final class Rendezvous: Sendable {
    private let parties: Int
    private let arrived = Mutex(Set<Int>())
    private let all = DispatchSemaphore(value: 0)

    init(parties: Int) { self.parties = parties }

    func arrive(_ party: Int) {
        let (first, count) = arrived.withLock { a in (a.insert(party).inserted, a.count) }
        guard first else { return }
        if count == parties { for _ in 1..<parties { all.signal() } } else { all.wait() }
    }
}
