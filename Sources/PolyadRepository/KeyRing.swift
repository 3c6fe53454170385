import Foundation
import PolyadCrypto
import PolyadFileSystem
import PolyadFormat
import PolyadStorage

/// The master key of an open store, and the key slots that wrap it.
public struct MasterKey: Sendable {
    public let material: MasterKeyMaterial
    /// The key slot (its object name) that unlocked the store.
    public let slot: String
    /// Slots tried before ``slot`` and found damaged (`keys/<name>` and what is wrong): the store opened
    /// all the same. `polyad verify` checks every slot.
    public let damagedSlots: [DamagedObject]
    let idMAC: HMACSHA256

    init(material: MasterKeyMaterial, slot: String, damagedSlots: [DamagedObject] = []) {
        self.material = material
        self.slot = slot
        self.damagedSlots = damagedSlots
        idMAC = HMACSHA256(key: material.idKey)
    }

    var encryptionKey: [UInt8] { material.encryptionKey }
}

/// Creates, opens and manages key slots (`keys/<sha256>`): scrypt(passphrase) → key that seals the master key.
public enum KeyRing {
    /// scrypt parameters for new slots: N = 2^15, r = 8, p = 1 (~32 MiB, ~0.1 s); stored per slot.
    public struct Parameters: Sendable {
        public var n: UInt64, r: UInt64, p: UInt64
        public static let `default` = Parameters(n: 1 << 15, r: 8, p: 1)
    }

    /// Writes a new slot for `material` under `passphrase`; returns the slot's name.
    static func addSlot(
        material: MasterKeyMaterial,
        passphrase: [UInt8],
        backend: any Backend,
        parameters: Parameters = .default
    ) throws(RepositoryError) -> String {
        let salt = SecureRandom.bytes(32)
        let wrapping: [UInt8]
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
        let sealed = Envelope.seal(material.encoded(), key: wrapping, aad: AdditionalData.keySlot)
        let slot = KeySlot(
            created: Clock.now(),
            hostname: Accounts.hostName,
            username: Accounts.currentUserName,
            n: parameters.n,
            r: parameters.r,
            p: parameters.p,
            salt: salt,
            data: sealed
        )
        let bytes = slot.encoded()
        let name = SHA256.hash(bytes).hexString
        try save(backend, ObjectHandle(kind: .keys, name: name), bytes)
        return name
    }

    /// Tries `passphrase` on every slot of `slots` (the store's listing of `keys/`) and returns the master key of the first that opens. A slot that
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
            let wrapping: [UInt8]
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
            let plain: [UInt8]
            do {
                plain = try Envelope.open(data, key: wrapping, aad: AdditionalData.keySlot)
            } catch  where error.code == .authenticationFailed {
                continue  // the one failure that means "not this passphrase"
            } catch {
                failure = failure ?? RepositoryError(.io, "\(name): opening it failed: \(error)", cause: error)
                continue
            }
            do {
                let material = try MasterKeyMaterial(decoding: plain)
                return MasterKey(material: material, slot: info.handle.name, damagedSlots: damaged)
            } catch {
                damaged.append(DamagedObject(object: name, problem: "it opens, but holds no master key: \(error)"))
            }
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
    static let sealedMaterialSize = 1 + 3 * 32 + Envelope.overhead

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
