import Foundation
import PolyadConfig
import PolyadFormat
import PolyadService
import PolyadTestSupport
import XCTest

@testable import PolyadRepository

final class BackupManagerTests: XCTestCase {
    /// The seed's Python example, line by line:
    ///     manager = BackupManager(config)
    ///     backup_id = manager.create_backup(data, metadata)
    ///     assert manager.verify_backup_integrity(backup_id)
    ///     restored = manager.restore_backup(backup_id)
    ///     stats = manager.get_backup_statistics()
    func testSeedExample() throws {
        let scratch = Scratch()
        let manager = try scratch.manager(level: 9)
        try manager.initialize()
        let data = textBytes(3_000_000) + pseudoRandomBytes(1_500_000, seed: 1)
        let backup = try manager.createBackup(data: data, metadata: ["name": "report.bin", "source": "seed example"])
        let report = try manager.verifyBackupIntegrity(backup.id.hash.hex)
        XCTAssertTrue(report.isClean, "\(report.damaged)")
        XCTAssertGreaterThan(report.blobsRead, 0)
        XCTAssertEqual(try manager.readData(backup.id.short), data)
        let target = scratch.sub("restored")
        let result = try manager.restoreBackup(backup.id.short, to: target, paths: ["**/report.bin"])
        XCTAssertEqual(result.files, 1)
        let found =
            FileManager.default.enumerator(atPath: target)?.compactMap { $0 as? String }.filter {
                $0.hasSuffix("report.bin")
            } ?? []
        XCTAssertEqual(found.count, 1)
        XCTAssertEqual(FileManager.default.contents(atPath: target + "/" + found[0]).map { [UInt8]($0) }, data)
        let stats = try manager.backupStatistics()
        XCTAssertEqual(stats.snapshotCount, 1)
        XCTAssertEqual(stats.latestLogicalBytes, UInt64(data.count))
        XCTAssertGreaterThan(stats.compressionRatio, 1.2, "text compresses at level 9")
        XCTAssertEqual(try manager.snapshots().first?.metadata["source"], "seed example")
    }

    /// A mount opens the store with the index loading in the background: reads wait for it, and blobs of a
    /// backup made afterwards by another process are found once a lookup misses.
    func testIndexLoadedInTheBackgroundAndIndexFilesWrittenLater() throws {
        let scratch = Scratch()
        let writer = try scratch.manager()
        try writer.initialize()
        let first = pseudoRandomBytes(2_000_000, seed: 7)
        let one = try writer.createBackup(data: first, metadata: ["name": "one.bin"])
        let reader = try scratch.manager()
        _ = try reader.repository(indexInBackground: true)
        XCTAssertEqual(try reader.readData(one.id.short), first)
        let second = pseudoRandomBytes(1_000_000, seed: 8)
        let two = try writer.createBackup(data: second, metadata: ["name": "two.bin"])
        XCTAssertEqual(
            try reader.readData(two.id.short),
            second,
            "index files written after the load are read on a miss"
        )
    }

    func testDeduplicationAcrossSnapshotsAndFiles() throws {
        let scratch = Scratch()
        let manager = try scratch.manager()
        try manager.initialize()
        let big = pseudoRandomBytes(5_000_000, seed: 7)
        scratch.write("src/a.bin", big)
        scratch.write("src/copy.bin", big)
        let first = try manager.createBackup(paths: [scratch.sub("src")])
        XCTAssertLessThan(first.snapshot.summary.addedBytes, 5_300_000, "the copy is deduplicated")
        let second = try manager.createBackup(paths: [scratch.sub("src")])
        XCTAssertEqual(second.snapshot.summary.filesUnchanged, 2, "files cache")
        XCTAssertEqual(second.snapshot.summary.blobsAdded, 0)
        XCTAssertEqual(second.snapshot.parent, first.id)
        // An insertion near the start only changes nearby chunks.
        scratch.write("src/a.bin", Array(big[0..<1000]) + [1, 2, 3] + Array(big[1000...]))
        let third = try manager.createBackup(paths: [scratch.sub("src")])
        XCTAssertEqual(third.snapshot.summary.filesChanged, 1)
        XCTAssertLessThan(third.snapshot.summary.addedBytes, 3_000_000)
    }

    func testWrongPassphraseAndMissingStore() throws {
        let scratch = Scratch()
        XCTAssertThrowsError(try scratch.manager().snapshots()) { error in
            XCTAssertEqual((error as? RepositoryError)?.code, .storeMissing)
            XCTAssertEqual((error as? RepositoryError)?.exitCode, .storeMissing)
        }
        try scratch.manager().initialize()
        XCTAssertThrowsError(try scratch.manager(passphrase: "wrong").snapshots()) { error in
            XCTAssertEqual((error as? RepositoryError)?.exitCode, .wrongPassphrase)
        }
        XCTAssertThrowsError(try scratch.manager().initialize()) { error in
            XCTAssertEqual((error as? RepositoryError)?.code, .storeExists)
        }
    }

    func testKeySlots() throws {
        let scratch = Scratch()
        let manager = try scratch.manager(passphrase: "one")
        let repo = try manager.initialize()
        let added = try repo.addKey(passphrase: Array("two".utf8))
        XCTAssertEqual(try repo.keys().count, 2)
        XCTAssertNoThrow(try scratch.manager(passphrase: "two").snapshots())
        XCTAssertThrowsError(try repo.removeKey(repo.key.slot), "the slot in use is refused")
        let opened = try scratch.manager(passphrase: "two").repository()
        XCTAssertEqual(opened.key.slot, added)
        _ = try opened.changePassphrase(to: Array("three".utf8))
        XCTAssertThrowsError(try scratch.manager(passphrase: "two").snapshots())
        XCTAssertNoThrow(try scratch.manager(passphrase: "three").snapshots())
        XCTAssertNoThrow(try scratch.manager(passphrase: "one").snapshots())
    }

    func testFlippedByteInPackIsFoundAndRefused() throws {
        let scratch = Scratch()
        let manager = try scratch.manager(verify: false)
        try manager.initialize()
        scratch.write("src/other.txt", textBytes(10_000))
        _ = try manager.createBackup(paths: [scratch.sub("src")])  // other.txt's chunk lands in a pack of its own
        scratch.write("src/file.bin", pseudoRandomBytes(2_000_000, seed: 3))
        let backup = try manager.createBackup(paths: [scratch.sub("src")])
        XCTAssertTrue(try manager.verify(options: VerifyOptions(readData: true)).isClean)
        // Flip a byte inside the biggest pack (the data pack).
        let dataDir = scratch.sub("store/data")
        let packs = try FileManager.default.subpathsOfDirectory(atPath: dataDir).filter { $0.count > 60 }
        let biggest = try XCTUnwrap(
            packs.max {
                (try? FileManager.default.attributesOfItem(atPath: dataDir + "/" + $0)[.size] as? Int ?? 0)!
                    < (try? FileManager.default.attributesOfItem(atPath: dataDir + "/" + $1)[.size] as? Int ?? 0)!
            }
        )
        let path = dataDir + "/" + biggest
        try flipByte(at: 1000, in: path)
        let report = try manager.verify(options: VerifyOptions(readData: true))
        XCTAssertFalse(report.isClean)
        XCTAssertTrue(report.damaged.contains { $0.object.hasSuffix((biggest as NSString).lastPathComponent) })
        XCTAssertTrue(report.affected.contains { $0.contains("file.bin") }, "\(report.affected)")
        let result = try manager.restoreBackup(backup.id.short, to: scratch.sub("out"))
        XCTAssertTrue(result.damaged)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: scratch.sub("out") + scratch.sub("src/file.bin")),
            "a damaged file is not left behind half-written"
        )
        XCTAssertTrue(FileManager.default.fileExists(atPath: scratch.sub("out") + scratch.sub("src/other.txt")))
    }
}
