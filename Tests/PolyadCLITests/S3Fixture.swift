import Foundation
import PolyadTestSupport
import XCTest

extension CLIFixture {
    /// A fixture whose store is `bucket` on `server` under the prefix `host-a/`: S3 only, or with `local` a
    /// mirror of the folder `store` and the bucket.
    static func s3(
        _ server: S3TestServer,
        bucket: String,
        local: Bool,
        endpoint: String? = nil,
        extra: String = ""
    ) throws -> CLIFixture {
        let cli = try CLIFixture()
        cli.configureS3(server, bucket: bucket, local: local, endpoint: endpoint, extra: extra)
        return cli
    }

    /// Rewrites the config for `bucket` on `server` (reached through `endpoint`, default the server itself):
    /// `backupLines` go under `backup:`, `extra` under `s3:` and after it (further sections). The server's
    /// access key goes into the environment.
    func configureS3(
        _ server: S3TestServer,
        bucket: String,
        local: Bool,
        endpoint: String? = nil,
        backupLines: String = "",
        extra: String = ""
    ) {
        writeConfig(
            backupLines + "s3:\n  endpoint: \"\(endpoint ?? server.url)\"\n  region: us-east-1\n  path_style: true\n"
                + "  prefix: \"host-a/\"\n" + extra,
            storeLine: (local ? "  local_dir: \"store\"\n" : "") + "  s3_bucket: \"\(bucket)\"\n"
        )
        environment["AWS_ACCESS_KEY_ID"] = server.credentials.accessKeyID
        environment["AWS_SECRET_ACCESS_KEY"] = server.credentials.secretAccessKey
    }

    /// A small tree under `<root>/src` with a file big enough for several chunks.
    func makeSmallTree() throws -> String {
        let source = root + "/src"
        try FileManager.default.createDirectory(atPath: source + "/sub", withIntermediateDirectories: true)
        try Data(pseudoRandomBytes(3 << 20, seed: 9)).write(to: URL(fileURLWithPath: source + "/big.bin"))
        try Data("secret-note-contents\n".utf8).write(to: URL(fileURLWithPath: source + "/sub/note.txt"))
        return source
    }
}

/// The files of `makeSmallTree()` are the same under `a` and `b`.
func assertSameSmallTree(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) {
    for name in ["big.bin", "sub/note.txt"] {
        XCTAssertEqual(
            FileManager.default.contents(atPath: a + "/" + name),
            FileManager.default.contents(atPath: b + "/" + name),
            name,
            file: file,
            line: line
        )
    }
}
