import PolyadConfig
import PolyadFileSystem
import PolyadRepository
import PolyadStorage

extension ExitCode {
    /// The exit code for `error`: the one place that decides it (the table in README "Exit codes"). `polyad`'s
    /// `report` and `polyadfs`' startup failures both ask here, so one error gives one code everywhere.
    ///
    /// - A `RepositoryError` by its code; a bare `StorageError` or `SystemError` as the repository layer
    ///   would wrap it (no space 15, unreachable storage 14, a damaged or missing object 13, else 1).
    /// - A `ConfigError`, and any error of the command-line parser (swift-argument-parser), is 2. Help and
    ///   `--version` reach the CLI as parser errors too but are not failures: the CLI prints them and exits 0
    ///   before it asks here (the parser's `CleanExit` alone is recognised here as 0).
    /// - An ``ExitCodeCarrying`` error, its own code; `CancellationError` 130; anything else 1.
    public init(for error: any Error) {
        switch error {
        case let e as RepositoryError:
            self = e.exitCode
        case let e as StorageError:
            self = RepositoryError.storage(e).exitCode
        case let e as SystemError:
            self = RepositoryError.system(e).exitCode
        case is ConfigError:
            self = .usage
        case let e as any ExitCodeCarrying:
            self = e.exitCode
        case is CancellationError:
            self = .interrupted
        default:
            // The parser's errors (unknown option, failed validation) are not visible from this layer by
            // type (most are internal to swift-argument-parser); their module names them.
            let type = String(reflecting: Swift.type(of: error))
            if type == "ArgumentParser.CleanExit" {
                self = .success
            } else if type.hasPrefix("ArgumentParser.") {
                self = .usage
            } else {
                self = .fatal
            }
        }
    }
}
