import Foundation
import PolyadFileSystem
import XCTest

/// Crash safety, for real: `polyad backup`, `polyad forget --prune`, an `/incoming` commit of the mounted
/// daemon and the daemon's automatic cleanup are each sent SIGKILL at seeded random moments
/// (`POLYAD_KILL_POINTS`, default 200, spread over the four; `POLYAD_KILL_SEED` picks the moments). After each
/// kill: `verify --read-data` passes, no snapshot completed before the kill is missing (but those the
/// retention rule forgets), and the next backup succeeds; every tenth point that backup is restored and
/// compared with its source.
final class KillTests: XCTestCase {
    /// xorshift64*: the same moments for the same seed.
    private struct Moments {
        var state: UInt64
        mutating func next(below n: UInt64) -> UInt64 {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return (state &* 2_685_821_657_736_338_717) % n
        }
    }

    private func snapshots(_ f: CLIFixture) throws -> [(id: String, time: String)] {
        let out = try f.expect(0, ["snapshots", "--json"])
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])
        return list.compactMap { d in
            guard let id = d["id"] as? String, let time = d["time"] as? String else { return nil }
            return (id, time)
        }.sorted { ($0.time, $0.id) < ($1.time, $1.id) }
    }

    /// Rewrites two of the source's files (new content every call).
    private func change(_ src: String, _ moments: inout Moments) {
        for _ in 0..<2 {
            let k = moments.next(below: 12)
            let size = 100_000 + Int(moments.next(below: 400_000))
            _ = FileManager.default.createFile(
                atPath: src + "/file-\(k).bin",
                contents: Data(randomBytes(size, seed: moments.next(below: 1 << 40) + 1))
            )
        }
    }

    /// Runs `polyad arguments` and kills it with SIGKILL at a random moment of its usual run time (what it took
    /// the last time it finished before the kill, in `typical` by its first argument); true if it was killed
    /// while running.
    private func runAndKill(
        _ f: CLIFixture,
        _ arguments: [String],
        _ moments: inout Moments,
        _ typical: inout [String: Double]
    ) throws -> Bool {
        let usual = typical[arguments[0]] ?? 0.1
        let delay = UInt32(moments.next(below: UInt64(max(1_000, usual * 1.1e6))))
        let started = Date()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLIFixture.binary)
        p.arguments = arguments
        p.environment = f.environment
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Wait in small steps: a run that ends before its moment gives its duration for the next time.
        while p.isRunning && Date().timeIntervalSince(started) * 1e6 < Double(delay) { usleep(2_000) }
        let killed = p.isRunning
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        if !killed { typical[arguments[0]] = max(usual, Date().timeIntervalSince(started)) }
        return killed
    }

    func testKillsAtAnyMomentLeaveAStoreThatVerifiesAndTakesTheNextBackup() throws {
        let env = ProcessInfo.processInfo.environment
        let points = env["POLYAD_KILL_POINTS"].flatMap(Int.init) ?? 200
        let seed = env["POLYAD_KILL_SEED"].flatMap(UInt64.init) ?? 20_261_203
        var moments = Moments(state: seed | 1)
        let store = try MountedStore(
            extraConfig: "  cleanup_interval: 1\nretention:\n  keep_last: 3\nmount:\n  settle_seconds: 1\n"
        )
        defer { store.unmount() }
        let f = store.fixture
        let src = f.root + "/src"
        try FileSystem.makeDirectories(bytes(src), mode: 0o755)
        for _ in 0..<6 { change(src, &moments) }
        try f.expect(0, ["init"])
        try f.expect(0, ["backup", "-q", src])

        var killedMidway = 0
        var typical = [String: Double]()
        var kinds = [String: Int]()
        for point in 0..<points {
            var before = [(id: String, time: String)]()
            // Of every ten points: four backups, four prunes, one /incoming commit, one cleanup of the daemon.
            let kind = [
                "backup", "prune", "backup", "prune", "incoming", "backup", "prune", "backup", "prune", "cleanup",
            ][
                point % 10
            ]
            kinds[kind, default: 0] += 1
            switch kind {
            case "backup":
                change(src, &moments)
                before = try snapshots(f)
                killedMidway += try runAndKill(f, ["backup", "-q", src], &moments, &typical) ? 1 : 0
            case "prune":
                // Something to forget and prune: two more backups first.
                for _ in 0..<2 {
                    change(src, &moments)
                    try f.expect(0, ["backup", "-q", src])
                }
                before = try snapshots(f)
                killedMidway += try runAndKill(f, ["forget", "--prune"], &moments, &typical) ? 1 : 0
            case "incoming":
                before = try snapshots(f)
                try store.mount(inForeground: true)
                let batch = mountpointFolder(store, point)
                for i in 0..<3 {
                    _ = FileManager.default.createFile(
                        atPath: batch + "/in-\(i).bin",
                        contents: Data(randomBytes(200_000, seed: UInt64(point * 10 + i + 1)))
                    )
                }
                // The commit starts about a second after the writers closed (settle_seconds: 1).
                usleep(800_000 + UInt32(moments.next(below: 1_200_000)))
                killedMidway += store.daemonIsRunning ? 1 : 0
                store.killDaemon()
                store.unmount()
            default:  // cleanup: the daemon's forget + prune, every second
                for _ in 0..<2 {
                    change(src, &moments)
                    try f.expect(0, ["backup", "-q", src])
                }
                before = try snapshots(f)
                try store.mount(inForeground: true)
                usleep(900_000 + UInt32(moments.next(below: 1_000_000)))
                killedMidway += store.daemonIsRunning ? 1 : 0
                store.killDaemon()
                store.unmount()
            }
            let context = "kill point \(point) (\(kind), seed \(seed))"
            let verify = try f.run(["verify", "--read-data"])
            XCTAssertEqual(verify.status, 0, "\(context): \(verify.stdout)\n\(verify.stderr)")
            // Nothing completed before the kill is missing, but what keep_last: 3 forgets.
            let after = Set(try snapshots(f).map(\.id))
            // (The mount's cleanup runs every second in the incoming points too.)
            let mustStay = kind == "backup" ? before : Array(before.suffix(3))
            for s in mustStay {
                XCTAssertTrue(
                    after.contains(s.id),
                    "\(context): snapshot \(s.id.prefix(8)) of \(s.time) is gone; before: "
                        + before.map { "\($0.id.prefix(8)) \($0.time)" }.joined(separator: ", ")
                        + "; after: \(((try? snapshots(f)) ?? []).map { "\($0.id.prefix(8)) \($0.time)" })"
                )
            }
            // The next backup succeeds (a killed holder's lock is no obstacle on this host).
            change(src, &moments)
            let next = try f.run(["backup", "-q", src])
            XCTAssertEqual(next.status, 0, "\(context): the next backup failed: \(next.stderr)")
            if point % 10 == 9 {
                let target = f.root + "/restore-\(point)"
                try f.expect(0, ["restore", "latest", "--target", target])
                for k in 0..<12 {
                    XCTAssertEqual(
                        FileManager.default.contents(atPath: target + src + "/file-\(k).bin"),
                        FileManager.default.contents(atPath: src + "/file-\(k).bin"),
                        "\(context): file-\(k) restored"
                    )
                }
                try FileManager.default.removeItem(atPath: target)
            }
            if testRun?.failureCount ?? 0 > 0 { break }  // one broken store makes the rest meaningless
        }
        print(
            "kill test: \(points) points \(kinds.sorted { $0.key < $1.key }), \(killedMidway) killed mid-run, seed \(seed)"
        )
        XCTAssertGreaterThan(killedMidway, points / 3, "most kills must land while the process is working")
    }

    /// A new folder in `/incoming` for this point's files.
    private func mountpointFolder(_ store: MountedStore, _ point: Int) -> String {
        let folder = store.mountpoint + "/incoming/batch-\(point)"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }
}

extension MountedStore {
    /// Whether the foreground daemon is still running.
    var daemonIsRunning: Bool { daemon?.isRunning ?? false }
}
