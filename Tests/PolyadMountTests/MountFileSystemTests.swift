import Foundation
import PolyadConfig
import PolyadFileSystem
import PolyadFormat
import PolyadRepository
import PolyadService
import PolyadTestSupport
import Synchronization
import XCTest

@testable import PolyadMount

/// The mount's filesystem model on a real store, without FUSE: layout, lookups, attributes, reads at any
/// offset, holes, xattrs, `latest` and damage.
final class MountFileSystemTests: XCTestCase {
    private var temporary: TemporaryFolder!
    private var folder: String { temporary.path }
    private var manager: BackupManager!
    private var source = ""
    /// Who asks: this process (nothing checks it yet).
    private let caller = Caller.currentProcess

    private var staging: StagingArea?

    /// A new store in `folder` (config `extra` appended to its mount.conf), and its manager.
    static func makeStore(in folder: String, extra: String = "") throws -> BackupManager {
        let conf = folder + "/mount.conf"
        let text = "backup:\n  local_dir: \"store\"\n  compression_level: 6\n  verify_integrity: false\n" + extra
        _ = FileManager.default.createFile(
            atPath: conf,
            contents: Data(text.utf8),
            attributes: [.posixPermissions: 0o600]
        )
        let manager = BackupManager(config: try Configuration.load(file: conf), environment: ["POLYAD_PASSWORD": "pw"])
        try manager.initialize()
        return manager
    }

    override func setUpWithError() throws {
        temporary = try TemporaryFolder(prefix: "polyad-mount-test")
        manager = try Self.makeStore(in: folder)
        source = folder + "/src"
        try FileManager.default.createDirectory(atPath: source + "/sub", withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        temporary.remove()
    }

    // MARK: Helpers

    private func write(_ relative: String, _ bytes: [UInt8]) {
        _ = FileManager.default.createFile(atPath: source + "/" + relative, contents: Data(bytes))
    }

    private func backup() throws {
        _ = try manager.createBackup(paths: [source])
    }

    private func makeFileSystem(
        cacheBytes: Int = 64 << 20,
        log: @escaping @Sendable (String) -> Void = { _ in },
        willBlock: @escaping @Sendable () -> Void = {},
        pushToKernel: @escaping @Sendable (UInt64, [UInt8]) -> Void = { _, _ in }
    )
        throws -> MountFileSystem
    {
        let staging = try self.staging ?? StagingArea(path: folder + "/staging")
        self.staging = staging
        let fs = try MountFileSystem(
            manager: manager,
            repository: try manager.repository(),
            cacheBytes: cacheBytes,
            staging: staging,
            settleSeconds: 3600,
            log: log,
            willBlock: willBlock,
            pushToKernel: pushToKernel
        )
        fs.refreshSnapshots(interval: 0)
        return fs
    }

    /// The inode at `path` below the mount's root, looked up name by name.
    private func inode(_ fs: MountFileSystem, _ path: String) throws -> UInt64 {
        var at = FixedInode.root
        for part in path.split(separator: "/") {
            do { at = try fs.lookup(parent: at, name: Array(part.utf8), caller: caller).inode } catch {
                XCTFail("lookup of \(part) in \(path): errno \(error.code)")
                throw error
            }
        }
        return at
    }

    /// The path of the backed-up source inside the newest snapshot.
    private func latestSource(_ fs: MountFileSystem) throws -> String {
        let latest = try inode(fs, "snapshots/latest")
        return "snapshots/" + String(decoding: try fs.readLink(latest, caller: caller), as: UTF8.self) + source
    }

    private func read(_ fs: MountFileSystem, _ handle: UInt64, offset: UInt64, size: Int) throws -> [UInt8] {
        try fs.read(handle, offset: offset, size: size, caller: caller).flatMap { $0 }
    }

    /// How many chunks the newest snapshot stores for the file at absolute `path`.
    private func chunks(of path: String) throws -> Int {
        let repo = try manager.repository()
        let id = try XCTUnwrap(
            try repo.snapshotIDs().max { try! repo.loadSnapshot($0).time < repo.loadSnapshot($1).time }
        )
        var tree = try repo.loadTree(try repo.loadSnapshot(id).tree)
        let parts = path.split(separator: "/").map { Array($0.utf8) }
        for (i, part) in parts.enumerated() {
            let node = try XCTUnwrap(
                tree.nodes.first { $0.name == part },
                "\(path): no \(String(decoding: part, as: UTF8.self))"
            )
            if i == parts.count - 1 {
                return node.content.filter { if case .chunk = $0 { true } else { false } }.count
            }
            tree = try repo.loadTree(try XCTUnwrap(node.subtree))
        }
        return 0
    }

    /// Chunks the filesystem has decoded so far.
    private func decodes(_ fs: MountFileSystem) -> Int { fs.counters.chunksDecoded }

    /// The whole content of the file at `path` below the mount's root, read through an open handle.
    private func contents(_ fs: MountFileSystem, _ path: String) throws -> [UInt8] {
        let h = try fs.open(try inode(fs, path), caller: caller).handle
        defer { fs.release(h, caller: caller) }
        return try read(fs, h, offset: 0, size: 1 << 20)
    }

    private func names(_ entries: [DirectoryEntry]) -> [String] {
        entries.map { String(decoding: $0.name, as: UTF8.self) }
    }

    // MARK: Tests

    func testLayoutFollowsTheDesign() throws {
        write("a.txt", Array("hello\n".utf8))
        try backup()
        let fs = try makeFileSystem()
        XCTAssertEqual(
            names(try fs.readDirectory(FixedInode.root, caller: caller)),
            [".", "..", "snapshots", "incoming", ".polyad"]
        )
        let snapshots = try inode(fs, "snapshots")
        let listed = names(try fs.readDirectory(snapshots, caller: caller))
        XCTAssertEqual(listed.count, 4, "\(listed)")  // ., .., one day, latest
        XCTAssertEqual(listed.last, "latest")
        let day = listed[2]
        XCTAssertNotNil(day.range(of: #"^\d{4}-\d{2}-\d{2}$"#, options: .regularExpression), day)
        let target = String(decoding: try fs.readLink(try inode(fs, "snapshots/latest"), caller: caller), as: UTF8.self)
        XCTAssertTrue(target.hasPrefix(day + "/"), target)
        XCTAssertEqual(
            names(try fs.readDirectory(try inode(fs, ".polyad"), caller: caller)),
            [".", "..", "metrics", "stats.json", "status", "status.json"]
        )
        XCTAssertEqual(try fs.readDirectory(try inode(fs, "incoming"), caller: caller).count, 2)
        XCTAssertThrowsError(try fs.lookup(parent: snapshots, name: Array("1999-01-01".utf8), caller: caller)) {
            XCTAssertEqual(($0 as? FileSystemErrno)?.code, ENOENT)
        }
        let a = try inode(fs, try latestSource(fs) + "/a.txt")
        XCTAssertEqual(try fs.attributes(a, caller: caller).size, 6)
        XCTAssertEqual(try fs.attributes(a, caller: caller).cacheSeconds, 86_400, "snapshot content is immutable")
    }

    func testReadsAtAnyOffsetMatchTheSource() throws {
        let big = pseudoRandomBytes(3 << 20, seed: 1)
        write("big.bin", big)
        write("sub/small.txt", Array("small file\n".utf8))
        try backup()
        let fs = try makeFileSystem(cacheBytes: 1 << 20)  // smaller than the file: chunks are evicted and reloaded
        let root = try latestSource(fs)
        let h = try fs.open(try inode(fs, root + "/big.bin"), caller: caller).handle
        defer { fs.release(h, caller: caller) }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let offset = Int.random(in: 0..<big.count, using: &generator)
            let size = Int.random(in: 1...(1 << 20), using: &generator)
            let got = try read(fs, h, offset: UInt64(offset), size: size)
            XCTAssertEqual(got, Array(big[offset..<min(big.count, offset + size)]), "read of \(size) at \(offset)")
        }
        XCTAssertEqual(try read(fs, h, offset: UInt64(big.count), size: 4096), [], "at the end")
        XCTAssertEqual(try read(fs, h, offset: UInt64(big.count) + 10, size: 4096), [], "past the end")
        // Sequentially, 128 KiB at a time, as the kernel asks.
        var whole = [UInt8]()
        while whole.count < big.count { whole += try read(fs, h, offset: UInt64(whole.count), size: 128 << 10) }
        XCTAssertEqual(whole, big)
        let s = try fs.open(try inode(fs, root + "/sub/small.txt"), caller: caller).handle
        XCTAssertEqual(String(decoding: try read(fs, s, offset: 0, size: 1 << 20), as: UTF8.self), "small file\n")
        fs.release(s, caller: caller)
        XCTAssertThrowsError(try fs.read(s, offset: 0, size: 1, caller: caller)) {
            XCTAssertEqual(($0 as? FileSystemErrno)?.code, EBADF)
        }
    }

    func testSequentialReadsDecodeEachChunkOnce() throws {
        let big = pseudoRandomBytes(6 << 20, seed: 3)
        write("big.bin", big)
        try backup()
        let fs = try makeFileSystem()
        let file = try inode(fs, try latestSource(fs) + "/big.bin")
        let h = try fs.open(file, caller: caller).handle
        var whole = [UInt8]()
        while whole.count < big.count { whole += try read(fs, h, offset: UInt64(whole.count), size: 128 << 10) }
        XCTAssertEqual(whole, big)
        fs.release(h, caller: caller)
        let chunkCount = try chunks(of: source + "/big.bin")
        XCTAssertGreaterThan(chunkCount, 2)
        let decodes = { self.decodes(fs) }
        // Read-ahead and the reader share each decode; a read-ahead queued behind the reader does not repeat it.
        XCTAssertEqual(decodes(), chunkCount)
        let again = try fs.open(file, caller: caller).handle
        _ = try read(fs, again, offset: 0, size: big.count)
        XCTAssertEqual(decodes(), chunkCount, "a second read comes from the cache")
    }

    func testOpeningAFileDecodesTheNextFilesInWalkOrder() throws {
        // a/1, a/2 (last in a), then b/1, b/2 and c/1: `find` and `cp -r` read them in this order.
        var contents = [String: [UInt8]]()
        for (i, path) in ["a/1", "a/2", "b/1", "b/2", "c/1"].enumerated() {
            try FileManager.default.createDirectory(
                atPath: source + "/" + String(path.prefix(1)),
                withIntermediateDirectories: true
            )
            contents[path] = pseudoRandomBytes(10_000, seed: UInt64(10 + i))
            write(path, contents[path]!)
        }
        try backup()
        let pushes = Mutex<[UInt64: [UInt8]]>([:])
        let fs = try makeFileSystem(pushToKernel: { inode, bytes in pushes.withLock { $0[inode] = bytes } })
        let root = try latestSource(fs)
        // Lists the source folder; a, b and c's trees load ahead.
        _ = try fs.readDirectory(try inode(fs, root), caller: caller)
        let decodes = { self.decodes(fs) }
        // Wait (bounded) for the background loads of b's and c's trees.
        for _ in 0..<500 where (try? fs.readDirectory(try inode(fs, root + "/c"), caller: caller))?.count != 3 {
            usleep(10_000)
        }
        _ = try fs.readDirectory(try inode(fs, root + "/a"), caller: caller)
        _ = try fs.readDirectory(try inode(fs, root + "/b"), caller: caller)
        _ = try fs.open(try inode(fs, root + "/a/2"), caller: caller).handle
        // a/2, b/1, b/2 and c/1 are decoded in the background: the walk leaves a for the folders after it.
        for _ in 0..<500 where decodes() < 4 { usleep(10_000) }
        XCTAssertEqual(decodes(), 4)
        // The whole files that follow, in folders the kernel has listed, went to its page cache; the opened
        // file itself is read by its reader.
        fs.finishBackgroundWork()
        var expected = [UInt64: [UInt8]]()
        for path in ["b/1", "b/2", "c/1"] { expected[try inode(fs, root + "/" + path)] = contents[path] }
        XCTAssertEqual(pushes.withLock { $0 }, expected)
        let before = decodes()
        for path in ["a/2", "b/1", "b/2", "c/1"] {
            let h = try fs.open(try inode(fs, root + "/" + path), caller: caller).handle
            XCTAssertEqual(try read(fs, h, offset: 0, size: 1 << 20).count, 10_000)
            fs.release(h, caller: caller)
        }
        XCTAssertEqual(decodes(), before, "their reads found them decoded")
    }

    func testHolesReadAsZerosAndSeekFindsThem() throws {
        let path = source + "/sparse.bin"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let data = [UInt8](repeating: 7, count: 8192)
        XCTAssertEqual(pwrite(fd, data, data.count, 0), data.count)
        XCTAssertEqual(pwrite(fd, data, data.count, 4 << 20), data.count)  // a 4 MiB hole between
        close(fd)
        try backup()
        let fs = try makeFileSystem()
        let h = try fs.open(try inode(fs, try latestSource(fs) + "/sparse.bin"), caller: caller).handle
        defer { fs.release(h, caller: caller) }
        let size = (4 << 20) + 8192
        var whole = [UInt8]()
        while whole.count < size { whole += try read(fs, h, offset: UInt64(whole.count), size: 1 << 20) }
        var expected = [UInt8](repeating: 0, count: size)
        expected.replaceSubrange(0..<8192, with: data)
        expected.replaceSubrange((4 << 20)..<size, with: data)
        XCTAssertEqual(whole, expected)
        XCTAssertEqual(try read(fs, h, offset: 0, size: size), expected, "one read across data and hole")
        let hole = try fs.seek(h, offset: 0, findData: false, caller: caller)
        XCTAssertGreaterThanOrEqual(hole, 8192)
        XCTAssertLessThanOrEqual(hole, 4 << 20)
        XCTAssertEqual(try fs.seek(h, offset: hole, findData: true, caller: caller) <= 4 << 20, true)
        XCTAssertThrowsError(try fs.seek(h, offset: UInt64(size), findData: true, caller: caller)) {
            XCTAssertEqual(($0 as? FileSystemErrno)?.code, ENXIO)
        }
    }

    func testMetadataHardLinksSymlinksAndExtendedAttributes() throws {
        write("one.txt", Array("same bytes\n".utf8))
        write("two.txt", Array("same bytes\n".utf8))
        XCTAssertEqual(link(source + "/one.txt", source + "/linked.txt"), 0)
        XCTAssertEqual(symlink("one.txt", source + "/link"), 0)
        XCTAssertEqual(chmod(source + "/two.txt", 0o640), 0)
        let value = Array("v".utf8)
        let hasXattr =
            (try? FileSystem.setExtendedAttribute(
                Array((source + "/two.txt").utf8),
                name: Array("user.note".utf8),
                value: value
            )) != nil
        try backup()
        let fs = try makeFileSystem()
        let root = try latestSource(fs)
        let one = try inode(fs, root + "/one.txt")
        let linked = try inode(fs, root + "/linked.txt")
        let two = try inode(fs, root + "/two.txt")
        XCTAssertEqual(one, linked, "a hard-link group is one inode")
        XCTAssertEqual(try fs.attributes(one, caller: caller).links, 2)
        XCTAssertNotEqual(one, two)
        let a = try fs.attributes(two, caller: caller)
        XCTAssertEqual(a.mode, S_IFREG | 0o640)
        var st = stat()
        XCTAssertEqual(lstat(source + "/two.txt", &st), 0)
        XCTAssertEqual(a.uid, st.st_uid)
        XCTAssertEqual(a.mtime.seconds, Int64(st.st_mtim.tv_sec))
        XCTAssertEqual(a.mtime.nanoseconds, Int64(st.st_mtim.tv_nsec))
        let link = try inode(fs, root + "/link")
        XCTAssertEqual(try fs.attributes(link, caller: caller).mode & S_IFMT, S_IFLNK)
        XCTAssertEqual(String(decoding: try fs.readLink(link, caller: caller), as: UTF8.self), "one.txt")
        // The content hash: equal for equal content, readable by name, not listed.
        let hash = ContentHash.attributeName
        XCTAssertEqual(
            try fs.extendedAttribute(one, name: hash, caller: caller),
            try fs.extendedAttribute(two, name: hash, caller: caller)
        )
        XCTAssertEqual(try fs.extendedAttribute(one, name: hash, caller: caller).count, 64)
        XCTAssertFalse(try fs.extendedAttributeNames(two, caller: caller).contains(hash))
        if hasXattr {
            XCTAssertEqual(try fs.extendedAttributeNames(two, caller: caller), [Array("user.note".utf8)])
            XCTAssertEqual(try fs.extendedAttribute(two, name: Array("user.note".utf8), caller: caller), value)
        }
        XCTAssertThrowsError(try fs.extendedAttribute(one, name: Array("user.none".utf8), caller: caller)) {
            XCTAssertEqual(($0 as? FileSystemErrno)?.code, ENODATA)
        }
        XCTAssertThrowsError(try fs.open(try inode(fs, root), caller: caller).handle) {
            XCTAssertEqual(($0 as? FileSystemErrno)?.code, EISDIR)
        }
    }

    func testLatestMovesToANewInodeAndFoldersChangeTheirTime() throws {
        write("a.txt", Array("1".utf8))
        try backup()
        let fs = try makeFileSystem()
        let firstLatest = try inode(fs, "snapshots/latest")
        let firstTarget = try fs.readLink(firstLatest, caller: caller)
        let snapshots = try inode(fs, "snapshots")
        let before = try fs.attributes(snapshots, caller: caller).mtime
        usleep(20_000)
        write("b.txt", Array("2".utf8))
        try backup()
        fs.refreshSnapshots(interval: 0)
        let secondLatest = try inode(fs, "snapshots/latest")
        XCTAssertNotEqual(firstLatest, secondLatest, "the kernel may cache a symlink for its inode's life")
        XCTAssertNotEqual(try fs.readLink(secondLatest, caller: caller), firstTarget)
        XCTAssertEqual(try fs.readLink(firstLatest, caller: caller), firstTarget, "an old inode keeps its target")
        XCTAssertGreaterThan(
            try fs.attributes(snapshots, caller: caller).mtime,
            before,
            "cached listings of /snapshots are dropped"
        )
        XCTAssertEqual(try fs.attributes(try inode(fs, try latestSource(fs) + "/b.txt"), caller: caller).size, 1)
    }

    func testDamagedChunkFailsItsReadsOnlyAndIsLogged() throws {
        write("bad.bin", pseudoRandomBytes(200_000, seed: 2))
        try backup()
        // The first backup wrote one pack of data (bad.bin's chunk) and one of trees: flip a byte in the middle
        // of the larger.
        let packs = try FileManager.default.subpathsOfDirectory(atPath: folder + "/store/data").filter {
            $0.contains("/")
        }
        .map { folder + "/store/data/" + $0 }
        XCTAssertEqual(packs.count, 2, "\(packs)")
        let size = { (p: String) in (try? FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? 0 }
        let pack = try XCTUnwrap(packs.max { size($0) < size($1) })
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: pack)))
        bytes[bytes.count / 2] ^= 0x40
        chmod(pack, 0o600)
        try Data(bytes).write(to: URL(fileURLWithPath: pack))
        write("good.txt", Array("fine\n".utf8))
        try backup()
        let lines = Mutex<[String]>([])
        let fs = try makeFileSystem(log: { line in lines.withLock { $0.append(line) } })
        let root = try latestSource(fs)
        let bad = try fs.open(try inode(fs, root + "/bad.bin"), caller: caller).handle
        XCTAssertThrowsError(try fs.read(bad, offset: 0, size: 4096, caller: caller)) {
            XCTAssertEqual(($0 as? FileSystemErrno)?.code, EIO)
        }
        XCTAssertTrue(
            lines.withLock { $0 }.contains { $0.contains("/snapshots/") && $0.contains("/src/bad.bin") },
            "the line names the file by its path in the mount: \(lines.withLock { $0 })"
        )
        let good = try fs.open(try inode(fs, root + "/good.txt"), caller: caller).handle
        XCTAssertEqual(try read(fs, good, offset: 0, size: 100), Array("fine\n".utf8))
        XCTAssertEqual(fs.counters.readErrors, 1, "\(fs.counters)")
        XCTAssertTrue(fs.counters.lastError?.contains("/src/bad.bin") ?? false, "\(fs.counters)")
    }

    func testControlFilesShowTheCounters() throws {
        write("a.txt", Array("hello\n".utf8))
        try backup()
        let fs = try makeFileSystem()
        XCTAssertEqual(try contents(fs, try latestSource(fs) + "/a.txt"), Array("hello\n".utf8))
        let c = fs.counters
        XCTAssertEqual(c.reads, 1)
        XCTAssertEqual(c.bytesRead, 6)
        XCTAssertEqual(c.chunksDecoded, 1)
        XCTAssertEqual(c.readErrors, 0)
        XCTAssertNil(c.lastError)
        XCTAssertEqual(c.snapshots, 1)
        let status = String(decoding: try contents(fs, ".polyad/status"), as: UTF8.self)
        for line in [
            "snapshots: 1", "reads: 1 (6 bytes)", "read_errors: 0", "chunks_decoded: 1",
            "chunk_cache: \(c.chunkCacheBytes) bytes, \(c.chunkCacheHits) hits, \(c.chunkCacheMisses) misses",
        ] {
            XCTAssertTrue(status.split(separator: "\n").contains { $0 == line }, "\(line) in \(status)")
        }
        let target = String(decoding: try fs.readLink(try inode(fs, "snapshots/latest"), caller: caller), as: UTF8.self)
        XCTAssertTrue(status.contains("latest: " + target + "\n"), status)
        let metrics = String(decoding: try contents(fs, ".polyad/metrics"), as: UTF8.self)
        XCTAssertTrue(metrics.contains("\npolyad_mount_chunks_decoded_total 1\n"), metrics)
        XCTAssertTrue(metrics.contains("\npolyad_mount_snapshots 1.0\n"), metrics)
        XCTAssertTrue(metrics.contains("\npolyad_incoming_syncs_total 0\n"), metrics)
        let stats =
            try JSONSerialization.jsonObject(with: Data(try contents(fs, ".polyad/stats.json"))) as? [String: Any]
        XCTAssertEqual(stats?["snapshot_count"] as? Int, 1)
        // Generated on each open: never cached by the kernel.
        let statusInode = try inode(fs, ".polyad/status")
        XCTAssertEqual(try fs.attributes(statusInode, caller: caller).cacheSeconds, 0)
        XCTAssertEqual(try fs.attributes(statusInode, caller: caller).size, 0, "as /proc: read to the end")
        XCTAssertFalse(try fs.open(statusInode, caller: caller).keepCache)
        XCTAssertTrue(try fs.open(statusInode, caller: caller).directIO)
        XCTAssertTrue(try fs.open(try inode(fs, try latestSource(fs) + "/a.txt"), caller: caller).keepCache)
    }

    func testFixedInodesAndTheReadOnlyParts() throws {
        write("a.txt", Array("hello\n".utf8))
        try backup()
        let fs = try makeFileSystem()
        XCTAssertEqual(try inode(fs, "snapshots"), FixedInode.snapshots)
        XCTAssertEqual(try inode(fs, "incoming"), FixedInode.incoming)
        XCTAssertEqual(try inode(fs, ".polyad"), FixedInode.control)
        for (i, name) in ["metrics", "stats.json", "status", "status.json"].enumerated() {
            XCTAssertEqual(try inode(fs, ".polyad/" + name), FixedInode.firstControlFile + UInt64(i))
        }
        let day = try inode(fs, "snapshots/latest")
        XCTAssertGreaterThanOrEqual(day, FixedInode.firstDynamic)
        XCTAssertEqual(fs.path(of: try inode(fs, ".polyad/status")), "/.polyad/status")
        // /incoming: an empty folder (writable: see IncomingFolderTests).
        XCTAssertEqual(try fs.attributes(FixedInode.incoming, caller: caller).mode, S_IFDIR | 0o755)
        XCTAssertThrowsError(try fs.lookup(parent: FixedInode.incoming, name: Array("x".utf8), caller: caller)) {
            XCTAssertEqual(($0 as? FileSystemErrno)?.code, ENOENT)
        }
        // Writes anywhere but /incoming: EROFS; reading access is allowed.
        let file = try inode(fs, try latestSource(fs) + "/a.txt")
        for target in [FixedInode.root, FixedInode.control, FixedInode.firstControlFile, file] {
            XCTAssertThrowsError(try fs.open(target, flags: O_WRONLY, caller: caller)) {
                XCTAssertEqual(($0 as? FileSystemErrno)?.code, EROFS)
            }
            XCTAssertThrowsError(try fs.checkAccess(target, mask: W_OK, caller: caller)) {
                XCTAssertEqual(($0 as? FileSystemErrno)?.code, EROFS)
            }
            XCTAssertNoThrow(try fs.checkAccess(target, mask: R_OK, caller: caller))
        }
        // The fixed inodes are never forgotten; others go at zero lookups and come back on the next lookup.
        fs.forget(FixedInode.control, count: 100)
        XCTAssertNoThrow(try fs.attributes(FixedInode.control, caller: caller))
        let latestSnapshotRoot = try inode(fs, try latestSource(fs))
        fs.forget(file, count: 1)
        XCTAssertThrowsError(try fs.attributes(file, caller: caller)) {
            XCTAssertEqual(($0 as? FileSystemErrno)?.code, ENOENT)
        }
        let again = try fs.lookup(parent: latestSnapshotRoot, name: Array("a.txt".utf8), caller: caller)
        XCTAssertEqual(again.size, 6)
    }

    func testOnlyReadsThatMissTheCacheWaitForTheStore() throws {
        write("a.txt", Array("content\n".utf8))
        try backup()
        let blocked = Atomic<Int>(0)
        let fs = try makeFileSystem(willBlock: { blocked.add(1, ordering: .relaxed) })
        let file = try inode(fs, try latestSource(fs) + "/a.txt")
        let h = try fs.open(file, caller: caller).handle
        _ = try read(fs, h, offset: 0, size: 100)
        let afterFirst = blocked.load(ordering: .relaxed)
        XCTAssertGreaterThan(afterFirst, 0)
        _ = try read(fs, h, offset: 0, size: 100)
        _ = try fs.attributes(file, caller: caller)
        XCTAssertEqual(blocked.load(ordering: .relaxed), afterFirst, "cached data and metadata need no handoff")
    }
}

/// The caches the mount shares between its threads.
final class MountCacheTests: XCTestCase {
    func testLRUCacheStaysWithinItsCapacityAndKeepsRecentEntries() {
        let cache = LRUCache<Int, [UInt8]>(capacity: 1000)
        for i in 0..<50 {
            cache.insert([UInt8](repeating: 0, count: 100), for: i, cost: 100)
            _ = cache.value(for: 0)  // keep 0 recent
        }
        XCTAssertLessThanOrEqual(cache.statistics.cost, 1000)
        XCTAssertNotNil(cache.value(for: 0))
        XCTAssertNotNil(cache.value(for: 49))
        XCTAssertNil(cache.value(for: 1))
    }

    func testSharedLoadsRunOneLoadForConcurrentCallers() throws {
        let loads = SharedLoads<Int, [UInt8], FileSystemErrno>()
        let runs = Atomic<Int>(0)
        let arrived = Atomic<Int>(0)
        let results = Mutex<[[UInt8]]>([])
        let done = DispatchGroup()
        for _ in 0..<8 {
            done.enter()
            Thread {
                arrived.add(1, ordering: .relaxed)
                let v = try? loads.value(for: 1) { () throws(FileSystemErrno) -> [UInt8] in
                    runs.add(1, ordering: .relaxed)
                    // Until every caller has come, and a moment for the last to reach the shared load.
                    while arrived.load(ordering: .relaxed) < 8 { usleep(1000) }
                    usleep(50_000)
                    return [42]
                }
                results.withLock { $0.append(v ?? []) }
                done.leave()
            }.start()
        }
        done.wait()
        XCTAssertEqual(runs.load(ordering: .relaxed), 1)
        XCTAssertEqual(results.withLock { $0 }, Array(repeating: [42], count: 8))
        XCTAssertFalse(loads.isLoading(1))
        // A failure reaches every waiter, and the next call loads again.
        XCTAssertThrowsError(
            try loads.value(for: 2) { () throws(FileSystemErrno) -> [UInt8] in throw FileSystemErrno(EIO) }
        )
        XCTAssertEqual(try loads.value(for: 2) { () throws(FileSystemErrno) -> [UInt8] in [1] }, [1])
    }
}
