import PolyadCrypto
import PolyadFileSystem
import PolyadFormat
import PolyadStorage

/// The master key of an open store, and the key slots that wrap it.
public struct MasterKey: Sendable {
    public let material: MasterKeyMaterial
    /// The key slot (its object name) that unlocked the store.
    public let slot: String
    let idMAC: HMACSHA256

    init(material: MasterKeyMaterial, slot: String) {
        self.material = material
        self.slot = slot
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

    static let aad = Array("key slot".utf8)

    /// Writes a new slot for `material` under `passphrase`; returns the slot's name.
    static func addSlot(material: MasterKeyMaterial, passphrase: [UInt8], backend: any Backend,
                        parameters: Parameters = .default) throws(RepositoryError) -> String {
        let salt = SecureRandom.bytes(32)
        let wrapping: [UInt8]
        do {
            wrapping = try KeyDerivation.scrypt(passphrase: passphrase, salt: salt, n: parameters.n, r: parameters.r,
                                                p: parameters.p, length: 32)
        } catch {
            throw RepositoryError(.io, "deriving the key from the passphrase failed: \(error)")
        }
        let sealed = Envelope.seal(material.encoded(), key: wrapping, aad: aad)
        let slot = KeySlot(created: Clock.now(), hostname: Accounts.hostName, username: Accounts.currentUserName,
                           n: parameters.n, r: parameters.r, p: parameters.p, salt: salt, data: sealed)
        let bytes = slot.encoded()
        let name = SHA256.hash(bytes).hexString
        try save(backend, ObjectHandle(kind: .keys, name: name), bytes)
        return name
    }

    /// Tries `passphrase` on every slot; throws `.wrongPassphrase` if none opens.
    static func unlock(passphrase: [UInt8], backend: any Backend) throws(RepositoryError) -> MasterKey {
        let slots: [ObjectInfo]
        do { slots = try backend.list(.keys) } catch { throw RepositoryError.storage(error) }
        if slots.isEmpty {
            throw RepositoryError(.damaged, "the store at \(backend.location) has no key slots (keys/ is empty); it cannot be opened")
        }
        for info in slots {
            guard let slot = try? KeySlot(decoding: load(backend, info.handle)) else { continue }
            guard let wrapping = try? KeyDerivation.scrypt(passphrase: passphrase, salt: slot.saltBytes, n: slot.n,
                                                            r: slot.r, p: slot.p, length: 32) else { continue }
            guard let plain = try? Envelope.open(slot.dataBytes, key: wrapping, aad: aad),
                  let material = try? MasterKeyMaterial(decoding: plain) else { continue }
            return MasterKey(material: material, slot: info.handle.name)
        }
        throw RepositoryError(.wrongPassphrase,
                              "wrong passphrase: no key slot of the store at \(backend.location) opens with it")
    }

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
