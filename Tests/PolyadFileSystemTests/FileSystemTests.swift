import Foundation
import Glibc
import PolyadTestSupport
import XCTest

@testable import PolyadFileSystem

extension Array where Element == UInt8 {
    /// The UTF-8 bytes of a string literal, for readable test paths.
    init(_ text: String) { self = Array(text.utf8) }
}

/// A fresh folder under /tmp for one test, removed afterwards.
class TemporaryDirectoryTestCase: XCTestCase {
    var root: [UInt8] = []

    override func setUpWithError() throws {
        root = try TemporaryFolder(prefix: "polyad-fs-test").bytes
    }

    override func tearDownWithError() throws {
        try FileSystem.removeTree(root)
        XCTAssertFalse(FileSystem.exists(root))
    }

    func path(_ name: String) -> [UInt8] { PathBytes.join(root, [UInt8](name)) }

    func path(bytes name: [UInt8]) -> [UInt8] { PathBytes.join(root, name) }

    /// Creates a regular file with the given contents.
    func makeFile(_ path: [UInt8], _ contents: [UInt8] = [], mode: UInt32 = 0o644) throws {
        let fd = try FileSystem.createExclusive(path, mode: mode)
        defer { FileSystem.close(fd) }
        try contents.withUnsafeBytes { raw in try FileSystem.writeAll(fd, raw) }
    }

    /// Reads a whole file.
    func contents(_ path: [UInt8]) throws -> [UInt8] {
        let fd = try FileSystem.openForReading(path)
        defer { FileSystem.close(fd) }
        let size = Int(try FileSystem.fstat(fd).size)
        var buffer = [UInt8](repeating: 0, count: size + 16)
        let count = try buffer.withUnsafeMutableBytes { raw -> Int in
            try FileSystem.pread(fd, into: raw, offset: 0)
        }
        return Array(buffer[..<count])
    }
}

final class FileSystemTests: TemporaryDirectoryTestCase {
    func testStatusOfRegularFileDirectoryAndSymlink() throws {
        let file = path("file")
        try makeFile(file, [1, 2, 3, 4, 5], mode: 0o640)
        try FileSystem.changeMode(file, mode: 0o4751)
        let fileStatus = try FileSystem.lstat(file)
        XCTAssertEqual(fileStatus.kind, .regular)
        XCTAssertEqual(fileStatus.size, 5)
        XCTAssertEqual(fileStatus.permissions, 0o4751)
        XCTAssertEqual(fileStatus.nlink, 1)
        XCTAssertEqual(fileStatus.uid, UInt32(geteuid()))

        let directory = path("dir")
        try FileSystem.makeDirectory(directory, mode: 0o750)
        XCTAssertEqual(try FileSystem.lstat(directory).kind, .directory)
        XCTAssertEqual(try FileSystem.lstat(directory).permissions, 0o750 & ~currentUmask())

        let link = path("link")
        try FileSystem.symlink(target: [UInt8]("file"), at: link)
        let linkStatus = try FileSystem.lstat(link)
        XCTAssertEqual(linkStatus.kind, .symlink)
        XCTAssertEqual(linkStatus.size, 4, "a symlink's size is its target's length")
        XCTAssertEqual(try FileSystem.stat(link).kind, .regular, "stat follows the link")
        XCTAssertEqual(try FileSystem.readLink(link), [UInt8]("file"))

        let fd = try FileSystem.openForReading(file)
        defer { FileSystem.close(fd) }
        XCTAssertEqual(try FileSystem.fstat(fd), fileStatus)
    }

    func testFifoMadeWithMakeNode() throws {
        let fifo = path("fifo")
        try FileSystem.makeNode(fifo, mode: FileKind.fifo.modeBits | 0o600, device: 0)
        let status = try FileSystem.lstat(fifo)
        XCTAssertEqual(status.kind, .fifo)
        XCTAssertEqual(status.permissions, 0o600 & ~currentUmask())
    }

    func testDeviceNodesWhenRoot() throws {
        guard getuid() == 0 else {
            throw XCTSkip("creating device nodes needs root; running as uid \(getuid())")
        }
        let character = path("null")
        do {
            try FileSystem.makeNode(
                character,
                mode: FileKind.characterDevice.modeBits | 0o666,
                device: DeviceNumber.make(major: 1, minor: 3)
            )
        } catch {
            guard error.errno == EPERM else { throw error }
            throw XCTSkip("mknod of a device is not permitted here (a container without CAP_MKNOD): \(error)")
        }
        let status = try FileSystem.lstat(character)
        XCTAssertEqual(status.kind, .characterDevice)
        XCTAssertEqual(DeviceNumber.major(status.rdev), 1)
        XCTAssertEqual(DeviceNumber.minor(status.rdev), 3)

        let block = path("block")
        try FileSystem.makeNode(
            block,
            mode: FileKind.blockDevice.modeBits | 0o600,
            device: DeviceNumber.make(major: 259, minor: 70_000)
        )
        let blockStatus = try FileSystem.lstat(block)
        XCTAssertEqual(blockStatus.kind, .blockDevice)
        XCTAssertEqual(DeviceNumber.major(blockStatus.rdev), 259)
        XCTAssertEqual(DeviceNumber.minor(blockStatus.rdev), 70_000)
    }

    func testDeviceNumberEncodingMatchesGlibc() {
        XCTAssertEqual(DeviceNumber.make(major: 8, minor: 1), 0x801)
        // The value of glibc's makedev(0x12345, 0x6789A).
        XCTAssertEqual(DeviceNumber.make(major: 0x12345, minor: 0x6789A), 0x0001_2000_6783_459A)
        for (major, minor) in [(0, 0), (1, 3), (4095, 255), (0xFFFF_FFFF, 0xFFFF_FFFF), (259, 1 << 20)] {
            let device = DeviceNumber.make(major: UInt32(major), minor: UInt32(minor))
            XCTAssertEqual(DeviceNumber.major(device), UInt32(major))
            XCTAssertEqual(DeviceNumber.minor(device), UInt32(minor))
        }
    }

    func testNonUTF8AndNewlineNamesAreListedAndStatedByteExact() throws {
        let names: [[UInt8]] = [
            [0x66, 0xFF, 0x6F],  // invalid UTF-8
            [UInt8]("line\nbreak"),
            [0xC3, 0xA9, 0x0A, 0xFE],  // é, newline, invalid
            [UInt8]("plain"),
        ]
        for (index, name) in names.enumerated() {
            try makeFile(path(bytes: name), [UInt8](repeating: 7, count: index))
        }
        try FileSystem.makeDirectory(path(bytes: [0x64, 0xFF]), mode: 0o755)
        let listed = try FileSystem.directoryEntries(root)
        XCTAssertEqual(Set(listed), Set(names + [[0x64, 0xFF]]))
        XCTAssertEqual(listed.count, names.count + 1, "no . or .. and no duplicates")
        for (index, name) in names.enumerated() {
            let status = try FileSystem.lstat(path(bytes: name))
            XCTAssertEqual(status.kind, .regular)
            XCTAssertEqual(status.size, UInt64(index), PathBytes.display(name))
        }
        XCTAssertEqual(try FileSystem.lstat(path(bytes: [0x64, 0xFF])).kind, .directory)
        XCTAssertEqual(try FileSystem.directoryEntries(path(bytes: [0x64, 0xFF])), [])
        // A symlink whose target is not UTF-8 keeps its bytes.
        try FileSystem.symlink(target: [0x2E, 0x2F, 0xFF, 0x0A], at: path("odd-link"))
        XCTAssertEqual(try FileSystem.readLink(path("odd-link")), [0x2E, 0x2F, 0xFF, 0x0A])
    }

    func testLongSymlinkTarget() throws {
        let target = [UInt8](repeating: 0x61, count: 3000)
        try FileSystem.symlink(target: target, at: path("long"))
        XCTAssertEqual(try FileSystem.readLink(path("long")), target)
    }

    func testExtendedAttributesRoundTrip() throws {
        let file = path("xattr-file")
        try makeFile(file, [1])
        XCTAssertTrue(
            try FileSystem.extendedAttributes(file).filter { $0.name.starts(with: [UInt8]("user.")) }
                .isEmpty
        )
        let binary: [UInt8] = (0..<3000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        do {
            try FileSystem.setExtendedAttribute(file, name: [UInt8]("user.polyad.test"), value: binary)
        } catch {
            guard error.errno == ENOTSUP else { throw error }
            throw XCTSkip("the file system under /tmp refuses user extended attributes: \(error)")
        }
        try FileSystem.setExtendedAttribute(file, name: [UInt8]("user.a"), value: [])
        try FileSystem.setExtendedAttribute(file, name: [UInt8]("user.z"), value: [0, 0xFF, 0x0A])
        try FileSystem.setExtendedAttribute(file, name: [UInt8]("user.z"), value: [9])  // replaces
        let attributes = try FileSystem.extendedAttributes(file).filter { $0.name.starts(with: [UInt8]("user.")) }
        XCTAssertEqual(attributes.map(\.name), [[UInt8]("user.a"), [UInt8]("user.polyad.test"), [UInt8]("user.z")])
        XCTAssertEqual(attributes.map(\.value), [[], binary, [9]])
        // A symlink is not followed: its own attribute list does not show the target's.
        try FileSystem.symlink(target: [UInt8]("xattr-file"), at: path("xattr-link"))
        XCTAssertFalse(try FileSystem.extendedAttributes(path("xattr-link")).contains { $0.name == [UInt8]("user.a") })
        XCTAssertThrowsError(try FileSystem.extendedAttributes(path("missing"))) { error in
            XCTAssertEqual((error as? SystemError)?.errno, ENOENT)
        }
    }

    func testDataExtentsOfSparseFile() throws {
        let file = path("sparse")
        let mebibyte = 1 << 20
        let fd = try FileSystem.createExclusive(file, mode: 0o600)
        try FileSystem.ftruncate(fd, 64 << 20)
        let block = [UInt8](repeating: 0xAB, count: mebibyte)
        try block.withUnsafeBytes { raw in
            try FileSystem.pwriteAll(fd, raw, offset: 0)
            try FileSystem.pwriteAll(fd, raw, offset: 32 << 20)
        }
        try FileSystem.fsync(fd)
        FileSystem.close(fd)

        let reader = try FileSystem.openForReading(file)
        defer { FileSystem.close(reader) }
        let status = try FileSystem.fstat(reader)
        XCTAssertEqual(status.size, 64 << 20)
        XCTAssertLessThan(status.blocks * 512, 8 << 20, "the file should be sparse on this file system")
        let extents = try FileSystem.dataExtents(fileDescriptor: reader, size: Int64(status.size))
        let slack: Int64 = 1 << 16  // allow rounding to the file system's allocation unit
        XCTAssertEqual(extents.count, 2, "\(extents)")
        guard extents.count == 2 else { return }
        XCTAssertEqual(extents[0].lowerBound, 0)
        XCTAssertGreaterThanOrEqual(extents[0].upperBound, Int64(mebibyte))
        XCTAssertLessThanOrEqual(extents[0].upperBound, Int64(mebibyte) + slack)
        XCTAssertLessThanOrEqual(extents[1].lowerBound, 32 << 20)
        XCTAssertGreaterThanOrEqual(extents[1].lowerBound, (32 << 20) - slack)
        XCTAssertGreaterThanOrEqual(extents[1].upperBound, (33 << 20))
        XCTAssertLessThanOrEqual(extents[1].upperBound, (33 << 20) + slack)
    }

    func testDataExtentsOfDenseEmptyAndAllHoleFiles() throws {
        try makeFile(path("dense"), [UInt8](repeating: 1, count: 10_000))
        try makeFile(path("empty"))
        let holeFD = try FileSystem.createExclusive(path("hole"), mode: 0o600)
        try FileSystem.ftruncate(holeFD, 5 << 20)
        FileSystem.close(holeFD)
        for (name, size, expected) in [("dense", 10_000, [0..<10_000]), ("empty", 0, []), ("hole", 5 << 20, [])]
            as [(String, Int64, [Range<Int64>])]
        {
            let fd = try FileSystem.openForReading(path(name))
            defer { FileSystem.close(fd) }
            XCTAssertEqual(try FileSystem.dataExtents(fileDescriptor: fd, size: size), expected, name)
        }
    }

    func testSetTimesWithNanosecondsAndWithoutFollowingSymlinks() throws {
        let file = path("timed")
        try makeFile(file)
        let access = Timespec(seconds: 1_600_000_000, nanoseconds: 123_456_789)
        let modification = Timespec(seconds: 1_234_567_890, nanoseconds: 987_654_321)
        try FileSystem.setTimes(file, access: access, modification: modification)
        var status = try FileSystem.lstat(file)
        XCTAssertEqual(status.atime, access)
        XCTAssertEqual(status.mtime, modification)

        let link = path("timed-link")
        try FileSystem.symlink(target: [UInt8]("timed"), at: link)
        let linkTime = Timespec(seconds: 1_000_000_000, nanoseconds: 1)
        try FileSystem.setTimes(link, access: linkTime, modification: linkTime)
        XCTAssertEqual(try FileSystem.lstat(link).mtime, linkTime)
        status = try FileSystem.lstat(file)
        XCTAssertEqual(status.mtime, modification, "the target keeps its time")
        // Times before 1970 round-trip too.
        let old = Timespec(seconds: -86_400, nanoseconds: 5)
        try FileSystem.setTimes(file, access: old, modification: old)
        XCTAssertEqual(try FileSystem.lstat(file).mtime, old)
        XCTAssertEqual(old.description, "-86400.000000005")
    }

    func testChangeOwnerWhenRoot() throws {
        guard getuid() == 0 else {
            throw XCTSkip("changing a file's owner needs root; running as uid \(getuid())")
        }
        let file = path("owned")
        try makeFile(file)
        try FileSystem.changeOwner(file, uid: 12_345, gid: 54_321)
        var status = try FileSystem.lstat(file)
        XCTAssertEqual(status.uid, 12_345)
        XCTAssertEqual(status.gid, 54_321)
        let link = path("owned-link")
        try FileSystem.symlink(target: [UInt8]("owned"), at: link)
        try FileSystem.changeOwner(link, uid: 777, gid: 888)
        XCTAssertEqual(try FileSystem.lstat(link).uid, 777)
        XCTAssertEqual(try FileSystem.lstat(link).gid, 888)
        status = try FileSystem.lstat(file)
        XCTAssertEqual(status.uid, 12_345, "lchown does not follow the link")
    }

    func testErrorsNameOperationAndPath() throws {
        let missing = path(bytes: [UInt8]("missing") + [0xFF])
        do {
            _ = try FileSystem.lstat(missing)
            XCTFail("lstat of a missing path must throw")
        } catch {
            XCTAssertEqual(error.errno, ENOENT)
            XCTAssertEqual(error.operation, "lstat")
            XCTAssertEqual(error.path, missing)
            XCTAssertEqual(
                error.description,
                "lstat \(PathBytes.display(root))/missing\\xFF: No such file or directory"
            )
            XCTAssertNotNil(error.remedy)
        }
        try makeFile(path("exists"))
        XCTAssertThrowsError(try FileSystem.createExclusive(path("exists"), mode: 0o600)) { error in
            XCTAssertEqual("\(error)", "open \(PathBytes.display(root))/exists: File exists")
        }
        try FileSystem.symlink(target: [UInt8]("exists"), at: path("link"))
        XCTAssertThrowsError(try FileSystem.openForReading(path("link"))) { error in
            XCTAssertEqual((error as? SystemError)?.errno, ELOOP, "openForReading does not follow symlinks")
        }
        XCTAssertThrowsError(try FileSystem.rename(path("nope"), path("new\nname"))) { error in
            XCTAssertEqual(
                "\(error)",
                "rename \(PathBytes.display(root))/nope -> \(PathBytes.display(root))/new\\nname: "
                    + "No such file or directory"
            )
        }
        XCTAssertThrowsError(try FileSystem.lstat([UInt8]("/tmp/a") + [0] + [UInt8]("b"))) { error in
            XCTAssertEqual((error as? SystemError)?.errno, EINVAL, "a NUL byte is refused, not truncated")
        }
        XCTAssertThrowsError(try FileSystem.makeDirectory(path("exists"), mode: 0o755)) { error in
            XCTAssertEqual((error as? SystemError)?.errno, EEXIST, "a file is not a directory")
        }
        XCTAssertThrowsError(try FileSystem.directoryEntries(path("link"))) { error in
            XCTAssertEqual((error as? SystemError)?.operation, "opendir")
        }
    }

    func testReadWriteHelpers() throws {
        let file = path("data")
        let fd = try FileSystem.open(file, flags: O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o600)
        defer { FileSystem.close(fd) }
        let data: [UInt8] = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try data.withUnsafeBytes { raw in try FileSystem.writeAll(fd, raw) }
        try [UInt8]("tail").withUnsafeBytes { raw in
            try FileSystem.pwriteAll(fd, raw, offset: 100_000)
        }
        var buffer = [UInt8](repeating: 0, count: 200_000)
        let count = try buffer.withUnsafeMutableBytes { raw -> Int in
            try FileSystem.pread(fd, into: raw, offset: 0)
        }
        XCTAssertEqual(count, 100_004, "a short count means end of file")
        XCTAssertEqual(Array(buffer[..<count]), data + [UInt8]("tail"))
        let atEnd = try buffer.withUnsafeMutableBytes { raw -> Int in
            try FileSystem.pread(fd, into: raw, offset: 1 << 30)
        }
        XCTAssertEqual(atEnd, 0)
        try FileSystem.ftruncate(fd, 10)
        try FileSystem.fsync(fd)
        XCTAssertEqual(try FileSystem.fstat(fd).size, 10)
    }

    func testLinkRenameUnlinkAndDirectories() throws {
        try makeFile(path("a"), [UInt8]("hello"))
        try FileSystem.link(existing: path("a"), new: path("b"))
        let a = try FileSystem.lstat(path("a"))
        let b = try FileSystem.lstat(path("b"))
        XCTAssertEqual(a.ino, b.ino)
        XCTAssertEqual(a.nlink, 2)
        try FileSystem.rename(path("b"), path("c"))
        XCTAssertFalse(FileSystem.exists(path("b")))
        XCTAssertEqual(try contents(path("c")), [UInt8]("hello"))
        try FileSystem.unlink(path("c"))
        XCTAssertEqual(try FileSystem.lstat(path("a")).nlink, 1)

        let nested = path("x/y/z")
        try FileSystem.makeDirectories(nested, mode: 0o755)
        try FileSystem.makeDirectories(nested, mode: 0o755)  // already there: fine
        try FileSystem.makeDirectory(nested, mode: 0o755)  // EEXIST on a directory passes
        XCTAssertEqual(try FileSystem.lstat(nested).kind, .directory)
        // Intermediate symlinks to directories are followed, as by mkdir -p.
        try FileSystem.symlink(target: [UInt8]("x"), at: path("via"))
        try FileSystem.makeDirectories(path("via/y/w"), mode: 0o755)
        XCTAssertEqual(try FileSystem.lstat(path("x/y/w")).kind, .directory)
        // But makeDirectory does not accept a symlink to a directory as the directory.
        XCTAssertThrowsError(try FileSystem.makeDirectory(path("via"), mode: 0o755))
        try FileSystem.syncDirectory(path("x"))
        XCTAssertThrowsError(try FileSystem.removeDirectory(path("x")))  // not empty
        try FileSystem.removeDirectory(nested)
        XCTAssertFalse(FileSystem.exists(nested))
    }

    func testRemoveTreeRemovesEverythingButFollowsNoSymlink() throws {
        let outside = path("outside")
        try makeFile(outside, [1])
        let tree = path("tree")
        try FileSystem.makeDirectories(PathBytes.join(tree, [UInt8]("deep/er/still")), mode: 0o755)
        try makeFile(path("tree/deep/file"))
        try makeFile(path(bytes: [UInt8]("tree/") + [0xFF, 0x0A]))
        try FileSystem.symlink(target: outside, at: path("tree/to-outside"))
        try FileSystem.symlink(target: root, at: path("tree/deep/to-root"))
        try FileSystem.makeNode(path("tree/fifo"), mode: FileKind.fifo.modeBits | 0o600, device: 0)
        try makeFile(path("tree/deep/er/locked-file"))
        try FileSystem.changeMode(path("tree/deep/er"), mode: 0o000)  // no permissions at all
        try FileSystem.removeTree(tree)
        XCTAssertFalse(FileSystem.exists(tree))
        XCTAssertEqual(try contents(outside), [1], "a symlink's target survives")
        try FileSystem.removeTree(tree)  // missing: not an error
        // A single file.
        try FileSystem.removeTree(outside)
        XCTAssertFalse(FileSystem.exists(outside))
    }

    func testPathQueries() throws {
        try FileSystem.makeDirectory(path("real"), mode: 0o755)
        try FileSystem.symlink(target: [UInt8]("real"), at: path("alias"))
        let resolvedRoot = try FileSystem.realPath(root)
        XCTAssertEqual(try FileSystem.realPath(path("alias/../alias")), PathBytes.join(resolvedRoot, [UInt8]("real")))
        XCTAssertThrowsError(try FileSystem.realPath(path("none")))
        XCTAssertEqual(FileSystem.currentDirectory().first, PathBytes.separator)
        XCTAssertGreaterThan(try FileSystem.freeSpace(root), 0)
        XCTAssertTrue(FileSystem.exists(path("alias")))
        try FileSystem.symlink(target: [UInt8]("nowhere"), at: path("dangling"))
        XCTAssertTrue(FileSystem.exists(path("dangling")), "a dangling symlink exists")
        XCTAssertFalse(FileSystem.exists(path("nowhere")))
    }
}

/// The process umask, from /proc/self/status (calling umask(2) to read it would race with other threads).
func currentUmask() -> UInt32 {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    for line in status.split(separator: "\n") where line.hasPrefix("Umask:") {
        return UInt32(line.dropFirst("Umask:".count).trimmingCharacters(in: .whitespaces), radix: 8) ?? 0o022
    }
    return 0o022
}
