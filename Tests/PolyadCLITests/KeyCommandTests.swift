import Foundation
import XCTest

/// `polyad key list|add` with labels and "last used (here)", and `polyad init --label`.
final class KeyCommandTests: XCTestCase {
    /// `key list --json` as objects.
    private func listed(_ f: CLIFixture, environment: [String: String] = [:]) throws -> [[String: Any]] {
        let o = try f.expect(0, ["key", "list", "--json"], environment: environment)
        let parsed = try JSONSerialization.jsonObject(with: Data(o.stdout.utf8), options: [.fragmentsAllowed])
        return try XCTUnwrap(parsed as? [[String: Any]], o.stdout)
    }

    private func added(_ o: CLIFixture.Output) throws -> String {
        String(try XCTUnwrap(o.stdout.split(separator: " ").last, o.stdout).prefix(8))
    }

    private func row(_ listing: String, _ id: String) throws -> String {
        String(try XCTUnwrap(listing.split(separator: "\n").first { $0.contains(id) }, "no row for \(id):\n\(listing)"))
    }

    func testKeyAddLabelShowsInTheListAsTextAndJSON() throws {
        let f = try CLIFixture(passphrase: "first")
        try f.expect(0, ["init", "--label", "the first one"])
        let label = "backup server \u{1F5C4} (root)"
        let id = try added(
            try f.expect(0, ["key", "add", "--label", label], environment: ["POLYAD_NEW_PASSWORD": "second"])
        )

        let text = try f.expect(0, ["key", "list"]).stdout
        XCTAssertTrue(text.split(separator: "\n").first?.contains("Label") == true, text)
        XCTAssertTrue(try row(text, id).contains(label), text)
        XCTAssertTrue(text.contains("the first one"), text)

        let keys = try listed(f)
        XCTAssertEqual(keys.count, 2)
        let new = try XCTUnwrap(keys.first { ($0["id"] as? String)?.hasPrefix(id) == true }, "\(keys)")
        XCTAssertEqual(new["label"] as? String, label)
        XCTAssertEqual(new["in_use"] as? Bool, false)
        let first = try XCTUnwrap(keys.first { $0["in_use"] as? Bool == true }, "\(keys)")
        XCTAssertEqual(first["label"] as? String, "the first one")
        for key in keys {
            for field in ["id", "label", "created", "last_used", "hostname", "username", "kdf", "n", "r", "p"] {
                XCTAssertTrue(key.keys.contains(field), "\(field) in \(key)")
            }
        }

        // A slot without a label: `null` in JSON, an empty cell in the table.
        let plain = try added(try f.expect(0, ["key", "add"], environment: ["POLYAD_NEW_PASSWORD": "third"]))
        let third = try XCTUnwrap(try listed(f).first { ($0["id"] as? String)?.hasPrefix(plain) == true })
        XCTAssertTrue(third["label"] is NSNull, "\(third)")
    }

    func testABadLabelExits2WithAMessageAndAddsNoSlot() throws {
        let f = try CLIFixture(passphrase: "first")
        try f.expect(0, ["init"])
        let before = try listed(f).compactMap { $0["id"] as? String }
        let cases: [(label: String, says: String)] = [
            ("two\nlines", "control characters"),
            (String(repeating: "x", count: 300), "at most 200 bytes"),
            (String(repeating: "\u{E9}", count: 101), "at most 200 bytes"),
            ("", "must not be empty"),
        ]
        for (label, says) in cases {
            let o = try f.expect(
                2,
                ["key", "add", "--label", label],
                environment: ["POLYAD_NEW_PASSWORD": "second"]
            )
            XCTAssertTrue(o.stderr.contains("label") && o.stderr.contains(says), o.stderr)
            XCTAssertEqual(
                try listed(f).compactMap { $0["id"] as? String },
                before,
                "no slot for \(label.debugDescription)"
            )
        }
        try f.expect(12, ["snapshots"], environment: ["POLYAD_PASSWORD": "second"])
    }

    func testInitWithABadLabelCreatesNoStore() throws {
        let f = try CLIFixture()
        let o = try f.expect(2, ["init", "--label", "a\tb"])
        XCTAssertTrue(o.stderr.contains("label"), o.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/store"), "nothing created")
        try f.expect(10, ["snapshots"])
    }

    /// "never" until the slot opens the store on this machine; then the time of that, kept in the local state
    /// (the store is not written).
    func testLastUsedIsNeverUntilTheKeyOpensTheStore() throws {
        let f = try CLIFixture(passphrase: "first")
        try f.expect(0, ["init"])
        let id = try added(try f.expect(0, ["key", "add"], environment: ["POLYAD_NEW_PASSWORD": "second"]))

        XCTAssertTrue(try row(try f.expect(0, ["key", "list"]).stdout, id).contains("never"))
        let fresh = try XCTUnwrap(try listed(f).first { ($0["id"] as? String)?.hasPrefix(id) == true })
        XCTAssertTrue(fresh["last_used"] is NSNull, "\(fresh)")
        let inUse = try XCTUnwrap(try listed(f).first { $0["in_use"] as? Bool == true })
        XCTAssertNotNil(inUse["last_used"] as? String, "the listing itself opened the store with the first key")

        let keysBefore = try FileManager.default.contentsOfDirectory(atPath: f.root + "/store/keys").sorted()
        let start = Date(timeIntervalSinceNow: -1).timeIntervalSince1970.rounded(.down)
        try f.expect(0, ["snapshots"], environment: ["POLYAD_PASSWORD": "second"])
        let end = Date().timeIntervalSince1970.rounded(.up)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: f.root + "/store/keys").sorted(),
            keysBefore,
            "using a key writes nothing in the store"
        )

        let used = try XCTUnwrap(try listed(f).first { ($0["id"] as? String)?.hasPrefix(id) == true })
        let text = try XCTUnwrap(used["last_used"] as? String, "\(used)")
        let formatter = ISO8601DateFormatter()
        let when = try XCTUnwrap(formatter.date(from: text), text).timeIntervalSince1970
        XCTAssertTrue(start <= when && when <= end, "\(text) is when `snapshots` ran (\(start)...\(end))")
        let shown = try row(try f.expect(0, ["key", "list"]).stdout, id)
        XCTAssertFalse(shown.contains("never"), shown)
        XCTAssertTrue(shown.contains(String(text.replacingOccurrences(of: "T", with: " ").prefix(19))), shown)

        let stateFiles = try FileManager.default.contentsOfDirectory(atPath: f.root + "/state/polyad")
        XCTAssertEqual(stateFiles.count, 1, "one state file, for this store: \(stateFiles)")
    }
}
