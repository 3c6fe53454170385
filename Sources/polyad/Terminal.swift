import Foundation
import PolyadFileSystem
import PolyadRepository

#if canImport(Glibc)
import Glibc
#endif

/// Standard error as a text stream.
struct FileHandleStream: TextOutputStream {
    static var standardError: FileHandleStream { FileHandleStream() }
    func write(_ string: String) {
        // Nothing sensible is left to do when standard error itself fails.
        try? FileSystem.writeAll(STDERR_FILENO, bytes: Array(string.utf8))
    }
}

/// Writes to standard error (unbuffered).
func printError(_ string: String) { FileHandleStream.standardError.write(string) }

/// Terminal input and output: messages, progress lines and passphrase prompts.
enum Terminal {
    static var isInteractive: Bool { isatty(0) != 0 }
    static var progressEnabled: Bool { isatty(2) != 0 }

    static func error(_ message: String) { printError("polyad: \(PathText.displayMessage(message))\n") }
    static func warning(_ message: String) { printError("polyad: warning: \(PathText.displayMessage(message))\n") }

    /// Overwrites the current terminal line on stderr.
    static func progress(_ line: String) {
        printError("\r\u{1b}[K\(line)")
    }

    static func clearProgress() {
        if progressEnabled {
            printError("\r\u{1b}[K")
        }
    }

    /// Reads a passphrase with echo off; with `confirm`, asks twice.
    static func readPassphrase(prompt: String = "Passphrase for the store: ", confirm: Bool) throws -> String {
        let first = try readHidden(prompt)
        if confirm {
            let second = try readHidden("Repeat the passphrase: ")
            guard first == second else {
                throw CommandFailure(code: .usage, message: "the passphrases differ; nothing was changed")
            }
        }
        guard !first.isEmpty else { throw CommandFailure(code: .usage, message: "an empty passphrase is not allowed") }
        return first
    }

    private static func readHidden(_ prompt: String) throws -> String {
        printError(prompt)
        var old = termios()
        let isTTY = tcgetattr(0, &old) == 0
        if isTTY {
            var quiet = old
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(0, TCSAFLUSH, &quiet)
        }
        defer {
            if isTTY {
                tcsetattr(0, TCSAFLUSH, &old)
                printError("\n")
            }
        }
        guard let line = readLine(strippingNewline: true) else {
            throw CommandFailure(code: .usage, message: "no passphrase given")
        }
        return line
    }

    /// Bytes for people: 1.2 GiB.
    static func bytes(_ n: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var v = Double(n)
        var i = 0
        while v >= 1024, i < units.count - 1 {
            v /= 1024
            i += 1
        }
        return i == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[i])
    }

    /// Seconds as m:ss or h:mm:ss.
    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600
            ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60)
            : String(format: "%d:%02d", t / 60, t % 60)
    }

    /// Prints rows as aligned columns.
    static func table(_ header: [String], _ rows: [[String]]) {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                // Padded by characters: `padding(toLength:)` counts UTF-16 units and cuts a cell with an emoji.
                i == cells.count - 1 ? c : c + String(repeating: " ", count: max(0, widths[i] - c.count))
            }
            .joined(separator: "  ")
        }
        print(line(header))
        print(String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1)))
        for r in rows { print(line(r)) }
    }

    /// JSON for `--json` output.
    static func printJSON(_ value: some Encodable) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try e.encode(value), as: UTF8.self))
    }
}

/// SIGINT/SIGTERM stop long work at the next safe point; a second signal exits at once with 130.
enum Interrupts {
    private static let queue = DispatchQueue(label: "polyad.signals")

    /// Installs the handlers; keep the returned sources alive while the work runs.
    static func install(_ cancellation: Cancellation) -> [any DispatchSourceSignal] {
        var sources = [any DispatchSourceSignal]()
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler {
                if cancellation.isCancelled { exit(130) }
                cancellation.cancel()
                printError("\npolyad: interrupted, stopping…\n")
            }
            source.resume()
            sources.append(source)
        }
        return sources
    }
}
