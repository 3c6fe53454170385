import PolyadCrypto
import PolyadFileSystem
import PolyadFormat
import PolyadStorage

/// An error from the repository layer, with a message a user can act on and the exit code it maps to.
public struct RepositoryError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Equatable {
        case storeMissing, storeExists, wrongPassphrase, locked, damaged, noSpace, unreachable, io
        case invalidArgument, notFound, interrupted, partial
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// The process exit code for this error (DESIGN §6).
    public var exitCode: ExitCode {
        switch code {
        case .storeMissing: .storeMissing
        case .storeExists, .invalidArgument, .notFound: .usage
        case .wrongPassphrase: .wrongPassphrase
        case .locked: .storeLocked
        case .damaged: .integrity
        case .noSpace: .noSpace
        case .unreachable: .unreachable
        case .io: .fatal
        case .interrupted: .interrupted
        case .partial: .partial
        }
    }

    /// Wraps a storage error.
    static func storage(_ e: StorageError) -> RepositoryError {
        switch e.code {
        case .noSpace: RepositoryError(.noSpace, "\(e) — free some space on the store's disk and run the command again")
        case .unreachable: RepositoryError(.unreachable, "\(e)")
        case .damaged: RepositoryError(.damaged, "\(e)")
        case .notFound:
            RepositoryError(.damaged, "\(e) — the store is missing an object it references; run `polyad verify`")
        default: RepositoryError(.io, "\(e)")
        }
    }

    static func damaged(_ what: String, _ detail: String) -> RepositoryError {
        RepositoryError(.damaged, "damaged object \(what): \(detail); run `polyad verify` to see what it affects")
    }

    static func system(_ e: SystemError) -> RepositoryError {
        if e.errno == ENOSPC || e.errno == EDQUOT {
            return RepositoryError(.noSpace, "\(e) — free some space and run the command again")
        }
        return RepositoryError(.io, "\(e)")
    }
}

#if canImport(Glibc)
import Glibc
#endif
