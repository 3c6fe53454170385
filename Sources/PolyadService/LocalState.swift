import Foundation
import PolyadFormat
import PolyadRepository

/// Per-machine state that does not belong in the store: failed-backup counts and prune results for statistics.
/// Kept in `$XDG_STATE_HOME/polyad` (default `~/.local/state/polyad`), one JSON file per store id.
enum LocalState {
    struct State: Codable {
        var failedBackups = 0
        var lastFailure: String?
        var pruneRuns: Int? = 0
        var lastPrune: String?
        var bytesPruned: Int64? = 0
    }

    static func file(storeID: String) -> String {
        let env = ProcessInfo.processInfo.environment
        let base = env["XDG_STATE_HOME"] ?? ((env["HOME"] ?? "/root") + "/.local/state")
        return base + "/polyad/" + storeID + ".json"
    }

    static func load(storeID: String) -> State {
        guard let data = FileManager.default.contents(atPath: file(storeID: storeID)),
            let s = try? JSONDecoder().decode(State.self, from: data)
        else { return State() }
        return s
    }

    static func recordFailure(storeID: String, message: String) {
        var s = load(storeID: storeID)
        s.failedBackups += 1
        s.lastFailure = TimeFormat.iso8601(Clock.now()) + " " + message
        save(s, storeID: storeID)
    }

    /// Records a prune that completed (not a dry run).
    static func recordPrune(storeID: String, _ report: PruneReport) {
        var s = load(storeID: storeID)
        s.pruneRuns = (s.pruneRuns ?? 0) + 1
        s.bytesPruned = (s.bytesPruned ?? 0) + max(0, report.bytesFreed)
        s.lastPrune =
            TimeFormat.iso8601(Clock.now()) + " freed \(max(0, report.bytesFreed)) bytes, "
            + "\(report.unusedPacks + report.strayPacks + report.repackedPacks) packs deleted, "
            + "\(report.repackedPacks) repacked"
        save(s, storeID: storeID)
    }

    private static func save(_ s: State, storeID: String) {
        let path = file(storeID: storeID)
        try? FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        try? JSONEncoder().encode(s).write(to: URL(fileURLWithPath: path))
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
