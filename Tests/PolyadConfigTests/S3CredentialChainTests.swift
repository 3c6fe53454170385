import Foundation
import Glibc
import PolyadConfig
import PolyadTestSupport
import XCTest

/// Where the S3 access key comes from: mount.conf, then the AWS_* variables, then ~/.aws/credentials with
/// AWS_PROFILE, as the AWS tools look; half a key, a credentials file others can read, or a missing profile is
/// a clear error, and no message shows a secret.
final class S3CredentialChainTests: XCTestCase {
    private var temporary: TemporaryFolder!
    private var home: String { temporary.path }

    override func setUpWithError() throws {
        temporary = try TemporaryFolder(prefix: "polyad-s3-credentials")
        try FileManager.default.createDirectory(atPath: home + "/.aws", withIntermediateDirectories: true)
    }

    override func tearDown() {
        temporary.remove()
    }

    private func config(_ s3: String = "") throws -> Configuration {
        try Configuration.parse(
            "backup:\n  s3_bucket: \"bkt\"\ns3:\n  region: \"eu-west-3\"\n" + s3,
            file: home + "/mount.conf"
        )
    }

    private func credentials(_ text: String, mode: mode_t = 0o600, name: String = ".aws/credentials") throws {
        let path = home + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(chmod(path, mode), 0)
    }

    private let file = """
        # keys
        [default]
        aws_access_key_id = AKIADEFAULT
        aws_secret_access_key = default-secret

        [backup]
        ; the backup user
        aws_access_key_id=AKIABACKUP
          aws_secret_access_key =  backup-secret
        aws_session_token = backup-token
        """

    func testTheFileWinsThenTheEnvironmentThenTheCredentialsFile() throws {
        try credentials(file)
        let env = ["HOME": home, "AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env-secret"]
        let inConf = try config("  access_key_id: \"AKIACONF\"\n  secret_access_key: \"conf-secret\"\n")
        XCTAssertEqual(try inConf.s3AccessKey(environment: env).accessKeyID, "AKIACONF")
        XCTAssertEqual(try inConf.s3AccessKey(environment: env).source, "mount.conf")
        let fromEnv = try config().s3AccessKey(environment: env.merging(["AWS_SESSION_TOKEN": "t"]) { $1 })
        XCTAssertEqual(
            fromEnv,
            AWSAccessKey(
                accessKeyID: "AKIAENV",
                secretAccessKey: "env-secret",
                sessionToken: "t",
                source: "the environment"
            )
        )
        let fromFile = try config().s3AccessKey(environment: ["HOME": home])
        XCTAssertEqual(fromFile.accessKeyID, "AKIADEFAULT")
        XCTAssertEqual(fromFile.secretAccessKey, "default-secret")
        XCTAssertNil(fromFile.sessionToken)
        let profile = try config().s3AccessKey(environment: ["HOME": home, "AWS_PROFILE": "backup"])
        XCTAssertEqual(profile.accessKeyID, "AKIABACKUP")
        XCTAssertEqual(profile.secretAccessKey, "backup-secret")
        XCTAssertEqual(profile.sessionToken, "backup-token")
        // AWS_SHARED_CREDENTIALS_FILE names another file.
        try credentials("[default]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = s\n", name: "other")
        let other = try config().s3AccessKey(environment: [
            "HOME": home, "AWS_SHARED_CREDENTIALS_FILE": home + "/other",
        ])
        XCTAssertEqual(other.accessKeyID, "AKIAOTHER")
    }

    private func assertRefused(
        _ config: Configuration,
        _ environment: [String: String],
        contains: String,
        line: UInt = #line
    ) {
        XCTAssertThrowsError(try config.s3AccessKey(environment: environment), line: line) { error in
            let e = error as! ConfigError
            XCTAssertTrue(e.message.contains(contains), "expected '\(contains)' in: \(e)", line: line)
            XCTAssertEqual(e.exitCode, 2, line: line)
            for secret in ["conf-secret", "env-secret", "default-secret", "backup-secret"] {
                XCTAssertFalse("\(e)".contains(secret), "a secret in: \(e)", line: line)
            }
        }
    }

    func testHalfAKeyAnOpenFileAMissingProfileOrNoKeyAtAllAreRefusedClearly() throws {
        assertRefused(try config("  access_key_id: \"AKIACONF\"\n"), [:], contains: "s3.secret_access_key is not")
        assertRefused(try config("  secret_access_key: \"conf-secret\"\n"), [:], contains: "s3.access_key_id is not")
        assertRefused(try config(), ["AWS_ACCESS_KEY_ID": "AKIAENV"], contains: "AWS_SECRET_ACCESS_KEY is not")
        assertRefused(try config(), ["AWS_SECRET_ACCESS_KEY": "env-secret"], contains: "AWS_ACCESS_KEY_ID is not")
        assertRefused(try config(), ["HOME": home], contains: "no S3 access key")
        try credentials(file, mode: 0o644)
        assertRefused(try config(), ["HOME": home], contains: "chmod 600 \(home)/.aws/credentials")
        try credentials(file)
        assertRefused(try config(), ["HOME": home, "AWS_PROFILE": "nope"], contains: "has no [nope] profile")
        try credentials("[default]\naws_access_key_id = AKIAHALF\n")
        assertRefused(try config(), ["HOME": home], contains: "needs both aws_access_key_id and aws_secret_access_key")
        try credentials("[default\naws_access_key_id = x\n")
        assertRefused(try config(), ["HOME": home], contains: "must end with `]`")
    }

    func testTheKeyNeverPrintsItsSecret() {
        let key = AWSAccessKey(accessKeyID: "AKID", secretAccessKey: "hush", sessionToken: "shh", source: "x")
        XCTAssertFalse("\(key)".contains("hush"))
        XCTAssertFalse("\(key)".contains("shh"))
        XCTAssertFalse(String(reflecting: key).contains("hush"))
    }
}
