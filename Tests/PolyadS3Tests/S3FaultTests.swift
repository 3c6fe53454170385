import Foundation
import PolyadS3
import PolyadStorage
import PolyadTestSupport
import Synchronization
import XCTest

/// S3Client and S3Backend against moto through the fault proxy (`Scripts/testing/s3_fault_proxy.py`), which
/// answers requests drawn from a seed (`POLYAD_FAULT_SEED`, printed) with cut connections, 500, 503, SlowDown,
/// stalls and truncated bodies. The proxy's counters show each fault and what followed it.
final class S3FaultTests: XCTestCase {
    private var server: S3TestServer!
    private var bucket: String!
    private var proxies = [FaultProxy]()

    override func setUpWithError() throws {
        server = try S3TestServer.fromEnvironment()
        bucket = try server.makeBucket(prefix: "polyad-faults")
    }

    override func tearDown() {
        for proxy in proxies { proxy.stop() }
        proxies = []
    }

    private func proxy(
        seed: UInt64,
        faultRate: Double,
        faults: [FaultProxy.Fault],
        stallSeconds: Double = 30,
        warmup: Int = 0
    ) throws -> FaultProxy {
        let proxy = try FaultProxy(
            upstream: server.url,
            seed: seed,
            faultRate: faultRate,
            faults: faults,
            stallSeconds: stallSeconds,
            warmup: warmup
        )
        proxies.append(proxy)
        return proxy
    }

    /// The retries the backends reported, in order.
    private let retries = RetryLog()

    private func backend(_ client: S3Client, totalSeconds: Double) -> S3Backend {
        S3Backend(client: client, policy: S3RetryPolicy(totalSeconds: totalSeconds)) { [retries] line in
            retries.add(line)
        }
    }

    /// A data handle whose 64-hex-digit name comes from `generator`.
    private func handle(_ generator: inout SplitMix64) -> ObjectHandle {
        let name = (0..<4).map { _ in String(generator.next(), radix: 16) }.map {
            String(repeating: "0", count: 16 - $0.count) + $0
        }
        return ObjectHandle(kind: .data, name: name.joined())
    }

    /// 200 objects from 1 byte to 3 MiB: saved, read back (each compared) and listed (names and sizes).
    private func exercise(_ backend: S3Backend, seed: UInt64) throws {
        var generator = SplitMix64(seed: seed)
        var objects = [(handle: ObjectHandle, bytes: [UInt8])]()
        for number in 0..<200 {
            let size =
                number % 20 == 0
                ? Int.random(in: 1_048_577...3 << 20, using: &generator) : Int.random(in: 1...80_000, using: &generator)
            objects.append((handle(&generator), pseudoRandomBytes(size, seed: generator.next())))
        }
        for object in objects { try backend.save(object.handle, object.bytes) }
        for object in objects {
            let loaded = try backend.load(object.handle)
            XCTAssertTrue(loaded == object.bytes, "\(object.handle.name) read back equal (seed \(seed))")
        }
        XCTAssertEqual(
            Set(try backend.list(.data)),
            Set(objects.map { ObjectInfo(handle: $0.handle, size: Int64($0.bytes.count)) }),
            "all listed with their sizes (seed \(seed))"
        )
    }

    /// Through faults on about 15% of requests (cut connections, 500, 503, SlowDown, truncated answers), 200
    /// objects of 1 byte to 3 MiB (one in twenty over 1 MiB) are saved, read back equal and listed. Every fault is
    /// followed by exactly one more request of the same method and key (the client's retry, or libcurl's own on a
    /// fresh connection for a request cut on a reused one before any answer): the proxy counts what the same work
    /// takes without faults, plus one per fault. Every PUT carried Content-MD5.
    func testObjectsSurviveFaults() throws {
        let seed = FaultProxy.seedFromEnvironment()
        let clean = try proxy(seed: seed, faultRate: 0, faults: [])
        try exercise(backend(server.client(bucket: bucket, url: clean.endpoint), totalSeconds: 120), seed: seed)
        let baseline = try clean.stats()
        XCTAssertEqual(retries.all, [], "no retry without faults")

        let faults: [FaultProxy.Fault] = [.drop, .internalError, .unavailable, .slowDown, .truncate]
        let log = try TemporaryFolder(prefix: "polyad-fault-log")
        defer { log.remove() }
        let proxy = try FaultProxy(
            upstream: server.url,
            seed: seed,
            faultRate: 0.15,
            faults: faults,
            log: log.sub("proxy.jsonl")
        )
        proxies.append(proxy)
        let faulty = try server.makeBucket(prefix: "polyad-faults")
        try exercise(backend(server.client(bucket: faulty, url: proxy.endpoint), totalSeconds: 120), seed: seed)

        let stats = try proxy.stats()
        let logged = retries.all
        print("proxy: \(stats.requests) requests (\(baseline.requests) without faults), faults \(stats.faults)")
        print("client: \(logged.count) retries")
        for fault in faults { XCTAssertGreaterThan(stats.count(fault), 0, "\(fault) injected (seed \(seed))") }
        XCTAssertEqual(stats.requests, baseline.requests + stats.faultsTotal, "one more request per fault")
        XCTAssertGreaterThan(logged.count, 0)
        XCTAssertLessThanOrEqual(logged.count, stats.faultsTotal, "no retry without a fault")
        let entries = try proxy.logEntries()
        XCTAssertEqual(entries.count, stats.requests)
        for (index, entry) in entries.enumerated() where entry.fault != nil {
            let again = entries[(index + 1)...].contains { $0.method == entry.method && $0.path == entry.path }
            XCTAssertTrue(again, "\(entry.method) \(entry.path) sent again after \(entry.fault!) (seed \(seed))")
        }
        let puts = entries.filter { $0.method == "PUT" }
        XCTAssertGreaterThanOrEqual(puts.count, 200)
        XCTAssertTrue(puts.allSatisfy { $0.contentMD5 == true }, "every PUT carried Content-MD5")
        XCTAssertEqual(stats.putsWithoutMD5, 0)
    }

    /// Multipart uploads (5 MiB parts) through faults on about a third of requests, a completion among them:
    /// every object is visible whole afterwards, and reads back equal.
    func testMultipartUploadsSurviveFaults() throws {
        let seed = FaultProxy.seedFromEnvironment()
        let faults: [FaultProxy.Fault] = [.drop, .internalError, .slowDown, .truncate]
        let proxy = try proxy(seed: seed, faultRate: 0.3, faults: faults)
        let backend = S3Backend(
            client: server.client(bucket: bucket, url: proxy.endpoint),
            policy: S3RetryPolicy(totalSeconds: 60),
            multipartThreshold: 5 << 20
        ) { [retries] in retries.add($0) }
        var generator = SplitMix64(seed: seed)
        var objects = [(handle: ObjectHandle, bytes: [UInt8])]()
        for _ in 0..<6 {
            let object = (handle: handle(&generator), bytes: pseudoRandomBytes(11 << 20 | 5, seed: generator.next()))
            try backend.save(object.handle, object.bytes)
            objects.append(object)
        }
        for object in objects {
            XCTAssertTrue(try backend.load(object.handle) == object.bytes, "read back equal (seed \(seed))")
        }
        let stats = try proxy.stats()
        print("proxy: \(stats.requests) requests \(stats.methods), faults \(stats.faults)")
        XCTAssertEqual(stats.putsWithoutMD5, 0, "every part and every completion carried Content-MD5")
        XCTAssertGreaterThan(stats.faultsTotal, 0)
    }

    /// A request the proxy holds without answering is cut by the client's stall limit (2 s here, not the
    /// 30 s stall or the 300 s transfer timeout) and retried, and the call succeeds.
    func testAStallIsCutAndRetried() throws {
        let seed = FaultProxy.seedFromEnvironment()
        let proxy = try proxy(seed: seed, faultRate: 0.3, faults: [.stall], stallSeconds: 30)
        let client = server.client(bucket: bucket, url: proxy.endpoint, timeout: 300, stallSeconds: 2)
        let backend = backend(client, totalSeconds: 120)
        var generator = SplitMix64(seed: seed)
        var saved = [(handle: ObjectHandle, bytes: [UInt8])]()
        // Until a stall has come (seeded, so for most seeds at the first calls).
        while try proxy.stats().count(.stall) == 0, saved.count < 40 {
            let object = (handle: handle(&generator), bytes: pseudoRandomBytes(100_000, seed: generator.next()))
            try backend.save(object.handle, object.bytes)
            XCTAssertTrue(try backend.load(object.handle) == object.bytes, "read back equal (seed \(seed))")
            saved.append(object)
        }
        let stats = try proxy.stats()
        let logged = retries.all
        print("proxy: \(stats.requests) requests, \(stats.count(.stall)) stalls; client: \(logged)")
        XCTAssertGreaterThan(stats.count(.stall), 0, "a stall was injected (seed \(seed))")
        XCTAssertEqual(try backend.list(.data).count, saved.count)
        XCTAssertEqual(logged.count, stats.count(.stall), "each stall cut once and retried: \(logged)")
        XCTAssertTrue(logged.allSatisfy { $0.contains("too slow") }, "cut by the stall limit: \(logged)")
    }

    /// With every request answered by a fault that never reaches the server, a save is retried for the
    /// policy's time, then fails as unreachable, naming the endpoint; the bucket holds nothing.
    func testAnOutageFailsTheSaveAsUnreachableLeavingNothing() throws {
        let seed = FaultProxy.seedFromEnvironment()
        let proxy = try proxy(seed: seed, faultRate: 1, faults: [.drop, .internalError, .unavailable, .slowDown])
        let backend = backend(server.client(bucket: bucket, url: proxy.endpoint), totalSeconds: 3)
        for handle in [ObjectHandle(kind: .data, name: String(repeating: "cd", count: 32)), .config] {
            XCTAssertThrowsError(try backend.save(handle, pseudoRandomBytes(1 << 20, seed: seed))) { error in
                guard let error = error as? StorageError else { return XCTFail("\(error)") }
                XCTAssertEqual(error.code, .unreachable, "\(error)")
                XCTAssertTrue(error.description.contains("gave up after"), "\(error)")
                XCTAssertTrue(error.description.contains(proxy.endpoint), "names the endpoint: \(error)")
            }
        }
        let stats = try proxy.stats()
        XCTAssertGreaterThan(stats.requests, 2, "retried")
        XCTAssertEqual(stats.faultsTotal, stats.requests, "every request met a fault")
        XCTAssertEqual(try server.client(bucket: bucket).list(prefix: ""), [], "nothing in the bucket")
    }

    /// A body cut short (the full Content-Length sent, then half the bytes) is a transport error, never a short
    /// answer: libcurl compares the length with what came (CURLE_PARTIAL_FILE), and the call is retried.
    func testATruncatedBodyIsNeverReturned() throws {
        let seed = FaultProxy.seedFromEnvironment()
        let bytes = pseudoRandomBytes(300_000, seed: seed)
        let handle = ObjectHandle(kind: .data, name: String(repeating: "ef", count: 32))
        let direct = S3Backend(client: server.client(bucket: bucket))
        try direct.save(handle, bytes)
        let key = "data/ef/\(handle.name)"

        let always = try proxy(seed: seed, faultRate: 1, faults: [.truncate])
        let client = server.client(bucket: bucket, url: always.endpoint)
        XCTAssertThrowsError(try client.request("GET", key: key, at: Int64(Date().timeIntervalSince1970))) { error in
            guard let error = error as? S3TransportError else { return XCTFail("\(error)") }
            XCTAssertTrue(error.message.contains("bytes remaining"), error.message)
        }
        XCTAssertThrowsError(try backend(client, totalSeconds: 2).load(handle)) { error in
            XCTAssertEqual((error as? StorageError)?.code, .unreachable, "\(error)")
        }
        let logged = retries.all
        XCTAssertGreaterThan(logged.count, 0)
        XCTAssertTrue(logged.allSatisfy { $0.contains("bytes remaining") }, "\(logged)")

        // Through a proxy that truncates about one answer in three, every read comes back whole.
        let some = try proxy(seed: seed, faultRate: 0.35, faults: [.truncate])
        let through = backend(server.client(bucket: bucket, url: some.endpoint), totalSeconds: 60)
        for _ in 0..<10 {
            XCTAssertTrue(try through.load(handle) == bytes, "seed \(seed)")
        }
        XCTAssertGreaterThan(try some.stats().count(.truncate), 0, "seed \(seed)")
    }
}

/// Lines logged from any thread.
private final class RetryLog: Sendable {
    private let lines = Mutex<[String]>([])

    func add(_ line: String) { lines.withLock { $0.append(line) } }

    var all: [String] { lines.withLock { $0 } }
}
