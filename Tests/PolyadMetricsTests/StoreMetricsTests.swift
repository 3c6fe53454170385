import Foundation
import PolyadFormat
import PolyadService
import XCTest

@testable import PolyadMetrics

final class StoreMetricsTests: XCTestCase {
    func testStoreTimesBecomeUnixSeconds() throws {
        XCTAssertEqual(StoreMetrics.seconds("1970-01-01T00:00:10Z"), 10)
        XCTAssertEqual(
            try XCTUnwrap(StoreMetrics.seconds("2026-12-04T20:13:48.250000000Z")),
            1_796_415_228.25,
            accuracy: 1e-6
        )
        XCTAssertNil(StoreMetrics.seconds("yesterday"))
    }

    func testLastSuccessIsTheNewestOfEachHostAndPathSetWithLabelsEscaped() {
        func snapshot(_ host: String, _ paths: [String], _ time: String) -> SnapshotInfo {
            // As `polyad snapshots --json` prints one.
            let summary = try! JSONSerialization.jsonObject(with: try! JSONEncoder().encode(BackupSummary()))
            let json: [String: Any] = [
                "id": String(repeating: "0", count: 64), "short_id": "00000000", "time": time, "hostname": host,
                "username": "root", "uid": 0, "gid": 0, "tags": [String](), "paths": paths, "files": 0,
                "logical_bytes": 0, "stored_bytes": 0, "tree": String(repeating: "1", count: 64),
                "metadata": [String: String](), "summary": summary,
            ]
            let data = try! JSONSerialization.data(withJSONObject: json)
            return try! JSONDecoder().decode(SnapshotInfo.self, from: data)
        }
        let m = StoreMetrics()
        m.add(lastSuccessOf: [
            snapshot("a", ["/home"], "2026-01-01T00:00:00Z"),
            snapshot("a", ["/home"], "2026-01-02T00:00:00Z"),
            snapshot("a", ["/etc"], "2026-01-01T00:00:00Z"),
            snapshot("b", ["/srv/\"quoted\""], "2026-01-03T00:00:00Z"),
        ])
        let text = m.text()
        XCTAssertTrue(
            text.contains(#"polyad_last_success_timestamp_seconds{host="a",paths="/home"} 1767312000.0"#),
            text
        )
        XCTAssertTrue(
            text.contains(#"polyad_last_success_timestamp_seconds{host="a",paths="/etc"} 1767225600.0"#),
            text
        )
        XCTAssertTrue(text.contains(#"paths="/srv/\"quoted\"""#), "label values escaped: \(text)")
        XCTAssertEqual(text.components(separatedBy: "# TYPE polyad_last_success_timestamp_seconds gauge").count, 2)
    }
}
