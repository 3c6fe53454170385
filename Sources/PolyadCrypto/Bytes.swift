internal import CCryptoShim

/// Compares two byte strings in time that depends only on their lengths, not on where they differ.
///
/// Use it for tags, MACs and key checks. Lengths are not secret: different lengths return false at once.
/// The corresponding C function is `CRYPTO_memcmp`.
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    guard !a.isEmpty else { return true }
    return a.withUnsafeBytes { a in b.withUnsafeBytes { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) } }
        == 0
}
