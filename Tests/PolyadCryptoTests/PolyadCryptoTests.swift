import PolyadCrypto
import PolyadFormat
import XCTest

private func hex(_ text: String) -> [UInt8] {
    guard let bytes = HexCoding.decode(text) else { fatalError("bad hex in test: \(text)") }
    return bytes
}

final class SHA256Tests: XCTestCase {
    func testFIPS180KnownAnswers() {
        XCTAssertEqual(
            HexCoding.encode(SHA256.hash(Array("abc".utf8))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        )
        XCTAssertEqual(
            HexCoding.encode(SHA256.hash([])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        XCTAssertEqual(
            HexCoding.encode(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        )
        XCTAssertEqual(SHA256.hash([1, 2, 3]).count, SHA256.digestSize)
    }

    func testStreamingEqualsOneShotOnSplitInput() {
        let data = (0..<200_003).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 7) }
        let expected = SHA256.hash(data)
        for pieceSize in [1, 63, 64, 65, 4096, 100_000, data.count] {
            var hasher = SHA256Hasher()
            data.withUnsafeBytes { all in
                var offset = 0
                while offset < all.count {
                    let end = min(offset + pieceSize, all.count)
                    hasher.update(UnsafeRawBufferPointer(rebasing: all[offset..<end]))
                    offset = end
                }
            }
            let digest = hasher.finalize()  // consuming: not inside XCTAssert's autoclosure
            XCTAssertEqual(digest, expected, "piece size \(pieceSize)")
        }
        var empty = SHA256Hasher()
        empty.update([])
        let emptyDigest = empty.finalize()
        XCTAssertEqual(emptyDigest, SHA256.hash([]))
    }
}

final class HMACSHA256Tests: XCTestCase {
    func testRFC4231() {
        let cases: [(key: [UInt8], data: [UInt8], mac: String)] = [
            (  // Test case 1
                [UInt8](repeating: 0x0B, count: 20), Array("Hi There".utf8),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
            ),
            (  // Test case 2: key shorter than the output
                Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
            ),
            (  // Test case 3
                [UInt8](repeating: 0xAA, count: 20), [UInt8](repeating: 0xDD, count: 50),
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"
            ),
            (  // Test case 6: key larger than the block size
                [UInt8](repeating: 0xAA, count: 131),
                Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
            ),
            (  // Test case 7: key and data larger than the block size
                [UInt8](repeating: 0xAA, count: 131),
                Array(
                    ("This is a test using a larger than block-size key and a larger than block-size data. "
                        + "The key needs to be hashed before being used by the HMAC algorithm.").utf8
                ),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"
            ),
        ]
        for (index, testCase) in cases.enumerated() {
            let mac = HMACSHA256(key: testCase.key)
            XCTAssertEqual(HexCoding.encode(mac.authenticationCode(for: testCase.data)), testCase.mac, "case \(index)")
            // The keyed state is reused: a second call gives the same answer.
            XCTAssertEqual(HexCoding.encode(mac.authenticationCode(for: testCase.data)), testCase.mac, "case \(index)")
        }
    }

    func testEmptyKeyAndEmptyData() {
        // Values from Python's hmac module.
        XCTAssertEqual(
            HexCoding.encode(HMACSHA256(key: []).authenticationCode(for: [])),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"
        )
        XCTAssertEqual(
            HexCoding.encode(HMACSHA256(key: []).authenticationCode(for: Array("abc".utf8))),
            "fd7adb152c05ef80dccf50a1fa4c05d5a3ec6da95575fc312ae7c5d091836351"
        )
    }

    func testConcurrentUseGivesTheSameCodes() {
        let mac = HMACSHA256(key: Array(0..<32))
        let inputs = (0..<64).map { i in [UInt8](repeating: UInt8(i), count: 10_000 + i) }
        let expected = inputs.map { mac.authenticationCode(for: $0) }
        let results = ResultSlots(count: inputs.count)
        DispatchQueue.concurrentPerform(iterations: inputs.count) { i in
            results.set(i, mac.authenticationCode(for: inputs[i]))
        }
        XCTAssertEqual(results.values, expected)
    }
}

/// Collects results from `concurrentPerform` workers.
private final class ResultSlots: @unchecked Sendable {  // every access holds `lock`
    private let lock = NSLock()
    private var slots: [[UInt8]]
    init(count: Int) { slots = Array(repeating: [], count: count) }
    func set(_ index: Int, _ value: [UInt8]) { lock.withLock { slots[index] = value } }
    var values: [[UInt8]] { lock.withLock { slots } }
}

final class AESGCMTests: XCTestCase {
    // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16 (AES-256, 60-byte plaintext, AAD).
    let key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
    let plaintext = hex(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
            + "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
    )
    let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
    let nonce = hex("cafebabefacedbaddecaf888")
    let sealed = hex(
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
            + "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
            + "76fc6ece0f4e1768cddf8853bb2d551b"
    )

    func testKnownAnswerTestCase16() throws {
        let gcm = AESGCM(key: key)
        XCTAssertEqual(gcm.seal(plaintext, nonce: nonce, aad: aad), sealed)
        XCTAssertEqual(try gcm.open(sealed, nonce: nonce, aad: aad), plaintext)
    }

    func testKnownAnswerEmptyAndOneBlock() throws {
        // Test cases 13 and 14: zero key and nonce, no AAD.
        let gcm = AESGCM(key: [UInt8](repeating: 0, count: 32))
        let zeroNonce = [UInt8](repeating: 0, count: 12)
        XCTAssertEqual(gcm.seal([], nonce: zeroNonce), hex("530f8afbc74536b9a963b4f1c4cb738b"))
        XCTAssertEqual(
            gcm.seal([UInt8](repeating: 0, count: 16), nonce: zeroNonce),
            hex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919")
        )
        XCTAssertEqual(try gcm.open(hex("530f8afbc74536b9a963b4f1c4cb738b"), nonce: zeroNonce), [])
    }

    func testAppendsAfterExistingBytes() throws {
        let gcm = AESGCM(key: key)
        var output: [UInt8] = [1, 2, 3]
        plaintext.withUnsafeBytes { gcm.seal($0, nonce: nonce, aad: aad, appendingTo: &output) }
        XCTAssertEqual(output, [1, 2, 3] + sealed)
        var opened: [UInt8] = [9]
        try sealed.withUnsafeBytes { buffer in
            try gcm.open(buffer, nonce: nonce, aad: aad, appendingTo: &opened)
        }
        XCTAssertEqual(opened, [9] + plaintext)
    }

    func testTamperingFailsAndLeavesOutputUnchanged() {
        let gcm = AESGCM(key: key)
        let prefix: [UInt8] = [7, 7, 7]
        func assertRejected(_ sealed: [UInt8], aad: [UInt8], _ what: String) {
            var output = prefix
            do {
                try sealed.withUnsafeBytes { buffer in
                    try gcm.open(buffer, nonce: nonce, aad: aad, appendingTo: &output)
                }
                XCTFail("\(what): tampered data was accepted")
            } catch let error as CryptoError {
                XCTAssertEqual(error.code, .authenticationFailed, what)
                XCTAssertTrue(error.description.contains("data damaged or wrong key"), what)
            } catch {
                XCTFail("\(what): unexpected error \(error)")
            }
            XCTAssertEqual(output, prefix, "\(what): output changed")
            // Also with an empty output (the path that allocates fresh storage).
            XCTAssertThrowsError(try gcm.open(sealed, nonce: nonce, aad: aad), what)
        }
        for index in [0, 30, plaintext.count - 1] {  // ciphertext bytes
            var damaged = sealed
            damaged[index] ^= 0x01
            assertRejected(damaged, aad: aad, "ciphertext byte \(index)")
        }
        for index in [plaintext.count, sealed.count - 1] {  // tag bytes
            var damaged = sealed
            damaged[index] ^= 0x80
            assertRejected(damaged, aad: aad, "tag byte \(index)")
        }
        var damagedAAD = aad
        damagedAAD[3] ^= 0x10
        assertRejected(sealed, aad: damagedAAD, "aad byte")
        assertRejected(sealed, aad: [], "missing aad")
        assertRejected(Array(sealed.dropLast()), aad: aad, "truncated")
        assertRejected(Array(sealed.prefix(5)), aad: aad, "shorter than a tag")
    }

    func testWrongKeyOrNonceFails() {
        var otherKey = key
        otherKey[0] ^= 1
        XCTAssertThrowsError(try AESGCM(key: otherKey).open(sealed, nonce: nonce, aad: aad)) { error in
            XCTAssertEqual(error as? CryptoError, .authenticationFailed)
        }
        var otherNonce = nonce
        otherNonce[11] ^= 1
        XCTAssertThrowsError(try AESGCM(key: key).open(sealed, nonce: otherNonce, aad: aad))
    }

    func testLargeRoundTripWithRandomKey() throws {
        let gcm = AESGCM(key: SecureRandom.bytes(AESGCM.keySize))
        let nonce = SecureRandom.bytes(AESGCM.nonceSize)
        let data = (0..<(3 << 20) + 5).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let sealed = gcm.seal(data, nonce: nonce, aad: [1])
        XCTAssertEqual(sealed.count, data.count + AESGCM.tagSize)
        XCTAssertNotEqual(Array(sealed.prefix(64)), Array(data.prefix(64)))
        XCTAssertEqual(try gcm.open(sealed, nonce: nonce, aad: [1]), data)
    }
}

final class KeyDerivationTests: XCTestCase {
    func testScryptRFC7914() throws {
        XCTAssertEqual(
            HexCoding.encode(try KeyDerivation.scrypt(passphrase: [], salt: [], n: 16, r: 1, p: 1, length: 64)),
            "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
                + "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"
        )
        XCTAssertEqual(
            HexCoding.encode(
                try KeyDerivation.scrypt(
                    passphrase: Array("password".utf8),
                    salt: Array("NaCl".utf8),
                    n: 1024,
                    r: 8,
                    p: 16,
                    length: 64
                )
            ),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
                + "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
        )
    }

    func testScryptRejectsBadParameters() {
        let bad: [(n: UInt64, r: UInt64, p: UInt64, length: Int, mentions: String)] = [
            (1000, 8, 1, 32, "N = 1000"), (1, 8, 1, 32, "N = 1"), (0, 8, 1, 32, "N = 0"),
            (1024, 0, 1, 32, "r = 0"), (1024, 8, 0, 32, "p = 0"), (1024, 8, 1, 0, "length 0"),
            (1 << 40, 8, 1, 32, "N = 1099511627776"), (1024, 1 << 20, 1 << 20, 32, "r * p"),
            (1 << 20, 1, 1, 32, "N = 1048576"),  // N must be below 2^(16 r) = 2^16
        ]
        for parameters in bad {
            XCTAssertThrowsError(
                try KeyDerivation.scrypt(
                    passphrase: [1],
                    salt: [2],
                    n: parameters.n,
                    r: parameters.r,
                    p: parameters.p,
                    length: parameters.length
                )
            ) { error in
                guard let error = error as? CryptoError else { return XCTFail("not a CryptoError: \(error)") }
                XCTAssertEqual(error.code, .kdfFailed)
                XCTAssertTrue(error.description.contains(parameters.mentions), "\(error) should name \(parameters)")
            }
        }
    }

    func testSubkeysAreDeterministicAndLabelSeparated() {
        let master = Array(repeating: UInt8(0x42), count: 32)
        let data = KeyDerivation.subkey(from: master, label: "polyad data")
        XCTAssertEqual(data.count, 32)
        XCTAssertEqual(data, KeyDerivation.subkey(from: master, label: "polyad data"))
        XCTAssertNotEqual(data, KeyDerivation.subkey(from: master, label: "polyad index"))
        XCTAssertNotEqual(data, KeyDerivation.subkey(from: master, label: "polyad data", context: [1]))
        XCTAssertNotEqual(
            KeyDerivation.subkey(from: master, label: "polyad data", context: [1]),
            KeyDerivation.subkey(from: master, label: "polyad data", context: [2])
        )
        var otherMaster = master
        otherMaster[31] = 0
        XCTAssertNotEqual(data, KeyDerivation.subkey(from: otherMaster, label: "polyad data"))
        // It is HMAC-SHA256(key, label || context), as documented.
        XCTAssertEqual(
            KeyDerivation.subkey(from: master, label: "ab", context: [0x63]),
            HMACSHA256(key: master).authenticationCode(for: Array("abc".utf8))
        )
    }
}

final class UtilityTests: XCTestCase {
    func testHexRoundTrip() {
        let bytes: [UInt8] = Array(0...255)
        let text = HexCoding.encode(bytes)
        XCTAssertEqual(text.count, 512)
        XCTAssertTrue(text.hasPrefix("000102"))
        XCTAssertTrue(text.hasSuffix("fdfeff"))
        XCTAssertEqual(HexCoding.decode(text), bytes)
        XCTAssertEqual(HexCoding.decode("DEADbeef"), [0xDE, 0xAD, 0xBE, 0xEF])
        XCTAssertEqual(HexCoding.encode([UInt8]()), "")
        XCTAssertEqual(HexCoding.decode(""), [])
        XCTAssertNil(HexCoding.decode("abc"))
        XCTAssertNil(HexCoding.decode("zz"))
        XCTAssertNil(HexCoding.decode("0g"))
        XCTAssertNil(HexCoding.decode("é1"))
        XCTAssertEqual(HexCoding.encode([UInt8](repeating: 0xAB, count: 3)[1...]), "abab")
    }

    func testConstantTimeEquals() {
        XCTAssertTrue(constantTimeEquals([], []))
        XCTAssertTrue(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(constantTimeEquals([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(constantTimeEquals([1, 2, 3], [1, 2]))
        XCTAssertFalse(constantTimeEquals([0], []))
    }

    func testRandomBytes() {
        XCTAssertEqual(SecureRandom.bytes(0), [])
        let a = SecureRandom.bytes(32)
        let b = SecureRandom.bytes(32)
        XCTAssertEqual(a.count, 32)
        XCTAssertNotEqual(a, b)
        XCTAssertNotEqual(a, [UInt8](repeating: 0, count: 32))
        var buffer = [UInt8](repeating: 0, count: 1000)
        XCTAssertNoThrow(try buffer.withUnsafeMutableBytes { raw in try SecureRandom.fill(raw) })
        XCTAssertGreaterThan(Set(buffer).count, 100)
    }

    func testErrorMatchingByCode() {
        let error: any Error = CryptoError.kdfFailed("scrypt N = 3")
        switch error {
        case CryptoError.authenticationFailed: XCTFail("matched the wrong code")
        case CryptoError.kdfFailed: break
        default: XCTFail("did not match by code")
        }
        XCTAssertTrue("\(error)".contains("scrypt N = 3"))
    }
}
