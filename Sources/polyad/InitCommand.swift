import ArgumentParser
import Foundation
import PolyadConfig
import PolyadCrypto
import PolyadFileSystem
import PolyadRepository
import PolyadService

/// `polyad init`: creates the store that mount.conf describes.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the store described by the config file.",
        discussion: """
            With backup.encryption_key_file pointing at a file that does not exist yet, a random passphrase is \
            generated and written there (mode 0600). Otherwise the passphrase comes from the config, \
            $POLYAD_PASSWORD or a prompt.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(name: .customLong("create-bucket"), help: "Create backup.s3_bucket first if it does not exist.")
    var createBucket = false

    @OptionGroup var label: KeyCommand.Label

    func run() throws {
        let label = try label.checked()  // before anything is created
        let configuration = try global.loadConfiguration()
        if createBucket {
            guard let bucket = configuration.s3Bucket else {
                throw CommandFailure(code: .usage, message: "--create-bucket needs backup.s3_bucket in the config file")
            }
            let s3 = try BackendFactory.s3Backend(
                configuration,
                bucket: bucket,
                environment: ProcessInfo.processInfo.environment,
                log: { Terminal.error($0) }
            )
            do { try s3.createBucket() } catch { throw RepositoryError.storage(error) }
        }
        var passphrase: [UInt8]
        var createdKeyFile: String?
        if case .file(let path) = configuration.passphraseSource, !FileSystem.exists(PathText.bytes(path)) {
            try configuration.checkKeyFileFolder()
            // 32 random bytes as base64: a passphrase nobody has to invent.
            let secret = Data(SecureRandom.bytes(32)).base64EncodedString()
            let file = PathText.bytes(path)
            let fd: Int32
            do {
                fd = try FileSystem.createExclusive(file, mode: 0o600)
            } catch {
                throw CommandFailure(
                    code: .fatal,
                    message: "cannot create the key file \(PathText.display(path)): \(error.reason)"
                )
            }
            let bytes = Array((secret + "\n").utf8)
            do {
                try FileSystem.writeAll(fd, bytes: bytes)
                try FileSystem.fsync(fd)
                FileSystem.close(fd)
            } catch {
                FileSystem.close(fd)
                try? FileSystem.unlink(file)
                throw CommandFailure(
                    code: .fatal,
                    message: "cannot write the key file \(PathText.display(path)): \(error.reason)"
                )
            }
            passphrase = Array(secret.utf8)
            createdKeyFile = path
        } else {
            let env = try global.environment(for: configuration, confirm: true)
            passphrase = try configuration.passphrase(environment: env)
        }
        let manager = BackupManager(config: configuration)
        do {
            let repo = try manager.initialize(passphrase: passphrase, label: label)
            print("Created store \(repo.config.id.prefix(8)) at \(PathText.display(repo.backend.location))")
        } catch {
            if let createdKeyFile { try? FileSystem.unlink(PathText.bytes(createdKeyFile)) }
            throw error
        }
        // The bytes this command owns; the base64 `secret` String and the config's copies cannot be wiped.
        KeyRing.wipe(&passphrase)
        if let createdKeyFile {
            print(
                """
                The store's passphrase was generated and written to \(PathText.display(createdKeyFile)) (mode 0600).
                Keep a copy of that file somewhere safe, away from this machine: without it the backups cannot be read.
                """
            )
        } else {
            print("Keep the passphrase safe: without it the backups cannot be read.")
        }
    }
}
