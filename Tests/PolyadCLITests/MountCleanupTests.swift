import Foundation
import PolyadFileSystem
import XCTest

/// The mount and pruning, for real: the mount holds a shared lock while it reads, so a prune elsewhere waits
/// (exit 11) while a file is open and runs once the mount is idle, after which the mount reads what is left from
/// the new index; and every `cleanup_interval` seconds the mounted store forgets and prunes by itself, without
/// disturbing a file open in a snapshot it forgets.
final class MountCleanupTests: XCTestCase {
    var store: MountedStore!
    var fixture: CLIFixture { store.fixture }
    var mountpoint: String { store.mountpoint }

    override func tearDown() {
        store?.unmount()
        store = nil
    }

    /// Backs up `versions` of one big file (each a new backup, older ones first); returns the source folder.
    private func history(_ versions: [Data]) throws -> String {
        let src = fixture.root + "/src"
        try FileSystem.makeDirectories(bytes(src), mode: 0o755)
        try fixture.expect(0, ["init"])
        for (i, data) in versions.enumerated() {
            try data.write(to: URL(fileURLWithPath: src + "/big.bin"))
            try fixture.expect(0, ["backup", "--time", "2026-0\(i + 1)-15 12:00:00", src])
        }
        return src
    }

    /// The mounted path of `big.bin` in the snapshot of `day`.
    private func mountedFile(day: String, src: String) throws -> String {
        let folder = mountpoint + "/snapshots/" + day
        let id = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: folder).first)
        return folder + "/" + id + src + "/big.bin"
    }

    private func snapshotDays() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: mountpoint + "/snapshots").filter { $0 != "latest" }
            .sorted()
    }

    /// Polls `condition` every 0.2 s for up to `seconds`.
    private func waitFor(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(200_000)
        }
        return condition()
    }

    func testAPruneElsewhereWaitsWhileAFileIsOpenAndTheMountReadsWhatIsLeftAfter() throws {
        store = try MountedStore()
        let versions = [Data(randomBytes(6 << 20, seed: 41)), Data(randomBytes(6 << 20, seed: 42))]
        let src = try history(versions)
        try store.mount(inForeground: true)
        let old = try mountedFile(day: "2026-01-15", src: src)
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: old))
        XCTAssertEqual(try handle.read(upToCount: 4096), versions[0].prefix(4096))

        // While the file is open the mount holds its shared lock: a forget (exclusive) is refused, nothing changes.
        let refused = try fixture.expect(11, ["forget", "--keep-last", "1", "--prune"])
        XCTAssertTrue(refused.stderr.contains("locked by mount"), refused.stderr)
        XCTAssertEqual(try snapshotDays().count, 2)
        XCTAssertEqual(try handle.readToEnd(), versions[0].dropFirst(4096), "the open file reads to its end")
        try handle.close()

        // Idle (no open file, no read for a few seconds), the mount lets go and the prune runs.
        var pruned: CLIFixture.Output?
        XCTAssertTrue(
            waitFor(30) {
                let o = try? fixture.run(["forget", "--keep-last", "1", "--prune"])
                if o?.status == 0 { pruned = o }
                return o?.status == 0
            },
            "the mount gave its lock up once idle"
        )
        XCTAssertTrue(pruned?.stdout.contains("Deleted") == true, pruned?.stdout ?? "")
        XCTAssertTrue(waitFor(10) { (try? snapshotDays()) == ["2026-02-15"] }, "the forgotten snapshot left /snapshots")
        // The kept snapshot reads through the new index (its packs may have been repacked).
        XCTAssertEqual(FileManager.default.contents(atPath: try mountedFile(day: "2026-02-15", src: src)), versions[1])
    }

    func testTheMountForgetsAndPrunesEveryCleanupIntervalWithoutDisturbingAnOpenFile() throws {
        store = try MountedStore(extraConfig: "  cleanup_interval: 3\nretention:\n  keep_last: 1\n")
        let versions = (0..<3).map { Data(randomBytes(24 << 20, seed: UInt64(50 + $0))) }
        let src = try history(versions)
        let before = try fixture.expect(0, ["stats", "--json"]).stdout
        try store.mount(inForeground: true)
        // A file of the oldest snapshot, opened and read a little before the cleanup forgets that snapshot.
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: try mountedFile(day: "2026-01-15", src: src)))
        XCTAssertEqual(try handle.read(upToCount: 4096), versions[0].prefix(4096))

        let statusFile = mountpoint + "/.polyad/status"
        XCTAssertTrue(
            waitFor(60) {
                ((try? String(contentsOfFile: statusFile, encoding: .utf8)) ?? "").contains("forgot 2 snapshots")
            },
            "a cleanup ran: " + ((try? String(contentsOfFile: statusFile, encoding: .utf8)) ?? "")
        )
        let status = try String(contentsOfFile: statusFile, encoding: .utf8)
        XCTAssertTrue(status.contains("cleanup: every 3 s"), status)
        XCTAssertTrue(waitFor(10) { (try? snapshotDays()) == ["2026-03-15"] }, "forgotten snapshots left /snapshots")
        // The open file of a forgotten snapshot reads to its end, byte for byte.
        XCTAssertEqual(try handle.readToEnd(), versions[0].dropFirst(4096))
        try handle.close()
        XCTAssertEqual(FileManager.default.contents(atPath: try mountedFile(day: "2026-03-15", src: src)), versions[2])
        let log = try String(contentsOfFile: fixture.root + "/polyadfs.log", encoding: .utf8)
        XCTAssertTrue(log.contains("cleanup: forgot 2 snapshots"), log)
        // Once the file is closed, a later run gives its data back too.
        XCTAssertTrue(
            waitFor(60) {
                let o = try? fixture.run(["stats", "--json"])
                guard let text = o?.stdout,
                    let d = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                else { return false }
                return (d["stored_bytes"] as? Int ?? .max) < 40 << 20 && (d["prune_runs"] as? Int ?? 0) >= 2
            },
            "space came back once the file closed: before \(before)"
        )
        store.unmount()
        try fixture.expect(0, ["verify", "--read-data"])
        try fixture.expect(0, ["restore", "latest", "--target", fixture.root + "/r"])
        XCTAssertEqual(FileManager.default.contents(atPath: fixture.root + "/r" + src + "/big.bin"), versions[2])
    }
}
