import Foundation
import PolyadS3
import PolyadStorage
import PolyadTestSupport
import XCTest

/// The backend contract, the same suite as the local backend's, against a real S3-compatible server
/// (moto_server with signatures checked, started by Scripts/test: ``S3TestServer``), directly and through the
/// fault proxy.
final class S3BackendTests: XCTestCase {
    private func backend(prefix: String, through proxy: FaultProxy? = nil) throws -> S3Backend {
        let server = try S3TestServer.fromEnvironment()
        let client = server.client(bucket: try server.makeBucket(prefix: "polyad-backend"), url: proxy?.endpoint)
        return S3Backend(client: client, prefix: prefix, policy: S3RetryPolicy(totalSeconds: 60))
    }

    func testConformance() throws {
        try BackendConformance.run(backend: try backend(prefix: "host-a"))
    }

    /// The same suite with one request in ten answered by a fault (a cut connection, 500, 503, SlowDown, a
    /// truncated answer): every fault is retried, and the contract holds as it does without them.
    func testConformanceThroughFaults() throws {
        let server = try S3TestServer.fromEnvironment()
        let seed = FaultProxy.seedFromEnvironment()
        let proxy = try FaultProxy(
            upstream: server.url,
            seed: seed,
            faultRate: 0.1,
            faults: [.drop, .internalError, .unavailable, .slowDown, .truncate]
        )
        defer { proxy.stop() }
        try BackendConformance.run(backend: try backend(prefix: "host-a", through: proxy))
        let stats = try proxy.stats()
        XCTAssertGreaterThan(stats.faultsTotal, 0, "faults were injected (seed \(seed))")
        for fault in [FaultProxy.Fault.drop, .internalError, .unavailable, .slowDown, .truncate] {
            XCTAssertGreaterThan(stats.count(fault), 0, "\(fault) injected (seed \(seed))")
        }
        XCTAssertEqual(stats.putsWithoutMD5, 0, "every PUT carried Content-MD5")
    }

    func testTheLayoutIsTheLocalOneUnderThePrefix() throws {
        let b = try backend(prefix: "host-a/")
        XCTAssertEqual(b.location.hasPrefix("s3://polyad-backend-"), true)
        let name = String(repeating: "ab", count: 32)
        try b.save(ObjectHandle(kind: .data, name: name), [1, 2, 3])
        try b.save(.config, [9])
        let keys = try b.client.list(prefix: "").map(\.key).sorted()
        XCTAssertEqual(keys, ["host-a/config", "host-a/data/ab/\(name)"])
    }
}
