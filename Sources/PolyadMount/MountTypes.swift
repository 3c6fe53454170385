import Foundation
import PolyadFormat

/// An error a filesystem operation answers with: an errno value.
public struct FileSystemErrno: Error, Sendable {
    public var code: Int32
    public init(_ code: Int32) { self.code = code }
}

/// Who asks: the process behind a request, as the kernel reports it. Every operation of `MountFileSystem`
/// takes one; its `RequestGate` decides from it what the caller may do (the role from uid, gid and groups,
/// the stored modes inside snapshots).
public struct Caller: Sendable, Hashable {
    public var uid: UInt32
    public var gid: UInt32
    /// Supplementary groups, when known. The kernel does not send them with a request: empty from FUSE, and
    /// then `AccessControl` reads them from `/proc/TID/status` (kept a second) only when a group decides.
    public var groups: [UInt32]
    /// The calling thread's id, as FUSE reports it.
    public var pid: Int32

    public init(uid: UInt32, gid: UInt32, groups: [UInt32] = [], pid: Int32) {
        self.uid = uid
        self.gid = gid
        self.groups = groups
        self.pid = pid
    }

    /// This process: for the tests, and for work the daemon does on its own behalf.
    public static var currentProcess: Caller { Caller(uid: getuid(), gid: getgid(), pid: getpid()) }
}

/// The attributes of an inode, as `stat` shows them.
public struct Attributes: Sendable {
    public var inode: UInt64
    public var mode: UInt32  // with the file type bits
    public var links: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: UInt64
    public var blocks: UInt64  // 512-byte units
    public var rdev: UInt64
    public var atime: Timestamp
    public var mtime: Timestamp
    public var ctime: Timestamp
    /// How long the kernel may cache this (seconds): long for snapshot content, short for the listings.
    public var cacheSeconds: Double
    /// How long the kernel may keep the entry (name → inode) when it is not as long as the attributes: 0 for
    /// the top folders when roles are checked, so that every path walk into the mount is seen.
    public var entrySeconds: Double? = nil

    /// A read-only folder owned by the daemon's user, with all three times at `time`, cached for a second:
    /// what the mount's own folders start from.
    static func folder(_ inode: UInt64, time: Timestamp) -> Attributes {
        Attributes(
            inode: inode,
            mode: S_IFDIR | 0o555,
            links: 2,
            uid: getuid(),
            gid: getgid(),
            size: 0,
            blocks: 0,
            rdev: 0,
            atime: time,
            mtime: time,
            ctime: time,
            cacheSeconds: 1
        )
    }
}

/// What `open` of an inode gives: content the reader serves, or a staged file of `/incoming` (its handle
/// in the incoming folder).
enum OpenedContent: Sendable {
    case content(OpenFile)
    case staged(UInt64)
}

/// What `mkdir`, `mknod` and `symlink` make.
public enum NewEntry: Sendable {
    /// A folder with this mode.
    case folder(mode: UInt32)
    /// A node (fifo, socket, device, regular file) with this mode (type bits included) and device number.
    case node(mode: UInt32, device: UInt64)
    /// A symlink to this target.
    case symlink(target: [UInt8])
}

/// A time `setattr` sets: a given one, or now.
public enum TimeChange: Sendable, Equatable {
    case at(Timestamp)
    case now
}

/// What a `setattr` request changes (nil: unchanged), in the order it is applied: mode, owner, size, times.
public struct AttributeChanges: Sendable {
    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    public var size: UInt64?
    public var accessTime: TimeChange?
    public var modificationTime: TimeChange?
    /// The open file the request came through (`ftruncate`, `futimens`), if any.
    public var handle: UInt64?

    public init() {}
}

/// `statfs`: the figures `df` shows for the mount.
public struct VolumeStatistics: Sendable {
    public var blockSize: UInt64 = 4096
    public var blocks: UInt64 = 0
    public var freeBlocks: UInt64 = 0
    public var availableBlocks: UInt64 = 0
    public var files: UInt64 = 0
    public var freeFiles: UInt64 = 0
    public var nameMax: UInt64 = 255

    public init() {}
}

/// A directory entry as `readdir` returns it.
public struct DirectoryEntry: Sendable {
    public var name: [UInt8]
    public var inode: UInt64
    /// The file type bits (`S_IFDIR`, `S_IFREG`, ...).
    public var mode: UInt32
}

/// A file opened by `MountFileSystem.open`.
public struct OpenedFile: Sendable {
    /// What reads, seeks and the release name the open file by.
    public var handle: UInt64
    /// Whether the kernel may keep the file's pages between opens (true for snapshot content, which never
    /// changes; false for the control files, generated anew on each open).
    public var keepCache: Bool
    /// Whether reads go to the daemon whatever size the kernel last saw (content generated at open: the
    /// control files).
    public var directIO = false
}

/// What the mount has done since it started: the figures `/.polyad/status` and `/.polyad/metrics` show.
public struct MountCounters: Sendable, Equatable {
    /// Read requests served.
    public var reads = 0
    /// Bytes those reads returned.
    public var bytesRead: UInt64 = 0
    /// Reads (of files or trees) that failed because stored data was damaged.
    public var readErrors = 0
    /// The last damaged read, as logged.
    public var lastError: String?
    /// Chunks decrypted and decompressed (each chunk once while it stays in the cache).
    public var chunksDecoded = 0
    /// Lookups in the decoded-chunk cache that found their chunk, and those that did not.
    public var chunkCacheHits = 0
    public var chunkCacheMisses = 0
    /// Decoded chunk bytes held.
    public var chunkCacheBytes = 0
    /// Snapshots visible in the mount.
    public var snapshots = 0

    public init() {}
}
