import PolyadConfig
import PolyadRepository
import PolyadStorage

/// Makes the store's backend from mount.conf. One place decides where a store lives: a local folder today;
/// the S3 backend and the mirror of both plug in here.
public enum BackendFactory {
    /// The backend `configuration` names.
    ///
    /// - Throws: ``RepositoryError`` (invalid argument) when the config names no store this version can use.
    public static func backend(for configuration: Configuration) throws(RepositoryError) -> any Backend {
        guard let folder = configuration.localDirectory else {
            throw RepositoryError(
                .invalidArgument,
                "\(configuration.file): backup.local_dir is not set; this version stores backups in a local directory"
            )
        }
        return LocalBackend(path: folder)
    }
}
