import Dispatch
import Foundation
import PolyadFormat
import PolyadStorage
import PolyadTestSupport
import Synchronization
import XCTest

@testable import PolyadRepository

/// Blob reads on a store whose reads are round trips go through `PackSpans`: one request serves the blobs that
/// follow in the pack, concurrent readers share it, and a span with damaged bytes is not kept.
final class PackSpanTests: XCTestCase {
    private func store(blobs count: Int) throws -> (Repository, FaultyBackend, [(BlobID, [UInt8])], Scratch) {
        let scratch = Scratch()
        let backend = FaultyBackend(path: scratch.sub("store"), remote: true)
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

    /// Counts calls (captured by the fetch closure).
    private final class Count: Sendable {
        let value = Atomic<Int>(0)
    }

    /// A blob that crosses a window's end is cut from both windows, each fetched once; a range past the pack's
    /// last blob is damage, not a short read.
    func testARangeAcrossWindowsIsCutFromEachWindow() throws {
        let pack = PackID(Hash256(hex: String(repeating: "ab", count: 32))!)
        let data = pseudoRandomBytes(10_000, seed: 5)
        let fetches = Count()
        let fetch: PackSpans.Fetch = { offset, length in
            fetches.value.add(1, ordering: .relaxed)
            return Array(data[offset..<(offset + length)])
        }
        let spans = PackSpans(spanLength: 1_000, capacity: 100_000, maxAhead: 0)
        func read(_ offset: Int, _ length: Int) throws -> [UInt8] {
            try spans.read(pack: pack, location: "test", offset: offset, length: length, dataEnd: 10_000, fetch: fetch)
        }
        XCTAssertEqual(try read(900, 1_300), Array(data[900..<2_200]))
        XCTAssertEqual(fetches.value.load(ordering: .relaxed), 3, "windows 0, 1 and 2")
        XCTAssertEqual(try read(1_500, 100), Array(data[1_500..<1_600]))
        XCTAssertEqual(try read(0, 10), Array(data[0..<10]))
        XCTAssertEqual(fetches.value.load(ordering: .relaxed), 3, "served from the kept windows")
        XCTAssertThrowsError(try read(9_950, 100)) { error in
            XCTAssertEqual((error as? StorageError)?.code, .damaged)
        }
    }
}
