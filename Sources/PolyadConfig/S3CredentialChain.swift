import Glibc
import PolyadFileSystem

/// The access key an S3 store is reached with. Its description never shows the secret or the token.
public struct AWSAccessKey: Sendable, Equatable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// Where it came from, for messages: "mount.conf", "the environment" or "profile NAME of FILE".
    public var source: String

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, source: String) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.source = source
    }

    public var description: String {
        "AWSAccessKey(\(accessKeyID) from \(source), secret: <redacted>\(sessionToken == nil ? "" : ", token: <redacted>"))"
    }
}

extension Configuration {
    /// The S3 access key, from the first source that has one, as the AWS tools look:
    /// 1. `s3.access_key_id` and `s3.secret_access_key` in this file;
    /// 2. `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) in `environment`;
    /// 3. the profile `AWS_PROFILE` (default `default`) of `AWS_SHARED_CREDENTIALS_FILE`, else
    ///    `$HOME/.aws/credentials`, which must pass the trust rule and be open to nobody else (mode 0600).
    ///
    /// - Throws: ``ConfigError`` (exit code 2) naming what is missing and where to put it: half a key (an id
    ///   without its secret, or the reverse), a credentials file others can read, a profile that is not in the
    ///   file, or no key anywhere. No message contains a secret.
    public func s3AccessKey(environment: [String: String]) throws(ConfigError) -> AWSAccessKey {
        switch (s3.accessKeyID, s3.secretAccessKey) {
        case (let id?, let secret?):
            return AWSAccessKey(accessKeyID: id, secretAccessKey: secret, source: "mount.conf")
        case (_?, nil):
            throw ConfigError(
                file: file,
                key: "s3.secret_access_key",
                message: "s3.access_key_id is set but "
                    + "s3.secret_access_key is not: set both under `s3:`, or neither (then AWS_ACCESS_KEY_ID and "
                    + "AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials, are used)"
            )
        case (nil, _?):
            throw ConfigError(
                file: file,
                key: "s3.access_key_id",
                message: "s3.secret_access_key is set but "
                    + "s3.access_key_id is not: set both under `s3:`, or neither"
            )
        case (nil, nil):
            break
        }
        let id = environment["AWS_ACCESS_KEY_ID"].flatMap { $0.isEmpty ? nil : $0 }
        let secret = environment["AWS_SECRET_ACCESS_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        switch (id, secret) {
        case (let id?, let secret?):
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return AWSAccessKey(
                accessKeyID: id,
                secretAccessKey: secret,
                sessionToken: token,
                source: "the environment"
            )
        case (_?, nil):
            throw ConfigError(
                file: file,
                message: "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: "
                    + "set both, or unset AWS_ACCESS_KEY_ID"
            )
        case (nil, _?):
            throw ConfigError(
                file: file,
                message: "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: "
                    + "set both, or unset AWS_SECRET_ACCESS_KEY"
            )
        case (nil, nil):
            break
        }
        let profile = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        let path =
            environment["AWS_SHARED_CREDENTIALS_FILE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["HOME"].map { $0 + "/.aws/credentials" }
        guard let path, let key = try Self.profile(profile, in: path) else {
            throw ConfigError(
                file: file,
                message: "no S3 access key: set s3.access_key_id and s3.secret_access_key under `s3:` in this file, "
                    + "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write a [\(profile)] profile into "
                    + "\(path.map(PathText.display) ?? "~/.aws/credentials") (AWS_PROFILE picks another)"
            )
        }
        return key
    }

    /// The profile `name` of the credentials file at `path`; nil if the file does not exist.
    static func profile(_ name: String, in path: String) throws(ConfigError) -> AWSAccessKey? {
        let shown = PathText.display(path)
        let bytes: [UInt8]
        let mode: mode_t
        do {
            (bytes, mode) = try SmallFile.read(
                PathText.bytes(path),
                limit: maximumSecretSize,
                what: "the credentials file"
            )
        } catch {
            switch error {
            case .system(ENOENT), .system(ENOTDIR): return nil
            case .system(let code):
                throw ConfigError(file: path, message: "cannot read \(shown): \(String(cString: strerror(code)))")
            case .notRegularFile: throw ConfigError(file: path, message: "\(shown) is not a regular file")
            case .tooLarge: throw ConfigError(file: path, message: "\(shown) is larger than 64 KiB")
            case .untrusted(let message): throw ConfigError(file: path, message: message)
            }
        }
        guard mode & 0o077 == 0 else {
            throw ConfigError(
                file: path,
                message: "\(shown) holds secret keys and is open to group or others (mode \(octal(mode & 0o777))); "
                    + "run `chmod 600 \(shown)`"
            )
        }
        // INI: `[profile]` sections of `key = value` lines; `#` and `;` start comments.
        var section: String?
        var sectionLine = 0
        var values = [String: String]()
        for (number, raw) in String(decoding: bytes, as: UTF8.self).split(
            separator: "\n",
            omittingEmptySubsequences: false
        )
        .enumerated() {
            let line = raw.trimming(" \t\r")
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else {
                    throw ConfigError(file: path, line: number + 1, message: "a section header must end with `]`")
                }
                if section == name { break }
                section = String(line.dropFirst().dropLast()).trimming(" \t")
                sectionLine = number + 1
                continue
            }
            guard section == name else { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigError(file: path, line: number + 1, message: "expected `key = value` in [\(name)]")
            }
            let key = line[..<equals].trimming(" \t").lowercased()
            values[key] = line[line.index(after: equals)...].trimming(" \t")
        }
        guard section == name else {
            throw ConfigError(
                file: path,
                message: "\(shown) has no [\(name)] profile: add one, or set AWS_PROFILE to one it has"
            )
        }
        guard let id = values["aws_access_key_id"], !id.isEmpty,
            let secret = values["aws_secret_access_key"], !secret.isEmpty
        else {
            throw ConfigError(
                file: path,
                line: sectionLine,
                message: "the [\(name)] profile needs both aws_access_key_id and aws_secret_access_key"
            )
        }
        let token = values["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 }
        return AWSAccessKey(
            accessKeyID: id,
            secretAccessKey: secret,
            sessionToken: token,
            source: "profile \(name) of \(shown)"
        )
    }
}

extension StringProtocol {
    fileprivate func trimming(_ set: String) -> String {
        let drop = Set(set)
        guard let first = firstIndex(where: { !drop.contains($0) }), let last = lastIndex(where: { !drop.contains($0) })
        else { return "" }
        return String(self[first...last])
    }
}
