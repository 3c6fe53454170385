import PolyadCrypto
import PolyadFileSystem
import PolyadFormat
import PolyadStorage

/// An error from the repository layer, with a message a user can act on, the error behind it, and the exit
/// code it maps to.
public struct RepositoryError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Equatable {
        case storeMissing, storeExists, wrongPassphrase, locked, damaged, noSpace, unreachable, io
        case invalidArgument, notFound, interrupted, partial
    }

    public var code: Code
    public var message: String
    /// The lower-level error this one reports (a `StorageError`, a `SystemError`), if any: callers that must
    /// tell causes apart (an object gone versus one that does not read) look here, not at the message.
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }

    /// Wraps a storage error.
    public static func storage(_ e: StorageError) -> RepositoryError {
        switch e.code {
        case .noSpace:
            RepositoryError(
                .noSpace,
                "\(e) — free some space on the store's disk and run the command again",
                cause: e
            )
        case .unreachable: RepositoryError(.unreachable, "\(e)", cause: e)
        case .misconfigured: RepositoryError(.invalidArgument, "\(e)", cause: e)
        case .damaged: RepositoryError(.damaged, "\(e)", cause: e)
        case .notFound:
            RepositoryError(
                .damaged,
                "\(e) — the store is missing an object it references; run `polyad verify`",
                cause: e
            )
        default: RepositoryError(.io, "\(e)", cause: e)
        }
    }

    static func damaged(_ what: String, _ detail: String) -> RepositoryError {
        RepositoryError(.damaged, "damaged object \(what): \(detail); run `polyad verify` to see what it affects")
    }

    /// Wraps a system error.
    public static func system(_ e: SystemError) -> RepositoryError {
        if e.errno == ENOSPC || e.errno == EDQUOT {
            return RepositoryError(.noSpace, "\(e) — free some space and run the command again", cause: e)
        }
        return RepositoryError(.io, "\(e)", cause: e)
    }
}

#if canImport(Glibc)
import Glibc
#endif
