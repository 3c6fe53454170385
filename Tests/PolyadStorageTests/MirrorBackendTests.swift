import Foundation
import PolyadCrypto
import PolyadFormat
import PolyadMirror
import PolyadS3
import PolyadStorage
import PolyadTestSupport
import Synchronization
import XCTest

/// A local store that can be switched off: every call then fails as an unreachable server's would.
final class SwitchableBackend: Backend {
    let inner: LocalBackend
    let isUp = Atomic<Bool>(true)

    init(path: String) { inner = LocalBackend(path: path) }

    var location: String { inner.location }

    private func check() throws(StorageError) {
        guard isUp.load(ordering: .relaxed) else {
            throw StorageError(code: .unreachable, handle: nil, location: location, message: "switched off")
        }
    }

    func create() throws(StorageError) {
        try check()
        try inner.create()
    }
    func exists() throws(StorageError) -> Bool {
        try check()
        return try inner.exists()
    }
    func save(_ handle: ObjectHandle, _ data: UnsafeRawBufferPointer) throws(StorageError) {
        try check()
        try inner.save(handle, data)
    }
    func load(_ handle: ObjectHandle, offset: Int64, length: Int?) throws(StorageError) -> [UInt8] {
        try check()
        return try inner.load(handle, offset: offset, length: length)
    }
    func size(_ handle: ObjectHandle) throws(StorageError) -> Int64 {
        try check()
        return try inner.size(handle)
    }
    func remove(_ handle: ObjectHandle) throws(StorageError) {
        try check()
        try inner.remove(handle)
    }
    func list(_ kind: ObjectKind) throws(StorageError) -> [ObjectInfo] {
        try check()
        return try inner.list(kind)
    }
}

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

    /// With `require_all` off a copy that is down is set aside; once a catch-up run (the mount's, or `polyad
    /// sync`) has copied what it missed, it takes writes again.
    func testACopySetAsideIsCaughtUpAndTakesWritesAgain() throws {
        let local = LocalBackend(path: folder.path + "/a")
        let other = SwitchableBackend(path: folder.path + "/b")
        let m = MirrorBackend(
            targets: [MirrorTarget(name: "local", backend: local), MirrorTarget(name: "other", backend: other)],
            requireAll: false
        )
        try m.create()
        func object(_ seed: UInt64) -> (ObjectHandle, [UInt8]) {
            let bytes = pseudoRandomBytes(1_000, seed: seed)
            return (ObjectHandle(kind: .index, name: HexCoding.encode(SHA256.hash(bytes))), bytes)
        }
        let (a, aBytes) = object(1)
        let (b, bBytes) = object(2)
        let (c, cBytes) = object(3)
        other.isUp.store(false, ordering: .relaxed)
        try m.save(a, aBytes)
        XCTAssertEqual(m.unreachableTargets, ["other"])
        other.isUp.store(true, ordering: .relaxed)
        try m.save(b, bBytes)
        XCTAssertThrowsError(try other.load(b), "a copy set aside gets no writes until it is caught up")
        let report = try m.reconcile(readData: false, repair: true)
        XCTAssertEqual(Set(report.problems.filter(\.repaired).map(\.handle)), [a, b])
        XCTAssertEqual(m.unreachableTargets, [])
        try m.save(c, cBytes)
        XCTAssertEqual(try other.load(c), cBytes, "caught up, it takes writes again")
        XCTAssertEqual(try other.load(a), aBytes)
    }
}
