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
        static let configuration = CommandConfiguration(abstract: "List key slots.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let repo = try global.manager().repository()
            let keys = try repo.keys()
            Terminal.table(
                [" ", "ID", "Created (UTC)", "Host", "User", "KDF"],
                keys.map { k in
                    [
                        k.id == repo.key.slot ? "*" : " ", String(k.id.prefix(8)),
                        String(TimeFormat.iso8601(k.slot.created).replacingOccurrences(of: "T", with: " ").prefix(19)),
                        k.slot.hostname, k.slot.username, "scrypt N=\(k.slot.n) r=\(k.slot.r) p=\(k.slot.p)",
                    ]
                }
            )
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a key slot for a new passphrase.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var new: NewPassphrase

        func run() throws {
            let repo = try global.manager().repository()
            let id = try repo.addKey(passphrase: try new.read())
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
            let id = try repo.changePassphrase(to: try new.read())
            print(
                "Changed the passphrase: key \(repo.key.slot.prefix(8)) replaced by \(id.prefix(8)); remember to update the config's passphrase source"
            )
        }
    }
}
