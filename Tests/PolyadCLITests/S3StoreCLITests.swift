import Foundation
import PolyadCrypto
import PolyadFormat
import PolyadS3
import PolyadTestSupport
import Synchronization
import XCTest

/// The real `polyad` binary on an S3-only store and on a mirror of a local folder and S3 (moto with signatures
/// checked, which Scripts/test starts): every command works, damage on either copy is served from the other and
/// repaired, a target that is down fails cleanly or, with `mirror.require_all: false`, is caught up by `sync`.
final class S3StoreCLITests: XCTestCase {
    func testEveryCommandOnAnS3OnlyStore() throws {
        let server = try S3TestServer.fromEnvironment()
        let bucket = "polyad-cli-\(UInt32.random(in: 0...UInt32.max))"
        let cli = try CLIFixture.s3(server, bucket: bucket, local: false)
        let source = try cli.makeSmallTree()
        let missing = try cli.expect(2, ["init"])
        XCTAssertTrue(missing.stderr.contains("--create-bucket"), missing.stderr)
        try cli.expect(0, ["init", "--create-bucket"])
        try cli.expect(0, ["backup", source])
        try cli.expect(0, ["backup", source])
        let list = try cli.expect(0, ["snapshots"])
        XCTAssertTrue(list.stdout.contains("2 snapshots"), list.stdout)
        try cli.expect(0, ["verify", "--read-data"])
        try cli.expect(0, ["restore", "latest", "--target", cli.root + "/r"])
        assertSameSmallTree(source, cli.root + "/r" + source)
        try cli.expect(0, ["stats"])
        try cli.expect(0, ["key", "list"])
        try Data("changed\n".utf8).write(to: URL(fileURLWithPath: source + "/sub/note.txt"))
        try cli.expect(0, ["backup", source])
        let pruned = try cli.expect(0, ["forget", "--prune", "latest"])
        XCTAssertTrue(pruned.stdout.contains("Deleted"), pruned.stdout)
        try cli.expect(0, ["unlock"])
        try cli.expect(0, ["verify", "--read-data"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: cli.root + "/store"), "no local store was made")

        // A wrong secret: the 403 message naming the fix, exit 2 (the configuration must change; retrying
        // cannot help, so it is not retried — a retry loop would run for s3.retry_seconds, 900 s by default).
        let refused = try cli.expect(2, ["snapshots"], environment: ["AWS_SECRET_ACCESS_KEY": "wrong-secret"])
        XCTAssertTrue(refused.stderr.contains("refused the access key"), refused.stderr)
        XCTAssertFalse(refused.stderr.contains("wrong-secret"), "the secret is never printed")
    }

    func testTheMirrorServesAndRepairsDamageOnEitherCopy() throws {
        let server = try S3TestServer.fromEnvironment()
        let bucket = try server.makeBucket(prefix: "polyad-mirror")
        let cli = try CLIFixture.s3(server, bucket: bucket, local: true)
        let source = try cli.makeSmallTree()
        try cli.expect(0, ["init"])
        try cli.expect(0, ["backup", source])
        let s3 = S3Backend(client: server.client(bucket: bucket), prefix: "host-a/")
        let store = cli.root + "/store"
        func files(_ kind: String) throws -> [String] {
            try FileManager.default.subpathsOfDirectory(atPath: store + "/" + kind).filter { $0.count >= 64 }
                .map { store + "/" + kind + "/" + $0 }
        }
        func flip(_ path: String) throws {
            var b = [UInt8](FileManager.default.contents(atPath: path)!)
            b[b.count / 2] ^= 0xFF
            try Data(b).write(to: URL(fileURLWithPath: path))
        }
        func matchesName(_ path: String) -> Bool {
            let b = [UInt8](FileManager.default.contents(atPath: path) ?? Data())
            return HexCoding.encode(SHA256.hash(b)) == URL(fileURLWithPath: path).lastPathComponent
        }

        // Local copy: the packs, the snapshot and the config damaged, an index file gone. Restore still returns
        // the bytes and repairs what it read.
        let packs = try files("data")
        XCTAssertGreaterThan(packs.count, 0)
        for p in packs { try flip(p) }
        try FileManager.default.removeItem(atPath: try files("index")[0])
        let snapshot = try files("snapshots")[0]
        try flip(snapshot)
        // The config has no hash to be checked by: it is taken from S3 because it does not authenticate.
        let config = store + "/config"
        let goodConfig = try XCTUnwrap(FileManager.default.contents(atPath: config))
        try flip(config)
        try cli.expect(0, ["restore", "latest", "--target", cli.root + "/r1"])
        assertSameSmallTree(source, cli.root + "/r1" + source)
        XCTAssertEqual(FileManager.default.contents(atPath: config), goodConfig, "the config was rewritten from S3")
        XCTAssertTrue(matchesName(snapshot), "the snapshot was rewritten from S3")
        XCTAssertEqual(try files("index").count, 1, "the index file is back")
        try cli.expect(0, ["verify", "--read-data", "--repair"])
        for p in packs { XCTAssertTrue(matchesName(p), "pack \(p) repaired") }
        try cli.expect(0, ["verify", "--read-data"])

        // S3 copy: the snapshot and every pack damaged there. verify --read-data finds it (exit 13); a restore
        // reading S3 first (mirror.prefer: s3) still returns the bytes and rewrites what it read from the local
        // copy; damaged again, --repair heals it.
        let name = URL(fileURLWithPath: snapshot).lastPathComponent
        let handles = try s3.list(.snapshots).map(\.handle) + (try s3.list(.data).map(\.handle))
        XCTAssertEqual(handles[0].name, name)
        func damageOnS3() throws {
            for h in handles {
                var bytes = try s3.load(h)
                bytes[bytes.count / 2] ^= 0xFF
                try s3.remove(h)
                try s3.save(h, bytes)
            }
        }
        func assertRepairedOnS3(_ why: String, line: UInt = #line) throws {
            for h in handles {
                XCTAssertEqual(HexCoding.encode(SHA256.hash(try s3.load(h))), h.name, "\(h) \(why)", line: line)
            }
        }
        try damageOnS3()
        let found = try cli.expect(13, ["verify", "--read-data"])
        XCTAssertTrue(found.stdout.contains("damaged on s3"), found.stdout)
        cli.configureS3(server, bucket: bucket, local: true, extra: "mirror:\n  prefer: s3\n")
        try cli.expect(0, ["restore", "latest", "--target", cli.root + "/r2"])
        assertSameSmallTree(source, cli.root + "/r2" + source)
        try assertRepairedOnS3("repaired on S3 by the restore's reads")
        try damageOnS3()
        try cli.expect(0, ["verify", "--read-data", "--repair"])
        try assertRepairedOnS3("repaired on S3 by verify --repair")
        try cli.expect(0, ["verify", "--read-data"])
    }

    func testATargetThatIsDownFailsCleanlyOrIsCaughtUpLater() throws {
        let server = try S3TestServer.fromEnvironment()
        let bucket = try server.makeBucket(prefix: "polyad-down")
        let cli = try CLIFixture.s3(server, bucket: bucket, local: true)
        let source = try cli.makeSmallTree()
        try cli.expect(0, ["init"])
        try cli.expect(0, ["backup", source])
        func rewrite(endpoint: String, extra: String) {
            cli.configureS3(
                server,
                bucket: bucket,
                local: true,
                endpoint: endpoint,
                extra: "  retry_seconds: 1\n" + extra
            )
        }
        let snapshots = cli.root + "/store/snapshots"
        func localSnapshots() throws -> Int { try FileManager.default.contentsOfDirectory(atPath: snapshots).count }
        try Data("changed\n".utf8).write(to: URL(fileURLWithPath: source + "/sub/new.txt"))

        // S3 down (a closed port) with mirror.require_all on (the default): exit 14, no new snapshot anywhere.
        rewrite(endpoint: "http://127.0.0.1:9", extra: "")
        let failed = try cli.expect(14, ["backup", source])
        XCTAssertTrue(failed.stderr.contains("127.0.0.1:9"), failed.stderr)
        XCTAssertEqual(try localSnapshots(), 1, "no half-visible snapshot on the local copy")

        // With require_all off the backup finishes on the local copy and says what to do.
        rewrite(endpoint: "http://127.0.0.1:9", extra: "mirror:\n  require_all: false\n")
        let alone = try cli.expect(0, ["backup", source])
        XCTAssertTrue(alone.stderr.contains("polyad sync"), alone.stderr)
        XCTAssertEqual(try localSnapshots(), 2)

        // S3 back: verify sees what it lacks, sync copies it (snapshot last), and both copies then agree.
        rewrite(endpoint: server.url, extra: "mirror:\n  require_all: false\n")
        let behind = try cli.expect(13, ["verify"])
        XCTAssertTrue(behind.stdout.contains("missing on s3"), behind.stdout)
        let synced = try cli.expect(0, ["sync"])
        XCTAssertTrue(synced.stdout.contains("mended"), synced.stdout)
        try cli.expect(0, ["verify", "--read-data"])
        let s3 = S3Backend(client: server.client(bucket: bucket), prefix: "host-a/")
        XCTAssertEqual(try s3.list(.snapshots).count, 2)
    }

    /// Two hosts (two configs, the same bucket and prefix, their own --host) back up at once: both snapshots
    /// complete and verify, and what one host stored the other does not store again.
    func testTwoHostsBackUpIntoOneBucketAtOnce() throws {
        let server = try S3TestServer.fromEnvironment()
        let bucket = try server.makeBucket(prefix: "polyad-hosts")
        let a = try CLIFixture.s3(server, bucket: bucket, local: false)
        let b = try CLIFixture.s3(server, bucket: bucket, local: false)
        let shared = try a.makeSmallTree()
        try a.expect(0, ["init"])
        try a.expect(0, ["backup", "--host", "seed", shared])
        let results = Mutex<[Int32: String]>([:])
        // Each thread runs its own fixture's process and touches no other state of it.
        nonisolated(unsafe) let hosts = [(a, "host-a"), (b, "host-b")]
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let (cli, host) = hosts[i]
            let o = try? cli.run(["backup", "--host", host, shared])
            results.withLock { $0[Int32(i)] = "\(o?.status ?? -1)\n\(o?.stdout ?? "")\(o?.stderr ?? "")" }
        }
        for (i, text) in results.withLock({ $0 }) {
            XCTAssertTrue(text.hasPrefix("0\n"), "host \(i): \(text)")
            // The 3 MiB of data is the seed's: at most a changed tree (under 1 KiB) is new.
            XCTAssertNotNil(
                text.range(of: #"Added: +[0-9]+ B "#, options: .regularExpression),
                "host \(i) stores nothing of what the seed stored: \(text)"
            )
        }
        let list = try b.expect(0, ["snapshots"])
        for host in ["seed", "host-a", "host-b"] { XCTAssertTrue(list.stdout.contains(host), list.stdout) }
        try b.expect(0, ["verify", "--read-data"])
    }
}
