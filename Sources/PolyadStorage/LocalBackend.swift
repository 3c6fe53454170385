import Glibc
import PolyadFileSystem
import Synchronization

/// A store in a local folder.
///
/// Layout (folders `0700`, objects `0400`):
/// ```
/// <dir>/config
/// <dir>/keys/<name>  <dir>/snapshots/<name>  <dir>/index/<name>  <dir>/locks/<name>
/// <dir>/data/<first two hex digits of name>/<name>
/// <dir>/tmp/          objects being written
/// ```
/// An object is written to a fresh file in `tmp/` (`O_EXCL`, random name), synced, then linked (renamed, for
/// locks) to its final name, and the final folder is synced: a name under the store only ever shows a complete,
/// durable object. Objects other than locks are published with `link(2)`, which never replaces an existing name,
/// so two writers racing on one name cannot replace each other's object; where the file system has no hard
/// links the backend falls back to `rename(2)`.
///
/// The class holds only its immutable path, so it is safe to use from several threads at once.
public final class LocalBackend: Backend {
    /// The store's folder, as given (without trailing slashes).
    public let path: String

    /// The store's folder, for messages.
    public var location: String { path }

    /// An open pack file, shared by concurrent readers; closed when the last reader and the cache let go.
    private final class OpenPack: Sendable {
        let fd: Int32
        let size: Int64
        init(fd: Int32, size: Int64) {
            self.fd = fd
            self.size = size
        }
        deinit { FileSystem.close(fd) }
    }

    /// Recently read packs (immutable objects), so reading many blobs of one pack opens it once.
    private let openPacks = Mutex<[String: OpenPack]>([:])
    private static let openPackLimit = 64

    /// Creates a backend for the store in the folder `path`; nothing is touched until a method is called.
    public init(path: String) {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        self.path = String(trimmed)
    }

    /// Opens `target` for reading (packs through the cache of open files).
    private func openForReading(_ handle: ObjectHandle, _ target: String) throws(StorageError) -> OpenPack {
        if handle.kind == .data, let cached = openPacks.withLock({ $0[target] }) { return cached }
        let fd: Int32
        do {
            fd = try Sys.open(target, O_RDONLY)
        } catch {
            throw storageError(error, "cannot open", target, handle)
        }
        let size: Int64
        do {
            size = try Int64(FileSystem.fstat(fd).size)
        } catch {
            FileSystem.close(fd)
            throw storageError(error, "cannot read the size of", target, handle)
        }
        let pack = OpenPack(fd: fd, size: size)
        if handle.kind == .data {
            openPacks.withLock { cache in
                if cache.count >= Self.openPackLimit { cache.removeAll(keepingCapacity: true) }
                cache[target] = pack
            }
        }
        return pack
    }

    // MARK: - Paths

    /// The folder holding objects of `handle`'s kind (for data: its two-hex-digit subfolder).
    func folder(of handle: ObjectHandle) -> String {
        switch handle.kind {
        case .config: return path
        case .data: return "\(path)/data/\(handle.name.prefix(2))"
        default: return "\(path)/\(handle.kind.rawValue)"
        }
    }

    /// The file holding `handle`'s object.
    func file(of handle: ObjectHandle) -> String {
        handle.kind == .config ? "\(path)/config" : "\(folder(of: handle))/\(handle.name)"
    }

    private var temporaryFolder: String { "\(path)/tmp" }

    /// The folders `create()` makes, parents first.
    private var layoutFolders: [String] {
        var folders = ObjectKind.allCases.filter { $0 != .config }.map { "\(path)/\($0.rawValue)" }
        folders.append(temporaryFolder)
        return folders
    }

    // MARK: - Backend

    /// Makes the folders (`0700`) and syncs them; see ``Backend/create()``. Data's two-hex-digit subfolders
    /// are made when their first pack is saved, so a small store does not carry 256 empty folders.
    public func create() throws(StorageError) {
        if try exists() {
            throw StorageError(
                code: .alreadyExists,
                handle: nil,
                location: path,
                message: "a store already exists here (\(path)/config is present); use it, or choose an empty folder"
            )
        }
        try makeFolderAndParents(path)
        for folder in layoutFolders {
            try makeFolder(folder)
        }
        do {
            try Sys.fsyncDirectory("\(path)/data")
            try Sys.fsyncDirectory(path)
            try Sys.fsyncDirectory(parentFolder(of: path))
        } catch {
            throw storageError(error, "cannot sync the new store's folders", path, nil)
        }
    }

    /// Whether `<dir>/config` exists; see ``Backend/exists()``.
    public func exists() throws(StorageError) -> Bool {
        do {
            return try Sys.status("\(path)/config").isRegularFile
        } catch  where error.errno == ENOENT || error.errno == ENOTDIR {
            return false
        } catch {
            throw storageError(error, "cannot check for the store's config object", "\(path)/config", nil)
        }
    }

    /// Writes `tmp/<random>.tmp` (`O_EXCL`, `0400`), syncs it, links or renames it into place and syncs the
    /// folder; see ``Backend/save(_:_:)``.
    public func save(_ handle: ObjectHandle, _ data: UnsafeRawBufferPointer) throws(StorageError) {
        try validate(handle)
        if handle.kind == .data { _ = openPacks.withLock { $0.removeValue(forKey: file(of: handle)) } }
        let target = file(of: handle)
        if handle.kind != .locks, let existing = try existingSize(target, handle) {
            return try acceptExisting(size: existing, handle, writing: data.count)
        }
        let temporary = try writeTemporary(handle, data)
        do {
            try publish(temporary, as: target, handle, writing: data.count)
        } catch {
            try? Sys.unlink(temporary)
            throw error
        }
    }

    /// Reads the range with `pread`; see ``Backend/load(_:offset:length:)``.
    public func load(_ handle: ObjectHandle, offset: Int64, length: Int?) throws(StorageError) -> [UInt8] {
        try validate(handle)
        guard offset >= 0, (length ?? 0) >= 0 else {
            throw StorageError(
                code: .invalidRequest,
                handle: handle,
                location: path,
                message: "invalid range: offset \(offset), length \(length.map(String.init) ?? "to the end")"
            )
        }
        let target = file(of: handle)
        let pack = try openForReading(handle, target)
        defer { withExtendedLifetime(pack) {} }
        let fd = pack.fd
        let size = pack.size
        let available = max(0, size - offset)
        if let length, Int64(length) > available || offset > size {
            let end = offset.addingReportingOverflow(Int64(length))
            throw truncated(handle, target, size: size, offset: offset, end: end.overflow ? nil : end.partialValue)
        }
        guard offset <= size else { throw truncated(handle, target, size: size, offset: offset, end: nil) }
        let count = length ?? Int(available)

        var failure: SystemError?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            guard let base = buffer.baseAddress, count > 0 else { return }
            switch Result(catching: { () throws(SystemError) in
                try FileSystem.pread(fd, into: UnsafeMutableRawBufferPointer(start: base, count: count), offset: offset)
            }) {
            case .success(let done): initialized = done
            case .failure(let error): failure = error
            }
        }
        if let failure {
            throw storageError(failure, "cannot read", target, handle)
        }
        if bytes.count < count {
            let size = (try? FileSystem.fstat(fd)).map { Int64($0.size) } ?? offset + Int64(bytes.count)
            throw truncated(handle, target, size: size, offset: offset, end: offset + Int64(count))
        }
        return bytes
    }

    /// The object file's size; see ``Backend/size(_:)``.
    public func size(_ handle: ObjectHandle) throws(StorageError) -> Int64 {
        try validate(handle)
        let target = file(of: handle)
        do {
            return try Int64(Sys.status(target).size)
        } catch {
            throw storageError(error, "cannot read the size of", target, handle)
        }
    }

    /// Unlinks the object file; see ``Backend/remove(_:)``.
    public func remove(_ handle: ObjectHandle) throws(StorageError) {
        try validate(handle)
        let target = file(of: handle)
        _ = openPacks.withLock { $0.removeValue(forKey: target) }
        do {
            try Sys.unlink(target)
        } catch {
            throw storageError(error, "cannot remove", target, handle)
        }
    }

    /// Reads the kind's folder (for data, its two-hex-digit subfolders); see ``Backend/list(_:)``.
    public func list(_ kind: ObjectKind) throws(StorageError) -> [ObjectInfo] {
        switch kind {
        case .config:
            do {
                let info = try Sys.status("\(path)/config")
                return info.isRegularFile ? [ObjectInfo(handle: .config, size: Int64(info.size))] : []
            } catch  where error.errno == ENOENT || error.errno == ENOTDIR {
                return []
            } catch {
                throw storageError(error, "cannot look for", "\(path)/config", .config)
            }
        case .data:
            var result: [ObjectInfo] = []
            let subfolders = try entries(of: "\(path)/data") { name, info in
                info.isDirectory && name.utf8.count == 2 && ObjectHandle.isValidName(name + hexTail, for: .data)
            }
            for (subfolder, _) in subfolders {
                let found = try entries(of: "\(path)/data/\(subfolder)") { name, info in
                    info.isRegularFile && name.hasPrefix(subfolder) && ObjectHandle.isValidName(name, for: .data)
                }
                for (name, size) in found {
                    result.append(ObjectInfo(handle: ObjectHandle(kind: .data, name: name), size: size))
                }
            }
            return result
        default:
            let found = try entries(of: "\(path)/\(kind.rawValue)") { name, info in
                info.isRegularFile && ObjectHandle.isValidName(name, for: kind)
            }
            return found.map { ObjectInfo(handle: ObjectHandle(kind: kind, name: $0.name), size: $0.size) }
        }
    }

    // MARK: - Saving

    /// Writes `data` to a new file in `tmp/` (mode `0400`) and syncs it; returns the file's path. On failure the
    /// file is removed.
    private func writeTemporary(
        _ handle: ObjectHandle,
        _ data: UnsafeRawBufferPointer
    ) throws(StorageError)
        -> String
    {
        var attempts = 0
        while true {
            attempts += 1
            let temporary = "\(temporaryFolder)/\(handle.kind.rawValue)-\(randomHex()).tmp"
            let fd: Int32
            do {
                // The mode applies to later opens only; this descriptor stays writable.
                fd = try Sys.open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o400)
            } catch  where error.errno == EEXIST && attempts < 8 {
                continue
            } catch  where error.errno == ENOENT && attempts < 8 {
                try recreateTemporaryFolder(handle)
                continue
            } catch {
                throw storageError(error, "cannot create a temporary file", temporary, handle, writing: data.count)
            }
            do {
                try FileSystem.writeAll(fd, data)
                try FileSystem.fsync(fd)
                FileSystem.close(fd)
            } catch {
                FileSystem.close(fd)
                try? Sys.unlink(temporary)
                throw storageError(error, "cannot write", temporary, handle, writing: data.count)
            }
            return temporary
        }
    }

    /// Makes the complete temporary file visible under `target` and syncs `target`'s folder.
    private func publish(
        _ temporary: String,
        as target: String,
        _ handle: ObjectHandle,
        writing count: Int
    )
        throws(StorageError)
    {
        let folder = folder(of: handle)
        var attempts = 0
        while true {
            attempts += 1
            let placement: Placement
            do {
                placement = try place(temporary, at: target, replacing: handle.kind == .locks)
            } catch  where error.errno == ENOENT && attempts < 4 {
                // The object's folder is missing (a store made by another tool, or a damaged layout): recreate it.
                if handle.kind == .data { try makeFolder("\(path)/data") }
                try makeFolder(folder)
                // The new folder's entry must be durable before an object in it is reported saved.
                do { try Sys.fsyncDirectory(parentFolder(of: folder)) } catch {
                    throw storageError(error, "cannot sync the folder", parentFolder(of: folder), handle)
                }
                continue
            } catch {
                throw storageError(error, "cannot move the new object into place at", target, handle, writing: count)
            }
            if placement == .placed { break }
            // Another writer published this name first; if it was removed again meanwhile, try once more.
            if let existing = try existingSize(target, handle) {
                try? Sys.unlink(temporary)
                return try acceptExisting(size: existing, handle, writing: count)
            }
            if attempts >= 4 {
                throw StorageError(
                    code: .io,
                    handle: handle,
                    location: path,
                    message: "\(target) keeps appearing and disappearing while it is saved; is another program "
                        + "changing the store?"
                )
            }
        }
        do {
            try Sys.fsyncDirectory(folder)
        } catch {
            throw storageError(error, "cannot sync the folder", folder, handle, writing: count)
        }
    }

    private enum Placement { case placed, nameTaken }

    /// Gives the temporary file its final name: `rename` when `replacing`, otherwise `link` (which never replaces
    /// an existing name) and `unlink` of the temporary name.
    private func place(_ temporary: String, at target: String, replacing: Bool) throws(SystemError) -> Placement {
        if replacing {
            try Sys.rename(temporary, target)
            return .placed
        }
        do {
            try Sys.link(temporary, target)
            try? Sys.unlink(temporary)
            return .placed
        } catch  where error.errno == EEXIST {
            return .nameTaken
        } catch  where error.errno == EPERM || error.errno == EOPNOTSUPP {
            // No hard links on this file system (FAT, some network and FUSE file systems): check, then rename.
            // A concurrent writer of the same name may be replaced, which is harmless: names are content hashes.
            if (try? Sys.status(target)) != nil { return .nameTaken }
            try Sys.rename(temporary, target)
            return .placed
        }
    }

    /// The size of the object at `target`, or `nil` if there is none.
    private func existingSize(_ target: String, _ handle: ObjectHandle) throws(StorageError) -> Int64? {
        do {
            return try Int64(Sys.status(target).size)
        } catch  where error.errno == ENOENT {
            return nil
        } catch {
            throw storageError(error, "cannot check for an existing object at", target, handle)
        }
    }

    /// Saving over an existing object succeeds without writing when the sizes match (content-addressed names).
    private func acceptExisting(size: Int64, _ handle: ObjectHandle, writing count: Int) throws(StorageError) {
        guard size == Int64(count) else {
            throw StorageError(
                code: .alreadyExists,
                handle: handle,
                location: path,
                message: "an object with this name already exists with \(size) bytes, not the \(count) bytes "
                    + "being saved; objects are never overwritten; run `polyad verify` to check the store"
            )
        }
    }

    /// Recreates `tmp/` when the store folder exists; otherwise the store is missing.
    private func recreateTemporaryFolder(_ handle: ObjectHandle) throws(StorageError) {
        let root: FileStatus
        do {
            root = try Sys.status(path)
        } catch  where error.errno == ENOENT || error.errno == ENOTDIR {
            throw StorageError(
                code: .notFound,
                handle: handle,
                location: path,
                message: "there is no store at \(path); create one with `polyad init`",
                systemError: error.errno
            )
        } catch {
            throw storageError(error, "cannot open the store folder", path, handle)
        }
        guard root.isDirectory else {
            throw StorageError(
                code: .io,
                handle: handle,
                location: path,
                message: "\(path) is not a folder",
                systemError: ENOTDIR
            )
        }
        try makeFolder(temporaryFolder)
    }

    // MARK: - Folders

    /// `mkdir` with mode 0700; an existing folder is fine, an existing non-folder is an error.
    private func makeFolder(_ folder: String) throws(StorageError) {
        do {
            try Sys.mkdir(folder, 0o700)
        } catch  where error.errno == EEXIST {
            guard (try? Sys.status(folder))?.isDirectory == true else {
                throw StorageError(
                    code: .io,
                    handle: nil,
                    location: path,
                    message: "\(folder) exists but is not a folder; move it away",
                    systemError: EEXIST
                )
            }
        } catch {
            throw storageError(error, "cannot create the folder", folder, nil)
        }
    }

    /// `mkdir -p` with mode 0700 for the folders it creates.
    private func makeFolderAndParents(_ folder: String) throws(StorageError) {
        do {
            try Sys.mkdir(folder, 0o700)
        } catch  where error.errno == ENOENT {
            let parent = parentFolder(of: folder)
            guard parent != folder else { throw storageError(error, "cannot create the folder", folder, nil) }
            try makeFolderAndParents(parent)
            try makeFolder(folder)
        } catch  where error.errno == EEXIST {
            try makeFolder(folder)
        } catch {
            throw storageError(error, "cannot create the folder", folder, nil)
        }
    }

    private func parentFolder(of folder: String) -> String {
        guard let slash = folder.lastIndex(of: "/") else { return "." }
        let parent = folder[..<slash]
        return parent.isEmpty ? "/" : String(parent)
    }

    /// The regular entries of `folder` accepted by `keep`, with their sizes; a missing folder has none.
    private func entries(
        of folder: String,
        keep: (String, FileStatus) -> Bool
    ) throws(StorageError)
        -> [(name: String, size: Int64)]
    {
        let stream: OpaquePointer
        do {
            stream = try FileSystem.openDirectory(PathText.bytes(folder))
        } catch  where error.errno == ENOENT || error.errno == ENOTDIR {
            return []
        } catch {
            throw storageError(error, "cannot list", folder, nil)
        }
        defer { closedir(stream) }
        let fd = dirfd(stream)
        var result: [(name: String, size: Int64)] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                let code = errno
                if code != 0 {
                    throw storageError(SystemError(errno: code, operation: "readdir"), "cannot list", folder, nil)
                }
                return result
            }
            let found: (name: String, size: Int64)? = withUnsafePointer(to: &entry.pointee.d_name) { raw in
                raw.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: raw.pointee)) { name in
                    // Cheap filter before a stat: object names and data subfolders are 2 or 64 bytes.
                    let length = strlen(name)
                    guard length == 64 || length == 2 else { return nil }
                    // An entry removed since readdir saw it is skipped.
                    guard let info = try? FileSystem.linkStatus(at: fd, name) else { return nil }
                    let string = String(cString: name)
                    return keep(string, info) ? (string, Int64(info.size)) : nil
                }
            }
            if let found { result.append(found) }
        }
    }

    // MARK: - Errors

    private func validate(_ handle: ObjectHandle) throws(StorageError) {
        guard handle.isValid else {
            throw StorageError(
                code: .invalidRequest,
                handle: nil,
                location: path,
                message: "invalid object name for kind '\(handle.kind.rawValue)': "
                    + (handle.kind == .config ? "must be 'config'" : "must be 64 lowercase hex digits")
            )
        }
    }

    private func truncated(
        _ handle: ObjectHandle,
        _ target: String,
        size: Int64,
        offset: Int64,
        end: Int64?
    )
        -> StorageError
    {
        let wanted = end.map { "bytes \(offset)..<\($0)" } ?? "offset \(offset)"
        return StorageError(
            code: .damaged,
            handle: handle,
            location: path,
            message: "\(target) has \(size) bytes but \(wanted) were requested: the object is truncated or damaged; "
                + "run `polyad verify` to find what it affects"
        )
    }

    /// Turns an `errno` into a ``StorageError`` with the path and a remedy.
    private func storageError(
        _ error: SystemError,
        _ action: String,
        _ file: String,
        _ handle: ObjectHandle?,
        writing count: Int? = nil
    ) -> StorageError {
        let code: StorageError.Code
        let remedy: String
        switch error.errno {
        case ENOENT:
            if handle != nil {
                return StorageError(
                    code: .notFound,
                    handle: handle,
                    location: path,
                    message: "no such object (\(file))",
                    systemError: error.errno
                )
            }
            code = .notFound
            remedy = "check that the store exists (`polyad init`)"
        case EACCES, EPERM:
            code = .permissionDenied
            remedy = "check the owner and mode of \(file) and its folders"
        case EROFS:
            code = .permissionDenied
            remedy = "the file system is mounted read-only"
        case ENOSPC, EDQUOT:
            code = .noSpace
            let what = count.map { " while writing \(formatBytes($0))" } ?? ""
            return StorageError(
                code: .noSpace,
                handle: handle,
                location: path,
                message: "no space left on the device (or quota) holding the store\(what) to \(file): "
                    + "free space there, then try again",
                systemError: error.errno
            )
        case ENOTCONN, ESTALE, EHOSTDOWN, EHOSTUNREACH, ENETDOWN, ENETUNREACH, ETIMEDOUT:
            code = .unreachable
            remedy = "the file system holding the store is not reachable; check the mount"
        default:
            code = .io
            remedy = "check the device holding the store"
        }
        return StorageError(
            code: code,
            handle: handle,
            location: path,
            message: "\(action) \(file): \(error.reason) (\(remedy))",
            systemError: error.errno
        )
    }
}

// MARK: - Helpers

/// 62 hex zeros: a valid data-name tail, to check a two-digit subfolder name with ``ObjectHandle/isValidName``.
private let hexTail = String(repeating: "0", count: 62)

private let hexDigits = Array("0123456789abcdef".utf8)

/// 32 random hex digits for a temporary file's name.
private func randomHex() -> String {
    var generator = SystemRandomNumberGenerator()
    var bytes: [UInt8] = []
    bytes.reserveCapacity(32)
    for _ in 0..<2 {
        var word = generator.next() as UInt64
        for _ in 0..<16 {
            bytes.append(hexDigits[Int(word & 15)])
            word >>= 4
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// `2097152 bytes (2.0 MiB)`.
func formatBytes(_ count: Int) -> String {
    guard count >= 1024 else { return "\(count) bytes" }
    let units = ["KiB", "MiB", "GiB", "TiB"]
    var value = Double(count) / 1024
    var unit = 0
    while value >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    let tenths = Int((value * 10).rounded())
    return "\(count) bytes (\(tenths / 10).\(tenths % 10) \(units[unit]))"
}
