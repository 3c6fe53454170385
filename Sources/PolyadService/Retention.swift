import Foundation
import PolyadConfig

/// What retention decides for the snapshots of a store: which are kept, why, and which are forgotten.
///
/// The rules are restic's (`forget --keep-*`), plus the seed's `retention_days`. Snapshots are grouped (by
/// host and path set unless told otherwise) and each group is judged on its own, newest first:
/// - `keep_last N`: the N newest;
/// - `keep_hourly/daily/weekly/monthly/yearly N`: the newest snapshot of each of the last N hours, days, ISO
///   weeks, months or years that have one (in `calendar`'s time zone);
/// - `keep_within SPAN`: every snapshot taken within SPAN before the group's newest;
/// - `keep_tags`: every snapshot carrying one of the tags;
/// - `retention_days N`: every snapshot younger than N days (before `now`).
/// A snapshot is kept when any rule keeps it, and the newest of each group is always kept. With no rule at all
/// nothing is forgotten.
public struct Retention: Sendable {
    /// What a snapshot is judged by.
    public struct Candidate: Sendable, Equatable {
        public var id: String
        public var time: Date
        public var host: String
        public var paths: [String]
        public var tags: [String]

        public init(id: String, time: Date, host: String, paths: [String], tags: [String]) {
            self.id = id
            self.time = time
            self.host = host
            self.paths = paths
            self.tags = tags
        }
    }

    /// What snapshots are grouped by (restic's `--group-by`).
    public struct Grouping: OptionSet, Sendable, Hashable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let host = Grouping(rawValue: 1)
        public static let paths = Grouping(rawValue: 2)
        public static let tags = Grouping(rawValue: 4)

        /// Parses `host,paths` (any of host, paths, tags; empty: one group for all).
        public init?(_ text: String) {
            self = []
            for part in text.split(separator: ",") {
                switch part.trimmingCharacters(in: .whitespaces) {
                case "host": insert(.host)
                case "paths": insert(.paths)
                case "tags": insert(.tags)
                default: return nil
                }
            }
        }
    }

    /// One snapshot's fate.
    public struct Decision: Sendable, Equatable {
        public var snapshot: Candidate
        /// The group's name, e.g. `host web1, paths [/etc]`.
        public var group: String
        /// Why it is kept (the rules that keep it); empty when it is forgotten.
        public var reasons: [String]
        public var isKept: Bool { !reasons.isEmpty }
    }

    public var policy: RetentionPolicy
    public var retentionDays: Int?
    public var grouping: Grouping
    public var calendar: Calendar

    /// A retention of `policy` and `retentionDays`, by `grouping`, with buckets in `calendar` (default: ISO 8601
    /// weeks in the machine's time zone).
    public init(
        policy: RetentionPolicy,
        retentionDays: Int? = nil,
        grouping: Grouping = [.host, .paths],
        calendar: Calendar? = nil
    ) {
        self.policy = policy
        self.retentionDays = retentionDays
        self.grouping = grouping
        self.calendar =
            calendar
            ?? {
                var c = Calendar(identifier: .iso8601)
                c.timeZone = .current
                return c
            }()
    }

    /// Whether any rule is set (without one, nothing is forgotten).
    public var hasRules: Bool { !policy.isEmpty || retentionDays != nil }

    /// The decisions for `snapshots` at time `now`, groups in order of their names, newest first in each.
    public func decide(_ snapshots: [Candidate], now: Date) -> [Decision] {
        var groups = [String: [Candidate]]()
        for s in snapshots { groups[groupName(s), default: []].append(s) }
        var out = [Decision]()
        for name in groups.keys.sorted() {
            // Newest first; equal times in id order, so the result never depends on the listing's order.
            let members = groups[name]!.sorted { ($0.time, $1.id) > ($1.time, $0.id) }
            out += decideGroup(members, name: name, now: now)
        }
        return out
    }

    private func groupName(_ s: Candidate) -> String {
        var parts = [String]()
        if grouping.contains(.host) { parts.append("host \(s.host)") }
        if grouping.contains(.paths) { parts.append("paths [\(s.paths.sorted().joined(separator: ", "))]") }
        if grouping.contains(.tags) { parts.append("tags [\(s.tags.sorted().joined(separator: ", "))]") }
        return parts.isEmpty ? "all snapshots" : parts.joined(separator: ", ")
    }

    /// A calendar bucket rule: its name, count and the key of a time's bucket.
    private typealias Bucket = (name: String, count: Int, key: (Date) -> [Int])

    private func decideGroup(_ members: [Candidate], name: String, now: Date) -> [Decision] {
        guard hasRules else {
            return members.map { Decision(snapshot: $0, group: name, reasons: ["no retention rule is set"]) }
        }
        let c = calendar
        let rules: [Bucket] = [
            (
                "hourly", policy.keepHourly ?? 0,
                {
                    let d = c.dateComponents([.year, .month, .day, .hour], from: $0)
                    return [d.year!, d.month!, d.day!, d.hour!]
                }
            ),
            (
                "daily", policy.keepDaily ?? 0,
                {
                    let d = c.dateComponents([.year, .month, .day], from: $0)
                    return [d.year!, d.month!, d.day!]
                }
            ),
            (
                "weekly", policy.keepWeekly ?? 0,
                {
                    let d = c.dateComponents([.yearForWeekOfYear, .weekOfYear], from: $0)
                    return [d.yearForWeekOfYear!, d.weekOfYear!]
                }
            ),
            (
                "monthly", policy.keepMonthly ?? 0,
                {
                    let d = c.dateComponents([.year, .month], from: $0)
                    return [d.year!, d.month!]
                }
            ),
            ("yearly", policy.keepYearly ?? 0, { [c.component(.year, from: $0)] }),
        ]
        var used = Array(repeating: 0, count: rules.count)
        var lastKey = Array(repeating: [Int]?.none, count: rules.count)
        let within: Date? = policy.keepWithin.flatMap { span in
            members.first.flatMap {
                c.date(
                    byAdding: DateComponents(
                        year: -span.years,
                        month: -span.months,
                        day: -span.days,
                        hour: -span.hours
                    ),
                    to: $0.time
                )
            }
        }
        let youngest: Date? = retentionDays.map { now.addingTimeInterval(-Double($0) * 86_400) }
        var out = [Decision]()
        for (i, s) in members.enumerated() {
            var reasons = [String]()
            if i == 0 { reasons.append("newest of its group") }
            if let n = policy.keepLast, i < n { reasons.append("last \(n)") }
            for (r, rule) in rules.enumerated() where used[r] < rule.count {
                let key = rule.key(s.time)
                if key != lastKey[r] {
                    lastKey[r] = key
                    used[r] += 1
                    reasons.append("\(rule.name) \(used[r])/\(rule.count)")
                }
            }
            if let within, s.time >= within, let span = policy.keepWithin { reasons.append("within \(span)") }
            let tags = s.tags.filter { policy.keepTags.contains($0) }
            if !tags.isEmpty { reasons.append("tag " + tags.joined(separator: ", ")) }
            if let youngest, s.time >= youngest, let days = retentionDays {
                reasons.append("younger than \(days) days")
            }
            out.append(Decision(snapshot: s, group: name, reasons: reasons))
        }
        return out
    }
}
