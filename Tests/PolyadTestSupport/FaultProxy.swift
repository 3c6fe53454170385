import Foundation
import Glibc
import PolyadS3

/// `Scripts/testing/s3_fault_proxy.py` in front of an S3 server: an HTTP proxy on 127.0.0.1 that answers some
/// requests, at moments drawn from a seed, with a fault instead (a cut connection, 500, 503, SlowDown, a stall,
/// a truncated body) and counts what went through. Stopped by its PID in ``stop()`` (or when released).
public final class FaultProxy {
    /// The faults the proxy can inject.
    public enum Fault: String, CaseIterable, Sendable {
        /// The connection closed before any answer (the request never reaches the server).
        case drop
        /// 500 InternalError.
        case internalError = "500"
        /// 503 ServiceUnavailable.
        case unavailable = "503"
        /// 503 SlowDown.
        case slowDown = "slowdown"
        /// Nothing sent for the stall time, then the connection closed.
        case stall
        /// Forwarded, then the answer cut: its headers (the full Content-Length) and half its body.
        case truncate
    }

    /// What the proxy has seen, from `GET /__proxy/stats`.
    public struct Stats: Decodable, Sendable {
        /// Requests forwarded or faulted (the stats requests not among them).
        public var requests: Int
        /// Requests by method (`PUT`, `GET`, ...).
        public var methods: [String: Int]
        /// Answers sent by status (`"200"`, `"503"`; `"none"` for a cut connection).
        public var statuses: [String: Int]
        /// Faults injected, by ``Fault`` raw value.
        public var faults: [String: Int]
        public var faultsTotal: Int
        /// PUT and POST requests that came without a `Content-MD5` header.
        public var putsWithoutMD5: Int

        enum CodingKeys: String, CodingKey {
            case requests, methods, statuses, faults
            case faultsTotal = "faults_total"
            case putsWithoutMD5 = "puts_without_md5"
        }

        /// How many faults of `kind` were injected.
        public func count(_ kind: Fault) -> Int { faults[kind.rawValue] ?? 0 }
    }

    /// One request as the proxy's log tells it.
    public struct LogEntry: Decodable, Sendable {
        public var n: Int
        public var method: String
        public var path: String
        /// The status sent; nil when the connection was cut first.
        public var status: Int?
        public var fault: String?
        /// Whether a PUT or POST carried `Content-MD5` (nil for other methods).
        public var contentMD5: Bool?

        enum CodingKeys: String, CodingKey {
            case n, method, path, status, fault
            case contentMD5 = "content_md5"
        }
    }

    /// The port the proxy listens on (127.0.0.1).
    public let port: Int
    /// The proxy's URL: an S3 endpoint that stands for the upstream server.
    public var endpoint: String { "http://127.0.0.1:\(port)" }
    /// The JSON-lines log, if one was asked for.
    public let logPath: String?
    private let process: Process
    private let output: Pipe
    private var stopped = false

    /// The proxy script, found from this file's place in the package.
    public static var scriptPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Scripts/testing/s3_fault_proxy.py").path
    }

    /// Starts the proxy in front of `upstream` (`http://127.0.0.1:PORT`): each request past the first `warmup`
    /// (of `faultMethods` only, if given) gets one of `faults` with probability `faultRate`, drawn from `seed`; a
    /// stall lasts `stallSeconds`. An empty `faults` makes it a counting proxy only.
    public init(
        upstream: String,
        seed: UInt64 = 1,
        faultRate: Double = 0.1,
        faults: [Fault] = Fault.allCases,
        stallSeconds: Double = 30,
        warmup: Int = 0,
        faultMethods: [String]? = nil,
        log: String? = nil
    ) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var arguments = [
            "python3", Self.scriptPath, "--upstream", upstream, "--seed", String(seed), "--fault-rate",
            String(faultRate), "--faults", faults.isEmpty ? "none" : faults.map(\.rawValue).joined(separator: ","),
            "--stall-seconds", String(stallSeconds), "--warmup", String(warmup),
        ]
        if let faultMethods { arguments += ["--fault-methods", faultMethods.joined(separator: ",")] }
        if let log { arguments += ["--log", log] }
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        self.process = process
        self.output = output
        logPath = log
        // The first line is the port; nothing else comes on stdout.
        var line = [UInt8]()
        while !line.contains(UInt8(ascii: "\n")) {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            line += data
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
            throw FaultProxyError(message: "\(Self.scriptPath) did not print its port (it printed \(line.count) bytes)")
        }
        self.port = port
    }

    deinit { stop() }

    /// The fault seed: `POLYAD_FAULT_SEED`, or `fallback`; printed, so a failing run can be repeated.
    public static func seedFromEnvironment(fallback: UInt64 = 20_261_203) -> UInt64 {
        let seed = ProcessInfo.processInfo.environment["POLYAD_FAULT_SEED"].flatMap { UInt64($0) } ?? fallback
        print("fault seed \(seed) (set POLYAD_FAULT_SEED to repeat or change it)")
        return seed
    }

    /// The proxy's counters.
    public func stats() throws -> Stats {
        // The stats path, /__proxy/stats, as a key of a bucket named __proxy (the proxy answers it itself).
        let client = S3Client(
            endpoint: S3Endpoint(url: endpoint, region: S3TestServer.region, bucket: "__proxy", pathStyle: true),
            credentials: S3Credentials(accessKeyID: "proxy", secretAccessKey: "proxy"),
            timeout: 10
        )
        let r = try client.request("GET", key: "stats", at: Int64(Date().timeIntervalSince1970))
        guard r.status == 200 else {
            throw FaultProxyError(message: "the proxy's stats: status \(r.status)")
        }
        return try JSONDecoder().decode(Stats.self, from: Data(r.body))
    }

    /// The requests logged so far (empty without a log).
    public func logEntries() throws -> [LogEntry] {
        guard let logPath else { return [] }
        let text = try String(contentsOfFile: logPath, encoding: .utf8)
        return try text.split(separator: "\n").filter { !$0.hasPrefix("{\"summary\"") }.map {
            try JSONDecoder().decode(LogEntry.self, from: Data($0.utf8))
        }
    }

    /// Stops the proxy (SIGTERM to its PID) and waits for it to exit; it writes its summary to the log first.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        try? output.fileHandleForReading.close()
    }
}

/// The fault proxy did not start or did not answer.
public struct FaultProxyError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
