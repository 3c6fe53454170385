import ArgumentParser
import Foundation
import PolyadConfig
import PolyadFormat
import PolyadRepository
import PolyadService

/// `polyad forget`: removes snapshots, by id or by the config's retention rules.
struct ForgetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "Remove snapshots: the ones named, or those the retention rules of mount.conf do not keep.",
        discussion: """
            Without ids, snapshots are grouped (by host and path set unless --group-by says otherwise) and each \
            group is judged by backup.retention_days and the retention: section (keep_last, keep_hourly, \
            keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within, keep_tags); the newest snapshot of \
            each group is always kept. --dry-run shows each decision and the rules behind it and removes nothing. \
            Only the snapshots go: the data only they used stays in the store until a prune.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Snapshots to forget (ids, prefixes of at least 4 digits, or latest).")
    var ids: [String] = []

    @Flag(name: [.short, .customLong("dry-run")], help: "Show what would be forgotten and why; remove nothing.")
    var dryRun = false

    @Option(
        name: .customLong("group-by"),
        help: "Group by any of host, paths, tags (comma-separated; '' for one group)."
    )
    var groupBy = "host,paths"

    @Flag(name: .long, help: "Then prune: delete the data no remaining snapshot uses.")
    var prune = false

    @Flag(name: .long, help: "Print the decisions as JSON.")
    var json = false

    @OptionGroup(title: "Retention rules (given here, they replace the retention: section of mount.conf)")
    var rules: RetentionOptions

    @OptionGroup var repacking: RepackOptions

    func validate() throws {
        if json && prune {
            throw ValidationError(
                "--json prints forget's decisions only: run `polyad prune` after it instead of --prune"
            )
        }
        guard Retention.Grouping(groupBy) != nil else {
            throw ValidationError("--group-by \(groupBy): use host, paths and tags, separated by commas")
        }
    }

    private struct Row: Encodable {
        var id: String
        var time: String
        var group: String
        var kept: Bool
        var reasons: [String]
    }

    private static func timestamp(_ date: Date) -> Timestamp {
        Timestamp(seconds: Int64(date.timeIntervalSince1970), nanoseconds: 0)
    }

    func run() throws {
        let manager = try global.manager()
        let result = try manager.forget(
            ids: ids,
            policy: try rules.policy(),
            grouping: Retention.Grouping(groupBy) ?? [.host, .paths],
            dryRun: dryRun
        )
        if json {
            try Terminal.printJSON(
                result.decisions.map {
                    Row(
                        id: $0.snapshot.id,
                        time: TimeFormat.iso8601(
                            Self.timestamp($0.snapshot.time)
                        ),
                        group: $0.group,
                        kept: $0.isKept,
                        reasons: $0.reasons
                    )
                }
            )
            return
        }
        if !global.quiet {
            var group: String?
            for d in result.decisions {
                if d.group != group {
                    group = d.group
                    let members = result.decisions.filter { $0.group == d.group }
                    let gone = members.filter { !$0.isKept }.count
                    print("\(d.group): keep \(members.count - gone), forget \(gone)")
                }
                let time = TimeFormat.local(
                    Self.timestamp(d.snapshot.time)
                )
                let id = String(d.snapshot.id.prefix(8))
                print(
                    d.isKept
                        ? "  keep    \(id)  \(time)  \(d.reasons.joined(separator: ", "))" : "  forget  \(id)  \(time)"
                )
            }
        }
        let count = result.forgotten.count
        let what = "\(count) snapshot\(count == 1 ? "" : "s")"
        print(
            dryRun
                ? "Would forget \(what) (dry run: nothing removed)"
                : "Forgot \(what)" + (prune ? "" : "; their data stays until a prune")
        )
        if prune { PruneSummary.print(try manager.prune(dryRun: dryRun, maxUnused: repacking.limit, lastUse: true)) }
    }
}

/// restic's `--keep-*` options: a retention policy given on the command line.
struct RetentionOptions: ParsableArguments {
    @Option(name: .customLong("keep-last"), help: ArgumentHelp("Keep the newest n snapshots.", valueName: "n"))
    var keepLast: Int?
    @Option(
        name: .customLong("keep-hourly"),
        help: ArgumentHelp("Keep the newest snapshot of each of the last n hours.", valueName: "n")
    )
    var keepHourly: Int?
    @Option(
        name: .customLong("keep-daily"),
        help: ArgumentHelp("Keep the newest snapshot of each of the last n days.", valueName: "n")
    )
    var keepDaily: Int?
    @Option(
        name: .customLong("keep-weekly"),
        help: ArgumentHelp("Keep the newest snapshot of each of the last n weeks.", valueName: "n")
    )
    var keepWeekly: Int?
    @Option(
        name: .customLong("keep-monthly"),
        help: ArgumentHelp("Keep the newest snapshot of each of the last n months.", valueName: "n")
    )
    var keepMonthly: Int?
    @Option(
        name: .customLong("keep-yearly"),
        help: ArgumentHelp("Keep the newest snapshot of each of the last n years.", valueName: "n")
    )
    var keepYearly: Int?
    @Option(
        name: .customLong("keep-within"),
        help: ArgumentHelp("Keep every snapshot within this span of the newest (1y6m3d12h).", valueName: "span")
    )
    var keepWithin: String?
    @Option(
        name: .customLong("keep-tag"),
        help: ArgumentHelp("Keep every snapshot with this tag (repeatable).", valueName: "tag")
    )
    var keepTags: [String] = []

    func validate() throws {
        for (name, n) in [
            ("last", keepLast), ("hourly", keepHourly), ("daily", keepDaily), ("weekly", keepWeekly),
            ("monthly", keepMonthly), ("yearly", keepYearly),
        ] {
            if let n, n < 1 { throw ValidationError("--keep-\(name) \(n): give a count of at least 1") }
        }
        if let keepWithin, RetentionSpan(keepWithin) == nil {
            throw ValidationError("--keep-within \(keepWithin): give a span such as 30d, 1y6m or 2d12h")
        }
    }

    /// The policy the options give, or nil when none is given (the config's then applies).
    func policy() throws -> RetentionPolicy? {
        let p = RetentionPolicy(
            keepLast: keepLast,
            keepHourly: keepHourly,
            keepDaily: keepDaily,
            keepWeekly: keepWeekly,
            keepMonthly: keepMonthly,
            keepYearly: keepYearly,
            keepWithin: keepWithin.flatMap(RetentionSpan.init),
            keepTags: keepTags
        )
        return p.isEmpty ? nil : p
    }
}
