import Foundation
import PolyadFormat
import PolyadRepository

/// Per-machine state that does not belong in the store: failed-backup counts and prune results for statistics,
/// and when each key slot last opened the store here. Kept in `$XDG_STATE_HOME/polyad` (default
/// `~/.local/state/polyad`), one JSON file per store id; the variables are looked up in the manager's environment,
/// then the process's. Never fatal: a file that cannot be read is an empty
/// state, one that cannot be written is left as it was.
enum LocalState {
    struct State: Codable {
        var failedBackups = 0
        var lastFailure: String?
        var pruneRuns: Int? = 0
        var lastPrune: String?
        var bytesPruned: Int64? = 0
        /// Key slot id → when it last opened the store on this machine (ISO 8601, UTC, whole seconds).
        /// Absent in files written before it was added.
        var keysLastUsed: [String: String]?
        /// Runs on this machine by kind and outcome (`backup.success`, `backup.partial`, `backup.failed`,
        /// `verify.clean`, `verify.damaged`), for the metrics' `_total` counters. Absent in older files.
        var runs: [String: Int]?
        /// Bytes the backups made here added to the store (after deduplication and compression).
        var addedBytes: Int64?
    }

    /// A key use is written only when the recorded one is this many seconds away (or missing): a mount or a
    /// run of commands does not rewrite the file each time.
    static let keyUseResolution: TimeInterval = 60

    static func file(storeID: String, environment: [String: String]) -> String {
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let base = env["XDG_STATE_HOME"] ?? ((env["HOME"] ?? "/root") + "/.local/state")
        return base + "/polyad/" + storeID + ".json"
    }

    static func load(storeID: String, environment: [String: String]) -> State {
        guard let data = FileManager.default.contents(atPath: file(storeID: storeID, environment: environment)),
            let s = try? JSONDecoder().decode(State.self, from: data)
        else { return State() }
        return s
    }

    static func recordFailure(storeID: String, environment: [String: String], message: String) {
        var s = load(storeID: storeID, environment: environment)
        s.failedBackups += 1
        s.runs = (s.runs ?? [:]).merging(["backup.failed": 1], uniquingKeysWith: +)
        s.lastFailure = TimeFormat.iso8601(Clock.now()) + " " + message
        save(s, storeID: storeID, environment: environment)
    }

    /// Counts one run of `kind` ending in `outcome`, and `added` bytes written by it.
    static func recordRun(
        storeID: String,
        environment: [String: String],
        _ kind: String,
        _ outcome: String,
        added: Int64 = 0
    ) {
        var s = load(storeID: storeID, environment: environment)
        s.runs = (s.runs ?? [:]).merging(["\(kind).\(outcome)": 1], uniquingKeysWith: +)
        s.addedBytes = (s.addedBytes ?? 0) + max(0, added)
        save(s, storeID: storeID, environment: environment)
    }

    /// Records a prune that completed (not a dry run).
    static func recordPrune(storeID: String, environment: [String: String], _ report: PruneReport) {
        var s = load(storeID: storeID, environment: environment)
        s.pruneRuns = (s.pruneRuns ?? 0) + 1
        s.bytesPruned = (s.bytesPruned ?? 0) + max(0, report.bytesFreed)
        s.lastPrune =
            TimeFormat.iso8601(Clock.now()) + " freed \(max(0, report.bytesFreed)) bytes, "
            + "\(report.unusedPacks + report.strayPacks + report.repackedPacks) packs deleted, "
            + "\(report.repackedPacks) repacked"
        save(s, storeID: storeID, environment: environment)
    }

    /// Notes that key slot `slot` opened the store just now, unless the time recorded for it is within
    /// ``keyUseResolution`` of now.
    static func recordKeyUse(storeID: String, environment: [String: String], slot: String, now: Date = Date()) {
        var s = load(storeID: storeID, environment: environment)
        if let recorded = s.keysLastUsed?[slot].flatMap(parseTime),
            abs(now.timeIntervalSince(recorded)) < keyUseResolution
        {
            return
        }
        s.keysLastUsed = s.keysLastUsed ?? [:]
        s.keysLastUsed?[slot] = formatTime(now)
        save(s, storeID: storeID, environment: environment)
    }

    /// Key slot id → when it last opened the store on this machine (ISO 8601, UTC).
    static func keysLastUsed(storeID: String, environment: [String: String]) -> [String: String] {
        load(storeID: storeID, environment: environment).keysLastUsed ?? [:]
    }

    /// `2026-11-25T02:03:56Z`.
    static func formatTime(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }

    static func parseTime(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)
    }

    private static func save(_ s: State, storeID: String, environment: [String: String]) {
        let path = file(storeID: storeID, environment: environment)
        try? FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        // Atomic (a new file renamed over the old): another process reading it at the same moment (the mount
        // and a command both recording a key use) sees the old state or the new, never half a file.
        try? JSONEncoder().encode(s).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// A private (0700) scratch folder for temporary plaintext, removed by `remove()`.
struct PrivateScratch {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/polyad-XXXXXX").utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw RepositoryError(.io, "cannot create a private temporary folder in \(NSTemporaryDirectory())")
        }
        path = String(cString: p)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}
