import Foundation
import PolyadFormat
import PolyadStorage
import PolyadTestSupport
import XCTest

@testable import PolyadRepository

/// The index honours `supersedes` (the format article's rule for prune): an index file another one supersedes
/// is left out, whether both are there when the store is opened or the superseding file appears while it is
/// open.
final class SupersededIndexTests: XCTestCase {
    /// A store with two runs of blobs, each in its own pack and index file.
    private func store(_ scratch: Scratch) throws -> (LocalBackend, [(BlobID, [UInt8])], [(BlobID, [UInt8])]) {
        let backend = LocalBackend(path: scratch.sub("store"))
        let repo = try Repository.create(
            backend: backend,
            passphrase: Array("pw".utf8),
            keyParameters: ErrorCauseTests.fast
        )
        var runs = [[(BlobID, [UInt8])]]()
        for run in 0..<2 {
            let chunks = ChunkStore(repository: repo, level: 6, packSize: 1 << 20)
            var blobs = [(BlobID, [UInt8])]()
            for i in 0..<10 {
                let bytes = pseudoRandomBytes(4_096, seed: UInt64(run * 100 + i + 1))
                let id = repo.blobID(bytes)
                blobs.append((id, bytes))
                try chunks.storeData(bytes, id: id)
            }
            try chunks.finish()
            try repo.saveIndex(for: chunks.dataPacker.packs)
            runs.append(blobs)
        }
        return (backend, runs[0], runs[1])
    }

    private func open(_ backend: LocalBackend) throws -> Repository {
        try Repository.open(backend: backend, passphrase: Array("pw".utf8))
    }

    /// Writes what a prune that dropped the first run's pack would: one index file with the second run's pack,
    /// superseding both old files.
    private func supersede(_ repo: Repository) throws {
        var keep = [IndexFile.Pack]()
        var old = [Hash256]()
        for info in try repo.list(.index) {
            old.append(Hash256(hex: info.handle.name)!)
            let file = try IndexFile(decoding: try repo.loadObject(info.handle, aad: AdditionalData.index))
            keep += file.packs
        }
        XCTAssertEqual(old.count, 2)
        let dropped = try XCTUnwrap(repo.index.lookup(repo.blobID(pseudoRandomBytes(4_096, seed: 1)))).pack
        keep.removeAll { $0.id == dropped }
        try repo.saveObject(.index, IndexFile(packs: keep, supersedes: old).encoded(), aad: AdditionalData.index)
    }

    func testSupersededFilesAreLeftOutWhenTheStoreOpens() throws {
        let scratch = Scratch()
        let (backend, first, second) = try store(scratch)
        try supersede(try open(backend))
        let repo = try open(backend)
        for (id, _) in first { XCTAssertNil(repo.index.lookup(id), "the dropped pack's blobs are gone") }
        for (id, bytes) in second { XCTAssertEqual(try repo.loadBlob(id), bytes) }
        XCTAssertEqual(repo.index.packs.count, 1)
    }

    func testASupersedingFileWrittenWhileOpenReplacesWhatWasRead() throws {
        let scratch = Scratch()
        let (backend, first, second) = try store(scratch)
        let reader = try open(backend)
        XCTAssertNotNil(reader.index.lookup(first[0].0))
        try supersede(try open(backend))
        try reader.loadIndex()
        for (id, _) in first { XCTAssertNil(reader.index.lookup(id), "read again without the superseded files") }
        for (id, bytes) in second { XCTAssertEqual(try reader.loadBlob(id), bytes) }
    }
}
