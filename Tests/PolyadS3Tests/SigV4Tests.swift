import PolyadCrypto
import PolyadFormat
import XCTest

@testable import PolyadS3

/// The signer against AWS's published vectors: the SigV4 test suite (aws-sig-v4-test-suite, service `service`)
/// and the S3 examples of the S3 API reference (GET object, PUT object, GET bucket lifecycle, list objects).
final class SigV4Tests: XCTestCase {
    private let suite = S3Credentials(
        accessKeyID: "AKIDEXAMPLE",
        secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    )
    private let suiteDate = "20150830T123600Z"

    /// One case of the suite: the request, then the expected canonical request, string to sign and signature.
    private func check(
        _ method: String,
        _ path: String,
        query: [(name: String, value: String)] = [],
        headers extra: [(name: String, value: String)] = [],
        body: String = "",
        canonical: String,
        signature: String,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        let headers = [("host", "example.amazonaws.com"), ("x-amz-date", suiteDate)] + extra
        let request = SigV4Request(
            method: method,
            path: path,
            query: query,
            headers: headers,
            payloadHash: HexCoding.encode(SHA256.hash(Array(body.utf8)))
        )
        let s = SigV4.sign(request, credentials: suite, region: "us-east-1", service: "service", amzDate: suiteDate)
        XCTAssertEqual(s.canonicalRequest, canonical, file: file, line: line)
        XCTAssertEqual(s.signature, signature, file: file, line: line)
        XCTAssertTrue(
            s.authorization.hasPrefix(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            ),
            s.authorization,
            file: file,
            line: line
        )
    }

    private let empty = SigV4.emptyPayloadHash
    private var plainHeaders: String { "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" }

    func testGetVanilla() {
        check(
            "GET",
            "/",
            canonical: "GET\n/\n\n" + plainHeaders + empty,
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        )
        let s = SigV4.sign(
            SigV4Request(
                method: "GET",
                path: "/",
                headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", suiteDate)],
                payloadHash: empty
            ),
            credentials: suite,
            region: "us-east-1",
            service: "service",
            amzDate: suiteDate
        )
        XCTAssertEqual(
            s.stringToSign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
                + "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        )
        XCTAssertEqual(
            s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                + "SignedHeaders=host;x-amz-date, "
                + "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        )
    }

    func testQueriesAreSortedByNameThenValueAndEncoded() {
        check(
            "GET",
            "/",
            query: [("Param2", "value2"), ("Param1", "value1")],
            canonical: "GET\n/\nParam1=value1&Param2=value2\n" + plainHeaders + empty,
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        )
        check(
            "GET",
            "/",
            query: [("Param1", "value2"), ("Param1", "Value1")],
            canonical: "GET\n/\nParam1=Value1&Param1=value2\n" + plainHeaders + empty,
            signature: "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"
        )
        check(
            "GET",
            "/",
            query: [("Param1", "value2"), ("Param1", "value1")],
            canonical: "GET\n/\nParam1=value1&Param1=value2\n" + plainHeaders + empty,
            signature: "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"
        )
        let unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        check(
            "GET",
            "/",
            query: [(unreserved, unreserved)],
            canonical: "GET\n/\n\(unreserved)=\(unreserved)\n" + plainHeaders + empty,
            signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"
        )
        check(
            "GET",
            "/",
            query: [("ሴ", "bar")],
            canonical: "GET\n/\n%E1%88%B4=bar\n" + plainHeaders + empty,
            signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"
        )
        check(
            "POST",
            "/",
            query: [("Param1", "value1")],
            canonical: "POST\n/\nParam1=value1\n" + plainHeaders + empty,
            signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"
        )
    }

    func testPathsAreEncodedOnceWithTheirSlashes() {
        let unreserved = "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        check(
            "GET",
            unreserved,
            canonical: "GET\n\(unreserved)\n\n" + plainHeaders + empty,
            signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"
        )
        check(
            "GET",
            "/ሴ",
            canonical: "GET\n/%E1%88%B4\n\n" + plainHeaders + empty,
            signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
        )
        check(
            "GET",
            "/example space/",
            canonical: "GET\n/example%20space/\n\n" + plainHeaders + empty,
            signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"
        )
        XCTAssertEqual(
            SigV4.encode("/a b/č$!'()*+=&?%", keepSlash: true),
            "/a%20b/%C4%8D%24%21%27%28%29%2A%2B%3D%26%3F%25"
        )
        XCTAssertEqual(SigV4.encode("a/b", keepSlash: false), "a%2Fb")
    }

    func testHeadersAreLowerCasedSortedTrimmedAndJoined() {
        check(
            "GET",
            "/",
            headers: [("My-Header1", " value1"), ("my-header2", " \"a   b   c\"")],
            canonical: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
                + "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n" + empty,
            signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
        )
        check(
            "GET",
            "/",
            headers: [("my-header1", "value4,value1,value3,value2")],
            canonical: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\n"
                + "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" + empty,
            signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"
        )
        // The same name twice: one header, the values in the order given.
        check(
            "GET",
            "/",
            headers: [("my-header1", "value2"), ("My-Header1", "value2"), ("my-header1", "value1")],
            canonical: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\n"
                + "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" + empty,
            signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"
        )
        check(
            "POST",
            "/",
            headers: [("my-header1", "VALUE1")],
            canonical: "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\n"
                + "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" + empty,
            signature: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"
        )
    }

    func testBodiesAndSessionTokensAreSigned() {
        check(
            "POST",
            "/",
            headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: "Param1=value1",
            canonical: "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
                + "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
                + "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        )
        let token =
            "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwth"
            + "Ax7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHN"
            + "VXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oL"
            + "xBA=="
        check(
            "POST",
            "/",
            headers: [("x-amz-security-token", token)],
            canonical: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
                + "x-amz-security-token:\(token)\n\nhost;x-amz-date;x-amz-security-token\n" + empty,
            signature: "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
        )
    }

    // MARK: The S3 API reference's examples

    private let s3 = S3Credentials(
        accessKeyID: "AKIAIOSFODNN7EXAMPLE",
        secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    )

    private func s3Signature(
        _ method: String,
        _ path: String,
        query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [],
        payloadHash: String = SigV4.emptyPayloadHash
    ) -> SigV4Signature {
        let date = "20130524T000000Z"
        let all =
            [("Host", "examplebucket.s3.amazonaws.com"), ("x-amz-date", date), ("x-amz-content-sha256", payloadHash)]
            + headers
        return SigV4.sign(
            SigV4Request(method: method, path: path, query: query, headers: all, payloadHash: payloadHash),
            credentials: s3,
            region: "us-east-1",
            amzDate: date
        )
    }

    func testTheS3ReferenceExamples() {
        let get = s3Signature("GET", "/test.txt", headers: [("Range", "bytes=0-9")])
        XCTAssertEqual(
            get.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        )
        let body = HexCoding.encode(SHA256.hash(Array("Welcome to Amazon S3.".utf8)))
        let put = s3Signature(
            "PUT",
            "/test$file.text",
            headers: [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
            payloadHash: body
        )
        XCTAssertEqual(put.signedHeaders, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class")
        XCTAssertEqual(put.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
        XCTAssertTrue(put.canonicalRequest.hasPrefix("PUT\n/test%24file.text\n\n"), put.canonicalRequest)
        XCTAssertEqual(
            s3Signature("GET", "/", query: [("lifecycle", "")]).signature,
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        )
        // A query in another order than the canonical one, as a ListObjectsV2 continuation is built.
        XCTAssertEqual(
            s3Signature("GET", "/", query: [("prefix", "J"), ("max-keys", "2")]).signature,
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        )
    }

    func testAmzDate() {
        XCTAssertEqual(SigV4.amzDate(secondsSince1970: 1_440_938_160), "20150830T123600Z")
        XCTAssertEqual(SigV4.amzDate(secondsSince1970: 1_369_353_600), "20130524T000000Z")
        XCTAssertEqual(SigV4.amzDate(secondsSince1970: 0), "19700101T000000Z")
        XCTAssertEqual(SigV4.amzDate(secondsSince1970: 1_709_164_800 + 3_723), "20240229T010203Z")
        XCTAssertEqual(SigV4.amzDate(secondsSince1970: 4_102_444_799), "20991231T235959Z")
    }

    func testCredentialsNeverShowTheirSecrets() {
        let c = S3Credentials(accessKeyID: "AKID", secretAccessKey: "very-secret", sessionToken: "token-secret")
        XCTAssertFalse("\(c)".contains("very-secret"))
        XCTAssertFalse("\(c)".contains("token-secret"))
        XCTAssertFalse(String(reflecting: c).contains("very-secret"))
        XCTAssertTrue("\(c)".contains("AKID"))
    }
}
