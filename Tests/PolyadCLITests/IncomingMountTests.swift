import Foundation
import PolyadFileSystem
import PolyadTestSupport
import XCTest

/// `/incoming` on a real mount: files dropped in with `cp -a`, `rsync -aHAXS` and `tar -x` become snapshots
/// with every byte and attribute; open files hold the commit; `kill -9` at random moments loses nothing
/// that was closed; a full store disk fails the commit cleanly; concurrent writers; one mount per staging
/// folder; unmount commits.
final class IncomingMountTests: XCTestCase {
    var store: MountedStore!

    override func setUpWithError() throws {
        store = try MountedStore(extraConfig: "mount:\n  settle_seconds: 1\n")
    }

    override func tearDown() {
        store?.unmount()
        store = nil
    }

    var fixture: CLIFixture { store.fixture }
    var incoming: String { store.mountpoint + "/incoming" }
    var staging: String { fixture.root + "/store.staging" }

    /// `/.polyad/status.json`, parsed.
    func status() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: store.mountpoint + "/.polyad/status.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Waits until nothing is pending and a commit other than `previous` is the last one; returns its id.
    @discardableResult
    func waitForCommit(
        after previous: String? = nil,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws
        -> String
    {
        var last = [String: Any]()
        for _ in 0..<1200 {
            last = try status()
            if let e = last["last_error"] as? String { XCTFail("commit failed: \(e)", file: file, line: line) }
            if let id = last["last_commit_snapshot"] as? String, id != previous, last["pending_files"] as? Int == 0,
                last["committing"] as? Bool == false
            {
                return id
            }
            usleep(100_000)
        }
        XCTFail("no commit after 120 s: \(last)", file: file, line: line)
        throw XCTSkip("no commit")
    }

    /// The snapshots, as `polyad snapshots --json` lists them.
    func snapshots() throws -> [[String: Any]] {
        let o = try fixture.expect(0, ["snapshots", "--json"])
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [[String: Any]])
    }

    func run(_ args: [String], file: StaticString = #filePath, line: UInt = #line) {
        let r = MountedStore.shell(args)
        XCTAssertEqual(r.status, 0, "\(args.joined(separator: " ")): \(r.out)", file: file, line: line)
    }

    func testCopyRsyncAndTarIntoIncomingBecomeSnapshotsWithEveryByteAndAttribute() throws {
        let src = fixture.root + "/src"
        try RoundTripTests.makeTree(at: src)
        // Symlinks, fifos and devices made this very second: rsync, seeing the same whole second on its
        // copy, would not set their times (on any disk). Their times are set a while back.
        run([
            "find", src, "!", "-type", "f", "!", "-type", "d", "-exec", "touch", "-h", "-d", "@1600000000.123456789",
            "{}", "+",
        ])
        try fixture.expect(0, ["init"])
        try store.mount()
        run(["cp", "-a", src, incoming + "/cp"])
        run(["rsync", "-aHAXS", src + "/", incoming + "/rsync/"])
        let archive = fixture.root + "/src.tar"
        run(["tar", "--xattrs", "--xattrs-include=*", "-cSpf", archive, "-C", src, "."])
        try FileSystem.makeDirectory(bytes(incoming + "/tar"), mode: 0o755)
        run(["tar", "--xattrs", "--xattrs-include=*", "-xSpf", archive, "-C", incoming + "/tar"])
        let id = try waitForCommit()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: incoming), [], "committed entries leave")
        let snapshot = try XCTUnwrap(try snapshots().first { $0["short_id"] as? String == id })
        XCTAssertEqual(snapshot["tags"] as? [String], ["incoming"])
        XCTAssertEqual(snapshot["paths"] as? [String], ["/incoming"])
        XCTAssertEqual(snapshot["uid"] as? Int, Int(getuid()))
        // What the snapshot holds, restored and seen through the mount, equals the source.
        let out = fixture.root + "/out"
        try fixture.expect(0, ["restore", id, "--target", out])
        let before = try RoundTripTests.describe(bytes(src), checkAtime: false)
        for tool in ["cp", "rsync", "tar"] {
            let after = try RoundTripTests.describe(bytes(out + "/" + tool), checkAtime: false)
            XCTAssertEqual(Set(after.keys), Set(before.keys), tool)
            for (path, entry) in before { XCTAssertEqual(after[path], entry, "\(tool): \(PathBytes.display(path))") }
        }
        let mounted = store.mountpoint + "/snapshots/latest/cp/docs/readme.txt"
        XCTAssertEqual(
            FileManager.default.contents(atPath: mounted),
            FileManager.default.contents(atPath: src + "/docs/readme.txt")
        )
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: staging).sorted(),
            ["live", "lock"],
            "the staged copy is removed once committed"
        )
        try fixture.expect(0, ["verify", "--read-data"])
    }

    /// A Python helper that writes files the way programs do (see each test).
    func python(_ script: String, _ args: [String] = [], wait: Bool = true) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script] + args
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        if wait {
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "python helper failed")
        }
        return p
    }

    func testAnOpenFileHoldsTheCommitAndAWriterDuringACommitLandsWholeInTheNext() throws {
        try fixture.expect(0, ["init"])
        try store.mount()
        // Held open: written, flushed, not closed — no commit, however long it waits.
        let held = try python(
            """
            import sys, time, os
            f = open(sys.argv[1], "wb")
            f.write(b"first half\\n"); f.flush(); os.fsync(f.fileno())
            while not os.path.exists(sys.argv[2]): time.sleep(0.05)
            f.write(b"second half\\n"); f.close()
            """,
            [incoming + "/held.txt", fixture.root + "/go"],
            wait: false
        )
        usleep(500_000)
        var s = try status()
        XCTAssertEqual(s["open_writers"] as? Int, 1)
        sleep(3)  // three settle times
        s = try status()
        XCTAssertNil(s["last_commit_snapshot"] as? String, "nothing is committed while a file is open for writing")
        XCTAssertTrue(FileManager.default.createFile(atPath: fixture.root + "/go", contents: Data()))
        held.waitUntilExit()
        let first = try waitForCommit()
        let out = fixture.root + "/out1"
        try fixture.expect(0, ["restore", first, "--target", out])
        XCTAssertEqual(try String(contentsOfFile: out + "/held.txt", encoding: .utf8), "first half\nsecond half\n")

        // A big drop makes a commit that takes a while; a writer that starts once it runs goes whole into the
        // next snapshot.
        let big = pseudoRandomBytes(48 << 20, seed: 48)
        XCTAssertTrue(FileManager.default.createFile(atPath: incoming + "/big.bin", contents: Data(big)))
        var polls = 0
        while try status()["committing"] as? Bool != true, polls < 1500 {
            usleep(10_000)
            polls += 1
        }
        XCTAssertEqual(try status()["committing"] as? Bool, true, "the commit of 48 MiB was not seen running")
        _ = try python(
            """
            import sys, time
            with open(sys.argv[1], "wb") as f:
                for i in range(20):
                    f.write(b"line %d\\n" % i); f.flush(); time.sleep(0.05)
            """,
            [incoming + "/during.txt"]
        )
        _ = try waitForCommit(after: first)
        // Three snapshots: the held file, the big drop alone, and the file written during its commit.
        let ids = try snapshots().compactMap { $0["short_id"] as? String }
        XCTAssertEqual(ids.count, 3, "\(ids)")
        let out2 = fixture.root + "/out2"
        let out3 = fixture.root + "/out3"
        try fixture.expect(0, ["restore", ids[1], "--target", out2])
        try fixture.expect(0, ["restore", ids[2], "--target", out3])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out2), ["big.bin"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out3), ["during.txt"])
        let expected = (0..<20).map { "line \($0)\n" }.joined()
        XCTAssertEqual(try String(contentsOfFile: out3 + "/during.txt", encoding: .utf8), expected)
    }

    func testUnmountCommitsWhatIsStagedAndTheNextMountWhatWasLeft() throws {
        store = try MountedStore(extraConfig: "mount:\n  settle_seconds: 3600\n")
        try fixture.expect(0, ["init"])
        try store.mount()
        XCTAssertTrue(FileManager.default.createFile(atPath: incoming + "/a.txt", contents: Data("a\n".utf8)))
        XCTAssertEqual(try snapshots().count, 0, "the settle time has not passed")
        store.unmount()  // waits for the daemon to exit
        XCTAssertEqual(try snapshots().count, 1, "unmount commits what is staged")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: staging).sorted(), ["live", "lock"])

        // A tree a crash left handed over, and a live tree with a file: both committed at the next mount.
        try FileSystem.makeDirectories(bytes(staging + "/commit-7"), mode: 0o700)
        XCTAssertTrue(FileManager.default.createFile(atPath: staging + "/commit-7/b.txt", contents: Data("b".utf8)))
        XCTAssertTrue(FileManager.default.createFile(atPath: staging + "/live/c.txt", contents: Data("c".utf8)))
        store = try MountedStore(reusing: store, extraConfig: "mount:\n  settle_seconds: 1\n")
        try store.mount()
        _ = try waitForCommit()
        XCTAssertEqual(try snapshots().count, 3)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: staging).sorted(), ["live", "lock"])
    }

    func testKillNineAtRandomMomentsLosesNothingThatWasClosed() throws {
        try fixture.expect(0, ["init"])
        var generator = SplitMix64(seed: UInt64(ProcessInfo.processInfo.environment["POLYAD_KILL_SEED"] ?? "") ?? 8)
        let journal = fixture.root + "/closed.log"
        let writer = """
            import os, sys
            root, journal, tag = sys.argv[1], sys.argv[2], sys.argv[3]
            log = open(journal, "a")
            os.makedirs(os.path.join(root, tag), exist_ok=True)
            i = 0
            try:
                while True:
                    name = os.path.join(tag, "f%05d" % i)
                    data = (b"PLAINTEXT-MARKER %s %d " % (tag.encode(), i)) * (1 + (i * 7919) % 6000)
                    with open(os.path.join(root, name), "wb") as f:
                        f.write(data)
                    # close() returned: it must never be lost.
                    log.write("%s\\n" % name); log.flush(); os.fsync(log.fileno())
                    i += 1
            except OSError:
                sys.exit(0)
            """
        for round in 0..<4 {
            try store.mount()
            let p = try python(writer, [incoming, journal, "r\(round)"], wait: false)
            usleep(UInt32.random(in: 300_000...2_500_000, using: &generator))
            store.killDaemon()
            p.waitUntilExit()
            store.unmount()
        }
        // The last mount commits everything staged.
        try store.mount()
        _ = try waitForCommit()
        store.unmount()
        // Every file whose close returned is in a snapshot with the right bytes.
        var found = [String: Data]()
        for s in try snapshots() {
            let id = try XCTUnwrap(s["short_id"] as? String)
            let out = fixture.root + "/restored/" + id
            try fixture.expect(0, ["restore", id, "--target", out])
            let walker = FileManager.default.enumerator(atPath: out)
            while let rel = walker?.nextObject() as? String {
                guard let data = FileManager.default.contents(atPath: out + "/" + rel), !rel.hasSuffix("/") else {
                    continue
                }
                var isDirectory: ObjCBool = false
                FileManager.default.fileExists(atPath: out + "/" + rel, isDirectory: &isDirectory)
                if !isDirectory.boolValue { found[rel] = data }
            }
        }
        let closed = try String(contentsOfFile: journal, encoding: .utf8).split(separator: "\n")
        XCTAssertGreaterThan(closed.count, 4, "the writers wrote something")
        for name in closed.map(String.init) {
            // The writer's bytes for r<round>/f<i>: "PLAINTEXT-MARKER r<round> <i> " repeated 1 + (i * 7919) % 6000 times.
            let parts = name.split(separator: "/")
            let i = Int(parts[1].dropFirst())!
            let expected = String(repeating: "PLAINTEXT-MARKER \(parts[0]) \(i) ", count: 1 + (i * 7919) % 6000)
            XCTAssertEqual(found[name], Data(expected.utf8), "closed file \(name) lost or changed")
        }
        try fixture.expect(0, ["verify", "--read-data"])
        // No staged plaintext outside the staging folder: the store holds none of it.
        let grep = MountedStore.shell(["grep", "-rlF", "PLAINTEXT-MARKER", fixture.root + "/store"])
        XCTAssertEqual(grep.status, 1, "plaintext found in the store: \(grep.out)")
    }

    func testACommitIntoAFullStoreDiskFailsCleanlyAndSucceedsOnceSpaceIsFreed() throws {
        guard getuid() == 0 else {
            if underCI { XCTFail("the full-disk test mounts a small tmpfs: it needs root") }
            throw XCTSkip("not root: cannot mount a small tmpfs for the store")
        }
        let small = fixture.root + "/small"
        try FileSystem.makeDirectories(bytes(small), mode: 0o755)
        run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", small])
        defer { _ = MountedStore.shell(["umount", "-l", small]) }
        store = try MountedStore(
            reusing: store,
            extraConfig: "mount:\n  settle_seconds: 1\n  staging_dir: \"\(fixture.root)/staging\"\n",
            localDirectory: small + "/store"
        )
        try fixture.expect(0, ["init"])
        try store.mount()
        // Leave about 1 MiB free, then drop 4 MiB that does not compress.
        let filler = small + "/filler"
        run(["dd", "if=/dev/zero", "of=" + filler, "bs=1M", "count=5", "status=none"])
        let data = Data(pseudoRandomBytes(4 << 20, seed: 4))
        XCTAssertTrue(FileManager.default.createFile(atPath: incoming + "/big.bin", contents: data))
        var s = [String: Any]()
        for _ in 0..<300 {
            s = try status()
            if s["last_error"] is String { break }
            usleep(100_000)
        }
        let error = try XCTUnwrap(s["last_error"] as? String, "\(s)")
        XCTAssertTrue(error.contains("free some space"), error)
        XCTAssertEqual(s["pending_files"] as? Int, 1, "the staged data is kept")
        XCTAssertEqual(try snapshots().count, 0)
        try fixture.expect(0, ["verify"])  // nothing half-written is visible
        // Space again: the retry (5 s later) commits it.
        try FileSystem.unlink(bytes(filler))
        var id: String?
        for _ in 0..<400 {
            s = try status()
            if let c = s["last_commit_snapshot"] as? String, s["pending_files"] as? Int == 0 {
                id = c
                break
            }
            usleep(100_000)
        }
        let committed = try XCTUnwrap(id, "\(s)")
        XCTAssertNil(s["last_error"] as? String, "a success clears the error")
        let out = fixture.root + "/out"
        try fixture.expect(0, ["restore", committed, "--target", out])
        XCTAssertEqual(FileManager.default.contents(atPath: out + "/big.bin"), data)
        try fixture.expect(0, ["verify", "--read-data"])
    }

    /// Each inode of /incoming the kernel holds is a descriptor of the daemon, and the kernel holds inodes long
    /// after their files are closed: with an open-file limit of 1,024, `cp -a` of 3,000 files must still work
    /// (the daemon asks the kernel to forget closed ones).
    func testCopyingInMoreFilesThanTheDaemonMayOpen() throws {
        let src = fixture.root + "/many"
        for d in 0..<30 {
            try FileSystem.makeDirectories(bytes("\(src)/d\(d)"), mode: 0o755)
            for f in 0..<100 {
                XCTAssertTrue(
                    FileManager.default.createFile(atPath: "\(src)/d\(d)/f\(f)", contents: Data("\(d)/\(f)".utf8))
                )
            }
        }
        try fixture.expect(0, ["init"])
        // Closes that sync (the default), and closes that do not (then changed nodes pile up until a flush).
        for (round, sync) in ["true", "false"].enumerated() {
            store = try MountedStore(
                reusing: store,
                extraConfig: "mount:\n  settle_seconds: 1\n  sync_on_close: \(sync)\n"
            )
            try store.mount(openFileLimit: 1024)
            let pid = try XCTUnwrap(store.daemonPID)
            let limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
            let soft = limits.split(separator: "\n").first { $0.hasPrefix("Max open files") }?.split(
                separator: " ",
                omittingEmptySubsequences: true
            ).dropFirst(3).first
            if soft != "1024" {
                print(
                    "testCopyingInMoreFilesThanTheDaemonMayOpen: the daemon raised its open-file limit to \(soft ?? "?"): the budget is not reached here"
                )
            }
            run(["cp", "-a", src, incoming + "/"])
            let id = try waitForCommit()
            let out = fixture.root + "/out\(round)"
            try fixture.expect(0, ["restore", id, "--target", out])
            for d in [0, 17, 29] {
                for f in [0, 55, 99] {
                    XCTAssertEqual(
                        FileManager.default.contents(atPath: "\(out)/many/d\(d)/f\(f)"),
                        Data("\(d)/\(f)".utf8),
                        "sync_on_close: \(sync)"
                    )
                }
            }
            let restored = try FileManager.default.subpathsOfDirectory(atPath: out + "/many").count
            XCTAssertEqual(restored, 30 + 3000, "sync_on_close: \(sync)")
        }
    }

    func testConcurrentWritersAndOneMountPerStagingFolder() throws {
        try fixture.expect(0, ["init"])
        try store.mount()
        let writer = """
            import os, sys
            root, tag = sys.argv[1], sys.argv[2]
            os.makedirs(os.path.join(root, tag), exist_ok=True)
            for i in range(40):
                with open(os.path.join(root, tag, "f%d" % i), "wb") as f:
                    f.write((tag * (i + 1) * 1000).encode())
            os.rename(os.path.join(root, tag, "f0"), os.path.join(root, tag, "renamed"))
            """
        let writers = try (0..<4).map { try python(writer, [incoming, "w\($0)"], wait: false) }
        for w in writers {
            w.waitUntilExit()
            XCTAssertEqual(w.terminationStatus, 0)
        }
        let id = try waitForCommit()
        let out = fixture.root + "/out"
        try fixture.expect(0, ["restore", id, "--target", out])
        for w in 0..<4 {
            let tag = "w\(w)"
            XCTAssertEqual(
                FileManager.default.contents(atPath: "\(out)/\(tag)/renamed"),
                Data(String(repeating: tag, count: 1000).utf8)
            )
            for i in 1..<40 {
                XCTAssertEqual(
                    FileManager.default.contents(atPath: "\(out)/\(tag)/f\(i)"),
                    Data(String(repeating: tag, count: (i + 1) * 1000).utf8),
                    "\(tag)/f\(i)"
                )
            }
        }
        // A second mount of the same store would share the staging folder: it refuses, and mounts nothing.
        let second = fixture.root + "/mnt2"
        try FileSystem.makeDirectories(bytes(second), mode: 0o755)
        let o = try fixture.run([fixture.conf, second], executable: MountedStore.polyadfs)
        XCTAssertEqual(o.status, 11, o.stderr)
        XCTAssertTrue(o.stderr.contains("is in use by another mount (polyadfs pid"), o.stderr)
        XCTAssertTrue(o.stderr.contains("mount.staging_dir"), o.stderr)
        XCTAssertNotEqual(MountedStore.shell(["mountpoint", "-q", second]).status, 0, "nothing mounted")
    }
}
