import Foundation
import PolyadS3
import XCTest

/// The S3 server the tests run against: moto_server, which Scripts/test starts on 127.0.0.1 with signatures
/// checked, naming it in `POLYAD_TEST_S3_ENDPOINT` and its access key in `POLYAD_TEST_S3_ACCESS_KEY_ID` and
/// `POLYAD_TEST_S3_SECRET_ACCESS_KEY`.
public struct S3TestServer: Sendable {
    /// The server's URL (`http://127.0.0.1:PORT`).
    public let url: String
    /// The key moto accepts (every request is checked against it).
    public let credentials: S3Credentials
    /// The region the tests' buckets are in.
    public static let region = "us-east-1"

    /// The server the environment names. Without one the test is skipped, saying why; under `CI=true` that is
    /// a failure first (the S3 tests must run there).
    public static func fromEnvironment(file: StaticString = #filePath, line: UInt = #line) throws -> S3TestServer {
        let environment = ProcessInfo.processInfo.environment
        let names = ["POLYAD_TEST_S3_ENDPOINT", "POLYAD_TEST_S3_ACCESS_KEY_ID", "POLYAD_TEST_S3_SECRET_ACCESS_KEY"]
        let missing = names.filter { (environment[$0] ?? "").isEmpty }
        guard missing.isEmpty, let url = environment[names[0]], let access = environment[names[1]],
            let secret = environment[names[2]]
        else {
            let reason =
                "\(missing.joined(separator: ", ")) not set: the S3 tests need moto_server and its test key "
                + "(Scripts/test starts it and makes the key)"
            if environment["CI"] == "true" { XCTFail(reason, file: file, line: line) }
            print("skipped: \(reason)")
            throw XCTSkip(reason, file: file, line: line)
        }
        return S3TestServer(url: url, credentials: S3Credentials(accessKeyID: access, secretAccessKey: secret))
    }

    /// `bucket` on this server, or at `url` (a proxy in front of it), path-style.
    public func endpoint(bucket: String, url: String? = nil) -> S3Endpoint {
        S3Endpoint(url: url ?? self.url, region: Self.region, bucket: bucket, pathStyle: true)
    }

    /// A client for `bucket` with the test key, on this server or at `url`.
    public func client(bucket: String, url: String? = nil, timeout: Int = 300, stallSeconds: Int = 30) -> S3Client {
        S3Client(
            endpoint: endpoint(bucket: bucket, url: url),
            credentials: credentials,
            timeout: timeout,
            stallSeconds: stallSeconds
        )
    }

    /// Creates a fresh bucket with a random name (a signed PUT to the server itself, never through a proxy) and
    /// returns its name.
    public func makeBucket(prefix: String = "polyad-test") throws -> String {
        let bucket = "\(prefix)-\(UInt64.random(in: 0...UInt64.max))"
        let made = try client(bucket: bucket).send("PUT", policy: S3RetryPolicy(totalSeconds: 10))
        guard made.status == 200 else {
            throw S3Error.status(made.status, String(decoding: made.body, as: UTF8.self))
        }
        return bucket
    }
}
