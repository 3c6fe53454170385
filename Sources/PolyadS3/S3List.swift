/// One page of a ListObjectsV2 answer.
public struct S3ListPage: Sendable, Equatable {
    public struct Object: Sendable, Equatable {
        public var key: String
        public var size: Int64
    }

    public var objects: [Object]
    /// Set when the listing goes on: the `continuation-token` of the next request.
    public var nextContinuationToken: String?

    /// Reads the XML of a ListObjectsV2 answer: each `<Contents>`'s `<Key>` and `<Size>`, and
    /// `<NextContinuationToken>` when `<IsTruncated>` is true. Entities (`&amp;`, `&#38;`, `&#x26;`, ...) are
    /// decoded. Nil if the text is not such an answer.
    public static func parse(_ xml: [UInt8]) -> S3ListPage? {
        let text = String(decoding: xml, as: UTF8.self)
        guard text.contains("<ListBucketResult") else { return nil }
        var objects = [Object]()
        for contents in S3XML.elements("Contents", in: Substring(text)) {
            guard let key = S3XML.elements("Key", in: contents).first else { return nil }
            let size = S3XML.elements("Size", in: contents).first.flatMap { Int64($0) } ?? 0
            objects.append(Object(key: S3XML.decodeEntities(key), size: size))
        }
        let truncated = S3XML.elements("IsTruncated", in: Substring(text)).first == "true"
        let token =
            truncated
            ? S3XML.elements("NextContinuationToken", in: Substring(text)).first.map(S3XML.decodeEntities) : nil
        if truncated && token == nil { return nil }
        return S3ListPage(objects: objects, nextContinuationToken: token)
    }
}

extension S3Client {
    /// Every object under `prefix`, page by page (`max-keys` per page, 1,000 by default as S3 gives), each
    /// page retried through faults as ``send(_:key:query:headers:body:policy:sleep:log:)`` does.
    public func list(
        prefix: String,
        pageSize: Int = 1000,
        policy: S3RetryPolicy = S3RetryPolicy(),
        log: (String) -> Void = { _ in }
    ) throws(S3Error) -> [S3ListPage.Object] {
        var all = [S3ListPage.Object]()
        var token: String?
        repeat {
            var query: [(name: String, value: String)] = [
                ("list-type", "2"), ("prefix", prefix), ("max-keys", String(pageSize)),
            ]
            if let token { query.append(("continuation-token", token)) }
            let response = try send("GET", query: query, policy: policy, log: log)
            guard response.status == 200 else {
                throw .status(response.status, String(decoding: response.body, as: UTF8.self))
            }
            guard let page = S3ListPage.parse(response.body) else {
                throw .malformed(
                    "the listing of \(prefix.isEmpty ? "the bucket" : prefix) is not a ListObjectsV2 answer"
                )
            }
            all += page.objects
            token = page.nextContinuationToken
        } while token != nil
        return all
    }
}
