import Foundation
import PolyadCrypto
import PolyadFormat
import PolyadMirror
import PolyadS3
import PolyadStorage
import PolyadTestSupport
import XCTest

/// The backend contract, the same suite as the local and S3 backends', against the mirror (a local folder and
/// S3 on moto), and the mirror's own promises: reads fall back and repair, a copy that is down is set aside.
final class MirrorBackendTests: XCTestCase {
    private var folder: TemporaryFolder!

    override func setUpWithError() throws { folder = try TemporaryFolder() }
    override func tearDown() { folder.remove() }

    private func mirror(checkNames: Bool = true) throws -> (MirrorBackend, LocalBackend, S3Backend) {
        let server = try S3TestServer.fromEnvironment()
        let s3 = S3Backend(
            client: server.client(bucket: try server.makeBucket(prefix: "polyad-mirror")),
            prefix: "m/",
            policy: S3RetryPolicy(totalSeconds: 30)
        )
        let local = LocalBackend(path: folder.path + "/store")
        let m = MirrorBackend(
            targets: [MirrorTarget(name: "local", backend: local), MirrorTarget(name: "s3", backend: s3)],
            requireAll: true,
            checkNames: checkNames
        )
        return (m, local, s3)
    }

    /// Saves an object to both copies, then damages its local copy at byte `flip`.
    private func saveDamagedLocally(
        _ kind: ObjectKind,
        count: Int,
        seed: UInt64,
        flip: Int,
        _ m: MirrorBackend,
        _ local: LocalBackend
    ) throws -> (ObjectHandle, [UInt8]) {
        try m.create()
        let bytes = pseudoRandomBytes(count, seed: seed)
        let handle = ObjectHandle(kind: kind, name: HexCoding.encode(SHA256.hash(bytes)))
        try m.save(handle, bytes)
        var bad = bytes
        bad[flip] ^= 1
        try local.remove(handle)
        try local.save(handle, bad)
        return (handle, bytes)
    }

    func testConformance() throws {
        // The suite saves arbitrary bytes under arbitrary names, so names are not checked against contents here.
        try BackendConformance.run(backend: try mirror(checkNames: false).0)
    }

    func testAWholeObjectThatDoesNotMatchItsNameIsServedFromTheOtherCopyAndRepaired() throws {
        let (m, local, s3) = try mirror()
        let (handle, bytes) = try saveDamagedLocally(.index, count: 10_000, seed: 3, flip: 5, m, local)
        XCTAssertEqual(try m.load(handle), bytes, "served from S3")
        XCTAssertEqual(try local.load(handle), bytes, "the local copy was rewritten")
        XCTAssertEqual(m.repairs, 1)
        try local.remove(handle)
        XCTAssertEqual(try m.load(handle), bytes, "a copy missing locally is no failure")
        XCTAssertEqual(try local.load(handle), bytes, "and is put back")
        XCTAssertEqual(try s3.load(handle), bytes)
    }

    func testARangeRefusedByTheCallerComesFromTheOtherCopy() throws {
        let (m, local, _) = try mirror()
        let (handle, bytes) = try saveDamagedLocally(.data, count: 4_000, seed: 4, flip: 1_500, m, local)
        let range = try m.load(handle, offset: 1_000, length: 1_000) { $0 == Array(bytes[1_000..<2_000]) }
        XCTAssertEqual(range, Array(bytes[1_000..<2_000]))
        XCTAssertEqual(try local.load(handle), bytes, "the whole pack was rewritten once it checked out on S3")
    }
}
