import Foundation
import PolyadFormat
import PolyadStorage
import PolyadTestSupport
import XCTest

@testable import PolyadRepository
@testable import PolyadService

/// Key slot labels, which slot opened the store, its "last used" in the local state, and the locked master key.
final class KeySlotTests: XCTestCase {
    private static let fast = KeyRing.Parameters(n: 1 << 10, r: 8, p: 1)

    private func names(_ backend: LocalBackend) throws -> Set<String> {
        Set(try backend.list(.keys).map(\.handle.name))
    }

    func testUnlockNamesTheSlotThatOpenedTheStore() throws {
        let scratch = Scratch()
        let backend = LocalBackend(path: scratch.sub("store"))
        let repo = try Repository.create(
            backend: backend,
            passphrase: Array("first".utf8),
            label: "the first",
            keyParameters: Self.fast
        )
        let first = repo.key.slot
        let second = try repo.addKey(passphrase: Array("second".utf8), label: "the second", parameters: Self.fast)
        XCTAssertEqual(try names(backend), [first, second])
        XCTAssertEqual(try Repository.open(backend: backend, passphrase: Array("second".utf8)).key.slot, second)
        XCTAssertEqual(try Repository.open(backend: backend, passphrase: Array("first".utf8)).key.slot, first)
        let labels = Dictionary(uniqueKeysWithValues: try repo.keys().map { ($0.id, $0.slot.label) })
        XCTAssertEqual(labels, [first: "the first", second: "the second"])
    }

    /// A bad label is refused before anything is written: no slot, and no store at all for `create`.
    func testABadLabelWritesNothing() throws {
        let scratch = Scratch()
        let backend = LocalBackend(path: scratch.sub("store"))
        for bad in ["line\nbreak", String(repeating: "x", count: 300), "", "tab\there"] {
            XCTAssertThrowsError(
                try Repository.create(
                    backend: backend,
                    passphrase: Array("pw".utf8),
                    label: bad,
                    keyParameters: Self.fast
                )
            ) { error in
                XCTAssertEqual((error as? RepositoryError)?.code, .invalidArgument, "\(error)")
                XCTAssertEqual(ExitCode(for: error), .usage)
            }
            XCTAssertFalse(try backend.exists(), "no store was created for the label \(bad.debugDescription)")
        }
        let repo = try Repository.create(backend: backend, passphrase: Array("pw".utf8), keyParameters: Self.fast)
        let before = try names(backend)
        for bad in ["line\nbreak", String(repeating: "é", count: 101), "\u{1B}[2J"] {
            XCTAssertThrowsError(try repo.addKey(passphrase: Array("other".utf8), label: bad, parameters: Self.fast)) {
                error in
                XCTAssertEqual((error as? RepositoryError)?.code, .invalidArgument, "\(error)")
                XCTAssertTrue("\(error)".contains("nothing was written"), "\(error)")
            }
            XCTAssertEqual(try names(backend), before)
        }
        XCTAssertThrowsError(try Repository.open(backend: backend, passphrase: Array("other".utf8)))
    }

    func testChangingThePassphraseKeepsTheLabel() throws {
        let scratch = Scratch()
        let backend = LocalBackend(path: scratch.sub("store"))
        let repo = try Repository.create(
            backend: backend,
            passphrase: Array("old".utf8),
            label: "kept",
            keyParameters: Self.fast
        )
        let replacement = try repo.changePassphrase(to: Array("new".utf8))
        let keys = try repo.keys()
        XCTAssertEqual(keys.map(\.id), [replacement])
        XCTAssertEqual(keys.first?.slot.label, "kept")
    }

    /// The master key opens the store again after it went through locked memory: the same config, the same
    /// blob ids (id key) and the same chunker (seed), and it is held locked where mlock is allowed.
    func testTheMasterKeyLivesInLockedMemoryAndStillWorks() throws {
        let scratch = Scratch()
        let backend = LocalBackend(path: scratch.sub("store"))
        let created = try Repository.create(backend: backend, passphrase: Array("pw".utf8), keyParameters: Self.fast)
        let opened = try Repository.open(backend: backend, passphrase: Array("pw".utf8))
        XCTAssertEqual(opened.config, created.config)
        XCTAssertEqual(opened.blobID(Array("same".utf8)), created.blobID(Array("same".utf8)))
        XCTAssertNotEqual(
            opened.key.secret.part(1..<33).copiedBytes(),
            opened.key.secret.part(33..<65).copiedBytes(),
            "three different keys"
        )
        XCTAssertEqual(opened.key.secret.withUnsafeBytes { $0[0] }, 1, "master key material version 1")
        if !opened.key.isLocked {
            print("mlock was refused here (errno \(opened.key.secret.lockError)): the key is kept unlocked")
        }
    }

    // MARK: Last used (local state)

    func testLastUsedIsRecordedPerSlotWhenItOpensTheStore() throws {
        let scratch = Scratch()
        let state = scratch.statePath
        let first = try scratch.manager(passphrase: "first")
        try first.initialize()
        let added = try first.repository().addKey(passphrase: Array("second".utf8), label: "second")
        let firstSlot = try first.repository().key.slot

        // A new process (manager) with the first passphrase: it opens the store, so its slot is now used.
        let listing = try scratch.manager(passphrase: "first").keys()
        XCTAssertEqual(listing.count, 2)
        let byID = Dictionary(uniqueKeysWithValues: listing.map { ($0.id, $0) })
        XCTAssertNotNil(byID[firstSlot]?.lastUsed)
        XCTAssertEqual(byID[firstSlot]?.inUse, true)
        XCTAssertNil(byID[added]?.lastUsed, "never opened the store yet")
        XCTAssertEqual(byID[added]?.label, "second")
        XCTAssertEqual(byID[added]?.inUse, false)

        _ = try scratch.manager(passphrase: "second").snapshots()
        let after = try scratch.manager(passphrase: "first").keys().first { $0.id == added }
        let used = try XCTUnwrap(after?.lastUsed, "opened the store with the second passphrase")
        let when = try XCTUnwrap(LocalState.parseTime(used), used)
        XCTAssertLessThan(abs(when.timeIntervalSinceNow), 3600, "\(used) is about now")
        XCTAssertTrue(FileManager.default.fileExists(atPath: state + "/polyad"), "kept in XDG_STATE_HOME")
    }

    func testAKeyUseIsWrittenOnlyWhenTheRecordedOneIsAMinuteAway() throws {
        let scratch = Scratch()
        let env = ["XDG_STATE_HOME": scratch.sub("state")]
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        LocalState.recordKeyUse(storeID: "s", environment: env, slot: "k", now: t0)
        let file = LocalState.file(storeID: "s", environment: env)
        let written = try XCTUnwrap(FileManager.default.contents(atPath: file))
        XCTAssertEqual(LocalState.keysLastUsed(storeID: "s", environment: env), ["k": "2027-01-15T08:00:00Z"])

        LocalState.recordKeyUse(storeID: "s", environment: env, slot: "k", now: t0 + 59)
        XCTAssertEqual(FileManager.default.contents(atPath: file), written, "within a minute: not rewritten")
        LocalState.recordKeyUse(storeID: "s", environment: env, slot: "k", now: t0 - 30)
        XCTAssertEqual(FileManager.default.contents(atPath: file), written)

        LocalState.recordKeyUse(storeID: "s", environment: env, slot: "other", now: t0 + 1)
        LocalState.recordKeyUse(storeID: "s", environment: env, slot: "k", now: t0 + 60)
        XCTAssertEqual(
            LocalState.keysLastUsed(storeID: "s", environment: env),
            ["k": "2027-01-15T08:01:00Z", "other": "2027-01-15T08:00:01Z"]
        )

        // The other records of the file are kept.
        LocalState.recordFailure(storeID: "s", environment: env, message: "boom")
        LocalState.recordKeyUse(storeID: "s", environment: env, slot: "k", now: t0 + 200)
        XCTAssertEqual(LocalState.load(storeID: "s", environment: env).failedBackups, 1)
        XCTAssertEqual(LocalState.keysLastUsed(storeID: "s", environment: env)["k"], "2027-01-15T08:03:20Z")
    }

    /// A state folder that cannot be written is no failure: the store opens, and the key reads as never used.
    func testAnUnwritableStateIsNotFatal() throws {
        let scratch = Scratch()
        scratch.write("state-is-a-file", [1])
        let env = ["XDG_STATE_HOME": scratch.sub("state-is-a-file")]
        LocalState.recordKeyUse(storeID: "s", environment: env, slot: "k")
        XCTAssertEqual(LocalState.keysLastUsed(storeID: "s", environment: env), [:])

        let manager = try scratch.manager(passphrase: "pw")
        try manager.initialize()
        let config = manager.configuration
        let blocked = BackupManager(config: config, environment: ["POLYAD_PASSWORD": "pw"].merging(env) { $1 })
        let keys = try blocked.keys()
        XCTAssertEqual(keys.count, 1)
        XCTAssertNil(keys.first?.lastUsed)
    }

    /// `--json`'s shape: `label` and `last_used` are there, null when unset.
    func testKeyInfoJSONHasEveryKey() throws {
        let info = KeyInfo(
            id: "ab",
            inUse: true,
            created: "2026-01-01T00:00:00.000000000Z",
            hostname: "h",
            username: "u",
            label: nil,
            kdf: "scrypt",
            n: 1024,
            r: 8,
            p: 1,
            lastUsed: nil
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(info), as: UTF8.self)
        XCTAssertEqual(
            json,
            "{\"created\":\"2026-01-01T00:00:00.000000000Z\",\"hostname\":\"h\",\"id\":\"ab\",\"in_use\":true,"
                + "\"kdf\":\"scrypt\",\"label\":null,\"last_used\":null,\"n\":1024,\"p\":1,\"r\":8,\"username\":\"u\"}"
        )
    }
}
