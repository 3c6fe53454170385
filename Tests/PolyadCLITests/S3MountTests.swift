import Foundation
import PolyadCrypto
import PolyadFormat
import PolyadS3
import PolyadTestSupport
import XCTest

/// The real `polyadfs` on an S3-only store and on a mirror (moto with signatures checked, which Scripts/test
/// starts): files read through the mount are the backed-up bytes, `/incoming` commits into the bucket, damage on
/// the local copy is served from S3 and repaired, and a copy that missed backups is caught up by the daemon.
final class S3MountTests: XCTestCase {
    /// A fixture for `bucket` (a mirror with `local`) whose staging folder is named, as an S3-only store needs.
    private func fixture(_ server: S3TestServer, bucket: String, local: Bool, extra: String = "") throws -> CLIFixture {
        let cli = try CLIFixture()
        cli.configureS3(
            server,
            bucket: bucket,
            local: local,
            extra: "mount:\n  staging_dir: \"\(cli.root)/staging\"\n  settle_seconds: 1\n" + extra
        )
        return cli
    }

    private func localObjects(_ cli: CLIFixture, _ kind: String) throws -> [String] {
        let store = cli.root + "/store/" + kind
        return try FileManager.default.subpathsOfDirectory(atPath: store).filter { $0.count >= 64 }
            .map { store + "/" + $0 }
    }

    private func matchesName(_ path: String) -> Bool {
        let b = [UInt8](FileManager.default.contents(atPath: path) ?? Data())
        return HexCoding.encode(SHA256.hash(b)) == URL(fileURLWithPath: path).lastPathComponent
    }

    func testAnS3OnlyStoreMountsReadsAndTakesIncomingFiles() throws {
        let server = try S3TestServer.fromEnvironment()
        let bucket = try server.makeBucket(prefix: "polyad-mount")
        let cli = try fixture(server, bucket: bucket, local: false)
        let source = try cli.makeSmallTree()
        try cli.expect(0, ["init"])
        try cli.expect(0, ["backup", source])
        let mount = try MountedStore(fixture: cli)
        defer { mount.unmount() }
        try mount.mount()
        assertSameSmallTree(source, try mount.snapshotRoot() + source)
        try Data("dropped into the mount\n".utf8).write(
            to: URL(fileURLWithPath: mount.mountpoint + "/incoming/new.txt")
        )
        mount.unmount()  // commits what /incoming holds
        let list = try cli.expect(0, ["snapshots"])
        XCTAssertTrue(list.stdout.contains("2 snapshots"), list.stdout)
        try cli.expect(0, ["restore", "latest", "--target", cli.root + "/r"])
        let restored = try FileManager.default.subpathsOfDirectory(atPath: cli.root + "/r").filter {
            $0.hasSuffix("new.txt")
        }
        XCTAssertEqual(restored.count, 1, "the /incoming file is in the new snapshot")
        XCTAssertEqual(
            FileManager.default.contents(atPath: cli.root + "/r/" + (restored.first ?? "")),
            Data("dropped into the mount\n".utf8)
        )
        XCTAssertFalse(FileManager.default.fileExists(atPath: cli.root + "/store"), "no local store was made")
    }

    func testTheMountOfAMirrorServesAndRepairsLocalDamage() throws {
        let server = try S3TestServer.fromEnvironment()
        let bucket = try server.makeBucket(prefix: "polyad-mount-mirror")
        let cli = try fixture(server, bucket: bucket, local: true)
        let source = try cli.makeSmallTree()
        try cli.expect(0, ["init"])
        try cli.expect(0, ["backup", source])
        let packs = try localObjects(cli, "data")
        for p in packs {
            var b = [UInt8](FileManager.default.contents(atPath: p)!)
            b[b.count / 2] ^= 0xFF
            try Data(b).write(to: URL(fileURLWithPath: p))
        }
        try FileManager.default.removeItem(atPath: try localObjects(cli, "index")[0])
        let mount = try MountedStore(fixture: cli)
        defer { mount.unmount() }
        try mount.mount()
        assertSameSmallTree(source, try mount.snapshotRoot() + source)
        mount.unmount()
        // The reads touched every blob of this small store, so every damaged pack was rewritten from S3, and
        // the missing index file too.
        for p in packs { XCTAssertTrue(matchesName(p), "pack \(p) repaired by the mount's reads") }
        XCTAssertEqual(try localObjects(cli, "index").count, 1, "the index file is back")
        try cli.expect(0, ["verify", "--read-data"])
    }

    func testTheMountedDaemonCatchesUpACopyThatMissedBackups() throws {
        let server = try S3TestServer.fromEnvironment()
        let bucket = try server.makeBucket(prefix: "polyad-catch-up")
        let cli = try fixture(server, bucket: bucket, local: true)
        let source = try cli.makeSmallTree()
        try cli.expect(0, ["init"])
        try cli.expect(0, ["backup", source])
        // S3 down (a closed port): with require_all off the backup lands on the local copy only.
        cli.configureS3(
            server,
            bucket: bucket,
            local: true,
            endpoint: "http://127.0.0.1:9",
            extra: "  retry_seconds: 1\nmirror:\n  require_all: false\n"
        )
        try Data("changed\n".utf8).write(to: URL(fileURLWithPath: source + "/sub/new.txt"))
        try cli.expect(0, ["backup", source])
        let s3 = S3Backend(client: server.client(bucket: bucket), prefix: "host-a/")
        XCTAssertEqual(try s3.list(.snapshots).count, 1)

        // S3 back, mounted with a catch-up every second: the daemon copies what S3 missed, snapshot last.
        cli.configureS3(
            server,
            bucket: bucket,
            local: true,
            extra: "mount:\n  staging_dir: \"\(cli.root)/staging\"\nmirror:\n  require_all: false\n  sync_interval: 1\n"
        )
        let mount = try MountedStore(fixture: cli)
        defer { mount.unmount() }
        try mount.mount()
        // Waits for the daemon's run (every second); gives up after 2 minutes so a broken daemon fails, not hangs.
        var caughtUp = false
        for _ in 0..<1200 {
            if (try? s3.list(.snapshots).count) == 2 {
                caughtUp = true
                break
            }
            usleep(100_000)
        }
        mount.unmount()
        XCTAssertTrue(caughtUp, "the daemon copied the missed snapshot to S3")
        let behind = try cli.expect(0, ["verify"])
        XCTAssertFalse(behind.stdout.contains("missing on"), behind.stdout)
        try cli.expect(0, ["verify", "--read-data"])
    }
}
