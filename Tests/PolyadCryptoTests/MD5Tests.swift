import PolyadCrypto
import PolyadFormat
import XCTest

/// RFC 1321's test suite.
final class MD5Tests: XCTestCase {
    func testRFC1321() throws {
        let vectors = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a"
            ),
        ]
        for (text, digest) in vectors {
            XCTAssertEqual(HexCoding.encode(try XCTUnwrap(MD5.hash(Array(text.utf8)))), digest, text)
        }
    }
}
