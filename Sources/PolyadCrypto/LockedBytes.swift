internal import CCryptoShim
internal import Glibc

/// Key bytes lent to a function for the length of one call, without a copy: an array, or ``LockedBytes``.
///
/// The envelope code takes its key this way, so the master key can stay in locked memory and still be read
/// in place on every call (no copy of it per blob).
public protocol KeyBytes: Sendable {
    /// Calls `body` with the key's bytes, valid only during the call.
    func withKeyBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R
}

extension Array: KeyBytes where Element == UInt8 {
    public func withKeyBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var result: Result<R, E>?
        withUnsafeBytes { b in
            do throws(E) { result = .success(try body(b)) } catch { result = .failure(error) }
        }
        return try result!.get()
    }
}

/// Secret bytes kept out of swap and core dumps: for key material that lives as long as an open store.
///
/// The bytes sit in a private anonymous mapping of whole pages of their own, so the calls on it touch nothing
/// else: locked into RAM with `mlock(2)` (never written to swap) and left out of core dumps with
/// `madvise(MADV_DONTDUMP)`. Both are best effort: where they fail (`RLIMIT_MEMLOCK` too low for an
/// unprivileged user, a kernel without the advice) the bytes are kept all the same, and ``isLocked`` says so;
/// nothing is logged. When the value goes away the bytes are wiped with `OPENSSL_cleanse` (a write the compiler
/// cannot drop), then unlocked and unmapped.
///
/// The calls are this process's memory management, not I/O: they cannot be interrupted (no `EINTR`) and take
/// no paths, so they are made here directly rather than through `PolyadFileSystem`.
///
/// `@unchecked Sendable` is safe: the bytes are written only by the initializer, before the value can be
/// shared, and only read afterwards; the mapping is released only in `deinit`, when nobody holds the value.
public final class LockedBytes: @unchecked Sendable, KeyBytes {
    /// How many bytes it holds.
    public let count: Int
    /// Whether `mlock` kept the pages in RAM (false when the memory lock limit refused it).
    public let isLocked: Bool
    /// The `errno` of a failed `mlock` (`EPERM`, `ENOMEM`, `EAGAIN`), else 0.
    public let lockError: Int32
    private let base: UnsafeMutableRawPointer
    private let mappedSize: Int

    /// Maps locked pages for `count` bytes and lets `body` write them (they start zeroed). If `body` throws,
    /// what it wrote is wiped and the pages released before the error goes on.
    public init<E: Error>(
        count: Int,
        initializingWith body: (UnsafeMutableRawBufferPointer) throws(E) -> Void
    ) throws(E) {
        precondition(count >= 0, "LockedBytes: negative count \(count)")
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let size = max(1, (count + page - 1) / page) * page
        guard let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            mapped != MAP_FAILED
        else {
            fatalError("LockedBytes: cannot map \(size) bytes of memory (errno \(errno)): the system is out of memory")
        }
        // Before the secret is written: no moment where it sits in pages that may be swapped or dumped.
        let locked = mlock(mapped, size) == 0
        let lockError = locked ? 0 : errno
        _ = madvise(mapped, size, MADV_DONTDUMP)
        do throws(E) {
            try body(UnsafeMutableRawBufferPointer(start: mapped, count: count))
        } catch {
            Self.release(mapped, size: size, locked: locked)
            throw error
        }
        self.count = count
        self.base = mapped
        self.mappedSize = size
        self.isLocked = locked
        self.lockError = lockError
    }

    /// Copies `bytes` into locked memory. The caller should wipe its own copy (``cleanse(_:)``) if it owns one.
    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count) { (out: UnsafeMutableRawBufferPointer) in
            if let from = bytes.baseAddress, bytes.count > 0 {
                out.baseAddress!.copyMemory(from: from, byteCount: bytes.count)
            }
        }
    }

    /// `count` random bytes from OpenSSL's CSPRNG, drawn straight into locked memory (no copy anywhere else).
    /// Stops the process if the random number generator is broken, as ``SecureRandom/bytes(_:)`` does.
    public static func random(count: Int) -> LockedBytes {
        LockedBytes(count: count) { out in
            do throws(CryptoError) { try SecureRandom.fill(out) } catch { fatalError("\(error)") }
        }
    }

    deinit {
        Self.release(base, size: mappedSize, locked: isLocked)
    }

    private static func release(_ base: UnsafeMutableRawPointer, size: Int, locked: Bool) {
        cleanse(UnsafeMutableRawBufferPointer(start: base, count: size))
        if locked { _ = munlock(base, size) }
        _ = munmap(base, size)
    }

    /// Calls `body` with the bytes, valid only during the call.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    public func withKeyBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes(body)
    }

    /// The bytes `range` of this buffer, lent as a key (it keeps the buffer alive).
    public func part(_ range: Range<Int>) -> Part {
        precondition(
            range.lowerBound >= 0 && range.upperBound <= count,
            "LockedBytes: \(range) is outside 0..<\(count)"
        )
        return Part(owner: self, range: range)
    }

    /// A part of a ``LockedBytes``: one key of several kept in one locked page.
    public struct Part: KeyBytes {
        public let owner: LockedBytes
        public let range: Range<Int>

        public func withKeyBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
            try owner.withUnsafeBytes { (all) throws(E) -> R in
                try body(UnsafeRawBufferPointer(rebasing: all[range]))
            }
        }

        /// A copy of the bytes in an ordinary array, for an API that takes nothing else; wipe it with
        /// ``cleanse(_:)`` when done.
        public func copiedBytes() -> [UInt8] {
            withKeyBytes { Array($0) }
        }
    }
}

/// Overwrites the bytes of `bytes` with zeros in a way the compiler cannot drop (`OPENSSL_cleanse`), then
/// empties it: for passphrases and keys held in an array this code owns.
///
/// Best effort: it reaches only the array's current storage. Copies the array made before (a shared buffer is
/// copied here rather than written, copy-on-write) or that grew out of it are not reached, and a Swift `String`
/// cannot be wiped at all.
public func cleanse(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { cleanse($0) }
    bytes = []
}

/// Overwrites `buffer` with zeros in a way the compiler cannot drop (`OPENSSL_cleanse`).
public func cleanse(_ buffer: UnsafeMutableRawBufferPointer) {
    if let base = buffer.baseAddress, buffer.count > 0 { OPENSSL_cleanse(base, buffer.count) }
}
