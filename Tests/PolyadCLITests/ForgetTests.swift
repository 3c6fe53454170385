import Foundation
import XCTest

/// `polyad forget` and `backup --time` through the real binary: a dry run explains and removes nothing, a run
/// removes what the rules do not keep (the kept snapshots still restore), ids forget exactly those, and
/// without a rule or an id nothing is removed (exit 2).
final class ForgetTests: XCTestCase {
    private func history(_ f: CLIFixture) throws -> String {
        let src = f.root + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try f.expect(0, ["init"])
        for (i, time) in ["2026-06-01 10:00:00", "2026-06-01 18:00:00", "2026-06-02 09:00:00", "2026-06-03 12:00:00"]
            .enumerated()
        {
            try Data("version \(i)\n".utf8).write(to: URL(fileURLWithPath: src + "/file.txt"))
            try f.expect(0, ["backup", "--time", time, src])
        }
        return src
    }

    private func count(_ f: CLIFixture) throws -> Int {
        let out = try f.expect(0, ["snapshots", "--json"])
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [Any]).count
    }

    func testTheRulesForgetWhatTheyDoNotKeep() throws {
        let f = try CLIFixture(extraConfig: "retention:\n  keep_last: 1\n  keep_daily: 2\n")
        let src = try history(f)
        let times = try f.expect(0, ["snapshots"]).stdout
        XCTAssertTrue(times.contains("2026-06-01 10:00:00"), "--time is recorded: \(times)")

        let dry = try f.expect(0, ["forget", "--dry-run"])
        XCTAssertTrue(dry.stdout.contains("keep 2, forget 2"), dry.stdout)
        XCTAssertTrue(dry.stdout.contains("newest of its group, last 1, daily 1/2"), dry.stdout)
        XCTAssertTrue(dry.stdout.contains("daily 2/2"), dry.stdout)
        XCTAssertTrue(dry.stdout.contains("nothing removed"), dry.stdout)
        XCTAssertEqual(try count(f), 4, "a dry run removes nothing")

        let run = try f.expect(0, ["forget"])
        XCTAssertTrue(run.stdout.contains("Forgot 2 snapshots"), run.stdout)
        XCTAssertEqual(try count(f), 2)
        try f.expect(0, ["restore", "latest", "--target", f.root + "/r"])
        XCTAssertEqual(
            FileManager.default.contents(atPath: f.root + "/r" + src + "/file.txt"),
            Data("version 3\n".utf8)
        )
        try f.expect(0, ["verify", "--read-data"])
    }

    func testRulesOnTheCommandLineReplaceTheConfigs() throws {
        // The config keeps everything of the last week; --keep-last 1 on the command line replaces it.
        let f = try CLIFixture(extraConfig: "retention:\n  keep_daily: 7\n")
        _ = try history(f)
        let dry = try f.expect(0, ["forget", "--dry-run", "--keep-last", "1"])
        XCTAssertTrue(dry.stdout.contains("keep 1, forget 3"), dry.stdout)
        for bad in [["--keep-daily", "0"], ["--keep-within", "3 weeks"], ["--max-unused", "half"]] {
            let refused = try f.expect(2, ["forget"] + bad)
            XCTAssertTrue(refused.stderr.contains(bad[0]), refused.stderr)
        }
        XCTAssertEqual(try count(f), 4, "nothing was removed")
        let run = try f.expect(0, ["forget", "--keep-within", "1d12h", "--prune"])
        XCTAssertTrue(run.stdout.contains("Forgot 2 snapshots") && run.stdout.contains("Deleted"), run.stdout)
        XCTAssertEqual(try count(f), 2)
        try f.expect(0, ["verify", "--read-data"])
    }

    func testIdsForgetExactlyThoseAndNoRuleRemovesNothing() throws {
        let f = try CLIFixture()
        _ = try history(f)
        let none = try f.expect(2, ["forget"])
        XCTAssertTrue(none.stderr.contains("no retention rule is set"), none.stderr)
        XCTAssertEqual(try count(f), 4, "nothing was removed")
        let bad = try f.expect(2, ["forget", "zz"])
        XCTAssertTrue(bad.stderr.contains("not a snapshot id"), bad.stderr)
        XCTAssertEqual(try count(f), 4)

        let out = try f.expect(0, ["snapshots", "--json"])
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])
        let first = try XCTUnwrap(list.first?["short_id"] as? String)
        let json = try f.expect(0, ["forget", first, "latest", "--json"])
        XCTAssertTrue(json.stdout.contains("\"kept\" : false") || json.stdout.contains("\"kept\":false"), json.stdout)
        XCTAssertEqual(try count(f), 2)
        try f.expect(2, ["backup", "--time", "yesterday", f.root + "/src"])
        XCTAssertEqual(try count(f), 2, "a bad --time makes no snapshot")
    }
}
