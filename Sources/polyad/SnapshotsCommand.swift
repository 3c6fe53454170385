import ArgumentParser
import PolyadRepository

/// `polyad snapshots`: the store's history.
struct SnapshotsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "snapshots", abstract: "List snapshots, oldest first.")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .long, help: "Print JSON (a list of snapshot objects).")
    var json = false

    @Option(name: .long, help: "Only snapshots with this tag (repeatable: any of them).")
    var tag: [String] = []

    @Option(name: .long, help: "Only snapshots of this host.")
    var host: String?

    func run() throws {
        let list = try global.manager().snapshots().filter { s in
            (tag.isEmpty || !Set(tag).isDisjoint(with: s.tags)) && (host == nil || s.hostname == host)
        }
        if json {
            try Terminal.printJSON(list)
            return
        }
        Terminal.table(
            ["ID", "Time (UTC)", "Host", "User", "Tags", "Files", "Size", "Stored", "Paths"],
            list.map { s in
                let local = s.time.replacingOccurrences(of: "T", with: " ").prefix(19)
                return [
                    s.shortID, String(local), s.hostname, "\(s.username) (\(s.uid))", s.tags.joined(separator: ","),
                    "\(s.files)",
                    Terminal.bytes(s.logicalBytes), Terminal.bytes(s.storedBytes), s.paths.joined(separator: ", "),
                ]
            }
        )
        print("\(list.count) snapshot\(list.count == 1 ? "" : "s")")
    }
}
