import Foundation
import PolyadFileSystem
import PolyadTestSupport
import XCTest

/// Back up a tree with every kind of metadata through the real CLI, restore it, compare bytes and metadata: on a
/// local store, an S3-only store and a mirror of both.
final class RoundTripTests: XCTestCase {
    struct Entry: Equatable, CustomStringConvertible {
        var kind: FileKind
        var mode: UInt32
        var uid: UInt32
        var gid: UInt32
        var size: UInt64
        var mtime: Timespec
        var atime: Timespec?
        var content: [UInt8]?
        var sparse: Bool
        var linkTarget: [UInt8]?
        var rdev: UInt64
        var xattrs: [[UInt8]: [UInt8]]
        var linkGroup: Int?
        var description: String {
            "\(kind) mode=\(String(mode, radix: 8)) \(uid):\(gid) size=\(size) mtime=\(mtime) sparse=\(sparse) xattrs=\(xattrs.count) group=\(String(describing: linkGroup))"
        }
    }

    /// Describes every entry below `root` by relative byte path.
    static func describe(_ root: [UInt8], checkAtime: Bool) throws -> [[UInt8]: Entry] {
        var out = [[UInt8]: Entry]()
        var groups = [[UInt64]: Int]()
        func walk(_ dir: [UInt8], _ rel: [UInt8]) throws {
            for name in try FileSystem.directoryEntries(dir).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                let path = PathBytes.join(dir, name)
                let relPath = rel.isEmpty ? name : rel + [47] + name
                let st = try FileSystem.lstat(path)
                var e = Entry(
                    kind: st.kind,
                    mode: st.mode & 0o7777,
                    uid: st.uid,
                    gid: st.gid,
                    size: st.kind == .directory ? 0 : st.size,
                    mtime: st.kind == .directory ? Timespec(seconds: 0, nanoseconds: 0) : st.mtime,
                    atime: checkAtime && st.kind == .regular ? st.atime : nil,
                    content: nil,
                    sparse: false,
                    linkTarget: nil,
                    rdev: st.rdev,
                    xattrs: [:],
                    linkGroup: nil
                )
                for x in try FileSystem.extendedAttributes(path) { e.xattrs[x.name] = x.value }
                switch st.kind {
                case .regular:
                    e.sparse = st.blocks * 512 < st.size / 2
                    if st.size < 64 << 20 {
                        e.content = FileManager.default.contents(atPath: String(decoding: path, as: UTF8.self)).map {
                            [UInt8]($0)
                        }
                        if e.content == nil {  // non-UTF-8 path: read through the byte API
                            let fd = try FileSystem.openForReading(path)
                            var buf = [UInt8](repeating: 0, count: Int(st.size))
                            _ = try buf.withUnsafeMutableBytes { b -> Int in
                                try FileSystem.pread(fd, into: b, offset: 0)
                            }
                            FileSystem.close(fd)
                            e.content = buf
                        }
                    }
                    if st.nlink > 1 {
                        let key = [st.dev, st.ino]
                        e.linkGroup =
                            groups[key]
                            ?? {
                                groups[key] = groups.count
                                return groups.count - 1
                            }()
                    }
                case .symlink: e.linkTarget = try FileSystem.readLink(path)
                case .directory: try walk(path, relPath)
                default: break
                }
                out[relPath] = e
            }
        }
        try walk(root, [])
        return out
    }

    static func makeTree(at root: String) throws {
        let r = bytes(root)
        try FileSystem.makeDirectories(r + bytes("/docs/deep/er"), mode: 0o755)
        _ = FileManager.default.createFile(
            atPath: root + "/docs/readme.txt",
            contents: Data(String(repeating: "hello polyad\n", count: 5000).utf8)
        )
        _ = FileManager.default.createFile(
            atPath: root + "/docs/deep/er/random.bin",
            contents: Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) })
        )
        _ = FileManager.default.createFile(atPath: root + "/empty", contents: Data())
        // Modes, owners, times with nanoseconds.
        let exec = root + "/docs/run.sh"
        _ = FileManager.default.createFile(atPath: exec, contents: Data("#!/bin/sh\necho hi\n".utf8))
        try FileSystem.changeMode(bytes(exec), mode: 0o4751)
        try FileSystem.setTimes(
            bytes(exec),
            access: Timespec(seconds: 1_600_000_000, nanoseconds: 123_456_789),
            modification: Timespec(seconds: 1_500_000_000, nanoseconds: 987_654_321)
        )
        if getuid() == 0 { try FileSystem.changeOwner(bytes(root + "/docs/readme.txt"), uid: 1234, gid: 5678) }
        // Odd names: non-UTF-8 bytes, a newline, spaces.
        let odd = r + [47, 0xff, 0xfe, 0x41]
        let fd = try FileSystem.createExclusive(odd, mode: 0o640)
        try [UInt8]([1, 2, 3]).withUnsafeBytes { try FileSystem.writeAll(fd, $0) }
        FileSystem.close(fd)
        _ = FileManager.default.createFile(atPath: root + "/new\nline name.txt", contents: Data("x".utf8))
        // Symlinks (relative, absolute, dangling), a hard-link group, a fifo and a device node.
        try FileSystem.symlink(target: bytes("docs/readme.txt"), at: r + bytes("/link"))
        try FileSystem.symlink(target: bytes("/nonexistent/target"), at: r + bytes("/dangling"))
        try FileSystem.link(existing: r + bytes("/docs/readme.txt"), new: r + bytes("/hard1"))
        try FileSystem.link(existing: r + bytes("/docs/readme.txt"), new: r + bytes("/docs/hard2"))
        try FileSystem.makeNode(r + bytes("/fifo"), mode: S_IFIFO | 0o644, device: 0)
        if getuid() == 0 {
            try FileSystem.makeNode(
                r + bytes("/null-device"),
                mode: S_IFCHR | 0o666,
                device: DeviceNumber.make(major: 1, minor: 3)
            )
        }
        // Extended attributes (user namespace; /tmp may refuse them).
        try? FileSystem.setExtendedAttribute(
            r + bytes("/docs/readme.txt"),
            name: bytes("user.comment"),
            value: bytes("reviewed")
        )
        try? FileSystem.setExtendedAttribute(r + bytes("/docs"), name: bytes("user.binary"), value: [0, 255, 10])
        // A sparse file over 4 GiB: data at the start, middle and end, holes between.
        let sparse = try FileSystem.createExclusive(r + bytes("/big-sparse.img"), mode: 0o600)
        try FileSystem.ftruncate(sparse, 5 << 30)
        for offset: Int64 in [0, 3 << 30, (5 << 30) - 4096] {
            try [UInt8](repeating: 0xAB, count: 4096).withUnsafeBytes {
                try FileSystem.pwriteAll(sparse, $0, offset: offset)
            }
        }
        FileSystem.close(sparse)
    }

    /// Runs `body` on a fixture of each kind of store: local, S3 only, and the mirror of both (in new buckets of
    /// the S3 test server). A failure names the store it happened on; without the server (off CI) the S3 kinds
    /// are skipped, saying so, once the local one has run.
    private func onEveryStore(_ body: (CLIFixture) throws -> Void) throws {
        func run(_ kind: String, _ make: () throws -> CLIFixture) {
            let before = testRun?.totalFailureCount ?? 0
            do { try body(try make()) } catch { XCTFail("\(error)") }
            if (testRun?.totalFailureCount ?? 0) > before { XCTFail("the failures above are on the \(kind) store") }
        }
        run("local") { try CLIFixture() }
        let server = try S3TestServer.fromEnvironment()
        run("S3-only") { try CLIFixture.s3(server, bucket: try server.makeBucket(prefix: "polyad-trip"), local: false) }
        run("mirror") { try CLIFixture.s3(server, bucket: try server.makeBucket(prefix: "polyad-trip"), local: true) }
    }

    func testBackupRestoreRoundTripKeepsBytesAndMetadata() throws {
        try onEveryStore(backupRestoreRoundTrip)
    }

    private func backupRestoreRoundTrip(_ f: CLIFixture) throws {
        let src = f.root + "/src"
        try Self.makeTree(at: src)
        try f.expect(0, ["init"])
        let backup = try f.expect(0, ["backup", src, "--tag", "daily"])
        XCTAssertTrue(backup.stdout.contains("snapshot "), backup.stdout)
        let restore = try f.expect(0, ["restore", "latest", "--target", f.root + "/out", "--verify"])
        XCTAssertTrue(restore.stdout.contains("verified"), restore.stdout)
        let before = try Self.describe(bytes(src), checkAtime: false)
        let after = try Self.describe(bytes(f.root + "/out" + src), checkAtime: false)
        XCTAssertEqual(before.count, after.count)
        for (path, entry) in before {
            XCTAssertEqual(after[path], entry, PathBytes.display(path))
        }
        XCTAssertTrue(after[bytes("big-sparse.img")]?.sparse == true, "holes restored as holes")
        XCTAssertEqual(after[bytes("docs/run.sh")]?.mtime, Timespec(seconds: 1_500_000_000, nanoseconds: 987_654_321))
        // Restoring again over the same target leaves identical files alone.
        let again = try f.expect(0, ["restore", "latest", "--target", f.root + "/out"])
        XCTAssertTrue(again.stdout.contains("already identical"), again.stdout)
    }

    func testSelectiveAndSingleFileRestore() throws {
        try onEveryStore(selectiveAndSingleFileRestore)
    }

    private func selectiveAndSingleFileRestore(_ f: CLIFixture) throws {
        let src = f.root + "/src"
        try Self.makeTree(at: src)
        try f.expect(0, ["init"])
        try f.expect(0, ["backup", src])
        try f.expect(
            0,
            ["restore", "latest", "--target", f.root + "/sel", "--include", "docs/**", "--exclude", "*.bin"]
        )
        XCTAssertTrue(FileManager.default.fileExists(atPath: f.root + "/sel" + src + "/docs/readme.txt"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/sel" + src + "/docs/deep/er/random.bin"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/sel" + src + "/empty"))
        let id = try XCTUnwrap(try snapshotIDs(f).last)
        try f.expect(0, ["restore", "\(id):src/docs/run.sh", "--target", f.root + "/one"])
        XCTAssertEqual(FileManager.default.contents(atPath: f.root + "/one/run.sh"), Data("#!/bin/sh\necho hi\n".utf8))
        try f.expect(2, ["restore", "\(id):src/no/such", "--target", f.root + "/none"])
    }

    func testDeduplicationAcrossSnapshotsAndFilesCache() throws {
        try onEveryStore(deduplicationAcrossSnapshotsAndFilesCache)
    }

    private func deduplicationAcrossSnapshotsAndFilesCache(_ f: CLIFixture) throws {
        let src = f.root + "/src"
        try Self.makeTree(at: src)
        try f.expect(0, ["init"])
        try f.expect(0, ["backup", src])
        let second = try f.expect(0, ["backup", src])
        XCTAssertTrue(second.stdout.contains("0 new, 0 changed"), second.stdout)
        let list = try snapshotList(f)
        XCTAssertEqual(list.count, 2)
        let added = (list[1]["summary"] as? [String: Any])?["added_bytes"] as? Int ?? -1
        XCTAssertLessThan(added, 10_000, "an unchanged re-backup adds only tree blobs")
    }

    func snapshotList(_ f: CLIFixture) throws -> [[String: Any]] {
        let out = try f.expect(0, ["snapshots", "--json"])
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])
    }

    func snapshotIDs(_ f: CLIFixture) throws -> [String] {
        try snapshotList(f).compactMap { $0["short_id"] as? String }
    }
}
