import PolyadStorage

/// A store in an S3 bucket under `prefix`: `config`, `keys/<name>`, `snapshots/<name>`, `index/<name>`,
/// `locks/<name>` and `data/<first two hex digits>/<name>`, the local layout as keys. A PUT is atomic on S3 (an
/// object is visible whole or not at all), so saving needs no temporary name.
public final class S3Backend: Backend {
    public let client: S3Client
    /// The key prefix, empty or ending in `/`.
    public let prefix: String
    public let policy: S3RetryPolicy
    /// Objects larger than this go up as a multipart upload, in parts of this size (at least 5 MiB, S3's minimum).
    public let multipartThreshold: Int
    private let log: @Sendable (String) -> Void

    public init(
        client: S3Client,
        prefix: String = "",
        policy: S3RetryPolicy = S3RetryPolicy(),
        multipartThreshold: Int = 64 << 20,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.client = client
        self.prefix = prefix.isEmpty || prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.policy = policy
        self.multipartThreshold = max(5 << 20, multipartThreshold)
        self.log = log
    }

    public var location: String { "s3://\(client.endpoint.bucket)/\(prefix)" }

    /// Every request is a round trip to the server.
    public var readsAreRemote: Bool { true }

    /// The object key of `handle`.
    func key(_ handle: ObjectHandle) -> String {
        switch handle.kind {
        case .config: prefix + "config"
        case .data: "\(prefix)data/\(handle.name.prefix(2))/\(handle.name)"
        default: "\(prefix)\(handle.kind.rawValue)/\(handle.name)"
        }
    }

    private func fail(_ error: S3Error, _ handle: ObjectHandle?) -> StorageError {
        let code: StorageError.Code =
            switch error {
            case .transport, .unavailable: .unreachable
            case .failed(301, _), .failed(307, _), .failed(400, _), .failed(403, _), .failed(404, _): .misconfigured
            case .malformed: .damaged
            default: .io
            }
        return StorageError(code: code, handle: handle, location: location, message: "\(error)")
    }

    private func send(
        _ method: String,
        _ handle: ObjectHandle?,
        key: String,
        query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [],
        body: [UInt8] = []
    ) throws(StorageError) -> S3Response {
        if let handle, !handle.isValid {
            throw StorageError(
                code: .invalidRequest,
                handle: handle,
                location: location,
                message: "invalid object name"
            )
        }
        do {
            return try client.send(
                method,
                key: key,
                query: query,
                headers: headers,
                body: body,
                policy: policy,
                log: log
            )
        } catch {
            throw fail(error, handle)
        }
    }

    private func notFound(_ handle: ObjectHandle) -> StorageError {
        StorageError(code: .notFound, handle: handle, location: location, message: "no such object")
    }

    public func create() throws(StorageError) {
        if try exists() {
            throw StorageError(
                code: .alreadyExists,
                handle: .config,
                location: location,
                message: "a store exists here"
            )
        }
    }

    public func exists() throws(StorageError) -> Bool {
        try send("HEAD", .config, key: key(.config)).status == 200
    }

    public func save(_ handle: ObjectHandle, _ data: UnsafeRawBufferPointer) throws(StorageError) {
        // Every object but the config is named by the SHA-256 of its bytes (locks are replaced anyway), so one
        // already under its name holds these bytes, or is damaged and this heals it: it is written without
        // asking first, one request per object.
        if handle.kind == .config {
            let head = try send("HEAD", handle, key: key(handle))
            if head.status == 200 {
                if head.headers["content-length"].flatMap(Int.init) == data.count { return }
                throw StorageError(
                    code: .alreadyExists,
                    handle: handle,
                    location: location,
                    message: "an object of another size exists under this name"
                )
            }
        }
        if data.count > multipartThreshold {
            try saveInParts(handle, data)
        } else {
            _ = try send("PUT", handle, key: key(handle), body: Array(data))
        }
    }

    /// A multipart upload: started, its parts sent (each with its own Content-MD5), then completed, which makes
    /// the object visible whole; any failure aborts the upload so no part is left behind.
    private func saveInParts(_ handle: ObjectHandle, _ data: UnsafeRawBufferPointer) throws(StorageError) {
        let objectKey = key(handle)
        let started = try send("POST", handle, key: objectKey, query: [("uploads", "")])
        guard let uploadID = S3XML.value(of: "UploadId", in: started.body) else {
            throw StorageError(
                code: .io,
                handle: handle,
                location: location,
                message: "S3 started no multipart upload (no UploadId in its answer)"
            )
        }
        do throws(StorageError) {
            var tags: [String] = []
            var offset = 0
            var number = 1
            while offset < data.count {
                let end = min(data.count, offset + multipartThreshold)
                let part = try send(
                    "PUT",
                    handle,
                    key: objectKey,
                    query: [("partNumber", String(number)), ("uploadId", uploadID)],
                    body: Array(data[offset..<end])
                )
                guard let tag = part.headers["etag"] else {
                    throw StorageError(
                        code: .io,
                        handle: handle,
                        location: location,
                        message: "S3 gave no ETag for part \(number)"
                    )
                }
                tags.append(tag)
                offset = end
                number += 1
            }
            let parts = tags.enumerated().map {
                "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\(S3XML.escape($0.element))</ETag></Part>"
            }
            let body = Array(("<CompleteMultipartUpload>" + parts.joined() + "</CompleteMultipartUpload>").utf8)
            let done = try send("POST", handle, key: objectKey, query: [("uploadId", uploadID)], body: body)
            // S3 may answer 200 and report the failure in the body.
            if let code = S3XML.value(of: "Code", in: done.body) {
                throw StorageError(
                    code: .io,
                    handle: handle,
                    location: location,
                    message: "S3 did not complete the multipart upload: \(code)"
                )
            }
        } catch {
            _ = try? send("DELETE", handle, key: objectKey, query: [("uploadId", uploadID)])
            throw error
        }
    }

    /// Creates the bucket (`polyad init --create-bucket`), in the endpoint's region; a bucket this key already
    /// owns is fine.
    public func createBucket() throws(StorageError) {
        let region = client.endpoint.region
        let body =
            region == "us-east-1"
            ? []
            : Array(
                ("<CreateBucketConfiguration><LocationConstraint>\(S3XML.escape(region))</LocationConstraint>"
                    + "</CreateBucketConfiguration>").utf8
            )
        do {
            _ = try client.send("PUT", body: body, policy: policy, log: log)
        } catch {
            if case .failed(409, let message) = error {
                if message.contains("BucketAlreadyOwnedByYou") { return }
                throw StorageError(
                    code: .misconfigured,
                    handle: nil,
                    location: location,
                    message: "the bucket name \(client.endpoint.bucket) is taken by another account; choose another "
                        + "backup.s3_bucket"
                )
            }
            throw fail(error, nil)
        }
    }

    public func load(_ handle: ObjectHandle, offset: Int64, length: Int?) throws(StorageError) -> [UInt8] {
        guard offset >= 0, (length ?? 0) >= 0 else {
            throw StorageError(code: .invalidRequest, handle: handle, location: location, message: "negative range")
        }
        if length == 0 {
            // No byte range can be empty: the size says whether the range lies inside the object.
            guard try size(handle) >= offset else { throw damaged(handle, offset: offset, length: 0) }
            return []
        }
        var range = "bytes=\(offset)-"
        if let length {
            let (end, overflow) = offset.addingReportingOverflow(Int64(length))
            if overflow { throw damaged(handle, offset: offset, length: length) }
            range += String(end - 1)
        }
        let r = try send("GET", handle, key: key(handle), headers: [("Range", range)])
        switch r.status {
        case 404: throw notFound(handle)
        case 416:
            // Past the end: an offset at the very end of the whole object reads nothing.
            if length == nil, try size(handle) == offset { return [] }
            throw damaged(handle, offset: offset, length: length)
        default:
            if let length, r.body.count != length { throw damaged(handle, offset: offset, length: length) }
            if offset > 0 && r.status == 200 {
                // A server that ignored the range sent the whole object.
                return Array(r.body.dropFirst(Int(offset)))
            }
            return r.body
        }
    }

    private func damaged(_ handle: ObjectHandle, offset: Int64, length: Int?) -> StorageError {
        StorageError(
            code: .damaged,
            handle: handle,
            location: location,
            message: "shorter than the \(length.map { "\($0) bytes" } ?? "bytes") asked for at offset \(offset)"
        )
    }

    public func size(_ handle: ObjectHandle) throws(StorageError) -> Int64 {
        let r = try send("HEAD", handle, key: key(handle))
        guard r.status == 200 else { throw notFound(handle) }
        guard let size = r.headers["content-length"].flatMap(Int64.init) else {
            throw StorageError(code: .io, handle: handle, location: location, message: "S3 gave no Content-Length")
        }
        return size
    }

    public func remove(_ handle: ObjectHandle) throws(StorageError) {
        guard try send("HEAD", handle, key: key(handle)).status == 200 else { throw notFound(handle) }
        _ = try send("DELETE", handle, key: key(handle))
    }

    public func list(_ kind: ObjectKind) throws(StorageError) -> [ObjectInfo] {
        if kind == .config {
            let head = try send("HEAD", .config, key: key(.config))
            guard head.status == 200 else { return [] }
            return [ObjectInfo(handle: .config, size: head.headers["content-length"].flatMap(Int64.init) ?? 0)]
        }
        let objects: [S3ListPage.Object]
        do {
            objects = try client.list(prefix: "\(prefix)\(kind.rawValue)/", policy: policy, log: log)
        } catch {
            throw fail(error, nil)
        }
        return objects.compactMap { object in
            let name = String(object.key.split(separator: "/").last ?? "")
            let handle = ObjectHandle(kind: kind, name: name)
            guard handle.isValid, key(handle) == object.key else { return nil }
            return ObjectInfo(handle: handle, size: object.size)
        }
    }
}
