import Foundation
import PolyadConfig
import PolyadService
import XCTest

/// Retention on a fixed clock, in UTC: every rule alone, their union, and the ties restic documents (equal
/// times, several snapshots a day, a group with only old snapshots).
final class RetentionTests: XCTestCase {
    private static let utc: Calendar = {
        var c = Calendar(identifier: .iso8601)
        c.timeZone = TimeZone(identifier: "UTC")!
        return c
    }()

    /// `2026-MM-DD HH:MM` in UTC.
    private func at(_ text: String) -> Date {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm"
        return f.date(from: text)!
    }

    private func snap(
        _ id: String,
        _ time: String,
        host: String = "h",
        paths: [String] = ["/etc"],
        tags: [String] = []
    )
        -> Retention.Candidate
    {
        Retention.Candidate(id: id, time: at(time), host: host, paths: paths, tags: tags)
    }

    private func kept(
        _ policy: RetentionPolicy,
        days: Int? = nil,
        grouping: Retention.Grouping = [.host, .paths],
        _ snapshots: [Retention.Candidate],
        now: String = "2026-12-31 00:00"
    ) -> [String] {
        Retention(policy: policy, retentionDays: days, grouping: grouping, calendar: Self.utc)
            .decide(snapshots, now: at(now)).filter(\.isKept).map(\.snapshot.id).sorted()
    }

    private let week = [
        "2026-06-01 10:00", "2026-06-01 18:00", "2026-06-02 09:00", "2026-06-03 12:00", "2026-06-04 08:00",
        "2026-06-05 23:59", "2026-06-06 00:01", "2026-06-07 12:00", "2026-06-08 12:00",
    ]

    private var weekSnapshots: [Retention.Candidate] { week.enumerated().map { snap("s\($0.offset)", $0.element) } }

    func testNoRuleForgetsNothing() {
        XCTAssertEqual(kept(RetentionPolicy(), weekSnapshots).count, week.count)
    }

    func testKeepLast() {
        XCTAssertEqual(kept(RetentionPolicy(keepLast: 3), weekSnapshots), ["s6", "s7", "s8"])
    }

    func testKeepDailyKeepsTheNewestOfEachDay() {
        // June 1 has two snapshots: its newest (18:00, s1) counts for the day.
        XCTAssertEqual(
            kept(RetentionPolicy(keepDaily: 20), weekSnapshots),
            ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"]
        )
        XCTAssertEqual(kept(RetentionPolicy(keepDaily: 2), weekSnapshots), ["s7", "s8"])
    }

    func testKeepHourly() {
        let s = [snap("a", "2026-06-01 10:05"), snap("b", "2026-06-01 10:55"), snap("c", "2026-06-01 11:10")]
        XCTAssertEqual(kept(RetentionPolicy(keepHourly: 5), s), ["b", "c"])
    }

    func testKeepWeeklyUsesISOWeeks() {
        // 2026-06-01 is a Monday: June 1-7 is one ISO week, June 8 the next.
        XCTAssertEqual(kept(RetentionPolicy(keepWeekly: 5), weekSnapshots), ["s7", "s8"])
        let turn = [snap("sun", "2026-06-07 23:00"), snap("mon", "2026-06-08 01:00")]
        XCTAssertEqual(kept(RetentionPolicy(keepWeekly: 2), turn), ["mon", "sun"])
    }

    func testKeepMonthlyAndYearly() {
        let s = [
            snap("a", "2024-12-31 10:00"), snap("b", "2025-01-15 10:00"), snap("c", "2025-01-20 10:00"),
            snap("d", "2025-02-01 10:00"), snap("e", "2026-03-01 10:00"),
        ]
        XCTAssertEqual(kept(RetentionPolicy(keepMonthly: 3), s), ["c", "d", "e"])
        XCTAssertEqual(kept(RetentionPolicy(keepYearly: 3), s), ["a", "d", "e"])
        XCTAssertEqual(kept(RetentionPolicy(keepYearly: 1), s), ["e"])
    }

    func testKeepWithinCountsFromTheGroupsNewestSnapshotNotFromNow() {
        let span = RetentionSpan("2d")
        XCTAssertNotNil(span)
        // The newest is June 8 12:00: within 2 days reaches back to June 6 12:00.
        XCTAssertEqual(kept(RetentionPolicy(keepWithin: span), weekSnapshots), ["s7", "s8"])
        XCTAssertEqual(kept(RetentionPolicy(keepWithin: RetentionSpan("2d12h")), weekSnapshots), ["s6", "s7", "s8"])
    }

    func testKeepTags() {
        let s = [
            snap("a", "2026-06-01 10:00", tags: ["monthly"]), snap("b", "2026-06-02 10:00"),
            snap("c", "2026-06-03 10:00", tags: ["daily"]),
        ]
        XCTAssertEqual(kept(RetentionPolicy(keepTags: ["monthly"]), s), ["a", "c"], "c is the newest")
    }

    func testRetentionDaysAndAGroupWithOnlyOldSnapshots() {
        let s = [
            snap("old1", "2026-01-01 10:00", host: "gone"), snap("old2", "2026-02-01 10:00", host: "gone"),
            snap("new1", "2026-12-20 10:00", host: "live"), snap("new2", "2026-11-01 10:00", host: "live"),
        ]
        // 30 days before Dec 31: Dec 1. The old host keeps only its newest.
        XCTAssertEqual(kept(RetentionPolicy(), days: 30, s), ["new1", "old2"])
    }

    func testRulesAreAUnion() {
        let policy = RetentionPolicy(keepLast: 1, keepDaily: 2, keepWeekly: 2, keepTags: ["x"])
        let tagged = weekSnapshots.map { s in
            var s = s
            if s.id == "s0" { s.tags = ["x"] }
            return s
        }
        XCTAssertEqual(kept(policy, tagged), ["s0", "s7", "s8"])
        let decisions = Retention(policy: policy, calendar: Self.utc).decide(tagged, now: at("2026-12-31 00:00"))
        func reasons(_ id: String) -> [String] { decisions.first { $0.snapshot.id == id }!.reasons }
        XCTAssertEqual(reasons("s8"), ["newest of its group", "last 1", "daily 1/2", "weekly 1/2"])
        XCTAssertEqual(reasons("s7"), ["daily 2/2", "weekly 2/2"], "Sunday June 7 ends the ISO week before")
        XCTAssertEqual(reasons("s0"), ["tag x"])
        XCTAssertEqual(reasons("s6"), [], "forgotten: no rule keeps it")
    }

    func testEqualTimesAreJudgedTheSameWhateverTheListingOrder() {
        let s = [snap("b", "2026-06-01 10:00"), snap("a", "2026-06-01 10:00"), snap("c", "2026-05-01 10:00")]
        for order in [s, s.reversed(), [s[2], s[0], s[1]]] {
            XCTAssertEqual(kept(RetentionPolicy(keepLast: 1), order), ["a"], "equal times: the lower id is newer")
            XCTAssertEqual(kept(RetentionPolicy(keepDaily: 5), order), ["a", "c"])
        }
    }

    func testGroups() {
        let s = [
            snap("h1-etc", "2026-06-01 10:00", host: "h1"), snap("h1-etc2", "2026-06-02 10:00", host: "h1"),
            snap("h2-etc", "2026-06-01 10:00", host: "h2"),
            snap("h1-home", "2026-06-01 10:00", host: "h1", paths: ["/home"]),
        ]
        XCTAssertEqual(kept(RetentionPolicy(keepLast: 1), s), ["h1-etc2", "h1-home", "h2-etc"])
        XCTAssertEqual(kept(RetentionPolicy(keepLast: 1), grouping: [.host], s), ["h1-etc2", "h2-etc"])
        XCTAssertEqual(kept(RetentionPolicy(keepLast: 1), grouping: [], s), ["h1-etc2"])
        XCTAssertEqual(Retention.Grouping("host,paths"), [.host, .paths])
        XCTAssertNil(Retention.Grouping("hosts"))
    }

    func testSpans() {
        XCTAssertEqual(RetentionSpan("1y6m3d12h"), RetentionSpan(years: 1, months: 6, days: 3, hours: 12))
        XCTAssertEqual(RetentionSpan("30d")?.description, "30d")
        for bad in ["", "d", "3", "3w", "1d1y", "1d1d", "-1d", "1.5d"] { XCTAssertNil(RetentionSpan(bad), bad) }
    }
}
