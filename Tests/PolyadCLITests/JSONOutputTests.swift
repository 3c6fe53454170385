import Foundation
import XCTest

/// `--json` of `verify` and `prune`: the keys the README documents, the exit codes unchanged.
final class JSONOutputTests: XCTestCase {
    private func object(_ o: CLIFixture.Output) throws -> [String: Any] {
        let parsed = try JSONSerialization.jsonObject(with: Data(o.stdout.utf8))
        return try XCTUnwrap(parsed as? [String: Any], o.stdout)
    }

    private func backedUp() throws -> CLIFixture {
        let f = try CLIFixture()
        try f.expect(0, ["init"])
        let src = f.root + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        for i in 0..<20 {
            let bytes = (0..<4096).map { UInt8(truncatingIfNeeded: $0 * (i + 7) + i) }
            XCTAssertTrue(FileManager.default.createFile(atPath: src + "/f\(i)", contents: Data(bytes)))
        }
        try f.expect(0, ["backup", src])
        return f
    }

    func testVerifyJSONOnAHealthyAndADamagedStore() throws {
        let f = try backedUp()
        let clean = try object(try f.expect(0, ["verify", "--read-data", "--json"]))
        XCTAssertEqual(
            Set(clean.keys),
            [
                "clean", "snapshots_checked", "trees_checked", "packs_checked", "packs_read", "blobs_read",
                "bytes_read", "damaged", "affected", "affected_snapshots", "unreferenced_packs", "duplicate_packs",
                "mirror_problems",
            ]
        )
        XCTAssertEqual(clean["clean"] as? Bool, true)
        XCTAssertEqual(clean["snapshots_checked"] as? Int, 1)
        XCTAssertGreaterThan(clean["blobs_read"] as? Int ?? 0, 0)
        XCTAssertEqual((clean["damaged"] as? [Any])?.count, 0)

        // One byte flipped in a data pack: exit 13 as without --json, the pack named in the report.
        let data = f.root + "/store/data"
        let pack = try XCTUnwrap(
            FileManager.default.enumerator(atPath: data)?.compactMap { $0 as? String }
                .first {
                    !$0.hasSuffix("/") && FileManager.default.fileExists(atPath: data + "/" + $0) && $0.count > 20
                }
        )
        let path = data + "/" + pack
        chmod(path, 0o600)
        var content = [UInt8](try XCTUnwrap(FileManager.default.contents(atPath: path)))
        content[content.count / 2] ^= 0x01
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(content)))
        let o = try f.expect(13, ["verify", "--read-data", "--json"])
        let damaged = try object(o)
        XCTAssertEqual(damaged["clean"] as? Bool, false)
        let items = try XCTUnwrap(damaged["damaged"] as? [[String: Any]], o.stdout)
        XCTAssertFalse(items.isEmpty)
        XCTAssertTrue(
            items.contains { ($0["object"] as? String)?.contains((pack as NSString).lastPathComponent) == true },
            o.stdout
        )
        XCTAssertTrue(o.stderr.contains("damaged object"), o.stderr)
    }

    func testPruneJSONHasEveryCount() throws {
        let f = try backedUp()
        let r = try object(try f.expect(0, ["prune", "--dry-run", "--json"]))
        XCTAssertEqual(
            Set(r.keys),
            [
                "packs", "unused_packs", "stray_packs", "repacked_packs", "new_packs", "partly_used_packs",
                "index_files_replaced", "bytes_repacked", "unused_bytes_kept", "used_bytes", "bytes_freed", "dry_run",
            ]
        )
        XCTAssertEqual(r["dry_run"] as? Bool, true)
        XCTAssertGreaterThan(r["packs"] as? Int ?? 0, 0)
        XCTAssertEqual(r["unused_packs"] as? Int, 0)
        XCTAssertGreaterThan(r["used_bytes"] as? Int ?? 0, 0)
    }
}
