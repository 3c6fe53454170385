import PolyadCrypto
import PolyadFormat

/// The content hash shown as the extended attribute `user.polyad.hash`.
public enum ContentHash {
    /// `user.polyad.hash`: readable by name on every snapshot file, never listed.
    public static let attributeName = Array("user.polyad.hash".utf8)

    /// SHA-256 of the file's piece list as its tree stores it (each chunk's keyed id and length, each hole's
    /// length), in hex. Equal contents in one store have equal hashes; working it out costs no data I/O.
    public static func of(_ n: Node) -> String {
        var w = BinaryWriter(capacity: n.content.count * 40 + 8)
        Tree.writeContent(n.content, to: &w)
        return HexCoding.encode(SHA256.hash(w.bytes))
    }
}
