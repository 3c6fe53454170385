import Foundation
import PolyadService
import Prometheus

/// The figures of a store in the Prometheus text format, from one registry (swift-prometheus): what
/// `polyad stats` reports, the last success of each host and path set, the counts of this machine's runs,
/// and for a mount the mount's own counters.
///
/// A registry is filled afresh for each rendering from values that are already counted elsewhere (the store's
/// snapshots, the machine's local state, the mount's atomics), so nothing on the read path touches it. Names,
/// units and types follow Prometheus' conventions: base units (`_bytes`, `_seconds`), `_total` for counters,
/// `_timestamp_seconds` for Unix times.
public struct StoreMetrics {
    public let registry = PrometheusCollectorRegistry()

    public init() {}

    /// The Prometheus text exposition of everything added so far.
    public func text() -> String { registry.emitToString() }

    /// A gauge with `value`.
    public func gauge(_ name: String, _ help: String, _ value: Double, labels: [(String, String)] = []) {
        registry.makeGauge(name: name, labels: labels, help: help).set(value)
    }

    /// A counter at `value` (a total kept elsewhere; counts are whole, so they print without a fraction).
    public func counter(_ name: String, _ help: String, _ value: Int64, labels: [(String, String)] = []) {
        registry.makeCounter(name: name, labels: labels, help: help).increment(by: max(0, value))
    }

    /// The store's statistics, as `polyad stats` and `/.polyad/stats.json` report them.
    public func add(_ s: BackupStatistics) {
        gauge("polyad_snapshots", "Snapshots in the store.", Double(s.snapshotCount))
        gauge(
            "polyad_snapshots_logical_bytes",
            "Bytes of all snapshots before deduplication.",
            Double(s.totalLogicalBytes)
        )
        gauge("polyad_latest_snapshot_logical_bytes", "Bytes of the newest snapshot.", Double(s.latestLogicalBytes))
        gauge("polyad_unique_bytes", "Plaintext bytes of the distinct data chunks.", Double(s.uniqueBytes))
        gauge(
            "polyad_stored_bytes",
            "Bytes of every object in the store (packs, index, snapshots, keys).",
            Double(s.storedBytes)
        )
        gauge("polyad_chunks", "Distinct chunks in the store's index.", Double(s.chunkCount))
        gauge("polyad_packs", "Pack files in the store.", Double(s.packCount))
        gauge("polyad_deduplication_ratio", "Logical bytes of all snapshots per unique byte.", s.deduplicationRatio)
        gauge("polyad_compression_ratio", "Unique bytes per byte of stored chunk data.", s.compressionRatio)
        if let t = s.lastBackupTime.flatMap(Self.seconds) {
            gauge("polyad_last_backup_timestamp_seconds", "When the newest snapshot was made.", t)
        }
        if let d = s.lastBackupDurationSeconds {
            gauge("polyad_last_backup_duration_seconds", "How long the newest snapshot took.", d)
        }
        gauge("polyad_partial_backups", "Snapshots some of whose sources could not be read.", Double(s.partialBackups))
        counter("polyad_prune_runs_total", "Prunes run on this machine.", Int64(s.pruneRuns))
        counter("polyad_pruned_bytes_total", "Bytes prunes on this machine freed.", s.prunedBytes)
    }

    /// The newest snapshot of each host and path set: a stale series is a backup that stopped running.
    public func add(lastSuccessOf snapshots: [SnapshotInfo]) {
        var newest: [String: (host: String, paths: String, time: Double)] = [:]
        for s in snapshots {
            guard let t = Self.seconds(s.time) else { continue }
            let paths = s.paths.joined(separator: " ")
            let key = s.hostname + "\u{0}" + paths
            if (newest[key]?.time ?? -1) < t { newest[key] = (s.hostname, paths, t) }
        }
        for (_, n) in newest.sorted(by: { $0.key < $1.key }) {
            gauge(
                "polyad_last_success_timestamp_seconds",
                "When the newest snapshot of a host and path set was made.",
                n.time,
                labels: [("host", n.host), ("paths", n.paths)]
            )
        }
    }

    /// This machine's runs: backups by outcome, the bytes they added, whole checks by result.
    public func add(runs: [String: Int], addedBytes: Int64) {
        for outcome in ["success", "partial", "failed"] {
            counter(
                "polyad_backups_total",
                "Backups run on this machine, by outcome.",
                Int64(runs["backup.\(outcome)"] ?? 0),
                labels: [("outcome", outcome)]
            )
        }
        counter("polyad_backup_added_bytes_total", "Bytes this machine's backups added to the store.", addedBytes)
        for result in ["clean", "damaged"] {
            counter(
                "polyad_verify_runs_total",
                "Whole-store checks run on this machine, by result.",
                Int64(runs["verify.\(result)"] ?? 0),
                labels: [("result", result)]
            )
        }
    }

    /// Everything a CLI run writes to the textfile: the store's statistics, last successes and this machine's runs.
    public static func of(_ manager: BackupManager) throws -> StoreMetrics {
        let m = StoreMetrics()
        m.add(try manager.backupStatistics())
        m.add(lastSuccessOf: try manager.snapshots())
        let local = try manager.localRuns()
        m.add(runs: local.runs, addedBytes: local.addedBytes)
        return m
    }

    /// Unix seconds of an ISO 8601 UTC time as the store writes it (`2026-12-04T20:13:48.312515923Z`).
    static func seconds(_ iso: String) -> Double? {
        let parts = iso.split(separator: ".", maxSplits: 1)
        let formatter = ISO8601DateFormatter()
        guard let whole = formatter.date(from: String(parts[0]).hasSuffix("Z") ? String(parts[0]) : parts[0] + "Z")
        else { return nil }
        var fraction = 0.0
        if parts.count == 2, let f = Double("0." + parts[1].filter(\.isNumber)) { fraction = f }
        return whole.timeIntervalSince1970 + fraction
    }
}
