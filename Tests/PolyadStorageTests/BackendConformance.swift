import Dispatch
import PolyadStorage
import Synchronization
import XCTest

/// The contract of ``Backend``, as one suite that runs against any backend (local now; S3 and mirror later).
///
/// `run(backend:)` expects a backend whose location holds no store yet; it creates one, fills it and leaves it
/// behind for the caller to remove.
enum BackendConformance {
    /// Runs every check against `backend`; failures are reported through XCTest.
    static func run(backend: some Backend, file: StaticString = #filePath, line: UInt = #line) throws {
        try creation(backend)
        try saveLoadSizeRemove(backend)
        try rangedLoads(backend)
        try missingObjects(backend)
        try listingByKind(backend)
        try existingNames(backend)
        try failedSavesLeaveNothing(backend)
        try concurrentSaves(backend)
    }

    // MARK: - Checks

    /// `create`, `exists` and the config object.
    static func creation(_ backend: some Backend) throws {
        XCTAssertFalse(try backend.exists(), "a fresh location holds no store")
        for kind in ObjectKind.allCases {
            XCTAssertEqual(try backend.list(kind).count, 0, "nothing of kind \(kind) before create()")
        }
        try backend.create()
        XCTAssertFalse(try backend.exists(), "a store exists only once its config object is saved")
        try backend.create()  // an interrupted create may be repeated

        let config = TestData.bytes(count: 155, seed: 1)
        try backend.save(.config, config)
        XCTAssertTrue(try backend.exists())
        XCTAssertEqual(try backend.load(.config), config)
        XCTAssertEqual(try backend.size(.config), 155)
        XCTAssertEqual(try backend.list(.config).map(\.handle), [.config])
        XCTAssertEqual(try backend.list(.config).map(\.size), [155])
        assertThrows(.alreadyExists, "create() over an existing store") { () throws(StorageError) in
            try backend.create()
        }
    }

    /// The basic round trip, for every hashed kind, including empty and multi-MiB objects.
    static func saveLoadSizeRemove(_ backend: some Backend) throws {
        for (index, kind) in ObjectKind.allCases.filter(\.isHashed).enumerated() {
            for count in [0, 1, 4096, 3 << 20 | 17] {
                let handle = TestData.handle(kind, seed: UInt64(index * 100 + count))
                let bytes = TestData.bytes(count: count, seed: UInt64(count))
                try backend.save(handle, bytes)
                XCTAssertEqual(try backend.size(handle), Int64(count), "\(handle)")
                let loaded = try backend.load(handle)
                XCTAssertEqual(loaded.count, count, "\(handle)")
                XCTAssertTrue(loaded == bytes, "\(handle) reads back what was saved")
                XCTAssertTrue(try backend.list(kind).contains(ObjectInfo(handle: handle, size: Int64(count))))
                try backend.remove(handle)
                XCTAssertFalse(try backend.list(kind).contains { $0.handle == handle }, "\(handle) removed")
                assertThrows(.notFound, "load after remove") { () throws(StorageError) in
                    _ = try backend.load(handle)
                }
            }
        }
    }

    /// `load` with offsets and lengths.
    static func rangedLoads(_ backend: some Backend) throws {
        let handle = TestData.handle(.data, seed: 7)
        let bytes = TestData.bytes(count: 100_000, seed: 7)
        try backend.save(handle, bytes)
        defer { try? backend.remove(handle) }

        let ranges: [(offset: Int, length: Int?)] = [
            (0, nil), (0, 1), (0, 100_000), (1, 99_999), (50_000, nil), (99_999, 1), (99_999, nil),
            (100_000, nil), (100_000, 0), (12_345, 0), (4096, 65_536), (65_535, 2),
        ]
        for (offset, length) in ranges {
            let loaded = try backend.load(handle, offset: Int64(offset), length: length)
            let end = length.map { offset + $0 } ?? bytes.count
            XCTAssertTrue(loaded == Array(bytes[offset..<end]), "range \(offset), \(String(describing: length))")
        }
        let beyondTheEnd: [(offset: Int, length: Int?)] = [
            (0, 100_001), (99_999, 2), (100_001, 0), (100_001, nil), (1, Int.max), (Int(Int64.max), 1),
        ]
        for (offset, length) in beyondTheEnd {
            assertThrows(.damaged, "reading past the end: \(offset), \(String(describing: length))") {
                () throws(StorageError) in
                _ = try backend.load(handle, offset: Int64(offset), length: length)
            }
        }
        assertThrows(.invalidRequest, "negative offset") { () throws(StorageError) in
            _ = try backend.load(handle, offset: -1, length: 1)
        }
        assertThrows(.invalidRequest, "negative length") { () throws(StorageError) in
            _ = try backend.load(handle, offset: 0, length: -1)
        }
    }

    /// Missing objects are `.notFound`, naming the handle.
    static func missingObjects(_ backend: some Backend) throws {
        for kind in ObjectKind.allCases.filter(\.isHashed) {
            let handle = TestData.handle(kind, seed: 999)
            let error = assertThrows(.notFound, "load of a missing \(kind) object") { () throws(StorageError) in
                _ = try backend.load(handle, offset: 10, length: 5)
            }
            XCTAssertEqual(error?.handle, handle)
            XCTAssertTrue(error?.description.contains(handle.name) == true, "the message names the object")
            assertThrows(.notFound, "size of a missing object") { () throws(StorageError) in
                _ = try backend.size(handle)
            }
            assertThrows(.notFound, "remove of a missing object") { () throws(StorageError) in
                try backend.remove(handle)
            }
        }
    }

    /// `list` returns exactly the objects of one kind.
    static func listingByKind(_ backend: some Backend) throws {
        var saved: [ObjectKind: Set<ObjectInfo>] = [:]
        for (index, kind) in ObjectKind.allCases.filter(\.isHashed).enumerated() {
            // Enough data objects to spread over several data subfolders.
            let count = kind == .data ? 40 : 3 + index
            for number in 0..<count {
                let handle = TestData.handle(kind, seed: UInt64(10_000 + index * 1000 + number))
                let size = 10 + number
                try backend.save(handle, TestData.bytes(count: size, seed: UInt64(number)))
                saved[kind, default: []].insert(ObjectInfo(handle: handle, size: Int64(size)))
            }
        }
        for kind in ObjectKind.allCases.filter(\.isHashed) {
            let listed = try backend.list(kind)
            XCTAssertEqual(listed.count, saved[kind]?.count, "no duplicates in the listing of \(kind)")
            XCTAssertEqual(Set(listed), saved[kind], "listing of \(kind)")
        }
        XCTAssertEqual(try backend.list(.config).map(\.handle), [.config], "listing config")
        for kind in ObjectKind.allCases.filter(\.isHashed) {
            for info in saved[kind] ?? [] { try backend.remove(info.handle) }
            XCTAssertEqual(try backend.list(kind).count, 0, "\(kind) empty again")
        }
    }

    /// Saving over an existing name: a no-op when the size matches, refused when it differs (or, for a hashed
    /// kind on a backend that writes without asking first, the object replaced whole), replaced for locks.
    static func existingNames(_ backend: some Backend) throws {
        let handle = TestData.handle(.snapshots, seed: 42)
        let original = TestData.bytes(count: 500, seed: 1)
        try backend.save(handle, original)
        try backend.save(handle, original)
        XCTAssertTrue(try backend.load(handle) == original, "saving the same bytes again keeps them")
        let other = TestData.bytes(count: 501, seed: 3)
        do {
            try backend.save(handle, other)
            XCTAssertTrue(try backend.load(handle) == other, "a save that went through replaced the object whole")
            XCTAssertEqual(try backend.list(.snapshots).map(\.size), [501])
        } catch {
            XCTAssertEqual(error.code, .alreadyExists, "a save over an object of another size: \(error)")
            XCTAssertTrue(try backend.load(handle) == original, "the refused save left the original")
            XCTAssertEqual(try backend.list(.snapshots).map(\.size), [500])
        }
        try backend.remove(handle)

        let lock = TestData.handle(.locks, seed: 43)
        try backend.save(lock, TestData.bytes(count: 100, seed: 4))
        let refreshed = TestData.bytes(count: 120, seed: 5)
        try backend.save(lock, refreshed)
        XCTAssertTrue(try backend.load(lock) == refreshed, "a lock is replaced")
        XCTAssertEqual(try backend.list(.locks), [ObjectInfo(handle: lock, size: 120)])
        try backend.remove(lock)
    }

    /// Saves that fail leave no visible object; invalid names never reach outside the store.
    static func failedSavesLeaveNothing(_ backend: some Backend) throws {
        let invalid: [ObjectHandle] = [
            ObjectHandle(kind: .data, name: "../../escape"),
            ObjectHandle(kind: .data, name: String(repeating: "A", count: 64)),
            ObjectHandle(kind: .keys, name: String(repeating: "a", count: 63)),
            ObjectHandle(kind: .index, name: String(repeating: "a", count: 65)),
            ObjectHandle(kind: .snapshots, name: String(repeating: "a", count: 63) + "/"),
            ObjectHandle(kind: .locks, name: ""),
            ObjectHandle(kind: .config, name: String(repeating: "a", count: 64)),
            ObjectHandle(kind: .keys, name: "config"),
        ]
        let before = try ObjectKind.allCases.map { try Set(backend.list($0)) }
        for handle in invalid {
            XCTAssertFalse(handle.isValid)
            assertThrows(.invalidRequest, "saving \(handle.kind)/\(handle.name)") { () throws(StorageError) in
                try backend.save(handle, [1, 2, 3])
            }
            assertThrows(.invalidRequest, "loading \(handle.kind)/\(handle.name)") { () throws(StorageError) in
                _ = try backend.load(handle)
            }
            assertThrows(.invalidRequest, "removing \(handle.kind)/\(handle.name)") { () throws(StorageError) in
                try backend.remove(handle)
            }
        }
        let after = try ObjectKind.allCases.map { try Set(backend.list($0)) }
        XCTAssertEqual(before, after, "failed saves left nothing behind")
    }

    /// Saves and loads from several threads at once, including several writers of the same objects.
    static func concurrentSaves(_ backend: some Backend) throws {
        let threads = 8
        let perThread = 12
        let shared = (0..<4).map { TestData.handle(.data, seed: 77_000 + UInt64($0)) }
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            do {
                for number in 0..<perThread {
                    let seed = UInt64(50_000 + thread * 100 + number)
                    let handle = TestData.handle(.data, seed: seed)
                    let bytes = TestData.bytes(count: 1000 + number * 997, seed: seed)
                    try backend.save(handle, bytes)
                    if try backend.load(handle) != bytes { failures.add("\(handle) read back differently") }
                    let common = shared[number % shared.count]
                    let commonBytes = TestData.bytes(count: 70_000, seed: 88)
                    try backend.save(common, commonBytes)
                    if try backend.load(common) != commonBytes { failures.add("\(common) read back differently") }
                }
            } catch {
                failures.add("thread \(thread): \(error)")
            }
        }
        XCTAssertEqual(failures.all, [])
        let listed = try backend.list(.data)
        XCTAssertEqual(listed.count, threads * perThread + shared.count)
        for thread in 0..<threads {
            for number in 0..<perThread {
                let seed = UInt64(50_000 + thread * 100 + number)
                let expected = ObjectInfo(handle: TestData.handle(.data, seed: seed), size: Int64(1000 + number * 997))
                XCTAssertTrue(listed.contains(expected), "\(expected.handle) listed with its size")
            }
        }
        for info in listed { try backend.remove(info.handle) }
    }

    // MARK: - Helpers

    /// Asserts that `body` throws a ``StorageError`` with `code`; returns the error.
    @discardableResult
    static func assertThrows<T>(
        _ code: StorageError.Code,
        _ what: String,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: () throws(StorageError) -> T
    ) -> StorageError? {
        do {
            _ = try body()
            XCTFail("\(what): expected \(code), but it succeeded", file: file, line: line)
            return nil
        } catch {
            XCTAssertEqual(error.code, code, "\(what): \(error)", file: file, line: line)
            XCTAssertFalse(error.message.isEmpty, file: file, line: line)
            return error
        }
    }
}

/// Failures collected from several threads.
final class Failures: Sendable {
    private let lines = Mutex<[String]>([])

    func add(_ line: String) { lines.withLock { $0.append(line) } }

    var all: [String] { lines.withLock { $0 } }
}

/// Deterministic test bytes and object names.
enum TestData {
    /// `count` pseudo-random bytes from `seed` (SplitMix64).
    static func bytes(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var index = 0
            while index < count {
                var word = splitMix(&state)
                for _ in 0..<min(8, count - index) {
                    buffer[index] = UInt8(truncatingIfNeeded: word)
                    word >>= 8
                    index += 1
                }
            }
            initialized = count
        }
    }

    /// A valid handle of `kind` whose 64-hex-digit name derives from `seed`.
    static func handle(_ kind: ObjectKind, seed: UInt64) -> ObjectHandle {
        let digits = Array("0123456789abcdef".utf8)
        let name = bytes(count: 32, seed: seed ^ 0xA5A5_5A5A).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }
        return ObjectHandle(kind: kind, name: String(decoding: name, as: UTF8.self))
    }

    private static func splitMix(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
