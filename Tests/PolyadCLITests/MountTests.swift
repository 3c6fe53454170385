import Foundation
import PolyadFileSystem
import XCTest

/// The mount, for real: polyadfs on a temporary folder, read with the ordinary tools.
final class MountTests: XCTestCase {
    var store: MountedStore!
    var fixture: CLIFixture { store.fixture }
    var mountpoint: String { store.mountpoint }

    static var polyadfs: String { MountedStore.polyadfs }

    override func setUpWithError() throws {
        store = try MountedStore()
    }

    override func tearDown() {
        store?.unmount()
        store = nil
    }

    /// Mounts in the foreground (polyadfs a child of this process), as these tests always have.
    func mount(file: StaticString = #filePath, line: UInt = #line) throws {
        try store.mount(inForeground: true, file: file, line: line)
    }

    /// Writes `files` (name → bytes) into a new source folder, creates the store and backs the folder up;
    /// returns the folder's path.
    func backUpSource(_ files: [String: Data]) throws -> String {
        let src = fixture.root + "/src"
        try FileSystem.makeDirectories(bytes(src), mode: 0o755)
        for (name, data) in files.sorted(by: { $0.key < $1.key }) {
            _ = FileManager.default.createFile(atPath: src + "/" + name, contents: data)
        }
        try fixture.expect(0, ["init"])
        try fixture.expect(0, ["backup", src])
        return src
    }

    /// Backs up a tree with every kind of metadata, mounts the store; returns the tree's path.
    func mountBackupOfGeneratedTree() throws -> String {
        let src = fixture.root + "/src"
        try RoundTripTests.makeTree(at: src)
        try fixture.expect(0, ["init"])
        try fixture.expect(0, ["backup", src])
        try mount()
        return src
    }

    func testLayoutAndCopyOutKeepsBytesAndMetadata() throws {
        let src = try mountBackupOfGeneratedTree()
        // Layout (README, "The mount").
        let top = try FileManager.default.contentsOfDirectory(atPath: mountpoint).sorted()
        XCTAssertEqual(top, [".polyad", "incoming", "snapshots"])
        let latest = try FileManager.default.destinationOfSymbolicLink(atPath: mountpoint + "/snapshots/latest")
        XCTAssertTrue(latest.range(of: #"^\d{4}-\d{2}-\d{2}/[0-9a-f]{8}$"#, options: .regularExpression) != nil, latest)
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: mountpoint + "/snapshots/latest" + src + "/docs/readme.txt")
        )
        let status = try String(contentsOfFile: mountpoint + "/.polyad/status", encoding: .utf8)
        XCTAssertTrue(status.contains("snapshots: 1"), status)
        let stats =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: mountpoint + "/.polyad/stats.json"))
            ) as? [String: Any]
        XCTAssertEqual(stats?["snapshot_count"] as? Int, 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: mountpoint + "/.polyad/metrics"))
        // cp -a out and compare with the source: bytes, modes, owners, times, xattrs, hard links, holes, names.
        let out = fixture.root + "/out"
        let cp = MountedStore.shell(["cp", "-a", try store.snapshotRoot() + src, out])
        XCTAssertEqual(cp.status, 0, cp.out)
        let before = try RoundTripTests.describe(bytes(src), checkAtime: false)
        let after = try RoundTripTests.describe(bytes(out), checkAtime: false)
        XCTAssertEqual(Set(before.keys), Set(after.keys))
        for (path, entry) in before { XCTAssertEqual(after[path], entry, PathBytes.display(path)) }
        XCTAssertEqual(after[bytes("big-sparse.img")]?.sparse, true, "cp --sparse=auto keeps the holes")
    }

    func testToolsBehave() throws {
        let src = try mountBackupOfGeneratedTree()
        let root = try store.snapshotRoot() + src
        // stat, readlink, getfattr, find, du.
        let st = try FileSystem.lstat(bytes(root + "/docs/run.sh"))
        XCTAssertEqual(st.mode & 0o7777, 0o4751)
        XCTAssertEqual(st.mtime, Timespec(seconds: 1_500_000_000, nanoseconds: 987_654_321))
        XCTAssertEqual(try FileSystem.readLink(bytes(root + "/link")), bytes("docs/readme.txt"))
        let a = try FileSystem.lstat(bytes(root + "/hard1"))
        let b = try FileSystem.lstat(bytes(root + "/docs/hard2"))
        XCTAssertEqual(a.ino, b.ino, "hard links are one inode")
        XCTAssertEqual(a.nlink, 3)
        let hash = MountedStore.shell([
            "getfattr", "--absolute-names", "--only-values", "-n", "user.polyad.hash", root + "/docs/readme.txt",
        ])
        XCTAssertEqual(hash.status, 0, hash.out)
        XCTAssertEqual(hash.out.count, 64, hash.out)
        let listed = MountedStore.shell(["getfattr", "--absolute-names", "-d", "-m", "-", root + "/docs/readme.txt"])
        XCTAssertTrue(listed.out.contains("user.comment") || !listed.out.contains("user."), listed.out)
        XCTAssertFalse(
            listed.out.contains("user.polyad.hash"),
            "readable by name, not listed (cp -a copies what was backed up)"
        )
        let find = MountedStore.shell(["find", root, "-print0"])
        XCTAssertEqual(find.status, 0)
        XCTAssertEqual(find.out.split(separator: "\0").count, try Self.count(src) + 1)
        let du = MountedStore.shell(["du", "-sb", root])
        XCTAssertEqual(du.status, 0, du.out)
        XCTAssertEqual(try FileSystem.lstat(bytes(root + "/fifo")).kind, .fifo)
        XCTAssertEqual(try FileSystem.lstat(bytes(root)).kind, .directory)
        // Odd names.
        XCTAssertEqual(try FileSystem.lstat(bytes(root) + [47, 0xff, 0xfe, 0x41]).size, 3)
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/new\nline name.txt"))
        // Read-only everywhere (EROFS).
        XCTAssertThrowsError(try FileSystem.createExclusive(bytes(root + "/new"), mode: 0o600)) { e in
            XCTAssertEqual((e as? SystemError)?.errno, EROFS)
        }
        XCTAssertThrowsError(try FileSystem.unlink(bytes(root + "/empty"))) { e in
            XCTAssertEqual((e as? SystemError)?.errno, EROFS)
        }
        // Random-offset reads match the source, also across chunk boundaries and in holes.
        var generator = SystemRandomNumberGenerator()
        for name in ["/docs/deep/er/random.bin", "/big-sparse.img", "/docs/readme.txt"] {
            let size = try FileSystem.lstat(bytes(src + name)).size
            let s = try FileSystem.openForReading(bytes(src + name))
            let m = try FileSystem.openForReading(bytes(root + name))
            defer {
                FileSystem.close(s)
                FileSystem.close(m)
            }
            for _ in 0..<40 {
                let offset = Int64.random(in: 0..<Int64(size), using: &generator)
                let length = Int.random(in: 1...(3 << 20), using: &generator)
                var x = [UInt8](repeating: 0, count: length)
                var y = [UInt8](repeating: 1, count: length)
                let nx = try x.withUnsafeMutableBytes { try FileSystem.pread(s, into: $0, offset: offset) }
                let ny = try y.withUnsafeMutableBytes { try FileSystem.pread(m, into: $0, offset: offset) }
                XCTAssertEqual(nx, ny, "\(name) at \(offset)")
                XCTAssertTrue(x[0..<nx] == y[0..<ny], "\(name) at \(offset)+\(length)")
            }
        }
    }

    static func count(_ root: String) throws -> Int {
        var n = 0
        func walk(_ dir: [UInt8]) throws {
            for name in try FileSystem.directoryEntries(dir) {
                n += 1
                let p = PathBytes.join(dir, name)
                if try FileSystem.lstat(p).kind == .directory { try walk(p) }
            }
        }
        try walk(bytes(root))
        return n
    }

    func testDamagedChunkGivesEIOAndTheRestStaysReadable() throws {
        let src = try backUpSource(["good.txt": Data("all good\n".utf8)])
        _ = FileManager.default.createFile(
            atPath: src + "/bad.bin",
            contents: Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31 >> 3 ^ $0) })
        )
        try fixture.expect(0, ["backup", src])
        // Flip a byte in the largest pack (bad.bin's data; good.txt's chunk lives in the first backup's pack).
        let data = fixture.root + "/store/data"
        let pack = try XCTUnwrap(
            try FileManager.default.subpathsOfDirectory(atPath: data).filter { $0.count > 60 }
                .map { data + "/" + $0 }
                .max { ((try? FileSystem.lstat(bytes($0)).size) ?? 0) < ((try? FileSystem.lstat(bytes($1)).size) ?? 0) }
        )
        chmod(pack, 0o600)
        let h = try XCTUnwrap(FileHandle(forUpdatingAtPath: pack))
        try h.seek(toOffset: 5000)
        var b = [UInt8](try XCTUnwrap(h.read(upToCount: 1)))
        b[0] ^= 0x80
        try h.seek(toOffset: 5000)
        try h.write(contentsOf: Data(b))
        try h.close()
        try mount()
        let root = mountpoint + "/snapshots/latest" + src
        let bad = MountedStore.shell(["cat", root + "/bad.bin"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.out.contains("Input/output error"), bad.out)
        XCTAssertEqual(try String(contentsOfFile: root + "/good.txt", encoding: .utf8), "all good\n")
        let status = try String(contentsOfFile: mountpoint + "/.polyad/status", encoding: .utf8)
        XCTAssertTrue(status.contains("read_errors: 1") || status.contains("read_errors: 2"), status)
        XCTAssertTrue(status.contains("bad.bin"), "the log names the file: \(status)")
    }

    func testSnapshotMadeWhileMountedAppears() throws {
        let src = try backUpSource(["one.txt": Data("1".utf8)])
        try mount()
        let before = try FileManager.default.destinationOfSymbolicLink(atPath: mountpoint + "/snapshots/latest")
        // Listed (and read through `latest`) once, so that the kernel holds these listings and the old link.
        let day = String(before.prefix(10))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: mountpoint + "/snapshots/" + day).count, 1)
        XCTAssertEqual(
            try String(contentsOfFile: mountpoint + "/snapshots/latest" + src + "/one.txt", encoding: .utf8),
            "1"
        )
        _ = FileManager.default.createFile(atPath: src + "/two.txt", contents: Data("2".utf8))
        let o = try fixture.expect(0, ["backup", src, "--json"])
        let id = try XCTUnwrap(
            (try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [String: String])?["short_id"]
        )
        var after = before
        for _ in 0..<100 where !after.hasSuffix(id) {
            usleep(100_000)
            after =
                (try? FileManager.default.destinationOfSymbolicLink(atPath: mountpoint + "/snapshots/latest")) ?? before
        }
        XCTAssertTrue(after.hasSuffix(id), "latest -> \(after), expected \(id)")
        XCTAssertEqual(
            try String(contentsOfFile: mountpoint + "/snapshots/latest" + src + "/two.txt", encoding: .utf8),
            "2"
        )
        // The day's folder lists the new snapshot too (the kernel's cached listing is dropped).
        let newDay = mountpoint + "/snapshots/" + String(after.prefix(10))
        var listed = (try? FileManager.default.contentsOfDirectory(atPath: newDay)) ?? []
        for _ in 0..<100 where !listed.contains(id) {
            usleep(100_000)
            listed = (try? FileManager.default.contentsOfDirectory(atPath: newDay)) ?? []
        }
        XCTAssertTrue(listed.contains(id), "\(newDay) lists \(listed), expected \(id)")
    }

    func testConcurrentReadersGetTheRightBytes() throws {
        var files = [String: Data]()
        for i in 0..<4 { files["f\(i).bin"] = Data(randomBytes(4_000_000, seed: 12345 + UInt64(i))) }
        let src = try backUpSource(files)
        try mount()
        let root = mountpoint + "/snapshots/latest" + src
        // Eight cmp processes at once, two per file.
        let processes = try (0..<8).map { round -> Process in
            let name = "/f\(round % 4).bin"
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/cmp")
            p.arguments = [src + name, root + name]
            try p.run()
            return p
        }
        var bad = [Int32]()
        for p in processes {
            p.waitUntilExit()
            if p.terminationStatus != 0 { bad.append(p.terminationStatus) }
        }
        XCTAssertEqual(bad, [])
    }

    func testUnmountBySignalLeavesNoMount() throws {
        try fixture.expect(0, ["init"])
        try mount()
        let d = try XCTUnwrap(store.daemon)
        kill(d.processIdentifier, SIGTERM)
        d.waitUntilExit()
        XCTAssertEqual(d.terminationStatus, 0)
        XCTAssertFalse(store.isMounted)
    }

    func testDaemonModeAndStartupErrors() throws {
        try fixture.expect(0, ["init"])
        // Missing mount point: one message, exit 2, nothing mounted.
        let missing = MountedStore.shell(
            [Self.polyadfs, fixture.conf, fixture.root + "/nope"],
            environment: fixture.environment
        )
        XCTAssertEqual(missing.status, 2, missing.out)
        XCTAssertTrue(missing.out.contains("does not exist"), missing.out)
        // Wrong passphrase: exit 12 before anything is mounted.
        var env = fixture.environment
        env["POLYAD_PASSWORD"] = "wrong"
        let wrong = MountedStore.shell([Self.polyadfs, fixture.conf, mountpoint], environment: env)
        XCTAssertEqual(wrong.status, 12, wrong.out)
        XCTAssertFalse(store.isMounted)
        // Daemon mode: returns once mounted.
        let ok = MountedStore.shell([Self.polyadfs, fixture.conf, mountpoint], environment: fixture.environment)
        XCTAssertEqual(ok.status, 0, ok.out)
        XCTAssertTrue(store.isMounted)
        // Busy mount point.
        let busy = MountedStore.shell([Self.polyadfs, fixture.conf, mountpoint], environment: fixture.environment)
        XCTAssertEqual(busy.status, 2, busy.out)
        XCTAssertTrue(busy.out.contains("already a mount point"), busy.out)
        XCTAssertEqual(MountedStore.shell(["fusermount3", "-u", mountpoint]).status, 0)
        for _ in 0..<100 where store.isMounted { usleep(20_000) }
        XCTAssertFalse(store.isMounted)
    }

    /// The mount is `rw` for `/incoming`; everything else answers EROFS.
    func testOnlyIncomingIsWritable() throws {
        let src = try mountBackupOfGeneratedTree()
        let root = try store.snapshotRoot() + src
        for path in [root + "/docs/new", mountpoint + "/new", mountpoint + "/.polyad/new", mountpoint + "/snapshots/x"]
        {
            XCTAssertThrowsError(try FileSystem.makeDirectory(bytes(path), mode: 0o755), path) { e in
                XCTAssertEqual((e as? SystemError)?.errno, EROFS, path)
            }
        }
        XCTAssertThrowsError(try FileSystem.open(bytes(root + "/docs/readme.txt"), flags: O_WRONLY, mode: 0)) { e in
            XCTAssertEqual((e as? SystemError)?.errno, EROFS)
        }
        XCTAssertNoThrow(try FileSystem.makeDirectory(bytes(mountpoint + "/incoming/new"), mode: 0o755))
        let table = try String(contentsOfFile: "/proc/mounts", encoding: .utf8)
        let path = String(decoding: try FileSystem.realPath(bytes(fixture.root)), as: UTF8.self) + "/mnt"
        let line = try XCTUnwrap(
            table.split(separator: "\n").first { $0.split(separator: " ").dropFirst().first.map(String.init) == path },
            table
        )
        let options = line.split(separator: " ")[3].split(separator: ",")
        XCTAssertEqual(options.first, "rw", String(line))
        XCTAssertTrue(line.contains("fuse.polyadfs"), String(line))
    }

    func testMountTypeFusePolyadfsThroughMountFuse3() throws {
        try fixture.expect(0, ["init"])
        // mount(8) runs helpers with a fixed PATH: polyadfs must be installed where it looks (Scripts/start
        // installs it in /usr/local/bin). Link the built one there for the test if none is installed.
        // An installed one is moved aside meanwhile, so that this build is what gets tested.
        let installed = "/usr/local/bin/polyadfs"
        let aside = installed + ".polyad-test-aside"
        let hadOne = (try? FileSystem.lstat(bytes(installed))) != nil
        if hadOne { try? FileManager.default.moveItem(atPath: installed, toPath: aside) }
        guard
            (try? FileManager.default.createSymbolicLink(atPath: installed, withDestinationPath: Self.polyadfs)) != nil
        else {
            if hadOne { try? FileManager.default.moveItem(atPath: aside, toPath: installed) }
            if underCI { return XCTFail("cannot link polyadfs into /usr/local/bin") }
            throw XCTSkip("cannot install polyadfs into /usr/local/bin (not root): mount -t fuse.polyadfs skipped")
        }
        defer {
            try? FileManager.default.removeItem(atPath: installed)
            if hadOne { try? FileManager.default.moveItem(atPath: aside, toPath: installed) }
        }
        let r = MountedStore.shell(
            ["mount", "-t", "fuse.polyadfs", fixture.conf, mountpoint],
            environment: fixture.environment
        )
        XCTAssertEqual(r.status, 0, r.out)
        XCTAssertTrue(store.isMounted)
        XCTAssertTrue(FileManager.default.fileExists(atPath: mountpoint + "/snapshots"))
        XCTAssertEqual(MountedStore.shell(["umount", mountpoint]).status, 0)
        for _ in 0..<100 where store.isMounted { usleep(20_000) }
        XCTAssertFalse(store.isMounted)
    }
}
