import ArgumentParser
import PolyadFormat
import PolyadService

/// `polyad unlock`: removes the locks of processes that are gone.
struct UnlockCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unlock",
        abstract: "Remove stale locks: those of processes on this host that are gone.",
        discussion: """
            A lock names its holder's host, process id and start time. One of this host whose process no longer \
            exists (or whose process id now belongs to a later process, or to an earlier boot) is removed. A lock \
            of a live process, or of a process on another host, is never removed: it is listed.
            """
    )

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let cleanup = try global.manager().repository().removeStaleLocks()
        func describe(_ r: LockRecord) -> String {
            "\(r.exclusive ? "exclusive" : "shared") lock of \(r.operation) (pid \(r.pid) on \(r.hostname), "
                + "taken \(TimeFormat.local(r.time)))"
        }
        if !global.quiet {
            for r in cleanup.removed { print("removed: \(describe(r)): its process is gone") }
            for r in cleanup.kept { print("kept: \(describe(r))") }
            for name in cleanup.damaged { print("left in place: \(name) is damaged and names no holder") }
        }
        print(
            cleanup.removed.isEmpty
                ? "No stale locks"
                : "Removed \(cleanup.removed.count) stale lock\(cleanup.removed.count == 1 ? "" : "s")"
        )
    }
}
