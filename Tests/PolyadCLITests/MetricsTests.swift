import Foundation
import PolyadFileSystem
import XCTest

/// The metrics in the Prometheus text format: the node-exporter textfile after CLI runs and `/.polyad/metrics`
/// of a live mount, both clean under `promtool check metrics`, and values that move with the work.
final class MetricsTests: XCTestCase {
    /// promtool (Debian's prometheus package), or a skip with the reason (a failure under CI).
    private func promtool() throws -> String {
        for p in ["/usr/bin/promtool", "/usr/local/bin/promtool"] where FileManager.default.isExecutableFile(atPath: p)
        {
            return p
        }
        if underCI { XCTFail("promtool is missing under CI: apt-get install prometheus (Scripts/install-deps does)") }
        throw XCTSkip("promtool is missing (apt-get install prometheus): metrics not checked")
    }

    /// Asserts `promtool check metrics` accepts `text` (it reads standard input).
    private func assertClean(_ text: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws
    {
        let tool = try promtool()
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("polyad-metrics-\(getpid()).prom")
        try text.write(to: input, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: input) }
        let r = MountedStore.shell(["sh", "-c", "\"$0\" check metrics < \"$1\"", tool, input.path])
        XCTAssertEqual(r.status, 0, "\(what): promtool says:\n\(r.out)\n\(text)", file: file, line: line)
    }

    /// The value of the series `series` (name and labels as printed), or nil.
    private func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    func testTheTextfileAfterBackupVerifyAndPruneIsCleanAndMoves() throws {
        let f = try CLIFixture()
        let textfile = f.root + "/node-exporter/polyad.prom"
        try FileManager.default.createDirectory(atPath: f.root + "/node-exporter", withIntermediateDirectories: true)
        f.writeConfig("  compression_level: 6\nmetrics:\n  textfile: \"\(textfile)\"\n")
        try f.expect(0, ["init"])
        let src = f.root + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: src + "/a", contents: Data(repeating: 7, count: 50_000)))

        try f.expect(0, ["backup", src])
        let first = try String(contentsOfFile: textfile, encoding: .utf8)
        try assertClean(first, "after a backup")
        XCTAssertEqual(value(first, "polyad_snapshots"), 1)
        XCTAssertEqual(value(first, #"polyad_backups_total{outcome="success"}"#), 1)
        XCTAssertEqual(value(first, #"polyad_backups_total{outcome="failed"}"#), 0)
        let added = try XCTUnwrap(value(first, "polyad_backup_added_bytes_total"))
        XCTAssertGreaterThan(added, 0)
        XCTAssertNotNil(
            value(first, #"polyad_last_success_timestamp_seconds{host="\#(Accounts.hostName)",paths="\#(src)"}"#),
            first
        )
        XCTAssertEqual(try FileSystem.stat(bytes(textfile)).mode & 0o777, 0o644, "readable by node-exporter")
        for family in [
            "polyad_stored_bytes", "polyad_unique_bytes", "polyad_deduplication_ratio", "polyad_compression_ratio",
            "polyad_last_backup_timestamp_seconds", "polyad_last_backup_duration_seconds",
        ] {
            XCTAssertTrue(first.contains("# TYPE \(family) gauge"), family)
        }

        XCTAssertTrue(FileManager.default.createFile(atPath: src + "/b", contents: Data(repeating: 9, count: 70_000)))
        try f.expect(0, ["backup", src])
        let second = try String(contentsOfFile: textfile, encoding: .utf8)
        XCTAssertEqual(value(second, "polyad_snapshots"), 2)
        XCTAssertEqual(value(second, #"polyad_backups_total{outcome="success"}"#), 2)
        XCTAssertGreaterThan(try XCTUnwrap(value(second, "polyad_backup_added_bytes_total")), added)

        try f.expect(0, ["verify"])
        let verified = try String(contentsOfFile: textfile, encoding: .utf8)
        try assertClean(verified, "after verify")
        XCTAssertEqual(value(verified, #"polyad_verify_runs_total{result="clean"}"#), 1)

        try f.expect(0, ["forget", "--keep-last", "1"])
        try f.expect(0, ["prune"])
        let pruned = try String(contentsOfFile: textfile, encoding: .utf8)
        try assertClean(pruned, "after prune")
        XCTAssertEqual(value(pruned, "polyad_snapshots"), 1)
        XCTAssertEqual(value(pruned, "polyad_prune_runs_total"), 1)

        // A backup that makes no snapshot (its only source does not exist: exit 2) is a failed one, as
        // `polyad stats` counts it; the file is written all the same.
        try f.expect(2, ["backup", f.root + "/missing"])
        let failed = try String(contentsOfFile: textfile, encoding: .utf8)
        try assertClean(failed, "after a failed backup")
        XCTAssertEqual(value(failed, #"polyad_backups_total{outcome="failed"}"#), 1, failed)
        XCTAssertEqual(value(failed, #"polyad_backups_total{outcome="success"}"#), 2, failed)
        // No temporary file left beside it.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: f.root + "/node-exporter"), ["polyad.prom"])
    }

    func testAFailedBackupIsCountedAndTheFileStillWritten() throws {
        let f = try CLIFixture()
        let textfile = f.root + "/polyad.prom"
        f.writeConfig("  compression_level: 6\nmetrics:\n  textfile: \"\(textfile)\"\n")
        let store = f.root + "/store"
        try FileSystem.makeDirectories(bytes(store), mode: 0o700)
        let unmount = try mountTmpfs(at: store, size: "3m")
        defer { unmount() }
        try f.expect(0, ["init"])
        let src = f.root + "/src"
        try FileSystem.makeDirectories(bytes(src), mode: 0o755)
        _ = FileManager.default.createFile(
            atPath: src + "/big.bin",
            contents: Data(randomBytes(6_000_000, seed: 4_242_424_242))
        )
        try f.expect(15, ["backup", src])  // the store's disk is full
        let text = try String(contentsOfFile: textfile, encoding: .utf8)
        try assertClean(text, "after a failed backup")
        XCTAssertEqual(value(text, #"polyad_backups_total{outcome="failed"}"#), 1, text)
        XCTAssertEqual(value(text, #"polyad_backups_total{outcome="success"}"#), 0, text)
        XCTAssertEqual(value(text, "polyad_snapshots"), 0, text)
    }

    func testTheMountsMetricsAreCleanAndCountReads() throws {
        let store = try MountedStore()
        try store.fixture.expect(0, ["init"])
        let src = store.fixture.root + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: src + "/a", contents: Data(repeating: 3, count: 100_000)))
        try store.fixture.expect(0, ["backup", src])
        try store.mount()
        defer { store.unmount() }
        let metrics = store.mountpoint + "/.polyad/metrics"
        let before = try String(contentsOfFile: metrics, encoding: .utf8)
        try assertClean(before, "/.polyad/metrics")
        XCTAssertEqual(value(before, "polyad_snapshots"), 1, before)
        let reads = try XCTUnwrap(value(before, "polyad_mount_reads_total"), before)
        let file = store.mountpoint + "/snapshots/latest" + src + "/a"
        XCTAssertEqual(FileManager.default.contents(atPath: file)?.count, 100_000)
        let after = try String(contentsOfFile: metrics, encoding: .utf8)
        try assertClean(after, "/.polyad/metrics after a read")
        XCTAssertGreaterThan(try XCTUnwrap(value(after, "polyad_mount_read_bytes_total")), 0, after)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(value(after, "polyad_mount_reads_total")), reads)
        XCTAssertGreaterThan(try XCTUnwrap(value(after, "polyad_mount_chunks_decoded_total")), 0)
    }
}
