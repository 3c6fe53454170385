import Foundation

/// How long S3 faults are retried: exponential backoff from `firstDelay`, doubling to `maxDelay`, each wait drawn
/// at random up to its bound (full jitter, so many clients do not retry in step), until `totalSeconds` have
/// passed since the first attempt (restic retries for up to 15 minutes; so does this by default).
public struct S3RetryPolicy: Sendable, Equatable {
    public var firstDelay: Double
    public var maxDelay: Double
    public var totalSeconds: Double

    public init(firstDelay: Double = 0.1, maxDelay: Double = 32, totalSeconds: Double = 900) {
        self.firstDelay = firstDelay
        self.maxDelay = maxDelay
        self.totalSeconds = totalSeconds
    }

    /// The bound of the wait before retry number `attempt` (1 for the first retry).
    public func bound(beforeRetry attempt: Int) -> Double {
        min(maxDelay, firstDelay * pow(2, Double(max(0, attempt - 1))))
    }
}

/// What to do with an answer.
public enum S3Verdict: Sendable, Equatable {
    case done
    /// A fault that may pass: 5xx, 429, SlowDown, a request timeout, a cut connection.
    case retry(String)
    /// An answer that retrying cannot change, with the message for the user (naming the fix).
    case fail(String)
}

extension S3Response {
    /// S3's error code (`<Code>NoSuchBucket</Code>`), if the body is an S3 error.
    public var errorCode: String? {
        let text = String(decoding: body, as: UTF8.self)
        guard let open = text.range(of: "<Code>"),
            let close = text.range(of: "</Code>", range: open.upperBound..<text.endIndex)
        else { return nil }
        return String(text[open.upperBound..<close.lowerBound])
    }
}

extension S3Client {
    /// What the answer to `method` on `key` means: done (2xx; 404 for GET, HEAD and DELETE, which callers read
    /// as "missing"; 416 for GET), a fault to retry, or a failure whose message says what to fix.
    public func verdict(_ r: S3Response, method: String, key: String) -> S3Verdict {
        let what = key.isEmpty ? "bucket \(endpoint.bucket)" : "\(endpoint.bucket)/\(key)"
        switch r.status {
        case 200..<300, 304: return .done
        case 404 where r.errorCode == "NoSuchBucket":
            return .fail(
                "the bucket \(endpoint.bucket) does not exist at \(endpoint.url): create it, or run "
                    + "`polyad init --create-bucket`, or fix backup.s3_bucket"
            )
        case 404 where method == "GET" || method == "HEAD" || method == "DELETE": return .done
        case 416 where method == "GET": return .done  // a range past the end: the caller says what that means
        case 301, 307,
            400 where r.errorCode == "AuthorizationHeaderMalformed" || r.errorCode == "PermanentRedirect":
            let region = r.headers["x-amz-bucket-region"].map { " (it is in \($0))" } ?? ""
            return .fail(
                "the bucket \(endpoint.bucket) is not in region \(endpoint.region)\(region): set s3.region to the "
                    + "bucket's region"
            )
        case 403:
            let code = r.errorCode ?? "AccessDenied"
            if code == "RequestTimeTooSkewed" {
                return .fail("S3 refused the request time (RequestTimeTooSkewed): set this machine's clock right")
            }
            return .fail(
                "S3 refused the access key for \(what) (\(code)): check s3.access_key_id and s3.secret_access_key, "
                    + "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the profile in ~/.aws/credentials, and that it "
                    + "may use this bucket"
            )
        case 408, 429, 500..<600: return .retry("S3 answered \(r.status)\(r.errorCode.map { " \($0)" } ?? "")")
        case 400 where r.errorCode == "RequestTimeout" || r.errorCode == "SlowDown":
            return .retry("S3 answered 400 \(r.errorCode!)")
        default:
            return .fail("S3 answered \(r.status)\(r.errorCode.map { " \($0)" } ?? "") for \(method) \(what)")
        }
    }

    /// `request`, retried through faults under `policy`; `sleep` waits (injectable for tests) and `log` hears of
    /// each retry. Throws the last fault once the policy's time is spent, or the failure at once.
    public func send(
        _ method: String,
        key: String = "",
        query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [],
        body: [UInt8] = [],
        policy: S3RetryPolicy = S3RetryPolicy(),
        sleep: (Double) -> Void = { Thread.sleep(forTimeInterval: $0) },
        log: (String) -> Void = { _ in }
    ) throws(S3Error) -> S3Response {
        let started = Date()
        var attempt = 0
        while true {
            let fault: String
            do {
                let r = try request(
                    method,
                    key: key,
                    query: query,
                    headers: headers,
                    body: body,
                    at: Int64(Date().timeIntervalSince1970)
                )
                switch verdict(r, method: method, key: key) {
                case .done: return r
                case .fail(let message): throw S3Error.failed(r.status, message)
                case .retry(let reason): fault = reason
                }
            } catch let e as S3TransportError {
                fault = e.message
            } catch let e as S3Error {
                throw e
            } catch {
                fault = "\(error)"
            }
            attempt += 1
            let wait = Double.random(in: 0...policy.bound(beforeRetry: attempt))
            if Date().timeIntervalSince(started) + wait > policy.totalSeconds {
                throw S3Error.unavailable(
                    "\(endpoint.url) (\(endpoint.bucket)): \(fault); gave up after \(attempt) attempts in "
                        + "\(Int(Date().timeIntervalSince(started))) s"
                )
            }
            log(
                "S3 \(method) \(key.isEmpty ? endpoint.bucket : key): \(fault); retry \(attempt) in \(String(format: "%.1f", wait)) s"
            )
            sleep(wait)
        }
    }
}
