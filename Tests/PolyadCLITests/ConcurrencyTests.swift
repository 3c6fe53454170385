import Foundation
import PolyadFileSystem
import XCTest

/// Several processes at one store through the real binary: two backups (as from two hosts) and a prune started
/// at the same moment all complete, each waiting its turn (`--retry-lock`), and what they leave verifies and
/// restores; a prune into a full disk fails with exit 15 and leaves the store whole.
final class ConcurrencyTests: XCTestCase {
    /// Starts `polyad arguments` with output to files; returns the process and its output paths.
    private func start(_ f: CLIFixture, _ name: String, _ arguments: [String]) throws -> (Process, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLIFixture.binary)
        p.arguments = arguments
        p.environment = f.environment
        let out = f.root + "/\(name).out"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        return (p, out)
    }

    func testTwoBackupsAndAPruneStartedTogetherAllComplete() throws {
        let f = try CLIFixture()
        try f.expect(0, ["init"])
        var sources = [String]()
        for host in ["alpha", "beta"] {
            let src = f.root + "/src-" + host
            try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
            sources.append(src)
        }
        // Something for the prunes to remove: an old snapshot of each source, forgotten each round.
        for round in 0..<3 {
            for (i, src) in sources.enumerated() {
                for k in 0..<4 {
                    let seed = UInt64(round * 100 + i * 10 + k + 1)
                    _ = FileManager.default.createFile(
                        atPath: src + "/file-\(k).bin",
                        contents: Data(randomBytes(1_500_000, seed: seed))
                    )
                }
            }
            let runs = try [
                start(f, "backup-a-\(round)", ["backup", "--retry-lock", "120s", "-q", "--host", "alpha", sources[0]]),
                start(f, "prune-\(round)", ["forget", "--retry-lock", "120s", "--keep-last", "1", "--prune"]),
                start(f, "backup-b-\(round)", ["backup", "--retry-lock", "120s", "-q", "--host", "beta", sources[1]]),
            ]
            for (p, out) in runs {
                p.waitUntilExit()
                let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
                XCTAssertEqual(p.terminationStatus, 0, "round \(round): \(p.arguments ?? []): \(text)")
            }
            try f.expect(0, ["verify", "--read-data"])
            // The newest snapshot of each host holds exactly what its source holds now.
            let list = try XCTUnwrap(
                JSONSerialization.jsonObject(with: Data(try f.expect(0, ["snapshots", "--json"]).stdout.utf8))
                    as? [[String: Any]]
            )
            for (i, host) in ["alpha", "beta"].enumerated() {
                let target = f.root + "/restore-\(round)-\(host)"
                let newest = try XCTUnwrap(
                    list.filter { $0["hostname"] as? String == host }.max {
                        ($0["time"] as? String ?? "") < ($1["time"] as? String ?? "")
                    }?["id"] as? String
                )
                try f.expect(0, ["restore", newest, "--target", target])
                for k in 0..<4 {
                    XCTAssertEqual(
                        FileManager.default.contents(atPath: target + sources[i] + "/file-\(k).bin"),
                        FileManager.default.contents(atPath: sources[i] + "/file-\(k).bin"),
                        "round \(round), \(host), file-\(k)"
                    )
                }
            }
        }
        XCTAssertTrue(try FileManager.default.contentsOfDirectory(atPath: f.root + "/store/locks").isEmpty)
    }

    func testAPruneIntoAFullDiskFailsCleanlyAndLeavesTheStoreWhole() throws {
        let f = try CLIFixture(extraConfig: "  pack_size_mib: 16\n")
        let store = f.root + "/store"
        try FileSystem.makeDirectories(bytes(store), mode: 0o700)
        let unmount = try mountTmpfs(at: store, size: "16m")
        defer { unmount() }
        try f.expect(0, ["init"])
        let src = f.root + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        let kept = Data(randomBytes(2_000_000, seed: 71))
        _ = FileManager.default.createFile(atPath: src + "/kept.bin", contents: kept)
        _ = FileManager.default.createFile(
            atPath: src + "/dropped.bin",
            contents: Data(randomBytes(6_000_000, seed: 72))
        )
        try f.expect(0, ["backup", src])  // one pack of ~8 MB
        try FileManager.default.removeItem(atPath: src + "/dropped.bin")
        try f.expect(0, ["backup", src])
        try f.expect(0, ["forget", "--keep-last", "1"])
        // Fill the disk so that the repack's new pack (kept.bin, 2 MB) cannot be written.
        let filler = store + "/filler"
        let fd = open(filler, O_CREAT | O_WRONLY, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let block = [UInt8](repeating: 0x5A, count: 1 << 16)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        close(fd)
        _ = truncate(
            filler,
            max(0, (try FileManager.default.attributesOfItem(atPath: filler)[.size] as? Int ?? 0) - 600_000)
        )
        let listing = { () throws -> [String] in
            try FileManager.default.subpathsOfDirectory(atPath: store).filter {
                !$0.hasPrefix("locks") && $0 != "filler"
            }
            .sorted()
        }
        let before = try listing()

        let o = try f.expect(15, ["prune"])
        XCTAssertTrue(o.stderr.lowercased().contains("space"), o.stderr)
        XCTAssertEqual(try listing(), before, "nothing deleted, nothing left behind")
        try FileManager.default.removeItem(atPath: filler)
        try f.expect(0, ["verify", "--read-data"])
        try f.expect(0, ["restore", "latest", "--target", f.root + "/r"])
        XCTAssertEqual(FileManager.default.contents(atPath: f.root + "/r" + src + "/kept.bin"), kept)
        // With room again, the prune completes.
        let run = try f.expect(0, ["prune"])
        XCTAssertTrue(run.stdout.contains("Repacked"), run.stdout)
        try f.expect(0, ["verify", "--read-data"])
    }
}
