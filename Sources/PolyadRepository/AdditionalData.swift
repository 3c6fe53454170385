import PolyadFormat

/// The additional authenticated data of every kind of sealed object: the one table of them. Each envelope is
/// bound to what it is, so a snapshot cannot be passed off as an index, nor one blob as another. The format
/// article lists the same bytes.
public enum AdditionalData {
    /// The store's config object.
    public static let config = Array("config".utf8)
    /// An index file.
    public static let index = Array("index".utf8)
    /// A snapshot.
    public static let snapshot = Array("snapshot".utf8)
    /// A lock.
    public static let lock = Array("lock".utf8)
    /// A pack's header.
    public static let packHeader = Array("pack header".utf8)
    /// A key slot's sealed master keys.
    public static let keySlot = Array("key slot".utf8)

    /// A blob: `blob`, its type byte and its id.
    public static func blob(type: BlobType, id: BlobID) -> [UInt8] {
        Array("blob".utf8) + [type.rawValue] + id.hash.bytes
    }
}
