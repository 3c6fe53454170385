import PolyadFileSystem
import PolyadStorage

#if canImport(Glibc)
import Glibc
#endif

/// An error that carries its own exit code: a layer above this one (the CLI's `CommandFailure`) declares
/// the code it chose, and ``ExitCode/init(for:)`` takes it as it is.
public protocol ExitCodeCarrying: Error {
    var exitCode: ExitCode { get }
}

extension RepositoryError {
    /// The process exit code for this error: its part of the table that ``ExitCode/init(for:)`` in the service
    /// layer applies to every error.
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
}
