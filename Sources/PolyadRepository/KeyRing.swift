import Foundation
import PolyadChunker
import PolyadCrypto
import PolyadFileSystem
import PolyadFormat
import PolyadStorage

/// The master key of an open store, and the key slot that unlocked it.
///
/// Its material is held for the store's life in ``LockedBytes`` (one page): locked in RAM so it is never written
/// to swap, left out of core dumps, and wiped when the last copy of the key goes (best effort: see
/// ``isLocked``). The envelope code reads the encryption key there in place, with no copy per call. Not locked:
/// the keyed HMAC state OpenSSL makes from the id key (in OpenSSL's own memory), and the subkeys derived per
/// object or per writer session, which never reveal the master key.
public struct MasterKey: Sendable {
    /// The material as a key slot seals it: `u8 version (1) | 32 encryption key | 32 id key | 32 chunker seed`.
    let secret: LockedBytes
    /// The key slot (its object name) that unlocked the store.
    public let slot: String
    /// Slots tried before ``slot`` and found damaged (`keys/<name>` and what is wrong): the store opened
    /// all the same. `polyad verify` checks every slot.
    public let damagedSlots: [DamagedObject]
    let idMAC: HMACSHA256

    /// Bytes of master key material (`MasterKeyMaterial`'s encoding).
    static let materialSize = 97

    init(secret: LockedBytes, slot: String, damagedSlots: [DamagedObject] = []) {
        precondition(secret.count == Self.materialSize, "MasterKey: \(secret.count) bytes of material, not 97")
        self.secret = secret
        self.slot = slot
        self.damagedSlots = damagedSlots
        idMAC = secret.part(33..<65).withKeyBytes { HMACSHA256(key: $0) }
    }

    /// New master key material, drawn from the random number generator straight into locked memory.
    static func generate() -> LockedBytes {
        LockedBytes(count: materialSize) { out in
            out[0] = 1
            do throws(CryptoError) {
                try SecureRandom.fill(UnsafeMutableRawBufferPointer(rebasing: out[1...]))
            } catch {
                fatalError("\(error)")
            }
        }
    }

    /// The encryption key, lent in place to the envelope code.
    var encryptionKey: LockedBytes.Part { secret.part(1..<33) }

    /// The chunker's gear table, made from the seed through a short-lived copy (wiped at once):
    /// `GearTable` takes an array.
    func gearTable() -> GearTable {
        var seed = secret.part(65..<97).copiedBytes()
        defer { cleanse(&seed) }
        return GearTable(seed: seed)
    }

    /// Whether the material is locked in RAM; false where `mlock` was refused (`RLIMIT_MEMLOCK`), and the
    /// store works all the same.
    public var isLocked: Bool { secret.isLocked }
}

/// Creates, opens and manages key slots (`keys/<sha256>`): scrypt(passphrase) → key that seals the master key.
public enum KeyRing {
    /// scrypt parameters for new slots: N = 2^15, r = 8, p = 1 (~32 MiB, ~0.1 s); stored per slot.
    public struct Parameters: Sendable {
        public var n: UInt64, r: UInt64, p: UInt64
        public static let `default` = Parameters(n: 1 << 15, r: 8, p: 1)
    }

    /// Wipes passphrase or key bytes the caller owns (`OPENSSL_cleanse`) and empties the array; best effort,
    /// see ``PolyadCrypto/cleanse(_:)``. For the layers above, which do not import PolyadCrypto.
    public static func wipe(_ bytes: inout [UInt8]) {
        cleanse(&bytes)
    }

    /// Why `label` cannot label a key slot (`.invalidArgument`, exit 2), checked before anything is written.
    public static func checkLabel(_ label: String?) throws(RepositoryError) {
        guard let label, let problem = KeySlot.problem(withLabel: label) else { return }
        throw RepositoryError(.invalidArgument, "--label: \(problem); nothing was written")
    }

    /// Writes a new slot for the master key `secret` under `passphrase`, with `label` (checked by
    /// ``checkLabel(_:)``); returns the slot's name.
    static func addSlot(
        secret: LockedBytes,
        passphrase: [UInt8],
        label: String? = nil,
        backend: any Backend,
        parameters: Parameters = .default
    ) throws(RepositoryError) -> String {
        try checkLabel(label)
        let salt = SecureRandom.bytes(32)
        var wrapping: [UInt8]
        do {
            wrapping = try KeyDerivation.scrypt(
                passphrase: passphrase,
                salt: salt,
                n: parameters.n,
                r: parameters.r,
                p: parameters.p,
                length: 32
            )
        } catch {
            throw RepositoryError(.io, "deriving the key from the passphrase failed: \(error)")
        }
        // The material is sealed from its locked memory: no plain copy of it is made.
        let sealed = secret.withUnsafeBytes { Envelope.seal($0, key: wrapping, aad: AdditionalData.keySlot) }
        cleanse(&wrapping)
        let slot = KeySlot(
            created: Clock.now(),
            hostname: Accounts.hostName,
            username: Accounts.currentUserName,
            n: parameters.n,
            r: parameters.r,
            p: parameters.p,
            salt: salt,
            data: sealed,
            label: label
        )
        let bytes = slot.encoded()
        let name = SHA256.hash(bytes).hexString
        try save(backend, ObjectHandle(kind: .keys, name: name), bytes)
        return name
    }

    /// Tries `passphrase` on every slot of `slots` (the store's listing of `keys/`) and returns the master key of
    /// the first that opens; ``MasterKey/slot`` names that slot (the one the key listing's "last used" is
    /// recorded for). The material goes from the opened envelope into locked memory, and the plain copy and
    /// the scrypt output are wiped. A slot that
    /// cannot open for another reason keeps its cause: a read error says why (storage unreachable 14, no
    /// space 15, else 1), as does a failing scrypt (1); a damaged slot (not a key slot, or its content does
    /// not match its SHA-256 name) is named, `keys/<name>` (13). Either is only reported when no slot opens
    /// (a damaged slot beside one that opens is noted in ``MasterKey/damagedSlots``). It is
    /// `.wrongPassphrase` only when every slot was tried and failed to authenticate with it.
    static func unlock(
        passphrase: [UInt8],
        backend: any Backend,
        slots: [ObjectInfo]
    ) throws(RepositoryError)
        -> MasterKey
    {
        if slots.isEmpty {
            throw RepositoryError(
                .damaged,
                "the store at \(backend.location) has no key slots (keys/ is empty); it cannot be opened"
            )
        }
        var failure: RepositoryError?
        var damaged = [DamagedObject]()
        for info in slots {
            let name = "keys/\(info.handle.name)"
            let bytes: [UInt8]
            do {
                bytes = try backend.load(info.handle, offset: 0, length: nil)
            } catch  where error.code == .notFound {
                continue  // removed since the listing (`polyad key remove` elsewhere): not a slot any more
            } catch {
                if error.code == .unreachable { throw RepositoryError.storage(error) }  // the others fail alike
                failure = failure ?? RepositoryError.storage(error)
                continue
            }
            let slot: KeySlot
            let salt: [UInt8]
            let data: [UInt8]
            do throws(RepositoryError) {
                (slot, salt, data) = try checkedSlot(bytes, name: info.handle.name)
            } catch {
                damaged.append(DamagedObject(object: name, problem: error.message))
                continue
            }
            var wrapping: [UInt8]
            do {
                wrapping = try KeyDerivation.scrypt(
                    passphrase: passphrase,
                    salt: salt,
                    n: slot.n,
                    r: slot.r,
                    p: slot.p,
                    length: 32
                )
            } catch {
                // Parameters out of range (a foreign writer) or too little memory: the cause is in the detail.
                failure =
                    failure
                    ?? RepositoryError(
                        .io,
                        "\(name): deriving its key from the passphrase failed: \(error)",
                        cause: error
                    )
                continue
            }
            var plain: [UInt8]
            do {
                defer { cleanse(&wrapping) }
                plain = try Envelope.open(data, key: wrapping, aad: AdditionalData.keySlot)
            } catch  where error.code == .authenticationFailed {
                continue  // the one failure that means "not this passphrase"
            } catch {
                failure = failure ?? RepositoryError(.io, "\(name): opening it failed: \(error)", cause: error)
                continue
            }
            defer { cleanse(&plain) }
            // MasterKeyMaterial's layout: version 1, then the three keys.
            guard plain.count == MasterKey.materialSize, plain[0] == 1 else {
                let error = FormatError("master key", "unexpected length or version")
                damaged.append(DamagedObject(object: name, problem: "it opens, but holds no master key: \(error)"))
                continue
            }
            let secret = plain.withUnsafeBytes { LockedBytes(copying: $0) }
            return MasterKey(secret: secret, slot: info.handle.name, damagedSlots: damaged)
        }
        if let failure { throw failure }
        if let first = damaged.first {
            let others = damaged.count > 1 ? " (and \(damaged.count - 1) more damaged slot(s))" : ""
            throw RepositoryError(
                .damaged,
                "damaged key slot \(first.object): \(first.problem)\(others); no other key "
                    + "slot of the store at \(backend.location) opens with this passphrase. Restore the slot "
                    + "from a copy of the store, or open with the passphrase of another slot"
            )
        }
        throw RepositoryError(
            .wrongPassphrase,
            "wrong passphrase: no key slot of the store at \(backend.location) opens with it"
        )
    }

    /// Decodes a key slot and checks it without the passphrase: its name is the SHA-256 of its bytes, it is
    /// a version 1 scrypt slot, and its salt and sealed key are base64 of the lengths the format gives.
    static func checkedSlot(
        _ bytes: [UInt8],
        name: String
    ) throws(RepositoryError) -> (KeySlot, salt: [UInt8], data: [UInt8]) {
        guard SHA256.hash(bytes).hexString == name else {
            throw RepositoryError(.damaged, "its content does not match its name (SHA-256)")
        }
        let slot: KeySlot
        do { slot = try KeySlot(decoding: bytes) } catch {
            throw RepositoryError(.damaged, "not a key slot: \(error)")
        }
        guard let salt = Data(base64Encoded: slot.salt).map(Array.init), salt.count == 32 else {
            throw RepositoryError(.damaged, "its salt is not base64 of 32 bytes")
        }
        guard let data = Data(base64Encoded: slot.data).map(Array.init), data.count == sealedMaterialSize else {
            throw RepositoryError(.damaged, "its sealed key is not base64 of \(sealedMaterialSize) bytes")
        }
        return (slot, salt, data)
    }

    /// The master key material (version byte and three 32-byte keys) in its envelope.
    static let sealedMaterialSize = MasterKey.materialSize + Envelope.overhead

    static func load(_ backend: any Backend, _ handle: ObjectHandle) throws(RepositoryError) -> [UInt8] {
        do { return try backend.load(handle, offset: 0, length: nil) } catch { throw RepositoryError.storage(error) }
    }

    static func save(_ backend: any Backend, _ handle: ObjectHandle, _ bytes: [UInt8]) throws(RepositoryError) {
        do {
            try bytes.withBytes { (b) throws(StorageError) in try backend.save(handle, b) }
        } catch { throw RepositoryError.storage(error) }
    }
}

extension Array where Element == UInt8 {
    var hexString: String { HexCoding.encode(self) }
}
