import ArgumentParser
import Foundation
import PolyadFileSystem
import PolyadRepository
import PolyadService

/// `polyad key list|add|remove|passwd`: key slots; changing a passphrase re-encrypts nothing.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Manage the store's key slots (passphrases).",
        discussion: """
            A new passphrase is read from --new-password-file, $POLYAD_NEW_PASSWORD, or the terminal (twice).
            """,
        subcommands: [List.self, Add.self, Remove.self, Passwd.self]
    )

    /// Reads the new passphrase. The bytes it returns belong to the caller, who wipes them (`KeyRing.wipe`) after
    /// use; the `String`s it passes through (`$POLYAD_NEW_PASSWORD`, the terminal line) cannot be wiped in Swift.
    struct NewPassphrase: ParsableArguments {
        @Option(name: .customLong("new-password-file"), help: "Read the new passphrase from this file.")
        var file: String?

        func read() throws -> [UInt8] {
            if let file {
                guard !file.isEmpty else {
                    throw CommandFailure(
                        code: .usage,
                        message: "--new-password-file is empty; give the file holding the new passphrase"
                    )
                }
                var bytes: [UInt8]
                do {
                    // Read as a stream: `--new-password-file <(pass show polyad)` is a pipe.
                    bytes = try FileSystem.contents(of: PathText.bytes(file), limit: 64 * 1024)
                } catch {
                    throw CommandFailure(
                        code: .usage,
                        message: "cannot read \(PathText.display(file)): \(error.reason)"
                    )
                }
                while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
                guard !bytes.isEmpty else {
                    throw CommandFailure(code: .usage, message: "\(PathText.display(file)) holds an empty passphrase")
                }
                return bytes
            }
            if let env = ProcessInfo.processInfo.environment["POLYAD_NEW_PASSWORD"], !env.isEmpty {
                return Array(env.utf8)
            }
            guard Terminal.isInteractive else {
                throw CommandFailure(
                    code: .usage,
                    message: "give the new passphrase with --new-password-file or $POLYAD_NEW_PASSWORD"
                )
            }
            return Array(try Terminal.readPassphrase(prompt: "New passphrase: ", confirm: true).utf8)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List key slots.",
            discussion: """
                "Last used (here)" is when the slot last opened the store on this machine (to within a minute), \
                from this machine's state: the store is not written when a key is used. "never" when it has not \
                opened the store here.
                """
        )
        @OptionGroup var global: GlobalOptions

        @Flag(name: .long, help: "Print JSON (a list of key slot objects; label and last_used are null when unset).")
        var json = false

        func run() throws {
            let keys = try global.manager().keys()
            if json {
                try Terminal.printJSON(keys)
                return
            }
            Terminal.table(
                [" ", "ID", "Label", "Created (UTC)", "Last used (here, UTC)", "Host", "User", "KDF"],
                keys.map { k in
                    [
                        k.inUse ? "*" : " ", String(k.id.prefix(8)), k.label.map(Self.shown) ?? "",
                        Self.time(k.created), k.lastUsed.map(Self.time) ?? "never",
                        k.hostname, k.username, "\(k.kdf) N=\(k.n) r=\(k.r) p=\(k.p)",
                    ]
                }
            )
        }

        /// `2026-11-25 02:03:56` from an ISO 8601 time.
        static func time(_ iso: String) -> String {
            String(iso.replacingOccurrences(of: "T", with: " ").prefix(19))
        }

        /// A label as a table cell: polyad writes none with control characters, but another writer might.
        static func shown(_ label: String) -> String {
            String(
                String.UnicodeScalarView(
                    label.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : $0 }
                )
            )
        }
    }

    /// `--label`, for `key add` and `init`.
    struct Label: ParsableArguments {
        @Option(
            name: .long,
            help: ArgumentHelp(
                "A label for the new key slot: who or what it is for (at most 200 bytes, no control characters).",
                valueName: "text"
            )
        )
        var label: String?

        /// The label, refused (exit 2) before anything is opened or written if it cannot label a slot.
        func checked() throws -> String? {
            try KeyRing.checkLabel(label)
            return label
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a key slot for a new passphrase.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var new: NewPassphrase
        @OptionGroup var label: Label

        func run() throws {
            let label = try label.checked()
            let repo = try global.manager().repository()
            var passphrase = try new.read()
            defer { KeyRing.wipe(&passphrase) }  // the bytes this command owns; see NewPassphrase for the rest
            let id = try repo.addKey(passphrase: passphrase, label: label)
            print("Added key \(id.prefix(8))")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a key slot (not the one in use).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The key id (or a unique prefix).") var id: String

        func run() throws {
            let repo = try global.manager().repository()
            let removed = try repo.removeKey(id)
            print("Removed key \(removed.prefix(8))")
        }
    }

    struct Passwd: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change the passphrase of the key slot in use.",
            discussion: "Update encryption_key / encryption_key_file / POLYAD_PASSWORD afterwards."
        )
        @OptionGroup var global: GlobalOptions
        @OptionGroup var new: NewPassphrase

        func run() throws {
            let repo = try global.manager().repository()
            var passphrase = try new.read()
            defer { KeyRing.wipe(&passphrase) }
            let id = try repo.changePassphrase(to: passphrase)
            print(
                "Changed the passphrase: key \(repo.key.slot.prefix(8)) replaced by \(id.prefix(8)); remember to update the config's passphrase source"
            )
        }
    }
}
