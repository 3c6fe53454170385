import Foundation
import PolyadS3
import PolyadTestSupport
import XCTest

/// The real `polyad` binary on an S3-only store through the fault proxy (`Scripts/testing/s3_fault_proxy.py`
/// in front of moto with signatures checked): backups through seeded faults complete and verify, an outage fails
/// them with exit 14 leaving no new snapshot, and the bucket, read by a second client (awscli), holds no file
/// name or content of the backed-up tree.
final class S3FaultCLITests: XCTestCase {
    private var proxies = [FaultProxy]()
    private var folders = [TemporaryFolder]()

    override func tearDown() {
        for proxy in proxies { proxy.stop() }
        for folder in folders { folder.remove() }
        proxies = []
        folders = []
    }

    private func proxy(
        _ server: S3TestServer,
        seed: UInt64,
        faultRate: Double,
        faultMethods: [String]? = nil,
        log: String? = nil
    ) throws -> FaultProxy {
        let proxy = try FaultProxy(
            upstream: server.url,
            seed: seed,
            faultRate: faultRate,
            faults: faultRate > 0.5
                ? [.drop, .internalError, .unavailable, .slowDown]  // none of them reaches the server
                : [.drop, .internalError, .unavailable, .slowDown, .truncate],
            faultMethods: faultMethods,
            log: log
        )
        proxies.append(proxy)
        return proxy
    }

    /// Points `cli` at `bucket` through `endpoint` (S3 only), verifying after each backup.
    private func configure(
        _ cli: CLIFixture,
        _ server: S3TestServer,
        _ bucket: String,
        _ endpoint: String,
        _ extra: String
    ) {
        cli.configureS3(
            server,
            bucket: bucket,
            local: false,
            endpoint: endpoint,
            backupLines: "  verify_integrity: true\n",
            extra: extra
        )
    }

    private func folder(_ prefix: String) throws -> TemporaryFolder {
        let folder = try TemporaryFolder(prefix: prefix)
        folders.append(folder)
        return folder
    }

    /// A generated tree, and what must never be readable in the bucket: every file and folder name, and markers
    /// written into every file (text files hold theirs in their text, binary files every 64 KiB among random
    /// bytes).
    private struct Tree {
        var root: String
        var names: [String]
        var markers: [String]
    }

    private func makeTree(at root: String, seed: UInt64) throws -> Tree {
        var generator = SplitMix64(seed: seed)
        let token = String(generator.next(), radix: 36)
        var tree = Tree(root: root, names: [], markers: [])
        let folders = ["quartz-folder-\(token)", "quartz-folder-\(token)/nested-violet-\(token)"]
        for folder in folders {
            try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
            tree.names.append(String(folder.split(separator: "/").last!))
        }
        for number in 0..<24 {
            let name = "note-amber-\(number)-\(token).txt"
            let marker = "content-marker-\(number)-\(token)"
            let text = String(repeating: "\(marker) is a line of a note file, said many times over.\n", count: 300)
            try Data(text.utf8).write(to: URL(fileURLWithPath: root + "/" + folders[number % 2] + "/" + name))
            tree.names.append(name)
            tree.markers.append(marker)
        }
        for number in 0..<6 {
            let name = "blob-cobalt-\(number)-\(token).bin"
            let marker = "blob-marker-\(number)-\(token)"
            var bytes = pseudoRandomBytes((number + 1) << 20, seed: generator.next())
            for offset in stride(from: 0, to: bytes.count - 64, by: 65_536) {
                bytes.replaceSubrange(offset..<offset + marker.utf8.count, with: Array(marker.utf8))
            }
            try Data(bytes).write(to: URL(fileURLWithPath: root + "/" + folders[0] + "/" + name))
            tree.names.append(name)
            tree.markers.append(marker)
        }
        return tree
    }

    /// Runs `program` (found on PATH) with `arguments`; returns its status and outputs.
    private func run(
        _ program: String,
        _ arguments: [String],
        environment extra: [String: String] = [:]
    ) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [program] + arguments
        p.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// awscli with the test key and no config of this machine's.
    private func aws(_ server: S3TestServer, _ arguments: [String]) throws -> (status: Int32, stdout: String) {
        let environment = [
            "AWS_ACCESS_KEY_ID": server.credentials.accessKeyID,
            "AWS_SECRET_ACCESS_KEY": server.credentials.secretAccessKey,
            "AWS_DEFAULT_REGION": S3TestServer.region,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        ]
        let r = try run("aws", arguments + ["--endpoint-url", server.url], environment: environment)
        XCTAssertEqual(r.status, 0, "aws \(arguments.joined(separator: " ")): \(r.stderr)")
        return (r.status, r.stdout)
    }

    private func requireAWSCLI() throws {
        let found = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/aws")
        }
        guard found else {
            let reason = "aws (awscli) is not installed: Scripts/install-deps installs it"
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail(reason) }
            print("skipped: \(reason)")
            throw XCTSkip(reason)
        }
    }

    /// The keys and sizes in `bucket`, as `aws s3api list-objects-v2` gives them.
    private func listing(_ server: S3TestServer, bucket: String) throws -> [String: Int] {
        let listed = try aws(server, ["s3api", "list-objects-v2", "--bucket", bucket, "--output", "json"])
        guard !listed.stdout.isEmpty else { return [:] }  // an empty bucket: awscli prints nothing
        let json = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any]
        let contents = json?["Contents"] as? [[String: Any]] ?? []
        return Dictionary(
            uniqueKeysWithValues: contents.map { ($0["Key"] as? String ?? "", $0["Size"] as? Int ?? -1) }
        )
    }

    func testBackupsThroughFaultsCompleteVerifyAndLeaveNothingReadable() throws {
        try backupsThroughFaults(extra: "")
    }

    /// The same with every pack sent as a multipart upload (5 MiB parts): a start, parts and a completion, each
    /// of which may meet a fault.
    func testMultipartBackupsThroughFaults() throws {
        try backupsThroughFaults(extra: "  multipart_mib: 5\n")
    }

    private func backupsThroughFaults(extra: String) throws {
        let server = try S3TestServer.fromEnvironment()
        try requireAWSCLI()
        let seed = FaultProxy.seedFromEnvironment()
        let work = try folder("polyad-s3-faults")
        let proxy = try proxy(server, seed: seed, faultRate: 0.2, log: work.sub("proxy.jsonl"))
        let bucket = try server.makeBucket(prefix: "polyad-cli-faults")
        let cli = try CLIFixture()
        configure(cli, server, bucket, proxy.endpoint, "  retry_seconds: 120\n" + extra)
        let tree = try makeTree(at: try folder("polyad-s3-tree").path, seed: seed)

        try cli.expect(0, ["init"])
        try cli.expect(0, ["backup", tree.root])
        let late = "late-addition-saffron-\(seed).txt"
        let lateMarker = "late-content-marker-\(seed)-saffron"
        try Data((lateMarker + "\n").utf8).write(to: URL(fileURLWithPath: tree.root + "/" + late))
        try cli.expect(0, ["backup", tree.root])
        try cli.expect(0, ["verify", "--read-data"])
        let snapshots = try cli.expect(0, ["snapshots"])
        XCTAssertTrue(snapshots.stdout.contains("2 snapshots"), snapshots.stdout)
        try cli.expect(0, ["restore", "latest", "--target", cli.root + "/r"])
        XCTAssertEqual(
            FileManager.default.contents(atPath: cli.root + "/r" + tree.root + "/" + late),
            Data((lateMarker + "\n").utf8)
        )

        let stats = try proxy.stats()
        print("proxy: \(stats.requests) requests \(stats.methods), faults \(stats.faults) (seed \(seed))")
        XCTAssertGreaterThan(stats.faultsTotal, 0, "faults were injected (seed \(seed))")
        let writes = try proxy.logEntries().filter { $0.method == "PUT" || $0.method == "POST" }
        XCTAssertGreaterThan(writes.count, 0)
        for entry in writes where entry.contentMD5 != true {
            XCTFail("\(entry.method) \(entry.path) without Content-MD5")
        }
        XCTAssertEqual(stats.putsWithoutMD5, 0)

        // The bucket as a second client sees it: every key, every byte.
        let names = tree.names + [late]
        let markers = tree.markers + [lateMarker]
        let keys = try listing(server, bucket: bucket)
        XCTAssertTrue(keys.keys.contains("host-a/config"), "\(keys.keys.sorted())")
        XCTAssertTrue(keys.keys.contains { $0.hasPrefix("host-a/data/") }, "\(keys.keys.sorted())")
        XCTAssertEqual(keys.keys.filter { $0.hasPrefix("host-a/snapshots/") }.count, 2)
        for key in keys.keys {
            for name in names { XCTAssertFalse(key.contains(name), "the key \(key) holds the file name \(name)") }
        }
        let copy = try folder("polyad-s3-copy")
        _ = try aws(server, ["s3", "sync", "s3://\(bucket)", copy.path, "--only-show-errors"])
        for (key, size) in keys {
            let bytes = FileManager.default.contents(atPath: copy.path + "/" + key)
            XCTAssertEqual(bytes?.count, size, "\(key) downloaded whole")
        }
        // grep -F over every object's bytes for every name and marker: exit 1 is "no line matched".
        let needles = work.sub("needles")
        try Data((names + markers).joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: needles))
        let grep = try run("grep", ["-r", "-a", "-F", "-l", "-f", needles, copy.path], environment: ["LC_ALL": "C"])
        XCTAssertEqual(grep.status, 1, "objects holding a file name or content: \(grep.stdout) \(grep.stderr)")
        // The check itself finds what it looks for.
        let plain = try run("grep", ["-r", "-a", "-F", "-l", "-f", needles, tree.root], environment: ["LC_ALL": "C"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
    }

    func testAnOutageFailsTheBackupWithExit14AndNoNewSnapshot() throws {
        let server = try S3TestServer.fromEnvironment()
        try requireAWSCLI()
        let seed = FaultProxy.seedFromEnvironment()
        let bucket = try server.makeBucket(prefix: "polyad-cli-outage")
        let cli = try CLIFixture()
        configure(cli, server, bucket, server.url, "")
        let tree = try makeTree(at: try folder("polyad-s3-tree").path, seed: seed)
        try cli.expect(0, ["init"])
        try cli.expect(0, ["backup", tree.root])
        let before = try listing(server, bucket: bucket)
        XCTAssertEqual(before.keys.filter { $0.hasPrefix("host-a/snapshots/") }.count, 1)
        try Data("changed\n".utf8).write(to: URL(fileURLWithPath: tree.root + "/changed-file-ochre.txt"))

        // Every request faulted, then only the writes (the store opens, nothing can be saved): retried for
        // s3.retry_seconds, then exit 14 naming the endpoint.
        for methods in [nil, ["PUT", "POST", "DELETE"]] {
            let proxy = try proxy(server, seed: seed, faultRate: 1, faultMethods: methods)
            configure(cli, server, bucket, proxy.endpoint, "  retry_seconds: 2\n")
            let failed = try cli.expect(14, ["backup", tree.root])
            XCTAssertTrue(failed.stderr.contains("127.0.0.1:\(proxy.port)"), failed.stderr)
            let stats = try proxy.stats()
            XCTAssertGreaterThan(stats.faultsTotal, 1, "retried")
            if methods != nil {
                XCTAssertGreaterThan(stats.methods["GET"] ?? 0, 0, "the store was read: \(stats.methods)")
            }
        }
        XCTAssertEqual(try listing(server, bucket: bucket), before, "nothing new in the bucket, no new snapshot")
        configure(cli, server, bucket, server.url, "")
        try cli.expect(0, ["verify", "--read-data"])
    }
}
