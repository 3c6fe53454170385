import Foundation
import PolyadConfig
import PolyadCrypto
import PolyadFileSystem
import PolyadFormat
import PolyadService
import PolyadStorage
import Synchronization
import XCTest

@testable import PolyadRepository

/// A local store whose loads can be made to fail by object kind, and whose listings can put one name first.
/// With `remote` it says its reads are round trips (as S3 does), counts the loads of packs, and can damage the
/// bytes of the next one.
final class FaultyBackend: Backend {
    let inner: LocalBackend
    let readsAreRemote: Bool
    /// Loads of these kinds fail with this code.
    let loadFaults = Mutex<[ObjectKind: StorageError.Code]>([:])
    /// Listed first when present (the order in which slots and locks are tried).
    let listFirst = Mutex<String?>(nil)
    let packLoads = Atomic<Int>(0)
    let damageNextPackLoad = Atomic<Bool>(false)

    init(path: String, remote: Bool = false) {
        inner = LocalBackend(path: path)
        readsAreRemote = remote
    }

    var location: String { inner.location }
    func create() throws(StorageError) { try inner.create() }
    func exists() throws(StorageError) -> Bool { try inner.exists() }
    func save(_ handle: ObjectHandle, _ data: UnsafeRawBufferPointer) throws(StorageError) {
        try inner.save(handle, data)
    }
    func size(_ handle: ObjectHandle) throws(StorageError) -> Int64 { try inner.size(handle) }
    func remove(_ handle: ObjectHandle) throws(StorageError) { try inner.remove(handle) }

    func load(_ handle: ObjectHandle, offset: Int64, length: Int?) throws(StorageError) -> [UInt8] {
        if let code = loadFaults.withLock({ $0[handle.kind] }) {
            throw StorageError(code: code, handle: handle, location: location, message: "injected \(code) failure")
        }
        var bytes = try inner.load(handle, offset: offset, length: length)
        guard handle.kind == .data else { return bytes }
        packLoads.add(1, ordering: .relaxed)
        if damageNextPackLoad.exchange(false, ordering: .relaxed) { bytes[bytes.count / 2] ^= 0xFF }
        return bytes
    }

    func list(_ kind: ObjectKind) throws(StorageError) -> [ObjectInfo] {
        let all = try inner.list(kind)
        guard let first = listFirst.withLock({ $0 }) else { return all }
        return all.filter { $0.handle.name == first } + all.filter { $0.handle.name != first }
    }

    func fail(_ kind: ObjectKind, with code: StorageError.Code?) { loadFaults.withLock { $0[kind] = code } }
}

/// Errors keep their cause, and `ExitCode(for:)` is the one place that maps them to exit codes (README
/// "Exit codes"). The CLI's side of it, with the real binary, is in PolyadCLITests/ExitCodeTests.
final class ErrorCauseTests: XCTestCase {
    /// Cheap scrypt for the tests' slots.
    static let fast = KeyRing.Parameters(n: 1 << 10, r: 8, p: 1)

    private struct Carried: ExitCodeCarrying { var exitCode: ExitCode }
    private struct Unknown: Error {}

    private func storage(_ code: StorageError.Code) -> StorageError {
        StorageError(code: code, handle: nil, location: "/s", message: "m")
    }

    private func code(_ error: any Error) -> Int32 { ExitCode(for: error).rawValue }

    // MARK: The mapping, one test per code (0 is success, not an error)

    func testExit1Fatal() {
        XCTAssertEqual(code(RepositoryError(.io, "x")), 1)
        XCTAssertEqual(code(storage(.io)), 1)
        XCTAssertEqual(code(storage(.permissionDenied)), 1)
        XCTAssertEqual(code(storage(.alreadyExists)), 1)
        XCTAssertEqual(code(SystemError(errno: EIO, operation: "read")), 1)
        XCTAssertEqual(code(Unknown()), 1, "an error nobody classified is fatal, not success")
        XCTAssertEqual(code(Carried(exitCode: .fatal)), 1)
    }

    func testExit2Usage() {
        XCTAssertEqual(code(ConfigError(file: "mount.conf", line: 3, key: "backup.x", message: "unknown key")), 2)
        for c in [RepositoryError.Code.storeExists, .invalidArgument, .notFound] {
            XCTAssertEqual(code(RepositoryError(c, "x")), 2, "\(c)")
        }
        XCTAssertEqual(code(Carried(exitCode: .usage)), 2)
    }

    /// 3 is a command's own verdict (the CLI's `CommandFailure` after a backup with unreadable sources).
    func testExit3Partial() {
        XCTAssertEqual(code(Carried(exitCode: .partial)), 3)
        XCTAssertEqual(code(RepositoryError(.partial, "x")), 3)
    }

    func testExit10StoreMissing() {
        XCTAssertEqual(code(RepositoryError(.storeMissing, "x")), 10)
        XCTAssertEqual(code(Carried(exitCode: .storeMissing)), 10)
    }

    func testExit11Locked() throws {
        XCTAssertEqual(code(RepositoryError(.locked, "x")), 11)
        // And a real one: an exclusive lock held by this (live) process.
        let scratch = Scratch()
        let repo = try Repository.create(
            backend: LocalBackend(path: scratch.sub("store")),
            passphrase: Array("pw".utf8),
            keyParameters: Self.fast
        )
        let held = try repo.lock(exclusive: true, operation: "prune")
        defer { held.release() }
        XCTAssertThrowsError(try repo.lock(exclusive: false, operation: "backup")) { error in
            XCTAssertEqual(self.code(error), 11)
            XCTAssertTrue("\(error)".contains("locked by prune"), "\(error)")
        }
    }

    /// A snapshot listed but gone when it is read (a `forget` at the same time) is passed over, not damage;
    /// a snapshot that cannot be read for another reason still fails the listing.
    func testASnapshotForgottenSinceTheListingIsPassedOver() throws {
        let scratch = Scratch()
        let backend = FaultyBackend(path: scratch.sub("store"))
        let repo = try Repository.create(backend: backend, passphrase: Array("pw".utf8), keyParameters: Self.fast)
        try repo.saveSnapshot(
            Snapshot(
                time: Clock.now(),
                hostname: "h",
                username: "u",
                uid: 0,
                gid: 0,
                paths: ["/x"],
                tags: [],
                parent: nil,
                tree: TreeID(Hash256(SHA256.hash([1]))),
                summary: BackupSummary(),
                metadata: [:],
                programVersion: "test"
            )
        )
        XCTAssertEqual(try repo.snapshots().count, 1)
        backend.fail(.snapshots, with: .notFound)
        XCTAssertEqual(try repo.snapshots().count, 0)
        backend.fail(.snapshots, with: .io)
        XCTAssertThrowsError(try repo.snapshots())
    }

    func testExit12WrongPassphrase() {
        XCTAssertEqual(code(RepositoryError(.wrongPassphrase, "x")), 12)
    }

    func testExit13Integrity() {
        XCTAssertEqual(code(RepositoryError(.damaged, "x")), 13)
        XCTAssertEqual(code(storage(.damaged)), 13)
        XCTAssertEqual(code(storage(.notFound)), 13, "a referenced object that is missing is damage")
    }

    /// `.unreachable` was 14 as a RepositoryError and 1 as a bare StorageError; it is 14 everywhere now.
    func testExit14Unreachable() {
        XCTAssertEqual(code(RepositoryError(.unreachable, "x")), 14)
        XCTAssertEqual(code(storage(.unreachable)), 14)
        XCTAssertEqual(code(RepositoryError.storage(storage(.unreachable))), 14)
    }

    func testExit15NoSpace() {
        XCTAssertEqual(code(RepositoryError(.noSpace, "x")), 15)
        XCTAssertEqual(code(storage(.noSpace)), 15)
        XCTAssertEqual(code(SystemError(errno: ENOSPC, operation: "write")), 15)
        XCTAssertEqual(code(SystemError(errno: EDQUOT, operation: "write")), 15)
    }

    func testExit130Interrupted() {
        XCTAssertEqual(code(RepositoryError(.interrupted, "x")), 130)
        XCTAssertEqual(code(CancellationError()), 130)
    }

    /// `RepositoryError.exitCode` is the same function, not a second table.
    func testRepositoryErrorExitCodeIsTheMapping() {
        let all: [RepositoryError.Code] = [
            .storeMissing, .storeExists, .wrongPassphrase, .locked, .damaged, .noSpace,
            .unreachable, .io, .invalidArgument, .notFound, .interrupted, .partial,
        ]
        for c in all {
            XCTAssertEqual(RepositoryError(c, "x").exitCode, ExitCode(for: RepositoryError(c, "x")), "\(c)")
        }
    }

    func testWrappedErrorsKeepTheirCause() {
        let s = storage(.unreachable)
        XCTAssertEqual((RepositoryError.storage(s).cause as? StorageError)?.code, .unreachable)
        let e = SystemError(errno: ENOSPC, operation: "write", path: Array("/t/f".utf8))
        XCTAssertEqual(RepositoryError.system(e).cause as? SystemError, e)
    }

    // MARK: Key slots

    private struct Store {
        let scratch = Scratch()
        let backend: FaultyBackend
        let slot: String

        init(passphrase: String = "pw") throws {
            backend = FaultyBackend(path: scratch.sub("store"))
            let repo = try Repository.create(
                backend: backend,
                passphrase: Array(passphrase.utf8),
                keyParameters: ErrorCauseTests.fast
            )
            slot = repo.key.slot
        }

        var slotPath: String { scratch.sub("store/keys/\(slot)") }

        /// Every file of the store with its bytes, to show that a failed command changed nothing.
        func contents() -> [String: Data] {
            let root = scratch.sub("store")
            var out = [String: Data]()
            for p in FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? [] {
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: root + "/" + p, isDirectory: &isDir), !isDir.boolValue {
                    out[p] = FileManager.default.contents(atPath: root + "/" + p)
                }
            }
            return out
        }

        /// Stores `bytes` as a key slot named by their SHA-256 (as a writer would), listed first.
        @discardableResult
        func addSlot(_ bytes: [UInt8]) throws -> String {
            let name = SHA256.hash(bytes).hexString
            try backend.save(ObjectHandle(kind: .keys, name: name), bytes)
            backend.listFirst.withLock { $0 = name }
            return name
        }

        func open(_ passphrase: String) throws -> Repository {
            try Repository.open(backend: backend, passphrase: Array(passphrase.utf8))
        }
    }

    /// Asserts that opening with `passphrase` fails with exit code `expected`, a message containing
    /// `message`, and that the store is unchanged.
    private func assertOpenFails(
        _ store: Store,
        _ passphrase: String,
        _ expected: Int32,
        _ message: String,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        let before = store.contents()
        XCTAssertThrowsError(try store.open(passphrase), file: file, line: line) { error in
            XCTAssertEqual(self.code(error), expected, "\(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(message), "\(error)", file: file, line: line)
            if passphrase.count > 4 {  // (a short one might be part of the folder's random name)
                XCTAssertFalse(
                    "\(error)".contains(passphrase),
                    "the passphrase is never in a message",
                    file: file,
                    line: line
                )
            }
        }
        XCTAssertEqual(store.contents(), before, "nothing changed", file: file, line: line)
    }

    func testAFlippedByteInTheOnlySlotIsDamageNamingIt() throws {
        let store = try Store()
        try flipByte(at: 20, in: store.slotPath)
        assertOpenFails(store, "pw", 13, "keys/\(store.slot)")
        assertOpenFails(store, "pw", 13, "does not match its name")
        assertOpenFails(store, "not it", 13, "keys/\(store.slot)")  // not "wrong passphrase": nothing could tell
    }

    func testUndecodableSlotIsDamage() throws {
        let store = try Store()
        try FileManager.default.removeItem(atPath: store.slotPath)
        let name = try store.addSlot(Array("{\"this is\": not json".utf8))
        assertOpenFails(store, "pw", 13, "keys/\(name): not a key slot")
    }

    /// A slot's JSON with `salt` and `data` as given (base64 text or not).
    private func slotJSON(salt: String, data: String) -> [UInt8] {
        var slot = KeySlot(
            created: Timestamp(seconds: 1, nanoseconds: 0),
            hostname: "h",
            username: "u",
            n: 1024,
            r: 8,
            p: 1,
            salt: [],
            data: []
        )
        slot.salt = salt
        slot.data = data
        return slot.encoded()
    }

    func testBadBase64AndWrongLengthsAreDamage() throws {
        let store = try Store()
        try FileManager.default.removeItem(atPath: store.slotPath)
        let goodSalt = Data(repeating: 7, count: 32).base64EncodedString()
        let goodData = Data(repeating: 9, count: KeyRing.sealedMaterialSize).base64EncodedString()
        let cases: [(salt: String, data: String, problem: String)] = [
            ("%%% not base64 %%%", goodData, "salt"),
            (Data(repeating: 7, count: 5).base64EncodedString(), goodData, "salt"),
            (goodSalt, "%%%", "sealed key"),
            (goodSalt, Data(repeating: 9, count: 20).base64EncodedString(), "sealed key"),
        ]
        for c in cases {
            let name = try store.addSlot(slotJSON(salt: c.salt, data: c.data))
            assertOpenFails(store, "pw", 13, "keys/\(name)")
            assertOpenFails(store, "pw", 13, c.problem)
            try store.backend.remove(ObjectHandle(kind: .keys, name: name))
        }
    }

    /// A slot that authenticates but does not hold a master key is damage too, not a wrong passphrase.
    func testASlotThatOpensToNoMasterKeyIsDamage() throws {
        let store = try Store()
        try FileManager.default.removeItem(atPath: store.slotPath)
        let salt = Array(repeating: UInt8(3), count: 32)
        let wrapping = try KeyDerivation.scrypt(
            passphrase: Array("pw".utf8),
            salt: salt,
            n: 1024,
            r: 8,
            p: 1,
            length: 32
        )
        let sealed = Envelope.seal(Array(repeating: 0, count: 97), key: wrapping, aad: AdditionalData.keySlot)
        let slot = KeySlot(
            created: Timestamp(seconds: 1, nanoseconds: 0),
            hostname: "h",
            username: "u",
            n: 1024,
            r: 8,
            p: 1,
            salt: salt,
            data: sealed
        )
        let name = try store.addSlot(slot.encoded())
        assertOpenFails(store, "pw", 13, "keys/\(name): it opens, but holds no master key")
        assertOpenFails(store, "other", 12, "wrong passphrase")
    }

    func testADamagedSlotBesideOneThatOpensIsNotedAndTheStoreOpens() throws {
        let store = try Store()
        let damaged = try store.addSlot(Array("garbage".utf8))  // tried first
        let repo = try store.open("pw")
        XCTAssertEqual(repo.key.slot, store.slot)
        XCTAssertEqual(repo.key.damagedSlots.map(\.object), ["keys/\(damaged)"])
        // With a passphrase no whole slot takes, the damage is what is reported: it might have been that slot's.
        assertOpenFails(store, "not it", 13, "keys/\(damaged)")
    }

    func testWrongPassphraseOnlyWhenEverySlotFailsToAuthenticate() throws {
        let store = try Store()
        _ = try store.open("pw").addKey(passphrase: Array("second".utf8), parameters: Self.fast)
        assertOpenFails(store, "neither", 12, "wrong passphrase")
        XCTAssertNoThrow(try store.open("second"))
    }

    func testAReadErrorSaysWhy() throws {
        let store = try Store()
        for (fault, expected) in [
            (StorageError.Code.io, Int32(1)), (.permissionDenied, 1), (.unreachable, 14),
            (.noSpace, 15),
        ] {
            store.backend.fail(.keys, with: fault)
            assertOpenFails(store, "pw", expected, "injected \(fault) failure")
            XCTAssertThrowsError(try store.open("pw")) { error in
                XCTAssertEqual(((error as? RepositoryError)?.cause as? StorageError)?.code, fault, "the cause is kept")
            }
        }
        store.backend.fail(.keys, with: nil)
        XCTAssertNoThrow(try store.open("pw"))
    }

    func testASlotRemovedSinceTheListingIsSkipped() throws {
        let store = try Store()
        store.backend.fail(.keys, with: .notFound)
        assertOpenFails(store, "pw", 12, "wrong passphrase")  // no slot is left to try
    }

    // MARK: Locks

    func testALockThatCannotBeReadIsNotIgnored() throws {
        let store = try Store()
        let repo = try store.open("pw")
        let other = try repo.lock(exclusive: false, operation: "backup")
        defer { other.release() }
        store.backend.fail(.locks, with: .unreachable)
        XCTAssertThrowsError(try repo.lock(exclusive: true, operation: "prune")) { error in
            XCTAssertEqual(self.code(error), 14, "\(error)")
            XCTAssertTrue("\(error)".contains("injected unreachable failure"), "\(error)")
        }
        // Gone since the listing: released meanwhile, so it conflicts with nothing.
        store.backend.fail(.locks, with: .notFound)
        let taken = try repo.lock(exclusive: true, operation: "prune")
        taken.release()
    }

    /// A damaged lock names no holder and nothing would ever remove it: it is passed over and left (the store
    /// format article's rule), while a lock that cannot be read stops the command (above).
    func testADamagedLockIsPassedOverAndLeft() throws {
        let store = try Store()
        let repo = try store.open("pw")
        let bytes = Array("not a sealed lock".utf8)
        let name = SHA256.hash(bytes).hexString
        try store.backend.save(ObjectHandle(kind: .locks, name: name), bytes)
        let taken = try repo.lock(exclusive: false, operation: "backup")
        taken.release()
        XCTAssertEqual(try store.backend.list(.locks).map(\.handle.name), [name], "left in place")
    }

    // MARK: The backup's files cache

    private func backUp(_ repo: Repository, _ path: String) throws -> BackupResult {
        try Archiver(
            repository: repo,
            options: BackupOptions(paths: [Array(path.utf8)]),
            progress: nil,
            cancellation: nil
        ).run()
    }

    func testAParentTreeThatCannotBeReadFailsTheBackup() throws {
        let store = try Store()
        let repo = try store.open("pw")
        let src = store.scratch.write("src/a.txt", Array("hello".utf8))
        _ = try backUp(repo, (src as NSString).deletingLastPathComponent)
        let snapshots = try store.backend.list(.snapshots).count
        store.backend.fail(.data, with: .unreachable)
        XCTAssertThrowsError(try backUp(repo, (src as NSString).deletingLastPathComponent)) { error in
            XCTAssertEqual(self.code(error), 14, "\(error)")
        }
        store.backend.fail(.data, with: nil)
        XCTAssertEqual(try store.backend.list(.snapshots).count, snapshots, "no snapshot written")
    }

    func testADamagedParentTreeOnlyCostsTheCache() throws {
        let store = try Store()
        let repo = try store.open("pw")
        let src = store.scratch.write("src/a.txt", Array("hello".utf8))
        let folder = (src as NSString).deletingLastPathComponent
        XCTAssertEqual(try backUp(repo, folder).snapshot.summary.filesUnchanged, 0)
        XCTAssertEqual(try backUp(repo, folder).snapshot.summary.filesUnchanged, 1, "the cache works")
        store.backend.fail(.data, with: .damaged)
        let result = try backUp(repo, folder)
        XCTAssertEqual(result.snapshot.summary.filesUnchanged, 0, "read again")
        XCTAssertEqual(result.warnings, [])
    }
}
