import Synchronization

/// What the mount has done so far, counted as it happens: reads, decodes, and damaged data (counted, and
/// logged one line each). Shared by the reader, the decoded chunks and trees, and the control files.
final class MountActivity: Sendable {
    struct Figures {
        var reads = 0
        var bytesRead: UInt64 = 0
        var readErrors = 0
        var lastError: String?
        var decodes = 0
    }

    private let figures = Mutex(Figures())
    /// Where damaged reads are reported (one line each).
    private let log: @Sendable (String) -> Void

    init(log: @escaping @Sendable (String) -> Void) { self.log = log }

    /// One read request served, of `bytes` bytes.
    func recordRead(bytes: Int) {
        figures.withLock {
            $0.reads += 1
            $0.bytesRead += UInt64(bytes)
        }
    }

    /// One chunk decrypted and decompressed.
    func recordDecode() { figures.withLock { $0.decodes += 1 } }

    /// A read failed on damaged data: counted, kept as the last error, and logged.
    func reportDamage(_ message: String) {
        figures.withLock {
            $0.readErrors += 1
            $0.lastError = message
        }
        log(message)
    }

    /// A line for the log that is not damage (a read that waited too long for another process's lock).
    func note(_ message: String) { log(message) }

    /// The figures so far.
    var current: Figures { figures.withLock { $0 } }
}
