import Dispatch
import Foundation
import PolyadFormat
import PolyadStorage
import PolyadTestSupport
import Synchronization
import XCTest

@testable import PolyadRepository

/// A local store that says its reads are round trips (as S3 does), counts the loads of packs, and can damage
/// the bytes of the next pack load.
final class RemoteLikeBackend: Backend {
    let inner: LocalBackend
    let packLoads = Atomic<Int>(0)
    let damageNextPackLoad = Atomic<Bool>(false)

    init(path: String) { inner = LocalBackend(path: path) }

    var location: String { inner.location }
    var readsAreRemote: Bool { true }
    func create() throws(StorageError) { try inner.create() }
    func exists() throws(StorageError) -> Bool { try inner.exists() }
    func save(_ handle: ObjectHandle, _ data: UnsafeRawBufferPointer) throws(StorageError) {
        try inner.save(handle, data)
    }
    func size(_ handle: ObjectHandle) throws(StorageError) -> Int64 { try inner.size(handle) }
    func remove(_ handle: ObjectHandle) throws(StorageError) { try inner.remove(handle) }
    func list(_ kind: ObjectKind) throws(StorageError) -> [ObjectInfo] { try inner.list(kind) }

    func load(_ handle: ObjectHandle, offset: Int64, length: Int?) throws(StorageError) -> [UInt8] {
        var bytes = try inner.load(handle, offset: offset, length: length)
        guard handle.kind == .data else { return bytes }
        packLoads.add(1, ordering: .relaxed)
        if damageNextPackLoad.exchange(false, ordering: .relaxed) { bytes[bytes.count / 2] ^= 0xFF }
        return bytes
    }
}

/// Blob reads on a store whose reads are round trips go through `PackSpans`: one request serves the blobs that
/// follow in the pack, concurrent readers share it, and a span with damaged bytes is not kept.
final class PackSpanTests: XCTestCase {
    private func store(blobs count: Int) throws -> (Repository, RemoteLikeBackend, [(BlobID, [UInt8])], Scratch) {
        let scratch = Scratch()
        let backend = RemoteLikeBackend(path: scratch.sub("store"))
        let repo = try Repository.create(
            backend: backend,
            passphrase: Array("pw".utf8),
            keyParameters: ErrorCauseTests.fast
        )
        let chunks = ChunkStore(repository: repo, level: 6, packSize: 1 << 20)
        var blobs = [(BlobID, [UInt8])]()
        for i in 0..<count {
            let bytes = pseudoRandomBytes(16 << 10, seed: UInt64(i + 1))
            let id = repo.blobID(bytes)
            blobs.append((id, bytes))
            try chunks.storeData(bytes, id: id)
        }
        try chunks.finish()
        return (repo, backend, blobs, scratch)
    }

    /// Backwards, as a tree walk from the root reads a tree pack (the root is written last).
    func testBlobsReadBackwardsCostOneRequestPerWindow() throws {
        let (repo, backend, blobs, scratch) = try store(blobs: 200)
        defer { _ = scratch }
        let packs = repo.index.packs.count
        XCTAssertGreaterThan(packs, 1, "the blobs fill several 1 MiB packs")
        backend.packLoads.store(0, ordering: .relaxed)
        for (id, bytes) in blobs.reversed() { XCTAssertEqual(try repo.loadBlob(id), bytes) }
        // Each pack is under the 8 MiB window: one request reads all of its blobs.
        XCTAssertEqual(backend.packLoads.load(ordering: .relaxed), packs, "one request per pack, not per blob")
    }

    func testConcurrentReadersOfOneSpanShareItsRequest() throws {
        let (repo, backend, blobs, scratch) = try store(blobs: 40)
        defer { _ = scratch }
        XCTAssertEqual(repo.index.packs.count, 1)
        backend.packLoads.store(0, ordering: .relaxed)
        repo.prefetchBlob(blobs[0].0)
        XCTAssertEqual(try repo.loadBlob(blobs[0].0), blobs[0].1, "read from the prefetched span (or its fetch)")
        let wrong = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: blobs.count) { i in
            if (try? repo.loadBlob(blobs[i].0)) != blobs[i].1 { wrong.add(1, ordering: .relaxed) }
        }
        XCTAssertEqual(wrong.load(ordering: .relaxed), 0)
        XCTAssertEqual(backend.packLoads.load(ordering: .relaxed), 1, "every reader used the prefetch's span")
    }

    func testADamagedSpanIsNotKept() throws {
        let (repo, backend, blobs, scratch) = try store(blobs: 40)
        defer { _ = scratch }
        backend.damageNextPackLoad.store(true, ordering: .relaxed)
        // The flipped byte lands in one blob of the span: reading every blob hits it once, as damage.
        var damaged = 0
        for (id, bytes) in blobs {
            do {
                let read = try repo.loadBlob(id)
                XCTAssertEqual(read, bytes)
            } catch {
                XCTAssertEqual(error.code, .damaged)
                damaged += 1
            }
        }
        XCTAssertEqual(damaged, 1)
        // The span was dropped when the damage showed: the store's good bytes are read again and served.
        for (id, bytes) in blobs { XCTAssertEqual(try repo.loadBlob(id), bytes) }
    }
}
