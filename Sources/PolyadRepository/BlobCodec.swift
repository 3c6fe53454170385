import PolyadCompression
import PolyadCrypto
import PolyadFormat

/// A blob's way into a pack and back out, both directions in one place so they cannot drift apart.
///
/// Encoding compresses with zlib at the configured level when it pays: not at level 0, not when the bytes
/// look random (`Compressibility`), not when deflate would not shrink them. It then seals the result
/// (AES-256-GCM, ``AdditionalData/blob(type:id:)``). Decoding opens and authenticates the envelope. A
/// plaintext as long as the blob's raw length was stored as it is; anything shorter is a zlib stream to
/// inflate.
struct BlobCodec: Sendable {
    /// Seals with one salt per writer and a counter nonce.
    let sealer: BlobSealer
    /// zlib level 0...9.
    let level: Int32

    init(encryptionKey: some KeyBytes, level: Int) {
        sealer = BlobSealer(encryptionKey: encryptionKey)
        self.level = Int32(max(0, min(9, level)))
    }

    /// The sealed envelope of `plain`, the blob `id` of `type`.
    func encode(_ plain: [UInt8], type: BlobType, id: BlobID) -> [UInt8] {
        var sealed = [UInt8]()
        plain.withUnsafeBytes { buf in
            if level > 0, !Compressibility.isLikelyIncompressible(buf) {
                var compressed = [UInt8]()
                // The level is clamped to 0...9, so a failure is zlib's own (memory): the blob is then stored
                // as it is, which is always valid, just larger.
                if (try? Zlib.compress(buf, level: level, appendingTo: &compressed)) == true {
                    compressed.withUnsafeBytes { sealer.seal($0, type: type, id: id, appendingTo: &sealed) }
                    return
                }
            }
            sealer.seal(buf, type: type, id: id, appendingTo: &sealed)
        }
        return sealed
    }

    /// The plaintext of the sealed blob `id` found at `location`.
    ///
    /// - Throws: ``RepositoryError`` (damaged, naming the pack) when it does not authenticate or inflate.
    static func decode(
        _ sealed: [UInt8],
        key: some KeyBytes,
        id: BlobID,
        location: BlobLocation
    )
        throws(RepositoryError) -> [UInt8]
    {
        let plain: [UInt8]
        do {
            plain = try Envelope.open(sealed, key: key, aad: AdditionalData.blob(type: location.type, id: id))
        } catch {
            throw RepositoryError.damaged(
                "data/\(location.pack.hash.hex)",
                "\(location.type) blob \(id.shortHex) at offset \(location.offset) does not authenticate"
            )
        }
        if plain.count == Int(location.rawLength) { return plain }
        var out = [UInt8]()
        do {
            try plain.withUnsafeBytes { b in
                try Zlib.decompress(b, expectedSize: Int(location.rawLength), appendingTo: &out)
            }
        } catch {
            throw RepositoryError.damaged(
                "data/\(location.pack.hash.hex)",
                "blob \(id.shortHex) does not decompress: \(error)"
            )
        }
        return out
    }
}
