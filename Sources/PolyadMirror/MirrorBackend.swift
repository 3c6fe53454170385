import Dispatch
import PolyadCrypto
import PolyadFormat
import PolyadStorage
import Synchronization

/// One copy of a mirrored store: a backend and the name it goes by in messages (`local`, `s3`).
public struct MirrorTarget: Sendable {
    public var name: String
    public var backend: any Backend

    public init(name: String, backend: any Backend) {
        self.name = name
        self.backend = backend
    }
}

/// A store kept in two places at once (a local folder and an S3 bucket): every write goes to both, reads go to
/// the preferred copy and fall back to the other, and a copy found missing or damaged is rewritten from the good
/// one.
///
/// - Writes: ``save(_:_:)`` returns once every target holds the object, so a snapshot (saved after everything it
///   references) is never on a copy that lacks what it needs. With `requireAll` a target that fails fails the
///   save, and a snapshot that reached only one copy is taken back off it (nothing half-visible). Without it, a
///   target found unreachable is set aside for the rest of the run and ``missedWrites`` counts what it lacks,
///   for ``MirrorSync`` (`polyad sync`) to copy later.
/// - Reads: whole objects of hashed kinds are checked against their names (SHA-256) before they are returned;
///   byte ranges of packs are checked by the caller (``RedundantBackend/load(_:offset:length:accept:)``). A copy
///   that fails either way is repaired from one that passes, and the repair is logged.
public final class MirrorBackend: RedundantBackend {
    /// The copies, the preferred one first.
    public let targets: [MirrorTarget]
    public let requireAll: Bool
    /// Whether whole objects of hashed kinds are checked against their names on read (on in every store; the
    /// backend conformance suite, which saves arbitrary bytes under arbitrary names, turns it off).
    public let checkNames: Bool
    private let log: @Sendable (String) -> Void
    /// Targets set aside this run (indexes into ``targets``) after they were found unreachable.
    private let down = Mutex<Set<Int>>([])
    private let missed = Atomic<Int>(0)
    private let repaired = Atomic<Int>(0)

    public init(
        targets: [MirrorTarget],
        requireAll: Bool,
        checkNames: Bool = true,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        precondition(targets.count >= 2, "a mirror needs two targets")
        self.targets = targets
        self.requireAll = requireAll
        self.checkNames = checkNames
        self.log = log
    }

    public var location: String { "mirror of " + targets.map(\.backend.location).joined(separator: " and ") }

    /// As the preferred copy's reads, which are tried first.
    public var readsAreRemote: Bool { targets[0].backend.readsAreRemote }

    /// Objects a target did not get this run because it was unreachable (with `requireAll` off).
    public var missedWrites: Int { missed.load(ordering: .relaxed) }
    /// Copies rewritten from the other target this run.
    public var repairs: Int { repaired.load(ordering: .relaxed) }
    /// The names of the targets set aside this run.
    public var unreachableTargets: [String] { down.withLock { $0 }.sorted().map { targets[$0].name } }

    private func isDown(_ i: Int) -> Bool { down.withLock { $0.contains(i) } }

    /// Targets set aside take writes again (a catch-up run found them reachable and complete).
    func takeBackSetAsideTargets() {
        let back = down.withLock { d in
            defer { d.removeAll() }
            return d
        }
        for i in back.sorted() { log("mirror: \(targets[i].name) is caught up and takes writes again") }
    }

    /// Runs `body` on every target that is not set aside, side by side, and returns each result in target order
    /// (`nil` for a target skipped).
    private func onEach<T: Sendable>(
        _ body: @Sendable (any Backend) throws(StorageError) -> T
    ) -> [Result<T, StorageError>?] {
        let results = Mutex<[Result<T, StorageError>?]>(Array(repeating: nil, count: targets.count))
        let active = targets.indices.filter { !isDown($0) }
        DispatchQueue.concurrentPerform(iterations: active.count) { n in
            let i = active[n]
            let r = Result { () throws(StorageError) in try body(targets[i].backend) }
            results.withLock { $0[i] = r }
        }
        return results.withLock { $0 }
    }

    /// Applies the write policy to the results of one write: with `requireAll` the first failure is thrown; else
    /// unreachable targets are set aside (and counted as missed) as long as one target took the write.
    private func settle<T>(_ results: [Result<T, StorageError>?], what: String) throws(StorageError) {
        var failures: [(Int, StorageError)] = []
        var successes = 0
        for (i, r) in results.enumerated() {
            switch r {
            case .success: successes += 1
            case .failure(let e): failures.append((i, e))
            case nil: missed.add(1, ordering: .relaxed)
            }
        }
        guard let (_, first) = failures.first else { return }
        if requireAll || successes == 0 { throw first }
        for (i, e) in failures {
            guard e.code == .unreachable || e.code == .io || e.code == .noSpace else { throw e }
            missed.add(1, ordering: .relaxed)
            let newlyDown = down.withLock { $0.insert(i).inserted }
            if newlyDown {
                log(
                    "mirror: \(targets[i].name) (\(targets[i].backend.location)) failed on \(what): \(e.message); "
                        + "going on with the other copy (mirror.require_all is false); run `polyad sync` once it is back"
                )
            }
        }
    }

    public func create() throws(StorageError) {
        try settle(onEach { b throws(StorageError) in try b.create() }, what: "create")
    }

    public func exists() throws(StorageError) -> Bool {
        var firstError: StorageError?
        for (i, t) in targets.enumerated() where !isDown(i) {
            do { if try t.backend.exists() { return true } } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
        return false
    }

    public func save(_ handle: ObjectHandle, _ data: UnsafeRawBufferPointer) throws(StorageError) {
        // The buffer is valid for this call only; every target reads it before concurrentPerform returns.
        nonisolated(unsafe) let buffer = data
        let results = onEach { b throws(StorageError) in try b.save(handle, buffer) }
        do {
            try settle(results, what: "\(handle)")
        } catch {
            if handle.kind == .snapshots {
                // A snapshot must be on every copy or on none: take it back off the copies that took it.
                for (i, r) in results.enumerated() {
                    if case .success = r { try? targets[i].backend.remove(handle) }
                }
            }
            throw error
        }
    }

    public func load(_ handle: ObjectHandle, offset: Int64, length: Int?) throws(StorageError) -> [UInt8] {
        let whole = checkNames && offset == 0 && length == nil && handle.kind.isHashed
        return try load(handle, offset: offset, length: length) { bytes in
            !whole || Self.matchesName(bytes, handle)
        }
    }

    public func load(
        _ handle: ObjectHandle,
        offset: Int64,
        length: Int?,
        accept: ([UInt8]) -> Bool
    ) throws(StorageError) -> [UInt8] {
        var firstError: StorageError?
        var bad: [Int] = []
        for i in readOrder() {
            do {
                let bytes = try targets[i].backend.load(handle, offset: offset, length: length)
                if accept(bytes) {
                    for b in bad { repair(handle, at: b, from: i) }
                    return bytes
                }
                bad.append(i)
                firstError =
                    firstError
                    ?? StorageError(
                        code: .damaged,
                        handle: handle,
                        location: targets[i].backend.location,
                        message: "the bytes read do not check out"
                    )
            } catch {
                if error.code == .notFound || error.code == .damaged { bad.append(i) }
                firstError = firstError ?? error
            }
        }
        throw firstError
            ?? StorageError(code: .unreachable, handle: handle, location: location, message: "no copy is reachable")
    }

    public func size(_ handle: ObjectHandle) throws(StorageError) -> Int64 {
        var firstError: StorageError?
        for i in readOrder() {
            do { return try targets[i].backend.size(handle) } catch { firstError = firstError ?? error }
        }
        throw firstError!
    }

    public func remove(_ handle: ObjectHandle) throws(StorageError) {
        let results = onEach { b throws(StorageError) in try b.remove(handle) }
        let missing: (Result<Void, StorageError>?) -> Bool = { r in
            if case .failure(let e) = r { e.code == .notFound } else { false }
        }
        if results.allSatisfy({ $0 == nil || missing($0) }) {
            throw StorageError(code: .notFound, handle: handle, location: location, message: "no such object")
        }
        // A copy that never had the object (a write it missed) is done with it too.
        try settle(results.map { missing($0) ? .success(()) : $0 }, what: "removing \(handle)")
    }

    public func list(_ kind: ObjectKind) throws(StorageError) -> [ObjectInfo] {
        let results = onEach { b throws(StorageError) in try b.list(kind) }
        var seen = [ObjectHandle: ObjectInfo]()
        var firstError: StorageError?
        for (i, r) in results.enumerated() {
            switch r {
            case .success(let infos):
                for info in infos where seen[info.handle] == nil { seen[info.handle] = info }
            case .failure(let e):
                firstError = firstError ?? e
                log("mirror: listing \(kind.rawValue) on \(targets[i].name) failed: \(e.message); using the other copy")
            case nil: break
            }
        }
        if let firstError, !results.contains(where: { if case .success = $0 { true } else { false } }) {
            throw firstError
        }
        return Array(seen.values)
    }

    /// The targets in the order reads try them: the preferred first, set-aside targets last.
    private func readOrder() -> [Int] {
        let d = down.withLock { $0 }
        return targets.indices.filter { !d.contains($0) } + targets.indices.filter { d.contains($0) }
    }

    /// Whether `bytes` are the object `handle` names (its SHA-256); always true for the unhashed config.
    static func matchesName(_ bytes: [UInt8], _ handle: ObjectHandle) -> Bool {
        !handle.kind.isHashed || HexCoding.encode(SHA256.hash(bytes)) == handle.name
    }

    /// Rewrites the copy of `handle` on target `bad` from target `good`, once the good copy's whole object checks
    /// out by its name. Logged either way; a failed repair leaves the read served and the damage for `verify`.
    func repair(_ handle: ObjectHandle, at bad: Int, from good: Int) {
        let from = targets[good]
        let to = targets[bad]
        do {
            let bytes = try from.backend.load(handle)
            guard Self.matchesName(bytes, handle) else {
                log("mirror: \(handle) is damaged on \(to.name) and its copy on \(from.name) does not check out either")
                return
            }
            try replace(handle, with: bytes, on: to.backend)
            repaired.add(1, ordering: .relaxed)
            log("mirror: repaired \(handle) on \(to.name) (\(to.backend.location)) from \(from.name)")
        } catch {
            log("mirror: could not repair \(handle) on \(to.name): \(error)")
        }
    }

    /// Puts `bytes` under `handle` on `backend`, replacing a damaged copy (saves never overwrite one of the same
    /// size, so the bad copy goes first; a reader in between finds it missing and reads the other copy).
    func replace(_ handle: ObjectHandle, with bytes: [UInt8], on backend: any Backend) throws(StorageError) {
        do { try backend.remove(handle) } catch  where error.code == .notFound {}
        try backend.save(handle, bytes)
    }
}
