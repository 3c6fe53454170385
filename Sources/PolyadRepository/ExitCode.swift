/// Process exit codes, as restic users know them (README, "Exit codes"). Numbers are never reused.
public enum ExitCode: Int32, Sendable {
    case success = 0
    case fatal = 1
    case usage = 2
    /// The backup was made, but some sources could not be read.
    case partial = 3
    case storeMissing = 10
    case storeLocked = 11
    case wrongPassphrase = 12
    case integrity = 13
    case unreachable = 14
    case noSpace = 15
    case interrupted = 130
}
