import Foundation
import PolyadFileSystem
import PolyadRepository

/// The private folder where `/incoming` keeps what is written to it until it is in a snapshot:
///
/// ```
/// <staging>/lock           held (flock) by the one mount that uses the folder; holds its PID
/// <staging>/live/          the tree `/incoming` shows, passed through to this folder
/// <staging>/commit-<n>/    trees handed to a commit (n: nanoseconds since 1970), oldest first; each removed
///                          once it is in a snapshot
/// <staging>/.writer-commit-<n>   who wrote that tree (uid gid)
/// ```
///
/// Handing the live tree to a commit is one `rename` of `live` within this folder, so a file is either in the
/// tree being committed or in the new live one, never in both or half in each. Nothing else writes here: the
/// staged plaintext never leaves the folder, and a commit removes its tree once the snapshot is saved (and
/// verified, with `verify_integrity`).
public final class StagingArea: Sendable {
    /// The folder's path (absolute).
    public let path: [UInt8]
    /// The folder itself (`O_PATH`), for the `*at` calls.
    let folder: Int32
    /// The lock file, open (and locked) for the mount's life.
    private let lock: Int32
    static let liveName: [UInt8] = Array("live".utf8)
    static let commitPrefix: [UInt8] = Array("commit-".utf8)

    /// Opens (creating if needed, mode 0700) the staging folder at `path` and takes its lock.
    ///
    /// - Throws: `RepositoryError` with `.invalidArgument` (exit 2) if the folder is not private (others may
    ///   read or enter it, or another user owns it), `.locked` (exit 11) if another mount uses it, or the
    ///   system error that stopped it.
    public init(path given: String) throws(RepositoryError) {
        let path = PathText.bytes(given)
        let shown = PathBytes.display(path)
        self.path = path
        do {
            if !FileSystem.exists(path) {
                try FileSystem.makeDirectories(path, mode: 0o700)
                try FileSystem.changeMode(path, mode: 0o700)
            }
            let status = try FileSystem.lstat(path)
            guard status.kind == .directory else {
                throw RepositoryError(
                    .invalidArgument,
                    "the staging folder \(shown) is not a folder: set `mount.staging_dir`"
                )
            }
            guard status.uid == geteuid() else {
                throw RepositoryError(
                    .invalidArgument,
                    "the staging folder \(shown) belongs to uid \(status.uid), not to this mount's user: "
                        + "`chown \(geteuid()) \(shown)` or set another `mount.staging_dir`"
                )
            }
            guard status.mode & 0o077 == 0 else {
                throw RepositoryError(
                    .invalidArgument,
                    "the staging folder \(shown) is open to others (mode \(String(status.mode & 0o7777, radix: 8))); "
                        + "it holds plaintext: `chmod 700 \(shown)`"
                )
            }
            folder = try FileSystem.open(path, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW, mode: 0)
        } catch let e as RepositoryError {
            throw e
        } catch {
            throw Self.failure(error, "cannot use the staging folder \(shown)")
        }
        do {
            lock = try FileSystem.open(at: folder, Array("lock".utf8), flags: O_RDWR | O_CREAT | O_CLOEXEC, mode: 0o600)
            guard try FileSystem.tryLock(lock) else {
                let holder = (try? FileSystem.readToEnd(lock, limit: 64)).map { String(decoding: $0, as: UTF8.self) }
                FileSystem.close(lock)
                FileSystem.close(folder)
                throw RepositoryError(
                    .locked,
                    "the staging folder \(shown) is in use by another mount (polyadfs pid "
                        + "\(holder?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?")): unmount it first, "
                        + "or give this mount its own `mount.staging_dir`"
                )
            }
            try FileSystem.ftruncate(lock, 0)
            try FileSystem.writeAll(lock, bytes: Array("\(getpid())\n".utf8))
            if (try? FileSystem.linkStatus(at: folder, Self.liveName)) == nil {
                try FileSystem.makeDirectory(at: folder, Self.liveName, mode: 0o755)
                try FileSystem.fsync(folder)
            }
        } catch let e as RepositoryError {
            throw e
        } catch {
            throw Self.failure(error, "cannot use the staging folder \(shown)")
        }
    }

    deinit {
        FileSystem.close(lock)
        FileSystem.close(folder)
    }

    private static func failure(_ error: any Error, _ context: String) -> RepositoryError {
        guard let e = error as? SystemError else { return RepositoryError(.io, "\(context): \(error)") }
        let wrapped = RepositoryError.system(e)
        return RepositoryError(wrapped.code, "\(context): \(wrapped.message)", cause: e)
    }

    /// Opens the live tree's top folder (`O_PATH`).
    func openLive() throws(SystemError) -> Int32 {
        try FileSystem.open(
            at: folder,
            Self.liveName,
            flags: FileSystem.pathOnlyFlag | O_DIRECTORY | O_CLOEXEC,
            mode: 0
        )
    }

    /// The trees handed to commits and not yet removed, oldest first (by the number in their name).
    func pendingCommits() -> [[UInt8]] {
        let names = (try? FileSystem.directoryEntries(path)) ?? []
        return names.filter { $0.starts(with: Self.commitPrefix) }.sorted {
            Self.number(of: $0) < Self.number(of: $1)
        }
    }

    private static func number(of name: [UInt8]) -> UInt64 {
        UInt64(String(decoding: name.dropFirst(commitPrefix.count), as: UTF8.self)) ?? 0
    }

    /// Hands the live tree to a commit: renames it to a new `commit-<n>` and makes a new, empty live folder
    /// with the old one's mode and owner, both durable before it returns. Returns the commit folder's name.
    func handOver() throws(SystemError) -> [UInt8] {
        // Numbered by the wall clock in nanoseconds (and after any waiting one), so that a name is never used
        // twice: a snapshot records the name of the tree it came from.
        let clock = UInt64(max(0, Date().timeIntervalSince1970 * 1e9))
        let next = max(clock, (pendingCommits().last.map(Self.number(of:)) ?? 0) + 1)
        let name = Self.commitPrefix + Array(String(next).utf8)
        let old = try FileSystem.linkStatus(at: folder, Self.liveName)
        try FileSystem.rename(at: folder, Self.liveName, to: folder, name)
        try FileSystem.makeDirectory(at: folder, Self.liveName, mode: 0o700)
        let live = try openLive()
        defer { FileSystem.close(live) }
        try FileSystem.changeMode(descriptor: live, mode: old.mode & 0o7777)
        if old.uid != geteuid() || old.gid != getegid() {
            try FileSystem.changeOwner(descriptor: live, uid: old.uid, gid: old.gid)
        }
        try FileSystem.fsync(folder)
        return name
    }

    /// The path of a commit folder (for the archiver).
    func commitPath(_ name: [UInt8]) -> [UInt8] { PathBytes.join(path, name) }

    /// Removes a committed tree (its snapshot is saved), durably.
    func remove(commit name: [UInt8]) throws(SystemError) {
        try FileSystem.removeTree(commitPath(name))
        try FileSystem.fsync(folder)
    }

    /// Whether the live tree holds anything.
    func liveIsEmpty() -> Bool {
        ((try? FileSystem.directoryEntries(PathBytes.join(path, Self.liveName))) ?? []).isEmpty
    }

    /// Files and bytes under `name` (a commit folder or `live`): regular files counted once per inode.
    func census(of name: [UInt8]) -> (files: Int, bytes: UInt64) {
        var files = 0
        var bytes: UInt64 = 0
        var seen = Set<UInt64>()
        func walk(_ dir: [UInt8]) {
            for entry in (try? FileSystem.directoryEntries(dir)) ?? [] {
                let p = PathBytes.join(dir, entry)
                guard let st = try? FileSystem.lstat(p) else { continue }
                if st.kind == .directory {
                    walk(p)
                } else {
                    files += 1
                    if st.kind == .regular, st.nlink < 2 || seen.insert(st.ino).inserted { bytes += st.size }
                }
            }
        }
        walk(PathBytes.join(path, name))
        return (files, bytes)
    }
}
