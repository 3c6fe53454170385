import Foundation
import PolyadFileSystem
import PolyadFormat
import PolyadRepository
import PolyadService
import PolyadTestSupport
import XCTest

@testable import PolyadMount

/// `/incoming` without FUSE: the passthrough to the staging folder, the hand-over to a commit, the commit
/// itself, what a crash leaves behind, and the staging folder's rules. (The real mount, with `cp`, `rsync`
/// and `tar`, is in the CLI tests.)
final class IncomingFolderTests: XCTestCase {
    private var temporary: TemporaryFolder!
    private var folder: String { temporary.path }
    private var manager: BackupManager!
    private let caller = Caller(uid: getuid(), gid: getgid(), pid: getpid())

    override func setUpWithError() throws {
        temporary = try TemporaryFolder(prefix: "polyad-incoming-test")
        manager = try MountFileSystemTests.makeStore(in: folder)
    }

    override func tearDownWithError() throws {
        temporary.remove()
    }

    private func makeFileSystem(
        settle: Double = 0,
        syncOnClose: Bool = true,
        staging: String = "staging",
        descriptorBudget: Int? = nil
    ) throws -> MountFileSystem {
        let fs = try MountFileSystem(
            manager: manager,
            repository: try manager.repository(),
            cacheBytes: 16 << 20,
            staging: try StagingArea(path: folder + "/" + staging),
            settleSeconds: settle,
            syncOnClose: syncOnClose,
            descriptorBudget: descriptorBudget,
            log: { _ in }
        )
        fs.refreshSnapshots(interval: 0)
        return fs
    }

    /// Creates `name` in `parent` with `bytes`, as `cp` does: create, write, close.
    @discardableResult
    private func drop(
        _ fs: MountFileSystem,
        _ name: String,
        _ bytes: [UInt8],
        in parent: UInt64 = FixedInode.incoming
    )
        throws -> UInt64
    {
        let (a, file) = try fs.create(
            parent: parent,
            name: Array(name.utf8),
            mode: S_IFREG | 0o640,
            flags: O_WRONLY,
            caller: caller
        )
        let n = try bytes.withUnsafeBytes { try fs.write(file.handle, $0, offset: 0, caller: caller) }
        XCTAssertEqual(n, bytes.count)
        try fs.flush(file.handle, caller: caller)
        fs.release(file.handle, caller: caller)
        return a.inode
    }

    private func names(_ fs: MountFileSystem, _ inode: UInt64) throws -> [String] {
        try fs.readDirectory(inode, caller: caller).map { String(decoding: $0.name, as: UTF8.self) }.filter {
            $0 != "." && $0 != ".."
        }.sorted()
    }

    private func stagingEntries() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder + "/staging").sorted()
    }

    /// A close syncs the file and the folder it was made in (`mount.sync_on_close`, the default); without it
    /// only fsync does: that file, and the folders changed since.
    func testACloseSyncsTheFileAndItsFolderUnlessSyncOnCloseIsOff() throws {
        let fs = try makeFileSystem(settle: 3600)
        try drop(fs, "a", [1, 2, 3])
        XCTAssertEqual(fs.incomingStatus.syncs, 2, "the file and /incoming")
        try drop(fs, "b", [4])
        XCTAssertEqual(fs.incomingStatus.syncs, 4)

        let lazy = try makeFileSystem(settle: 3600, syncOnClose: false, staging: "staging-lazy")
        try drop(lazy, "c", [5, 6])
        XCTAssertEqual(lazy.incomingStatus.syncs, 0, "a close does not wait for the disk")
        let (_, file) = try lazy.create(
            parent: FixedInode.incoming,
            name: Array("d".utf8),
            mode: S_IFREG | 0o600,
            flags: O_WRONLY,
            caller: caller
        )
        _ = try [7].withUnsafeBytes { try lazy.write(file.handle, $0, offset: 0, caller: caller) }
        try lazy.sync(file.handle, dataOnly: false, caller: caller)
        XCTAssertEqual(
            lazy.incomingStatus.syncs,
            2,
            "fsync: the file and /incoming (changed since); not c, as on a disk"
        )
        lazy.release(file.handle, caller: caller)
    }

    /// More staged inodes than the budget (each an open descriptor): the kernel is asked to forget closed
    /// files, never an open one, and their descriptors close once it does.
    func testAboveTheDescriptorBudgetTheKernelIsAskedToForgetClosedFiles() throws {
        let fs = try makeFileSystem(settle: 3600, descriptorBudget: 10)
        for i in 0..<40 { try drop(fs, "f\(i)", [UInt8(i)]) }
        let (_, open) = try fs.create(
            parent: FixedInode.incoming,
            name: Array("open".utf8),
            mode: S_IFREG | 0o600,
            flags: O_WRONLY,
            caller: caller
        )
        let before = StagedNode.alive.load(ordering: .relaxed)
        var asked = [(UInt64, [UInt8])]()
        fs.incoming.relieveDescriptors { asked.append(($0, $1)) }
        XCTAssertGreaterThanOrEqual(asked.count, 40 - 8 - 1, "down to 80% of the budget")
        XCTAssertFalse(asked.contains { $0.1 == Array("open".utf8) }, "an open file is never dropped")
        XCTAssertTrue(asked.allSatisfy { $0.0 == FixedInode.incoming })
        // The kernel forgets them (one lookup each, from the create).
        for (parent, name) in asked {
            let inode = try fs.lookup(parent: parent, name: name, caller: caller).inode
            fs.forget(inode, count: 2)
        }
        XCTAssertEqual(StagedNode.alive.load(ordering: .relaxed), before - asked.count, "their descriptors closed")
        // What was forgotten is still there, found again by name.
        XCTAssertEqual(try names(fs, FixedInode.incoming).count, 41)
        fs.release(open.handle, caller: caller)
    }

    func testDroppedFilesBecomeOneSnapshotAndLeaveIncoming() throws {
        let fs = try makeFileSystem()
        let sub = try fs.make(
            parent: FixedInode.incoming,
            name: Array("docs".utf8),
            kind: .folder(mode: 0o750),
            caller: caller
        )
        XCTAssertEqual(sub.mode, S_IFDIR | 0o750)
        let file = try drop(fs, "notes.txt", Array("hello, incoming\n".utf8), in: sub.inode)
        try drop(fs, "top.bin", [UInt8](repeating: 7, count: 3 << 20))
        XCTAssertEqual(try names(fs, FixedInode.incoming), ["docs", "top.bin"])
        // Reads of what was written come from staging.
        let opened = try fs.open(file, flags: O_RDONLY, caller: caller)
        XCTAssertEqual(
            Array(try fs.read(opened.handle, offset: 7, size: 100, caller: caller).joined()),
            Array("incoming\n".utf8)
        )
        fs.release(opened.handle, caller: caller)
        var status = fs.incomingStatus
        XCTAssertEqual(status.pendingFiles, 2)
        XCTAssertEqual(status.pendingBytes, 16 + 3 << 20)
        XCTAssertEqual(status.openWriters, 0)

        fs.commitIfSettled()
        status = fs.incomingStatus
        XCTAssertEqual(status.pendingFiles, 0, "\(status)")
        XCTAssertNil(status.lastError)
        let id = try XCTUnwrap(status.lastCommitSnapshot)
        XCTAssertEqual(try names(fs, FixedInode.incoming), [], "committed entries leave /incoming")
        XCTAssertEqual(try stagingEntries(), ["live", "lock"], "the staged plaintext is removed once committed")
        // The committed node answers ENOENT to changes and opens for writing.
        XCTAssertThrowsError(try fs.open(file, flags: O_WRONLY, caller: caller)) {
            XCTAssertEqual(($0 as? FileSystemErrno)?.code, ENOENT)
        }
        // The snapshot: tagged, by this user, the tree at its root.
        let snapshot = try XCTUnwrap(try manager.snapshots().first(where: { $0.shortID == id }))
        XCTAssertEqual(snapshot.tags, ["incoming"])
        XCTAssertEqual(snapshot.paths, ["/incoming"])
        XCTAssertEqual(snapshot.uid, getuid())
        let out = folder + "/out"
        _ = try manager.restoreBackup(id, to: out)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: out + "/docs/notes.txt")),
            Data("hello, incoming\n".utf8)
        )
        XCTAssertEqual(try FileSystem.lstat(Array((out + "/docs").utf8)).mode & 0o7777, 0o750)
        XCTAssertEqual(try FileSystem.lstat(Array((out + "/top.bin").utf8)).size, 3 << 20)
    }

    func testAFileOpenForWritingHoldsTheCommit() throws {
        let fs = try makeFileSystem()
        let (_, file) = try fs.create(
            parent: FixedInode.incoming,
            name: Array("log".utf8),
            mode: S_IFREG | 0o644,
            flags: O_WRONLY,
            caller: caller
        )
        _ = try Array("part one\n".utf8).withUnsafeBytes { try fs.write(file.handle, $0, offset: 0, caller: caller) }
        try fs.flush(file.handle, caller: caller)
        fs.commitIfSettled()
        XCTAssertNil(fs.incomingStatus.lastCommitSnapshot, "not committed while open for writing")
        XCTAssertEqual(fs.incomingStatus.openWriters, 1)
        _ = try Array("part two\n".utf8).withUnsafeBytes { try fs.write(file.handle, $0, offset: 9, caller: caller) }
        fs.release(file.handle, caller: caller)
        fs.commitIfSettled()
        let id = try XCTUnwrap(fs.incomingStatus.lastCommitSnapshot)
        XCTAssertEqual(Array(try manager.readData(id)), Array("part one\npart two\n".utf8), "whole, never half")
    }

    func testRenameToASnapshotIsEXDEVAndSnapshotsStayReadOnly() throws {
        let source = folder + "/src"
        try FileSystem.makeDirectories(Array(source.utf8), mode: 0o755)
        _ = FileManager.default.createFile(atPath: source + "/a", contents: Data("a".utf8))
        _ = try manager.createBackup(paths: [source])
        let fs = try makeFileSystem(settle: 3600)
        try drop(fs, "x", [1, 2, 3])
        var at = FixedInode.snapshots
        let latest = try fs.lookup(parent: at, name: Array("latest".utf8), caller: caller).inode
        let target = String(decoding: try fs.readLink(latest, caller: caller), as: UTF8.self)
        for part in (target + source).split(separator: "/").map(String.init) {
            at = try fs.lookup(parent: at, name: Array(part.utf8), caller: caller).inode
        }
        XCTAssertThrowsError(
            try fs.rename(
                parent: FixedInode.incoming,
                name: Array("x".utf8),
                newParent: at,
                newName: Array("x".utf8),
                flags: [],
                caller: caller
            )
        ) { XCTAssertEqual(($0 as? FileSystemErrno)?.code, EXDEV) }
        XCTAssertThrowsError(
            try fs.make(parent: at, name: Array("new".utf8), kind: .folder(mode: 0o755), caller: caller)
        ) {
            XCTAssertEqual(($0 as? FileSystemErrno)?.code, EROFS)
        }
        XCTAssertThrowsError(try fs.remove(parent: at, name: Array("a".utf8), isFolder: false, caller: caller)) {
            XCTAssertEqual(($0 as? FileSystemErrno)?.code, EROFS)
        }
        // Within /incoming the staging disk decides: RENAME_NOREPLACE onto an existing name is EEXIST.
        try drop(fs, "y", [4])
        XCTAssertThrowsError(
            try fs.rename(
                parent: FixedInode.incoming,
                name: Array("x".utf8),
                newParent: FixedInode.incoming,
                newName: Array("y".utf8),
                flags: .noReplace,
                caller: caller
            )
        ) { XCTAssertEqual(($0 as? FileSystemErrno)?.code, EEXIST) }
        XCTAssertNoThrow(
            try fs.rename(
                parent: FixedInode.incoming,
                name: Array("x".utf8),
                newParent: FixedInode.incoming,
                newName: Array("y".utf8),
                flags: .exchange,
                caller: caller
            )
        )
    }

    func testTreesLeftByACrashAreCommittedAndNeverTwice() throws {
        // A tree handed to a commit before a crash, and files in the live tree.
        let staging = folder + "/staging"
        try FileSystem.makeDirectories(Array((staging + "/commit-5/sub").utf8), mode: 0o700)
        try FileSystem.makeDirectories(Array((staging + "/live").utf8), mode: 0o755)
        try FileSystem.changeMode(Array(staging.utf8), mode: 0o700)
        _ = FileManager.default.createFile(atPath: staging + "/commit-5/sub/old.txt", contents: Data("old".utf8))
        _ = FileManager.default.createFile(atPath: staging + "/live/new.txt", contents: Data("new".utf8))
        do {
            let fs = try makeFileSystem()
            fs.commitIfSettled()
            XCTAssertNil(fs.incomingStatus.lastError)
        }
        XCTAssertEqual(try stagingEntries(), ["live", "lock"])
        let snapshots = try manager.snapshots()
        XCTAssertEqual(snapshots.count, 2)
        XCTAssertTrue(snapshots.allSatisfy { $0.tags == ["incoming"] })

        // A tree whose snapshot was saved just before a crash (its removal did not happen) is only removed.
        let batch = try XCTUnwrap(snapshots.first?.metadata["incoming_batch"])
        let name = String(batch.split(separator: ":").last!)
        try FileSystem.makeDirectories(Array((staging + "/" + name).utf8), mode: 0o700)
        _ = FileManager.default.createFile(atPath: staging + "/" + name + "/again.txt", contents: Data("x".utf8))
        do {
            let fs = try makeFileSystem()
            fs.commitIfSettled()
        }
        XCTAssertEqual(try manager.snapshots().count, 2, "not committed twice")
        XCTAssertEqual(try stagingEntries(), ["live", "lock"])
    }

    func testTheStagingFolderMustBePrivateAndIsNotShared() throws {
        let path = folder + "/staging"
        let first = try StagingArea(path: path)
        XCTAssertEqual(try FileSystem.lstat(Array(path.utf8)).mode & 0o777, 0o700)
        XCTAssertThrowsError(try StagingArea(path: path)) { e in
            let error = e as? RepositoryError
            XCTAssertEqual(error?.code, .locked)
            XCTAssertTrue(error?.message.contains("in use by another mount (polyadfs pid \(getpid()))") == true, "\(e)")
        }
        _ = first
        let open = folder + "/open-staging"
        try FileSystem.makeDirectories(Array(open.utf8), mode: 0o755)
        try FileSystem.changeMode(Array(open.utf8), mode: 0o755)
        XCTAssertThrowsError(try StagingArea(path: open)) { e in
            let error = e as? RepositoryError
            XCTAssertEqual(error?.code, .invalidArgument)
            XCTAssertTrue(error?.message.contains("chmod 700 \(open)") == true, "\(e)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: open), [], "nothing was written there")
    }
}
