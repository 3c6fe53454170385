import Foundation
import PolyadS3
import PolyadStorage
import XCTest

/// The backend contract, the same suite as the local backend's, against a real S3-compatible server
/// (moto_server, started by Scripts/test and named in POLYAD_TEST_S3_ENDPOINT).
final class S3BackendTests: XCTestCase {
    private func backend(prefix: String) throws -> S3Backend {
        guard let url = ProcessInfo.processInfo.environment["POLYAD_TEST_S3_ENDPOINT"] else {
            let reason = "POLYAD_TEST_S3_ENDPOINT is not set: the S3 tests need moto_server (Scripts/test starts it)"
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail(reason) }
            throw XCTSkip(reason)
        }
        let bucket = "polyad-backend-\(UInt32.random(in: 0...UInt32.max))"
        let client = S3Client(
            endpoint: S3Endpoint(url: url, region: "us-east-1", bucket: bucket, pathStyle: true),
            credentials: S3Credentials(accessKeyID: "testing", secretAccessKey: "testing")
        )
        let made = try client.request("PUT", at: Int64(Date().timeIntervalSince1970))
        XCTAssertEqual(made.status, 200)
        return S3Backend(client: client, prefix: prefix, policy: S3RetryPolicy(totalSeconds: 10))
    }

    func testConformance() throws {
        try BackendConformance.run(backend: try backend(prefix: "host-a"))
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
