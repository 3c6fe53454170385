import Foundation
import PolyadCrypto
import PolyadTestSupport
import XCTest

@testable import PolyadS3

/// The client against a real S3-compatible server: moto_server, which Scripts/test starts on 127.0.0.1 with
/// signatures checked (``S3TestServer``: under CI a missing server is a failure; elsewhere the tests are skipped,
/// saying so).
final class S3ClientTests: XCTestCase {
    private var server: S3TestServer!
    private var client: S3Client!
    private var now: Int64 { Int64(Date().timeIntervalSince1970) }

    override func setUpWithError() throws {
        server = try S3TestServer.fromEnvironment()
        client = server.client(bucket: try server.makeBucket())
    }

    func testPutGetRangeHeadListDelete() throws {
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let put = try client.request("PUT", key: "data/ab/abcdef", body: data, at: now)
        XCTAssertEqual(put.status, 200, String(decoding: put.body, as: UTF8.self))
        XCTAssertNotNil(put.headers["etag"])
        let get = try client.request("GET", key: "data/ab/abcdef", at: now)
        XCTAssertEqual(get.status, 200)
        XCTAssertEqual(get.body, data)
        let range = try client.request("GET", key: "data/ab/abcdef", headers: [("Range", "bytes=10-19")], at: now)
        XCTAssertEqual(range.status, 206)
        XCTAssertEqual(range.body, Array(data[10...19]))
        let head = try client.request("HEAD", key: "data/ab/abcdef", at: now)
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.headers["content-length"], "100000")
        XCTAssertEqual(head.body, [])
        _ = try client.request("PUT", key: "index/0001", body: Array("x".utf8), at: now)
        // A query in another order than the canonical one (the signer sorts it).
        let list = try client.request("GET", query: [("prefix", "data/"), ("list-type", "2")], at: now)
        XCTAssertEqual(list.status, 200, String(decoding: list.body, as: UTF8.self))
        let xml = String(decoding: list.body, as: UTF8.self)
        XCTAssertTrue(xml.contains("<Key>data/ab/abcdef</Key>"), xml)
        XCTAssertFalse(xml.contains("index/0001"), xml)
        // Page by page, with continuation tokens.
        for i in 0..<7 { _ = try client.request("PUT", key: "data/p/\(i) & more", body: [UInt8(i)], at: now) }
        let listed = try client.list(prefix: "data/", pageSize: 2)
        XCTAssertEqual(listed.map(\.key), ["data/ab/abcdef"] + (0..<7).map { "data/p/\($0) & more" })
        XCTAssertEqual(listed.first?.size, 100_000)
        XCTAssertEqual(try client.request("DELETE", key: "data/ab/abcdef", at: now).status, 204)
        XCTAssertEqual(try client.request("GET", key: "data/ab/abcdef", at: now).status, 404)
    }

    /// `Content-MD5` is standard base64 of the digest (moto 5.2 does not check it, so the server's refusal of a
    /// damaged body is not observable here; AWS, MinIO and Ceph check it).
    func testContentMD5IsBase64OfTheDigest() throws {
        XCTAssertEqual(Base64.encode([]), "")
        XCTAssertEqual(Base64.encode(Array("f".utf8)), "Zg==")
        XCTAssertEqual(Base64.encode(Array("fo".utf8)), "Zm8=")
        XCTAssertEqual(Base64.encode(Array("foobar".utf8)), "Zm9vYmFy")
        XCTAssertEqual(Base64.encode(try XCTUnwrap(MD5.hash([]))), "1B2M2Y8AsgTpgAmY7PhCfg==")
    }

    func testAMissingBucketFailsAtOnceNamingTheFix() throws {
        let missing = server.client(bucket: "no-such-bucket-here")
        var waits = 0
        XCTAssertThrowsError(try missing.send("GET", key: "k", sleep: { _ in waits += 1 })) { error in
            guard case S3Error.failed(_, let message) = error as! S3Error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("no-such-bucket-here does not exist"), message)
        }
        XCTAssertEqual(waits, 0, "not retried")
    }

    /// moto checks signatures: a wrong secret (SignatureDoesNotMatch) or an unknown key (InvalidAccessKeyId) is a
    /// 403 that fails at once, naming where the key comes from; the counting proxy sees the one request only.
    func testAWrongKeyIsRefusedAtOnceNamingTheFix() throws {
        let proxy = try FaultProxy(upstream: server.url, faults: [])
        defer { proxy.stop() }
        let keys = [
            ("SignatureDoesNotMatch", S3Credentials(accessKeyID: server.credentials.accessKeyID, secretAccessKey: "x")),
            ("InvalidAccessKeyId", S3Credentials(accessKeyID: "AKIANOSUCHKEY0000000", secretAccessKey: "x")),
        ]
        for (index, (code, credentials)) in keys.enumerated() {
            let wrong = S3Client(
                endpoint: server.endpoint(bucket: client.endpoint.bucket, url: proxy.endpoint),
                credentials: credentials
            )
            var waits = 0
            let sleep: (Double) -> Void = { _ in waits += 1 }
            XCTAssertThrowsError(try wrong.send("PUT", key: "k", body: [1, 2, 3], sleep: sleep)) { error in
                guard case S3Error.failed(403, let message) = error as! S3Error else { return XCTFail("\(error)") }
                XCTAssertTrue(message.contains(code), message)
                XCTAssertTrue(message.contains("s3.secret_access_key"), message)
                XCTAssertTrue(message.contains("AWS_SECRET_ACCESS_KEY"), message)
            }
            XCTAssertEqual(waits, 0, "\(code) not retried")
            XCTAssertEqual(try proxy.stats().requests, index + 1, "\(code): one request reached the server")
        }
        // The right key, through the same proxy, works.
        let right = server.client(bucket: client.endpoint.bucket, url: proxy.endpoint)
        XCTAssertEqual(try right.send("PUT", key: "k", body: [1, 2, 3]).status, 200)
        XCTAssertEqual(try client.list(prefix: "").map(\.key), ["k"])
    }

    func testAnUnreachableEndpointIsATransportErrorNamingTheURL() throws {
        let closed = S3Client(
            endpoint: S3Endpoint(url: "http://127.0.0.1:1", region: "us-east-1", bucket: "b", pathStyle: true),
            credentials: S3Credentials(accessKeyID: "a", secretAccessKey: "s"),
            timeout: 5
        )
        XCTAssertThrowsError(try closed.request("GET", key: "k", at: now)) { error in
            let e = error as! S3TransportError
            XCTAssertEqual(e.url, "http://127.0.0.1:1/b/k")
            XCTAssertFalse(e.message.isEmpty)
        }
    }
}

/// ListObjectsV2 answers, read without a server.
final class S3ListPageTests: XCTestCase {
    func testKeysSizesTokensAndEntities() {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>data/</Prefix>
            <KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
            <Contents><Key>data/a&amp;b &#233;&#x263A;</Key><LastModified>2026-12-03T00:00:00.000Z</LastModified>
            <ETag>&quot;x&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
            <Contents><Key>data/c</Key><Size>0</Size></Contents>
            <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>
            """
        let page = S3ListPage.parse(Array(xml.utf8))
        XCTAssertEqual(page?.objects, [.init(key: "data/a&b é☺", size: 12), .init(key: "data/c", size: 0)])
        XCTAssertEqual(page?.nextContinuationToken, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        let last = S3ListPage.parse(Array("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>".utf8))
        XCTAssertEqual(last, S3ListPage(objects: [], nextContinuationToken: nil))
        XCTAssertNil(S3ListPage.parse(Array("<Error><Code>NoSuchBucket</Code></Error>".utf8)))
        XCTAssertNil(
            S3ListPage.parse(Array("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>".utf8))
        )
    }
}

/// Which answers are retried, which fail at once with the fix, and how long a fault is retried.
final class S3RetryTests: XCTestCase {
    private let client = S3Client(
        endpoint: S3Endpoint(url: "http://127.0.0.1:1", region: "eu-west-3", bucket: "b", pathStyle: true),
        credentials: S3Credentials(accessKeyID: "a", secretAccessKey: "s"),
        timeout: 2
    )

    private func answer(_ status: Int, _ code: String? = nil, headers: [String: String] = [:]) -> S3Response {
        S3Response(
            status: status,
            headers: headers,
            body: Array((code.map { "<Error><Code>\($0)</Code></Error>" } ?? "").utf8)
        )
    }

    func testVerdicts() {
        XCTAssertEqual(client.verdict(answer(200), method: "PUT", key: "k"), .done)
        XCTAssertEqual(client.verdict(answer(404, "NoSuchKey"), method: "GET", key: "k"), .done, "missing is an answer")
        for (status, code) in [(500, "InternalError"), (503, "SlowDown"), (429, nil), (400, "RequestTimeout")] {
            guard case .retry = client.verdict(answer(status, code), method: "PUT", key: "k") else {
                return XCTFail("\(status) \(code ?? "") should be retried")
            }
        }
        guard case .fail(let noBucket) = client.verdict(answer(404, "NoSuchBucket"), method: "GET", key: "k"),
            case .fail(let denied) = client.verdict(answer(403, "SignatureDoesNotMatch"), method: "GET", key: "k"),
            case .fail(let region) = client.verdict(
                answer(301, "PermanentRedirect", headers: ["x-amz-bucket-region": "us-west-2"]),
                method: "GET",
                key: "k"
            ),
            case .fail(let skew) = client.verdict(answer(403, "RequestTimeTooSkewed"), method: "GET", key: "k")
        else { return XCTFail("4xx that cannot succeed must fail at once") }
        XCTAssertTrue(noBucket.contains("--create-bucket"), noBucket)
        XCTAssertTrue(denied.contains("s3.access_key_id"), denied)
        XCTAssertTrue(region.contains("it is in us-west-2") && region.contains("s3.region"), region)
        XCTAssertTrue(skew.contains("clock"), skew)
    }

    func testBackoffGrowsToItsCap() {
        let p = S3RetryPolicy(firstDelay: 0.1, maxDelay: 32, totalSeconds: 900)
        XCTAssertEqual((1...10).map { p.bound(beforeRetry: $0) }, [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 32])
    }

    func testAnOutageIsRetriedForTheTimeGivenThenReported() {
        var waits = [Double]()
        var logged = [String]()
        XCTAssertThrowsError(
            try client.send(
                "GET",
                key: "k",
                policy: S3RetryPolicy(firstDelay: 0.01, maxDelay: 0.05, totalSeconds: 0.5),
                sleep: { waits.append($0) },
                log: { logged.append($0) }
            )
        ) { error in
            guard case S3Error.unavailable(let message) = error as! S3Error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("http://127.0.0.1:1"), message)
            XCTAssertTrue(message.contains("gave up after"), message)
        }
        XCTAssertGreaterThan(waits.count, 1)
        XCTAssertTrue(waits.allSatisfy { $0 <= 0.05 })
        XCTAssertEqual(logged.count, waits.count)
    }
}
