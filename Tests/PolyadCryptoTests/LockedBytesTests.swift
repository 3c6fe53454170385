import Foundation
import PolyadCrypto
import XCTest

final class LockedBytesTests: XCTestCase {
    func testRoundTripsBytesAndParts() {
        let bytes = (0..<97).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 5) }
        let locked = bytes.withUnsafeBytes { LockedBytes(copying: $0) }
        XCTAssertEqual(locked.count, 97)
        XCTAssertEqual(locked.withUnsafeBytes { Array($0) }, bytes)
        XCTAssertEqual(locked.withKeyBytes { Array($0) }, bytes)
        XCTAssertEqual(locked.part(1..<33).withKeyBytes { Array($0) }, Array(bytes[1..<33]))
        XCTAssertEqual(locked.part(65..<97).copiedBytes(), Array(bytes[65..<97]))
        XCTAssertEqual(locked.part(5..<5).copiedBytes(), [])

        let empty = LockedBytes(count: 0) { XCTAssertEqual($0.count, 0) }
        XCTAssertEqual(empty.withUnsafeBytes { $0.count }, 0)

        let random = LockedBytes.random(count: 32)
        XCTAssertEqual(random.count, 32)
        XCTAssertNotEqual(random.withUnsafeBytes { Array($0) }, [UInt8](repeating: 0, count: 32))
    }

    /// A key in locked memory gives the same MACs and subkeys as the same key in an array.
    func testKeysReadInPlaceMatchArrayKeys() {
        let key = SecureRandom.bytes(32)
        let locked = key.withUnsafeBytes { LockedBytes(copying: $0) }
        let message = Array("polyad".utf8)
        XCTAssertEqual(
            locked.withUnsafeBytes { HMACSHA256(key: $0) }.authenticationCode(for: message),
            HMACSHA256(key: key).authenticationCode(for: message)
        )
        XCTAssertEqual(
            locked.withUnsafeBytes { KeyDerivation.subkey(from: $0, label: "l", context: [1, 2]) },
            KeyDerivation.subkey(from: key, label: "l", context: [1, 2])
        )
    }

    /// The initializer's error comes through, and nothing is kept.
    func testInitializerErrorIsPassedOn() {
        struct Refused: Error {}
        XCTAssertThrowsError(
            try LockedBytes(count: 16) { (out: UnsafeMutableRawBufferPointer) throws(Refused) in
                out.storeBytes(of: 0xAB, toByteOffset: 0, as: UInt8.self)
                throw Refused()
            }
        ) { XCTAssertTrue($0 is Refused) }
    }

    /// `/proc/self/status` VmLck grows by at least a page while a LockedBytes exists, and shrinks back after.
    func testPagesAreLockedWhileItLives() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let before = try lockedKiB()
        let (locked, lockError, during) = try { () throws -> (Bool, Int32, Int) in
            let held = LockedBytes.random(count: 97)
            return (held.isLocked, held.lockError, try lockedKiB())
        }()
        guard locked else {
            var limit = rlimit()
            _ = getrlimit(Int32(__RLIMIT_MEMLOCK.rawValue), &limit)
            let reason =
                "mlock failed with errno \(lockError) (\(String(cString: strerror(lockError)))) under "
                + "RLIMIT_MEMLOCK \(limit.rlim_cur) bytes, \(before) KiB already locked: the VmLck check is skipped"
            print(reason)
            throw XCTSkip(reason)
        }
        XCTAssertEqual(lockError, 0)
        XCTAssertGreaterThanOrEqual(during - before, page / 1024, "VmLck: \(before) kB before, \(during) kB with it")
        XCTAssertEqual(try lockedKiB(), before, "munlock'd when it went")
    }

    /// The mapping is marked "dd" (MADV_DONTDUMP) in `/proc/self/smaps`, and "lo" when mlock succeeded.
    func testPagesAreLeftOutOfCoreDumps() throws {
        let locked = LockedBytes.random(count: 32)
        let address = locked.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
        let smaps = try procFile("smaps")
        var inMapping = false
        var flags: [Substring]?
        for line in smaps.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), let space = line.firstIndex(of: " "), dash < space,
                let start = UInt(line[..<dash], radix: 16),
                let end = UInt(line[line.index(after: dash)..<space], radix: 16)
            {
                inMapping = start <= address && address < end
            } else if inMapping, line.hasPrefix("VmFlags:") {
                flags = line.dropFirst("VmFlags:".count).split(separator: " ")
                break
            }
        }
        let found = try XCTUnwrap(flags, "no VmFlags for the mapping at \(String(address, radix: 16))")
        XCTAssertTrue(found.contains("dd"), "MADV_DONTDUMP: \(found)")
        if locked.isLocked { XCTAssertTrue(found.contains("lo"), "mlock: \(found)") }
    }

    func testCleanseZeroesBuffersAndEmptiesArrays() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 40, alignment: 1)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: (0..<40).map { UInt8($0 + 1) })
        cleanse(buffer)
        XCTAssertEqual(Array(buffer), [UInt8](repeating: 0, count: 40))

        var bytes = Array("a passphrase".utf8)
        cleanse(&bytes)
        XCTAssertEqual(bytes, [])
    }

    private func lockedKiB() throws -> Int {
        let status = try procFile("status")
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmLck:") }),
            let kiB = Int(line.dropFirst("VmLck:".count).trimmingCharacters(in: .whitespaces).split(separator: " ")[0])
        else { throw XCTSkip("/proc/self/status has no VmLck line here") }
        return kiB
    }

    /// A file of `/proc/self`, read to its end (procfs files state no size: one read may not get it all).
    private func procFile(_ name: String) throws -> String {
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: "/proc/self/" + name), "no /proc/self/\(name)")
        defer { try? handle.close() }
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }
}
