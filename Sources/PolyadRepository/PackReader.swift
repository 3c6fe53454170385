import PolyadFormat
import PolyadStorage

/// Reads one pack the way the format article describes it: the trailer, the sealed header it points at, and
/// blobs at their offsets. `verify` uses it; prune and repair will.
struct PackReader {
    let repository: Repository
    let handle: ObjectHandle

    /// The pack's id (its name).
    var id: PackID { PackID(Hash256(hex: handle.name)!) }

    /// The header of the pack of `size` bytes, read through its trailer (two small range reads).
    func header(size: Int64) throws -> PackHeader {
        let trailer = try repository.backend.load(
            handle,
            offset: size - Int64(PackLayout.trailerLength),
            length: PackLayout.trailerLength
        )
        let range = try PackLayout.headerRange(packLength: Int(size), trailer: trailer)
        let sealed = try repository.backend.load(handle, offset: Int64(range.lowerBound), length: range.count)
        return try openHeader(sealed)
    }

    /// The header of a pack whose bytes are all in memory.
    func header(in bytes: [UInt8]) throws -> PackHeader {
        guard bytes.count >= PackLayout.trailerLength else { throw FormatError("pack", "shorter than its trailer") }
        let range = try PackLayout.headerRange(
            packLength: bytes.count,
            trailer: Array(bytes.suffix(PackLayout.trailerLength))
        )
        return try openHeader(Array(bytes[range]))
    }

    /// The sealed bytes of the blob `entry` describes, read on their own.
    func sealedBlob(_ entry: PackEntry) throws -> [UInt8] {
        let sealed = try repository.backend.load(handle, offset: Int64(entry.offset), length: Int(entry.length))
        guard sealed.count == Int(entry.length) else { throw RepositoryError(.damaged, "cut off") }
        return sealed
    }

    /// What is wrong with the sealed blob `entry` describes, or nil: it must authenticate, decompress and have
    /// the id the entry gives.
    func problem(with sealed: [UInt8], _ entry: PackEntry) -> String? {
        let location = BlobLocation(
            pack: id,
            type: entry.type,
            offset: entry.offset,
            length: entry.length,
            rawLength: entry.rawLength
        )
        do {
            let plain = try repository.openBlob(sealed, id: entry.id, location: location)
            if repository.blobID(plain) != entry.id {
                return "\(entry.type) blob \(entry.id.shortHex) has the wrong content for its id"
            }
            return nil
        } catch {
            return "\(entry.type) blob \(entry.id.shortHex) at offset \(entry.offset) does not authenticate"
        }
    }

    private func openHeader(_ sealed: [UInt8]) throws -> PackHeader {
        try PackHeader(
            decoding: try Envelope.open(sealed, key: repository.key.encryptionKey, aad: AdditionalData.packHeader)
        )
    }
}
