import Foundation
import PolyadFileSystem
import PolyadFormat
import PolyadRepository
import PolyadService
import Synchronization

/// What `/.polyad/status` says about `/incoming`.
public struct IncomingStatus: Sendable, Codable, Equatable {
    /// Files and bytes staged and not yet in a snapshot (the live tree and the trees handed to commits).
    public var pendingFiles = 0
    public var pendingBytes: UInt64 = 0
    /// Files open for writing under `/incoming`.
    public var openWriters = 0
    /// Files and folders synced to the staging disk since the mount started (closes, fsyncs, commits).
    public var syncs = 0
    /// Seconds until the live tree is committed if nothing changes (nil: nothing to commit, or a writer open).
    public var secondsToCommit: Double?
    /// Whether a commit is running now.
    public var committing = false
    /// Trees handed to commits and not yet in a snapshot (a failed commit's stay here until it succeeds).
    public var commitsWaiting = 0
    /// The last commit that succeeded.
    public var lastCommitSnapshot: String?
    public var lastCommitTime: String?
    public var lastCommitSeconds: Double?
    public var lastCommitFiles: Int?
    public var lastCommitBytes: UInt64?
    /// The last commit that failed, and when (cleared by the next success).
    public var lastError: String?
    public var lastErrorTime: String?
    /// Seconds until a failed commit is tried again.
    public var retryInSeconds: Double?
    /// Where the staged data is.
    public var stagingFolder: String

    enum CodingKeys: String, CodingKey {
        case pendingFiles = "pending_files"
        case pendingBytes = "pending_bytes"
        case openWriters = "open_writers"
        case syncs
        case secondsToCommit = "seconds_to_commit"
        case committing
        case commitsWaiting = "commits_waiting"
        case lastCommitSnapshot = "last_commit_snapshot"
        case lastCommitTime = "last_commit_time"
        case lastCommitSeconds = "last_commit_seconds"
        case lastCommitFiles = "last_commit_files"
        case lastCommitBytes = "last_commit_bytes"
        case lastError = "last_error"
        case lastErrorTime = "last_error_time"
        case retryInSeconds = "retry_in_seconds"
        case stagingFolder = "staging_folder"
    }
}

/// Turns what is dropped into `/incoming` into snapshots: once no file is open for writing and the settle
/// time has passed since the last change, it hands the live tree over (`IncomingFolder.handOver`) and backs
/// the handed tree up through `BackupManager`, as `polyad backup` would (files cache, dedup, compression,
/// encryption, the store's lock, verify with `verify_integrity`), tagged `incoming`, as made by the writer.
/// The tree is removed from the staging folder only once its snapshot is saved. A commit that fails keeps
/// the tree and is tried again with a growing delay (5 s doubling to 5 min); the trees of earlier runs
/// (a crash, an unmount with a writer open) are committed first, at start-up.
final class IncomingCommitter: Sendable {
    private struct State {
        var committing = false
        var lastCommit: (id: String, time: Timestamp, seconds: Double, files: Int, bytes: UInt64)?
        var lastError: (message: String, time: Timestamp)?
        var failures = 0
        var retryAt: Double?
        var stopped = false
    }

    private let incoming: IncomingFolder
    private let staging: StagingArea
    private let manager: BackupManager
    /// Taken around each commit, so that the mount's own cleanup never runs beside one.
    private let turn: StoreTurn
    private let catalog: SnapshotCatalog
    private let settleSeconds: Double
    private let log: @Sendable (String) -> Void
    private let event: MountEventSink
    /// Tells the kernel to drop its cached entry `name` of folder `inode`.
    private let invalidateEntry: @Sendable (UInt64, [UInt8]) -> Void
    private let state = Mutex(State())
    private let finished = DispatchSemaphore(value: 0)
    /// Metadata key of a snapshot naming the staged tree it was made from (so that a tree whose snapshot was
    /// saved just before a crash is not committed twice).
    static let batchKey = "incoming_batch"

    init(
        incoming: IncomingFolder,
        staging: StagingArea,
        manager: BackupManager,
        turn: StoreTurn,
        catalog: SnapshotCatalog,
        settleSeconds: Double,
        log: @escaping @Sendable (String) -> Void,
        event: @escaping MountEventSink = { _, _, _ in },
        invalidateEntry: @escaping @Sendable (UInt64, [UInt8]) -> Void
    ) {
        self.incoming = incoming
        self.staging = staging
        self.manager = manager
        self.turn = turn
        self.catalog = catalog
        self.settleSeconds = settleSeconds
        self.log = log
        self.event = event
        self.invalidateEntry = invalidateEntry
    }

    /// Starts the background threads: one watches `/incoming` and commits, one keeps the staged nodes'
    /// descriptors under their budget (a commit can take a while, and writers go on meanwhile).
    func start() {
        let thread = Thread { [self] in
            while !state.withLock({ $0.stopped }) {
                tick()
                Thread.sleep(forTimeInterval: 0.2)
            }
            finished.signal()
        }
        thread.name = "polyad.incoming.commit"
        thread.start()
        let keeper = Thread { [self] in
            while !state.withLock({ $0.stopped }) {
                incoming.relieveDescriptors(invalidate: invalidateEntry)
                Thread.sleep(forTimeInterval: 0.1)
            }
            finished.signal()
        }
        keeper.name = "polyad.incoming.descriptors"
        keeper.start()
    }

    /// Stops the background thread (waiting for a commit under way), then, if no file is open for writing,
    /// commits what is staged (an unmount ends the writing: everything closed is settled). What cannot be
    /// committed now stays staged for the next mount.
    func finish(started: Bool) {
        if started {
            state.withLock { $0.stopped = true }
            finished.wait()
            finished.wait()
        }
        commitWaiting(ignoringBackoff: true)
        if incoming.openWriters == 0 { handOverAndCommit() }
        let left = staging.pendingCommits().count
        if left > 0 || !staging.liveIsEmpty() {
            log("/incoming: staged data kept in \(PathBytes.display(staging.path)); it is committed at the next mount")
        }
    }

    /// One look: commits waiting trees first, then the live tree once it is settled.
    func tick() {
        commitWaiting(ignoringBackoff: false)
        guard staging.pendingCommits().isEmpty else { return }
        guard incoming.secondsSinceChange >= settleSeconds, incoming.openWriters == 0 else { return }
        handOverAndCommit()
    }

    private func handOverAndCommit() {
        let handed: (commit: [UInt8], writers: Set<IncomingWriter>, names: [[UInt8]])?
        do { handed = try incoming.handOver() } catch {
            fail("cannot hand /incoming to a commit: \(error)")
            return
        }
        guard let handed else { return }
        // The writer, kept beside the tree so that a commit after a crash still names them.
        if let writer = handed.writers.sorted(by: { ($0.uid, $0.gid) < ($1.uid, $1.gid) }).first(where: { $0.uid != 0 })
            ?? handed.writers.first
        {
            try? writeWriter(writer, for: handed.commit)
        }
        for name in handed.names { invalidateEntry(FixedInode.incoming, name) }
        commitWaiting(ignoringBackoff: true)
    }

    private func writerFile(_ commit: [UInt8]) -> [UInt8] { Array(".writer-".utf8) + commit }

    private func writeWriter(_ w: IncomingWriter, for commit: [UInt8]) throws(SystemError) {
        let fd = try FileSystem.open(
            at: staging.folder,
            writerFile(commit),
            flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
            mode: 0o600
        )
        defer { FileSystem.close(fd) }
        try FileSystem.writeAll(fd, bytes: Array("\(w.uid) \(w.gid)\n".utf8))
        try FileSystem.fsync(fd)
    }

    private func readWriter(for commit: [UInt8]) -> IncomingWriter? {
        guard
            let fd = try? FileSystem.open(at: staging.folder, writerFile(commit), flags: O_RDONLY | O_CLOEXEC, mode: 0)
        else { return nil }
        defer { FileSystem.close(fd) }
        let words = String(decoding: (try? FileSystem.readToEnd(fd, limit: 64)) ?? [], as: UTF8.self).split(
            separator: " "
        )
        guard words.count == 2, let uid = UInt32(words[0]),
            let gid = UInt32(words[1].trimmingCharacters(in: .whitespacesAndNewlines))
        else { return nil }
        return IncomingWriter(uid: uid, gid: gid)
    }

    /// Commits the trees handed over and not yet in a snapshot, oldest first; stops at the first failure.
    private func commitWaiting(ignoringBackoff: Bool) {
        for commit in staging.pendingCommits() {
            if !ignoringBackoff, let at = state.withLock({ $0.retryAt }), PolyadRepository.Clock.monotonic() < at {
                return
            }
            guard self.commit(commit) else { return }
        }
    }

    /// Backs up one handed-over tree; true once its snapshot is saved and the tree removed.
    private func commit(_ name: [UInt8]) -> Bool {
        let batch = Accounts.hostName + ":" + String(decoding: name, as: UTF8.self)
        state.withLock { $0.committing = true }
        defer { state.withLock { $0.committing = false } }
        catalog.refresh(interval: 0)
        if catalog.contains(where: { $0.metadata[Self.batchKey] == batch }) {
            // Saved before a crash or a failed removal: only the removal is left to do.
            return removeCommitted(name)
        }
        let census = staging.census(of: name)
        let started = PolyadRepository.Clock.monotonic()
        var options = BackupOptions(paths: [staging.commitPath(name)])
        options.folderAsRoot = true
        options.recordedPaths = ["/incoming"]
        options.tags = ["incoming"]
        options.metadata = [Self.batchKey: batch]
        if let w = readWriter(for: name) {
            options.writer = SnapshotWriter(
                uid: w.uid,
                gid: w.gid,
                userName: Accounts.userName(uid: w.uid) ?? String(w.uid)
            )
            options.metadata["writer_uid"] = String(w.uid)
        }
        do {
            let result = try turn.run { try manager.createBackup(options: options) }
            let seconds = PolyadRepository.Clock.monotonic() - started
            for warning in result.warnings { log("/incoming commit: \(warning)") }
            log(
                "/incoming: committed \(census.files) files, \(census.bytes) bytes as snapshot \(result.id.short) "
                    + "in \(String(format: "%.1f", seconds)) s"
            )
            state.withLock { s in
                s.lastCommit = (result.id.short, result.snapshot.time, seconds, census.files, census.bytes)
                s.lastError = nil
                s.failures = 0
                s.retryAt = nil
            }
            catalog.refresh(interval: 0)
            event(
                "commit",
                true,
                [
                    ("snapshot", result.id.short), ("files", "\(census.files)"), ("bytes", "\(census.bytes)"),
                    ("writer_uid", options.metadata["writer_uid"] ?? ""),
                ]
            )
            return removeCommitted(name)
        } catch {
            event("commit", false, [("message", Self.message(error))])
            fail("/incoming commit failed (the staged data is kept and the commit retried): \(Self.message(error))")
            return false
        }
    }

    private func removeCommitted(_ name: [UInt8]) -> Bool {
        do {
            try staging.remove(commit: name)
            try? FileSystem.unlink(at: staging.folder, writerFile(name), folder: false)
            return true
        } catch {
            fail("cannot remove the committed tree \(PathBytes.display(name)) from the staging folder: \(error)")
            return false
        }
    }

    private static func message(_ error: any Error) -> String {
        (error as? RepositoryError)?.message ?? "\(error)"
    }

    private func fail(_ message: String) {
        log(message)
        state.withLock { s in
            s.failures += 1
            s.lastError = (message, PolyadRepository.Clock.now())
            s.retryAt = PolyadRepository.Clock.monotonic() + min(300, 5 * pow(2, Double(min(s.failures - 1, 6))))
        }
    }

    /// The figures for `/.polyad/status`.
    var status: IncomingStatus {
        let s = state.withLock { $0 }
        var status = IncomingStatus(stagingFolder: PathBytes.display(staging.path))
        let waiting = staging.pendingCommits()
        status.commitsWaiting = waiting.count
        for name in waiting + [StagingArea.liveName] {
            let c = staging.census(of: name)
            status.pendingFiles += c.files
            status.pendingBytes += c.bytes
        }
        status.openWriters = incoming.openWriters
        status.syncs = incoming.syncs
        status.committing = s.committing
        if status.openWriters == 0, !staging.liveIsEmpty() {
            status.secondsToCommit = max(0, settleSeconds - incoming.secondsSinceChange)
        }
        if let c = s.lastCommit {
            status.lastCommitSnapshot = c.id
            status.lastCommitTime = TimeFormat.iso8601(c.time)
            status.lastCommitSeconds = (c.seconds * 10).rounded() / 10
            status.lastCommitFiles = c.files
            status.lastCommitBytes = c.bytes
        }
        if let e = s.lastError {
            status.lastError = e.message
            status.lastErrorTime = TimeFormat.iso8601(e.time)
        }
        if let at = s.retryAt { status.retryInSeconds = max(0, (at - PolyadRepository.Clock.monotonic()).rounded()) }
        return status
    }
}
