import Glibc

/// A point in time with nanosecond precision, as the kernel stores file times.
public struct Timespec: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Seconds since the Unix epoch (may be negative).
    public var seconds: Int64
    /// Nanoseconds within the second, `0..<1_000_000_000`.
    public var nanoseconds: Int64

    /// Creates a time from seconds and nanoseconds since the Unix epoch.
    public init(seconds: Int64, nanoseconds: Int64) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    init(_ value: timespec) {
        self.init(seconds: Int64(value.tv_sec), nanoseconds: Int64(value.tv_nsec))
    }

    var cValue: timespec {
        timespec(tv_sec: Int(seconds), tv_nsec: Int(nanoseconds))
    }

    /// Orders by seconds, then nanoseconds.
    public static func < (lhs: Timespec, rhs: Timespec) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }

    /// `seconds.nanoseconds`, the nanoseconds padded to nine digits.
    public var description: String {
        let fraction = String(nanoseconds)
        return "\(seconds)." + String(repeating: "0", count: max(0, 9 - fraction.count)) + fraction
    }
}

/// The type of a file system object.
public enum FileKind: UInt8, Sendable, CaseIterable {
    /// A regular file.
    case regular
    /// A directory.
    case directory
    /// A symbolic link.
    case symlink
    /// A named pipe.
    case fifo
    /// A character device node.
    case characterDevice
    /// A block device node.
    case blockDevice
    /// A Unix domain socket.
    case socket

    /// The kind encoded in the `S_IFMT` bits of a mode, or nil for an unknown type.
    public init?(mode: UInt32) {
        switch mode & UInt32(S_IFMT) {
        case UInt32(S_IFREG): self = .regular
        case UInt32(S_IFDIR): self = .directory
        case UInt32(S_IFLNK): self = .symlink
        case UInt32(S_IFIFO): self = .fifo
        case UInt32(S_IFCHR): self = .characterDevice
        case UInt32(S_IFBLK): self = .blockDevice
        case UInt32(S_IFSOCK): self = .socket
        default: return nil
        }
    }

    /// The `S_IFMT` bits for this kind, to combine with permission bits (for example for `makeNode`).
    public var modeBits: UInt32 {
        switch self {
        case .regular: UInt32(S_IFREG)
        case .directory: UInt32(S_IFDIR)
        case .symlink: UInt32(S_IFLNK)
        case .fifo: UInt32(S_IFIFO)
        case .characterDevice: UInt32(S_IFCHR)
        case .blockDevice: UInt32(S_IFBLK)
        case .socket: UInt32(S_IFSOCK)
        }
    }
}

/// The metadata of a file, as returned by `lstat` and `fstat`.
public struct FileStatus: Sendable, Equatable {
    /// Type and permission bits (`st_mode`): `mode & 0o7777` are the permissions, including setuid, setgid
    /// and sticky bits.
    public var mode: UInt32
    /// The owner's user id.
    public var uid: UInt32
    /// The owner's group id.
    public var gid: UInt32
    /// The size in bytes (for a symlink, the length of its target).
    public var size: UInt64
    /// Allocated space in 512-byte units (less than `size / 512` for sparse files).
    public var blocks: UInt64
    /// The number of hard links.
    public var nlink: UInt64
    /// The inode number.
    public var ino: UInt64
    /// The device holding the file.
    public var dev: UInt64
    /// The device number, for device nodes (see `DeviceNumber`).
    public var rdev: UInt64
    /// The last content modification.
    public var mtime: Timespec
    /// The last access.
    public var atime: Timespec
    /// The last status change.
    public var ctime: Timespec

    /// Creates a status from its fields.
    public init(
        mode: UInt32,
        uid: UInt32,
        gid: UInt32,
        size: UInt64,
        blocks: UInt64,
        nlink: UInt64,
        ino: UInt64,
        dev: UInt64,
        rdev: UInt64,
        mtime: Timespec,
        atime: Timespec,
        ctime: Timespec
    ) {
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.blocks = blocks
        self.nlink = nlink
        self.ino = ino
        self.dev = dev
        self.rdev = rdev
        self.mtime = mtime
        self.atime = atime
        self.ctime = ctime
    }

    init(_ s: stat) {
        self.init(
            mode: UInt32(s.st_mode),
            uid: UInt32(s.st_uid),
            gid: UInt32(s.st_gid),
            size: UInt64(max(0, s.st_size)),
            blocks: UInt64(max(0, s.st_blocks)),
            nlink: UInt64(s.st_nlink),
            ino: UInt64(s.st_ino),
            dev: UInt64(s.st_dev),
            rdev: UInt64(s.st_rdev),
            mtime: Timespec(s.st_mtim),
            atime: Timespec(s.st_atim),
            ctime: Timespec(s.st_ctim)
        )
    }

    /// The file's type, from the `S_IFMT` bits of `mode` (Linux has no other types; an unknown value reads as
    /// `.regular`).
    public var kind: FileKind {
        FileKind(mode: mode) ?? .regular
    }

    /// The permission bits, including setuid, setgid and sticky (`mode & 0o7777`).
    public var permissions: UInt32 {
        mode & 0o7777
    }
}

/// Linux device numbers (`dev_t`) and their major and minor parts, encoded as glibc's `makedev` does.
public enum DeviceNumber {
    /// Combines a major and a minor number into a `dev_t` value.
    public static func make(major: UInt32, minor: UInt32) -> UInt64 {
        let major = UInt64(major)
        let minor = UInt64(minor)
        return (major & 0x0000_0FFF) << 8 | (major & 0xFFFF_F000) << 32 | (minor & 0x0000_00FF)
            | (minor & 0xFFFF_FF00) << 12
    }

    /// The major number of a `dev_t` value.
    public static func major(_ device: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: (device >> 8) & 0x0FFF | (device >> 32) & 0xFFFF_F000)
    }

    /// The minor number of a `dev_t` value.
    public static func minor(_ device: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: device & 0xFF | (device >> 12) & 0xFFFF_FF00)
    }
}
