import Yams

/// The keys `mount.conf` accepts, per section, in the order suggestions prefer them.
enum Schema {
    static let sections = ["backup", "s3", "mirror", "mount", "retention", "log", "access", "metrics"]
    static let keys: [String: [String]] = [
        "backup": [
            "local_dir", "s3_bucket", "retention_days", "cleanup_interval", "compression_level", "encryption_key",
            "encryption_key_file", "encryption_key_command", "encryption_key_command_timeout", "verify_integrity",
            "pack_size_mib",
        ],
        "s3": [
            "endpoint", "region", "prefix", "access_key_id", "secret_access_key", "path_style", "retry_seconds",
            "connections", "multipart_mib", "timeout_seconds",
        ],
        "mirror": ["require_all", "prefer", "sync_interval"],
        "mount": ["settle_seconds", "staging_dir", "cache_mib", "allow_other", "sync_on_close"],
        "retention": [
            "keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within",
            "keep_tags",
        ],
        "log": ["level", "file", "access"],
        "metrics": ["textfile"],
        "access": ["default_role", "roles", "file_permissions", "check_every_walk"],
        "access.roles": ["admin", "writer", "reader", "none"],
        "access.roles.admin": ["users", "groups"],
        "access.roles.writer": ["users", "groups"],
        "access.roles.reader": ["users", "groups"],
        "access.roles.none": ["users", "groups"],
    ]
}

/// Walks the YAML node tree of `mount.conf` (from `Yams.compose`, so every node has its line and column) and
/// builds a ``Configuration``, checking every key and value on the way.
struct ConfigParser {
    /// The config file as named by the caller, for messages.
    let file: String
    /// The absolute folder of the config file, for relative paths.
    let folder: String

    /// One `key: value` pair of a section.
    struct Entry {
        /// The key, e.g. `compression_level`.
        var name: String
        /// The dotted key, e.g. `backup.compression_level`.
        var path: String
        var keyNode: Node
        var value: Node
    }

    func parse(_ text: String, absoluteFile: String) throws(ConfigError) -> Configuration {
        guard let root = try compose(text), !root.isNull else {
            throw ConfigError(file: file, message: Self.missingBackupMessage + " (the file is empty)")
        }
        guard case .mapping = root else {
            throw failure(
                at: root,
                key: nil,
                "expected sections such as `backup:` at the top level, found \(describe(root))"
            )
        }
        var config = Configuration(file: absoluteFile)
        var backupKey: Node?
        for entry in try entries(of: root, section: nil) {
            switch entry.name {
            case "backup":
                backupKey = entry.keyNode
                try parseBackup(entry.value, into: &config)
            case "s3": try parseS3(entry.value, into: &config)
            case "mirror": try parseMirror(entry.value, into: &config)
            case "mount": try parseMount(entry.value, into: &config)
            case "retention": try parseRetention(entry.value, into: &config)
            case "log": try parseLog(entry.value, into: &config)
            case "metrics":
                for m in try entries(of: entry.value, section: "metrics") where m.name == "textfile" {
                    config.metricsTextfile = try path(m)
                }
            case "access": config.access = try parseAccess(entry.value)
            default: break  // entries(of:) admits only known sections.
            }
        }
        guard let backupKey else {
            throw ConfigError(file: file, message: Self.missingBackupMessage)
        }
        guard config.localDirectory != nil || config.s3Bucket != nil else {
            throw failure(
                at: backupKey,
                key: "backup",
                "no store location: set `local_dir` (a folder) and/or `s3_bucket` (both: a mirror)"
            )
        }
        return config
    }

    static let missingBackupMessage =
        "a `backup:` section is required, naming where the store is: `backup: { local_dir: <folder> }` "
        + "and/or `s3_bucket: <bucket>`"

    // MARK: - Sections

    private func parseBackup(_ node: Node, into config: inout Configuration) throws(ConfigError) {
        var inlineKey: (String, SourceLocation)?
        var keyFile: (String, SourceLocation)?
        var keyCommand: (String, SourceLocation)?
        for entry in try entries(of: node, section: "backup") {
            switch entry.name {
            case "local_dir": config.localDirectory = try path(entry)
            case "s3_bucket": config.s3Bucket = try bucket(entry)
            case "retention_days": config.retentionDays = try integer(entry, in: 1...Int.max)
            case "cleanup_interval": config.cleanupInterval = try integer(entry, in: 0...Int.max)
            case "compression_level": config.compressionLevel = try integer(entry, in: 0...9)
            case "verify_integrity": config.verifyIntegrity = try boolean(entry)
            case "pack_size_mib": config.packSizeMiB = try integer(entry, in: Configuration.packSizeRange)
            case "encryption_key":
                let location = self.location(of: entry)
                inlineKey = (try text(entry), location)
                config.secretLocations.append(location)
            case "encryption_key_file": keyFile = (try path(entry), location(of: entry))
            case "encryption_key_command": keyCommand = (try text(entry), location(of: entry))
            case "encryption_key_command_timeout":
                config.keyCommandTimeout = try integer(entry, in: Configuration.keyCommandTimeoutRange)
            default: break
            }
        }
        // The order of precedence: the key itself, then a key file, then a command (POLYAD_PASSWORD comes last,
        // when the file names none).
        if let (key, location) = inlineKey {
            config.passphraseSource = .inline(key)
            config.passphraseLocation = location
        } else if let (path, location) = keyFile {
            config.passphraseSource = .file(path)
            config.passphraseLocation = location
        } else if let (command, location) = keyCommand {
            config.passphraseSource = .command(command)
            config.passphraseLocation = location
        }
    }

    private func parseS3(_ node: Node, into config: inout Configuration) throws(ConfigError) {
        for entry in try entries(of: node, section: "s3") {
            switch entry.name {
            case "endpoint":
                config.s3.endpoint = try text(
                    entry,
                    expected: "expected the service's URL, such as `https://s3.eu-west-3.amazonaws.com` or "
                        + "`http://127.0.0.1:9000`"
                ) { url in
                    (url.hasPrefix("https://") || url.hasPrefix("http://")) && url.count > 8 && !url.contains(" ")
                }
            case "region": config.s3.region = try text(entry)
            case "prefix":
                config.s3.prefix = try text(
                    entry,
                    allowEmpty: true,
                    expected: "expected a key prefix such as `host-a/`: no leading `/`, no `.` or `..` parts, no "
                        + "control characters"
                ) { prefix in
                    !prefix.hasPrefix("/")
                        && !prefix.split(separator: "/").contains(where: { $0 == ".." || $0 == "." })
                        && prefix.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F })
                }
            case "access_key_id": config.s3.accessKeyID = try text(entry)
            case "secret_access_key":
                config.s3.secretAccessKey = try text(entry)
                config.secretLocations.append(location(of: entry))
            case "path_style": config.s3.pathStyle = try boolean(entry)
            case "retry_seconds": config.s3.retrySeconds = try integer(entry, in: 0...86_400)
            case "connections": config.s3.connections = try integer(entry, in: 1...64)
            case "multipart_mib": config.s3.multipartMiB = try integer(entry, in: 5...5_120)
            case "timeout_seconds": config.s3.timeoutSeconds = try integer(entry, in: 1...86_400)
            default: break
            }
        }
    }

    private func parseMirror(_ node: Node, into config: inout Configuration) throws(ConfigError) {
        for entry in try entries(of: node, section: "mirror") {
            switch entry.name {
            case "require_all": config.mirror.requireAll = try boolean(entry)
            case "sync_interval": config.mirror.syncInterval = try integer(entry, in: 0...Int.max)
            case "prefer":
                let value = try text(entry)
                guard let target = MirrorSettings.Target(rawValue: value) else {
                    throw failure(
                        at: entry.value,
                        key: entry.path,
                        "expected `local` or `s3`, found `\(value)`"
                    )
                }
                config.mirror.prefer = target
            default: break
            }
        }
    }

    private func parseMount(_ node: Node, into config: inout Configuration) throws(ConfigError) {
        for entry in try entries(of: node, section: "mount") {
            switch entry.name {
            case "settle_seconds": config.mount.settleSeconds = try integer(entry, in: 0...Int.max)
            case "staging_dir": config.mount.stagingDirectory = try path(entry)
            case "cache_mib": config.mount.cacheMiB = try integer(entry, in: 0...Int.max)
            case "allow_other": config.mount.allowOther = try boolean(entry)
            case "sync_on_close": config.mount.syncOnClose = try boolean(entry)
            default: break
            }
        }
    }

    private func parseRetention(_ node: Node, into config: inout Configuration) throws(ConfigError) {
        for entry in try entries(of: node, section: "retention") {
            switch entry.name {
            case "keep_within":
                let text = try text(entry, expected: "expected a span such as `30d`, `1y6m` or `2d12h`") {
                    RetentionSpan($0) != nil
                }
                config.retention.keepWithin = RetentionSpan(text)
                continue
            case "keep_tags":
                config.retention.keepTags = try textList(entry)
                continue
            default: break
            }
            let count = try integer(entry, in: 0...Int.max)
            switch entry.name {
            case "keep_last": config.retention.keepLast = count
            case "keep_hourly": config.retention.keepHourly = count
            case "keep_daily": config.retention.keepDaily = count
            case "keep_weekly": config.retention.keepWeekly = count
            case "keep_monthly": config.retention.keepMonthly = count
            case "keep_yearly": config.retention.keepYearly = count
            default: break
            }
        }
    }

    private func parseLog(_ node: Node, into config: inout Configuration) throws(ConfigError) {
        for entry in try entries(of: node, section: "log") {
            switch entry.name {
            case "level": config.log.level = try choice(entry, "level")
            case "file": config.log.file = try path(entry)
            case "access": config.log.access = try path(entry)
            default: break
            }
        }
    }

    private func parseAccess(_ node: Node) throws(ConfigError) -> AccessSettings {
        var access = AccessSettings()
        for entry in try entries(of: node, section: "access") {
            switch entry.name {
            case "default_role": access.defaultRole = try choice(entry, "role")
            case "file_permissions": access.filePermissions = try boolean(entry)
            case "check_every_walk": access.checkEveryWalk = try boolean(entry)
            case "roles":
                for roleEntry in try entries(of: entry.value, section: "access.roles") {
                    let role = AccessRole(rawValue: roleEntry.name)!  // entries(of:) admits only the role names
                    var principals = AccessPrincipals()
                    for list in try entries(of: roleEntry.value, section: "access.roles.\(roleEntry.name)") {
                        let names = try textList(list)
                        if let bad = names.first(where: { $0.isEmpty || $0.contains(where: \.isNewline) }) {
                            throw failure(at: list.value, key: list.path, "'\(bad)' is not a user or group name")
                        }
                        if list.name == "users" { principals.users += names } else { principals.groups += names }
                    }
                    access.roles[role] = principals
                }
            default: break
            }
        }
        return access
    }

    /// One of the names of `T` (a level, a role), in any case; else an error naming them all, with a
    /// did-you-mean.
    private func choice<T: RawRepresentable & CaseIterable>(
        _ entry: Entry,
        _ what: String
    ) throws(ConfigError) -> T where T.RawValue == String {
        let name = try text(entry)
        guard let value = T(rawValue: name.lowercased()) else {
            let names = T.allCases.map(\.rawValue)
            let hint = Suggestions.closest(to: name, among: names).map { " (did you mean '\($0)'?)" } ?? ""
            throw failure(
                at: entry.value,
                key: entry.path,
                "unknown \(what) '\(name)'\(hint); use one of \(names.joined(separator: ", "))"
            )
        }
        return value
    }

    // MARK: - Keys

    /// The pairs of a section (`section == nil`: the top level), each key checked against the schema. An empty
    /// section (`s3:` with nothing under it) has no pairs.
    private func entries(of node: Node, section: String?) throws(ConfigError) -> [Entry] {
        if node.isNull { return [] }
        guard case .mapping(let mapping) = node else {
            throw failure(
                at: node,
                key: section,
                "expected a section of indented `key: value` lines, found \(describe(node))"
            )
        }
        let allowed = section.map { Schema.keys[$0] ?? [] } ?? Schema.sections
        var result: [Entry] = []
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode, keyNode.tagName == .str || keyNode.tagName == .null else {
                throw failure(at: keyNode, key: section, "keys must be plain names, found \(describe(keyNode))")
            }
            let name = scalar.string
            let path = section.map { "\($0).\(name)" } ?? name
            guard allowed.contains(name) else {
                throw failure(at: keyNode, key: path, "unknown key" + unknownKeyHint(name, section: section))
            }
            result.append(Entry(name: name, path: path, keyNode: keyNode, value: value))
        }
        return result
    }

    /// ` (did you mean 'x'?)`, ` (it belongs in the 'retention:' section)`, or the list of allowed keys.
    private func unknownKeyHint(_ name: String, section: String?) -> String {
        let allowed = section.map { Schema.keys[$0] ?? [] } ?? Schema.sections
        for other in Schema.sections where other != section {
            if Schema.keys[other]?.contains(name.lowercased()) == true {
                return " (it belongs in the '\(other):' section)"
            }
        }
        if let suggestion = Suggestions.closest(to: name, among: allowed) {
            return " (did you mean '\(suggestion)'?)"
        }
        let place = section.map { "under '\($0):'" } ?? "at the top level"
        return "; the keys \(place) are: " + allowed.joined(separator: ", ")
    }

    // MARK: - Values

    /// A text value. Numbers are accepted as their text (`s3_bucket: 2024`); booleans, lists and sections are not,
    /// nor is U+0000 (YAML's `"\0"`), at which the C calls that take paths, names and commands would cut the text
    /// short (`local_dir: "sto\0re"` would make a store at `sto`). The value itself never appears in a message:
    /// it may be a secret.
    private func text(_ entry: Entry, allowEmpty: Bool = false) throws(ConfigError) -> String {
        guard case .scalar(let scalar) = entry.value,
            [.str, .int, .float].contains(entry.value.tagName)
        else {
            var hint = ""
            if entry.value.tagName == .bool { hint = " (put it in quotes to use it as text)" }
            throw failure(at: entry.value, key: entry.path, "expected text, found \(describe(entry.value))" + hint)
        }
        if scalar.string.utf8.contains(0) {
            throw failure(
                at: entry.value,
                key: entry.path,
                "contains a NUL character (\\0), which no path or name can hold; remove it"
            )
        }
        if !allowEmpty, scalar.string.isEmpty {
            throw failure(at: entry.value, key: entry.path, "must not be empty")
        }
        return scalar.string
    }

    /// A text value that must pass `valid`; else the error says `expected`. (The value is named only where the
    /// message does so itself: it may be a secret.)
    private func text(
        _ entry: Entry,
        allowEmpty: Bool = false,
        expected: @autoclosure () -> String,
        where valid: (String) -> Bool
    ) throws(ConfigError) -> String {
        let value = try text(entry, allowEmpty: allowEmpty)
        guard valid(value) else { throw failure(at: entry.value, key: entry.path, expected()) }
        return value
    }

    /// An S3 bucket name: 3–63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or
    /// digit (the rule AWS, MinIO, Ceph RGW and Garage share), so a name is never sent changed or cut.
    private func bucket(_ entry: Entry) throws(ConfigError) -> String {
        let name = try text(entry)
        return try text(
            entry,
            expected: "`\(name)` is not a valid bucket name: use 3 to 63 lowercase letters, digits, dots and "
                + "hyphens, starting and ending with a letter or digit"
        ) { name in
            let bytes = Array(name.utf8)
            func letterOrDigit(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
            return (3...63).contains(bytes.count) && bytes.allSatisfy { letterOrDigit($0) || $0 == 0x2E || $0 == 0x2D }
                && letterOrDigit(bytes[0]) && letterOrDigit(bytes[bytes.count - 1]) && !name.contains("..")
        }
    }

    /// A path, made absolute against the config file's folder.
    private func path(_ entry: Entry) throws(ConfigError) -> String {
        let value = try text(entry)
        if value.hasPrefix("~") {
            throw failure(
                at: entry.value,
                key: entry.path,
                "`~` is not expanded here; write an absolute path, or one relative to the config file's folder"
            )
        }
        return Paths.resolve(value, against: folder)
    }

    /// A whole number within `range`.
    private func integer(_ entry: Entry, in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let node = entry.value
        guard case .scalar(let scalar) = node, node.tagName == .int else {
            var hint = ""
            if case .scalar(let scalar) = node, node.tagName == .str, Self.decimal(scalar.string) != nil {
                hint = " (remove the quotes)"
            }
            throw failure(at: node, key: entry.path, "expected a whole number, found \(describe(node))" + hint)
        }
        // Plain digits are decimal (YAML 1.1 would read `0755` as octal); `0x…` and friends go to Yams.
        guard let value = Self.decimal(scalar.string) ?? Int.construct(from: scalar) else {
            throw failure(at: node, key: entry.path, "the number is too large")
        }
        guard range.contains(value) else {
            let rule: String
            if range.upperBound == Int.max {
                rule = range.lowerBound == 0 ? "must not be negative" : "must be at least \(range.lowerBound)"
            } else {
                rule = "must be from \(range.lowerBound) to \(range.upperBound)"
            }
            throw failure(at: node, key: entry.path, "\(rule), found \(value)")
        }
        return value
    }

    /// `true` or `false` (YAML 1.1 also reads yes/no and on/off).
    private func boolean(_ entry: Entry) throws(ConfigError) -> Bool {
        let node = entry.value
        guard case .scalar(let scalar) = node, node.tagName == .bool, let value = Bool.construct(from: scalar) else {
            var hint = ""
            if case .scalar(let scalar) = node, node.tagName == .str,
                ["true", "false", "yes", "no", "on", "off"].contains(scalar.string.lowercased())
            {
                hint = " (remove the quotes)"
            }
            throw failure(at: node, key: entry.path, "expected true or false, found \(describe(node))" + hint)
        }
        return value
    }

    /// Digits with an optional sign and `_` separators, read as a decimal number.
    private static func decimal(_ text: String) -> Int? {
        var digits = Substring(text.replacing("_", with: ""))
        var negative = false
        if let sign = digits.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(negative ? "-" + digits : digits)
    }

    /// A list of texts (`[daily, monthly]`, or one text alone as a list of one).
    private func textList(_ entry: Entry) throws(ConfigError) -> [String] {
        guard case .sequence(let items) = entry.value else { return [try text(entry)] }
        var out = [String]()
        for (i, item) in items.enumerated() {
            out.append(
                try text(Entry(name: entry.name, path: "\(entry.path)[\(i)]", keyNode: entry.keyNode, value: item))
            )
        }
        return out
    }

    /// What kind of value a node holds, for messages (never the value itself).
    private func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a section (indented `key: value` lines)"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar:
            switch node.tagName {
            case .null: return "nothing"
            case .bool: return "true/false"
            case .int: return "a whole number"
            case .float: return "a decimal number"
            case .timestamp: return "a date"
            default: return "text"
            }
        }
    }

    // MARK: - Errors

    private func location(of entry: Entry) -> SourceLocation {
        SourceLocation(line: entry.keyNode.mark?.line, column: entry.keyNode.mark?.column, key: entry.path)
    }

    private func failure(at node: Node, key: String?, _ message: String) -> ConfigError {
        ConfigError(file: file, line: node.mark?.line, column: node.mark?.column, key: key, message: message)
    }

    /// Composes the YAML, turning Yams' errors into ``ConfigError``s with a line and column. The offending line
    /// is not quoted: it may hold a secret. Aliases are checked first (``checkAliases(_:)``).
    private func compose(_ text: String) throws(ConfigError) -> Node? {
        try checkAliases(text)
        do {
            return try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw syntaxError(error, text)
        } catch {
            throw ConfigError(file: file, message: "cannot read the YAML (\(type(of: error)))")
        }
    }

    /// `marker`: the character that stands for `*` in the text that was parsed, put back in key names.
    func syntaxError(_ error: YamlError, _ text: String, marker: Unicode.Scalar? = nil) -> ConfigError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "YAML syntax error: \(problem)"
            if let context {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            let line = Self.line(mark.line, of: text)
            if line.prefix(while: { $0 == " " || $0 == "\t" }).contains("\t")
                || line.unicodeScalars.dropFirst(max(0, mark.column - 1)).first == "\t"
            {
                message += "; indent with spaces: YAML does not allow tabs for indentation"
            } else if problem.contains("mapping values") || problem.contains("expected key")
                || problem.contains("expected ':'") || problem.contains("expected <block end>")
            {
                message += "; check the indentation, and that each `key: value` has a space after the colon"
            }
            return ConfigError(file: file, line: mark.line, column: mark.column, message: message)
        case .reader(let problem, let offset, _, _):
            var line: Int?
            var column: Int?
            if let offset {
                let prefix = text.prefix(offset)
                line = prefix.count(where: { $0 == "\n" }) + 1
                column = prefix.split(separator: "\n", omittingEmptySubsequences: false).last.map { $0.count + 1 }
            }
            return ConfigError(
                file: file,
                line: line,
                column: column,
                message: "cannot read the file as YAML text: \(problem)"
            )
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.map { name in
                let shown = marker.map { name.replacing(String($0), with: "*") } ?? name
                return "'\(shown)'"
            }.joined(separator: ", ")
            return ConfigError(
                file: file,
                line: context.mark.line,
                column: context.mark.column,
                message: "the key \(names) appears more than once in one section; keep one"
            )
        default:
            return ConfigError(file: file, message: "cannot parse the YAML")
        }
    }

    /// Line `number` (1-based) of `text`, or empty.
    private static func line(_ number: Int, of text: String) -> Substring {
        let lines = text.split(separator: "\n", maxSplits: number, omittingEmptySubsequences: false)
        return number >= 1 && number <= lines.count ? lines[number - 1] : ""
    }
}

extension Node {
    /// The node's resolved tag (`Tag.name` is internal to Yams; its description is the name's raw value).
    var tagName: Tag.Name { Tag.Name(rawValue: tag.description) }

    /// Whether the node is YAML's null (`~`, `null`, or nothing after the colon).
    var isNull: Bool {
        if case .scalar = self { return tagName == .null }
        return false
    }
}
