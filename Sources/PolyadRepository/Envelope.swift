import PolyadCrypto
import PolyadFormat
import Synchronization

/// The sealed form of every encrypted blob and object:
///
///     u8 version (1) | 16 salt | 12 nonce | ciphertext | 16 GCM tag
///
/// The AES-256-GCM key is `HMAC-SHA256(encryptionKey, "polyad/v1/envelope" || salt)`. A writer session draws
/// one random salt and counts nonces up from zero under it, so a nonce never repeats under one key; an object
/// sealed on its own gets a fresh salt and nonce zero. The additional data binds a blob to its type and id and
/// an object to its kind, so nothing can be swapped undetected.
public enum Envelope {
    public static let version: UInt8 = 1
    public static let saltSize = 16
    /// Bytes an envelope adds to its plaintext.
    public static let overhead = 1 + saltSize + AESGCM.nonceSize + AESGCM.tagSize
    static let label = "polyad/v1/envelope"

    /// The key is read in place (``KeyBytes``): the master key stays in its locked memory, uncopied.
    static func cipher(encryptionKey: some KeyBytes, salt: [UInt8]) -> AESGCM {
        AESGCM(key: encryptionKey.withKeyBytes { KeyDerivation.subkey(from: $0, label: label, context: salt) })
    }

    /// Seals an object on its own (fresh salt, nonce zero).
    public static func seal(_ plaintext: [UInt8], key: some KeyBytes, aad: [UInt8]) -> [UInt8] {
        plaintext.withUnsafeBytes { seal($0, key: key, aad: aad) }
    }

    /// Seals the bytes of `plaintext` on their own (for a plaintext that is not an array: key material).
    public static func seal(_ plaintext: UnsafeRawBufferPointer, key: some KeyBytes, aad: [UInt8]) -> [UInt8] {
        let salt = SecureRandom.bytes(saltSize)
        let nonce = [UInt8](repeating: 0, count: AESGCM.nonceSize)
        var out = [UInt8]()
        out.reserveCapacity(plaintext.count + overhead)
        out.append(version)
        out.append(contentsOf: salt)
        out.append(contentsOf: nonce)
        cipher(encryptionKey: key, salt: salt).seal(plaintext, nonce: nonce, aad: aad, appendingTo: &out)
        return out
    }

    /// Opens any envelope; throws `CryptoError.authenticationFailed` if it was altered or the key is wrong.
    public static func open(
        _ sealed: UnsafeRawBufferPointer,
        key: some KeyBytes,
        aad: [UInt8],
        expectedSize: Int = 0
    ) throws(CryptoError) -> [UInt8] {
        guard sealed.count >= overhead, sealed[0] == version else { throw CryptoError.authenticationFailed }
        let salt = Array(sealed[1..<(1 + saltSize)])
        let nonce = Array(sealed[(1 + saltSize)..<(1 + saltSize + AESGCM.nonceSize)])
        var out = [UInt8]()
        out.reserveCapacity(max(expectedSize, sealed.count - overhead))
        let body = UnsafeRawBufferPointer(rebasing: sealed[(1 + saltSize + AESGCM.nonceSize)...])
        try cipher(encryptionKey: key, salt: salt).open(body, nonce: nonce, aad: aad, appendingTo: &out)
        return out
    }

    public static func open(_ sealed: [UInt8], key: some KeyBytes, aad: [UInt8]) throws(CryptoError) -> [UInt8] {
        try sealed.withBytes { (b) throws(CryptoError) -> [UInt8] in try open(b, key: key, aad: aad) }
    }
}

/// Seals the blobs of one writer session: one random salt, a nonce counter, the subkey derived once.
public final class BlobSealer: Sendable {
    private let salt: [UInt8]
    private let cipher: AESGCM
    private let counter = Atomic<UInt64>(0)

    public init(encryptionKey: some KeyBytes) {
        salt = SecureRandom.bytes(Envelope.saltSize)
        cipher = Envelope.cipher(encryptionKey: encryptionKey, salt: salt)
    }

    /// Seals `plaintext` for the blob `id`, appending the envelope to `output`.
    public func seal(
        _ plaintext: UnsafeRawBufferPointer,
        type: BlobType,
        id: BlobID,
        appendingTo output: inout [UInt8]
    ) {
        let n = counter.add(1, ordering: .relaxed).oldValue
        var nonce = [UInt8](repeating: 0, count: AESGCM.nonceSize)
        withUnsafeBytes(of: n.bigEndian) { for i in 0..<8 { nonce[4 + i] = $0[i] } }
        output.reserveCapacity(output.count + plaintext.count + Envelope.overhead)
        output.append(Envelope.version)
        output.append(contentsOf: salt)
        output.append(contentsOf: nonce)
        cipher.seal(plaintext, nonce: nonce, aad: AdditionalData.blob(type: type, id: id), appendingTo: &output)
    }
}
