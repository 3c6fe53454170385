import CCurlShim
import Glibc
import PolyadCrypto
import PolyadFormat
import Synchronization

/// Where a bucket is: the endpoint (`https://s3.eu-west-3.amazonaws.com`, `http://127.0.0.1:9000`), its region,
/// and whether the bucket goes in the path (`/bucket/key`, MinIO and moto) or the host (`bucket.host`, AWS).
public struct S3Endpoint: Sendable, Equatable {
    public var url: String
    public var region: String
    public var bucket: String
    public var pathStyle: Bool

    public init(url: String, region: String, bucket: String, pathStyle: Bool) {
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.region = region
        self.bucket = bucket
        self.pathStyle = pathStyle
    }

    /// The host (with port) and scheme of the endpoint.
    var parts: (scheme: String, host: String) {
        guard let range = url.range(of: "://") else { return ("https", url) }
        return (String(url[..<range.lowerBound]), String(url[range.upperBound...]))
    }
}

/// What S3 answered.
public struct S3Response: Sendable {
    public var status: Int
    /// Header names lower-cased.
    public var headers: [String: String]
    public var body: [UInt8]
}

/// Signed requests to one bucket over a pool of libcurl handles: each keeps its connection open and is reused,
/// and each thread that sends at the same time gets a handle of its own, so transfers run side by side.
public final class S3Client: Sendable {
    public let endpoint: S3Endpoint
    private let credentials: S3Credentials
    /// Idle easy handles, as addresses. A libcurl easy handle may be used by one thread at a time: a request
    /// takes one out of the pool (or makes one) and puts it back when done.
    private let idle = Mutex<[UInt]>([])
    /// Whole-transfer and stall limits (seconds).
    public let timeout: Int
    public let stallSeconds: Int

    private static let started: Bool = polyad_http_global_init() == 0

    public init(endpoint: S3Endpoint, credentials: S3Credentials, timeout: Int = 300, stallSeconds: Int = 30) {
        _ = Self.started
        self.endpoint = endpoint
        self.credentials = credentials
        self.timeout = timeout
        self.stallSeconds = stallSeconds
    }

    deinit {
        for address in idle.withLock({ $0 }) { polyad_http_free(UnsafeMutableRawPointer(bitPattern: address)) }
    }

    /// Runs `body` with an easy handle of its own.
    private func withHandle<T>(_ body: (UnsafeMutableRawPointer?) -> T) -> T {
        let address = idle.withLock { $0.popLast() } ?? UInt(bitPattern: polyad_http_new())
        defer { idle.withLock { $0.append(address) } }
        return body(UnsafeMutableRawPointer(bitPattern: address))
    }

    /// Sends one signed request for `key` (empty: the bucket itself) and returns the answer, whatever its status.
    public func request(
        _ method: String,
        key: String = "",
        query: [(name: String, value: String)] = [],
        headers extra: [(name: String, value: String)] = [],
        body: [UInt8] = [],
        at seconds: Int64
    ) throws(S3TransportError) -> S3Response {
        let (scheme, endpointHost) = endpoint.parts
        let host = endpoint.pathStyle ? endpointHost : "\(endpoint.bucket).\(endpointHost)"
        let path = (endpoint.pathStyle ? "/\(endpoint.bucket)" : "") + "/" + key
        let payloadHash = HexCoding.encode(SHA256.hash(body))
        let amzDate = SigV4.amzDate(secondsSince1970: seconds)
        var headers: [(name: String, value: String)] = [
            ("host", host), ("x-amz-date", amzDate), ("x-amz-content-sha256", payloadHash),
        ]
        if let token = credentials.sessionToken { headers.append(("x-amz-security-token", token)) }
        // S3 checks the body against it and refuses a PUT damaged on the way (restic #3023 stored such uploads).
        if method == "PUT" || method == "POST", !extra.contains(where: { $0.name.lowercased() == "content-md5" }),
            let md5 = MD5.hash(body)
        {
            headers.append(("content-md5", Base64.encode(md5)))
        }
        headers += extra
        let signature = SigV4.sign(
            SigV4Request(method: method, path: path, query: query, headers: headers, payloadHash: payloadHash),
            credentials: credentials,
            region: endpoint.region,
            amzDate: amzDate
        )
        let queryText = query.map {
            "\(SigV4.encode($0.name, keepSlash: false))=\(SigV4.encode($0.value, keepSlash: false))"
        }
        .joined(separator: "&")
        let url =
            "\(scheme)://\(host)\(SigV4.encode(path, keepSlash: true))" + (queryText.isEmpty ? "" : "?" + queryText)
        let lines =
            headers.filter { $0.name != "host" }.map { "\($0.name): \($0.value)" }
            + ["Authorization: \(signature.authorization)"]
        var out = polyad_http_response()
        defer { polyad_http_response_free(&out) }
        let code = withHandle { handle -> Int32 in
            let cLines = lines.map { strdup($0) }
            defer {
                for line in cLines { free(line) }
            }
            var pointers = cLines.map { $0.map { UnsafePointer<CChar>($0) } }
            return body.withUnsafeBufferPointer { b in
                pointers.withUnsafeMutableBufferPointer { p in
                    polyad_http_perform(
                        handle,
                        method,
                        url,
                        p.baseAddress,
                        p.count,
                        b.baseAddress,
                        b.count,
                        timeout,
                        stallSeconds,
                        &out
                    )
                }
            }
        }
        guard code == 0 else {
            let message = withUnsafeBytes(of: out.error) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw S3TransportError(url: url, message: message)
        }
        var responseHeaders = [String: String]()
        if let h = out.headers {
            let text = String(cString: h)
            for line in text.split(separator: "\r\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].drop { $0 == " " }
                responseHeaders[name] = String(value)
            }
        }
        let bytes = out.body.map { Array(UnsafeBufferPointer(start: $0, count: out.body_length)) } ?? []
        return S3Response(status: Int(out.status), headers: responseHeaders, body: bytes)
    }
}

/// Standard base64 (RFC 4648), for `Content-MD5`.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            let b0 = UInt32(bytes[i])
            let b1 = n > 1 ? UInt32(bytes[i + 1]) : 0
            let b2 = n > 2 ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(n > 1 ? alphabet[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(n > 2 ? alphabet[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
