import Foundation
import PolyadConfig
import PolyadMirror
import PolyadRepository
import PolyadS3
import PolyadStorage

/// Makes the store's backend from mount.conf, the one place that decides where a store lives: `local_dir` alone
/// is a local folder, `s3_bucket` alone an S3 bucket, and both a mirror of the two.
public enum BackendFactory {
    /// The backend `configuration` names.
    ///
    /// - Parameters:
    ///   - environment: where the S3 credentials (`AWS_*`) and region are looked up.
    ///   - log: hears of S3 retries and of mirror repairs and fallbacks (never a secret).
    /// - Throws: ``RepositoryError`` (invalid argument, exit 2) when the config names no usable store or no S3
    ///   credentials.
    public static func backend(
        for configuration: Configuration,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        log: @escaping @Sendable (String) -> Void = {
            FileHandle.standardError.write(Data(("polyad: " + $0 + "\n").utf8))
        }
    ) throws(RepositoryError) -> any Backend {
        let local = configuration.localDirectory.map { LocalBackend(path: $0) }
        let s3 = try configuration.s3Bucket.map { bucket throws(RepositoryError) in
            try s3Backend(configuration, bucket: bucket, environment: environment, log: log)
        }
        switch (local, s3) {
        case (let local?, let s3?):
            let l = MirrorTarget(name: "local", backend: local)
            let r = MirrorTarget(name: "s3", backend: s3)
            return MirrorBackend(
                targets: configuration.mirror.prefer == .local ? [l, r] : [r, l],
                requireAll: configuration.mirror.requireAll,
                log: log
            )
        case (let local?, nil): return local
        case (nil, let s3?): return s3
        case (nil, nil):
            throw RepositoryError(
                .invalidArgument,
                "\(configuration.file): set backup.local_dir (a folder) and/or backup.s3_bucket (an S3 bucket)"
            )
        }
    }

    /// The S3 backend of `bucket` as the `s3:` section describes it.
    public static func s3Backend(
        _ configuration: Configuration,
        bucket: String,
        environment: [String: String],
        log: @escaping @Sendable (String) -> Void
    ) throws(RepositoryError) -> S3Backend {
        let settings = configuration.s3
        let key: AWSAccessKey
        do { key = try configuration.s3AccessKey(environment: environment) } catch {
            throw RepositoryError(.invalidArgument, "\(error)", cause: error)
        }
        let region = settings.region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        let endpoint = S3Endpoint(
            url: settings.endpoint ?? "https://s3.\(region).amazonaws.com",
            region: region,
            bucket: bucket,
            pathStyle: settings.pathStyle
        )
        let client = S3Client(
            endpoint: endpoint,
            credentials: S3Credentials(
                accessKeyID: key.accessKeyID,
                secretAccessKey: key.secretAccessKey,
                sessionToken: key.sessionToken
            ),
            timeout: settings.timeoutSeconds
        )
        return S3Backend(
            client: client,
            prefix: settings.prefix ?? "",
            policy: S3RetryPolicy(totalSeconds: Double(settings.retrySeconds)),
            multipartThreshold: settings.multipartMiB << 20,
            log: log
        )
    }
}
