import CSystemShim
import Foundation
import PolyadFileSystem
import PolyadTestSupport
import XCTest

/// `/incoming` behaves as the local disk under it, call by call: a seeded random sequence of create, open (every
/// flag), write, read, truncate, rename (plain, RENAME_NOREPLACE, RENAME_EXCHANGE), unlink, link, symlink,
/// mkfifo, chmod, chown, utimensat, xattr, fallocate, SEEK_DATA/SEEK_HOLE, flock, fsync, stat and readdir calls
/// runs step by step in `/incoming` and in a plain folder on the same kind of filesystem as the staging folder
/// (a tmpfs for both when run as root), and every step must give the same result and the same errno. Files
/// stay open across steps, so calls on unlinked and renamed open files are part of it. The tree is compared
/// as a whole every 100 steps and at the end, and the snapshot the unmount commits is compared with the
/// reference folder too.
///
/// `POLYAD_SEQUENCE_SEED` runs one seed instead of the default ones, `POLYAD_SEQUENCE_STEPS` sets the steps per
/// seed (default 2,500, two seeds). A failure names the seed and the step and lists the steps before it.
final class IncomingSequenceTests: XCTestCase {
    var store: MountedStore!
    var tmpfs: String?

    override func tearDown() {
        store?.unmount()
        if let t = tmpfs { _ = MountedStore.shell(["umount", t]) }
        store = nil
    }

    var seeds: [UInt64] {
        if let s = ProcessInfo.processInfo.environment["POLYAD_SEQUENCE_SEED"], let seed = UInt64(s) { return [seed] }
        return [0x5EED_0001, 0x5EED_0002]
    }

    var steps: Int { Int(ProcessInfo.processInfo.environment["POLYAD_SEQUENCE_STEPS"] ?? "") ?? 2500 }

    func testRandomCallSequencesGiveTheSameResultsAndErrnoAsTheDiskUnderIt() throws {
        store = try MountedStore()
        let fixture = store.fixture
        // Staging and reference on one tmpfs when we may mount one; else both on the disk the fixture is on.
        var base = fixture.root + "/disk"
        if getuid() == 0 {
            base = fixture.root + "/tmpfs"
            try FileSystem.makeDirectories(bytes(base), mode: 0o700)
            let m = MountedStore.shell(["mount", "-t", "tmpfs", "-o", "size=256m,mode=0700", "tmpfs", base])
            XCTAssertEqual(m.status, 0, m.out)
            tmpfs = base
        } else {
            print("IncomingSequenceTests: not root, so no tmpfs: staging and reference folder on the fixture's disk")
            try FileSystem.makeDirectories(bytes(base), mode: 0o700)
        }
        try FileSystem.makeDirectories(bytes(base + "/staging"), mode: 0o700)
        try FileSystem.makeDirectories(bytes(base + "/reference"), mode: 0o755)
        store = try MountedStore(
            reusing: store,
            extraConfig: "mount:\n  settle_seconds: 3600\n  staging_dir: \"\(base)/staging\"\n"
        )
        try fixture.expect(0, ["init"])
        try store.mount()
        var expected = [String: String]()
        for seed in seeds {
            let mounted = store.mountpoint + "/incoming/seq-\(seed)"
            let reference = base + "/reference/seq-\(seed)"
            for folder in [mounted, reference] { XCTAssertEqual(mkdir(folder, 0o755), 0, folder) }
            var run = CallSequence(seed: seed, sides: [mounted, reference])
            if let mismatch = run.run(steps: steps) { XCTFail(mismatch) }
            let kinds = run.tally.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }
            print(
                "IncomingSequenceTests: seed \(seed), \(steps) steps alike; outcomes: " + kinds.joined(separator: ", ")
            )
            run.closeAll()
            for (path, entry) in try CallSequence.describeTree(reference, blocks: false) {
                expected["seq-\(seed)/" + path] = entry
            }
        }
        // The unmount commits what is in /incoming; the snapshot, seen through the next mount (which shows what
        // was stored, with no limit of a restore target's file system), holds the reference tree.
        store.unmount()
        try store.mount()
        var snapshot = [String: String]()
        for seed in seeds {
            let root = store.mountpoint + "/snapshots/latest/seq-\(seed)"
            for (path, entry) in try CallSequence.describeTree(root, blocks: false, skippingXattrs: "user.polyad.") {
                snapshot["seq-\(seed)/" + path] = entry
            }
        }
        XCTAssertEqual(snapshot.keys.sorted(), expected.keys.sorted())
        for (path, entry) in expected where snapshot[path] != entry {
            XCTFail("\(path): snapshot \(snapshot[path] ?? "missing"), reference \(entry)")
        }
    }

    /// The comparison can fail: the same sequence on two folders that differ by one file is caught.
    func testTheComparisonCatchesADifference() throws {
        let folder = try TemporaryFolder(prefix: "polyad-sequence")
        defer { folder.remove() }
        let a = folder.path + "/a"
        let b = folder.path + "/b"
        for f in [a, b] { XCTAssertEqual(mkdir(f, 0o755), 0) }
        XCTAssertEqual(mkdir(b + "/a", 0o755), 0)
        var run = CallSequence(seed: 7, sides: [a, b])
        let mismatch = run.run(steps: 500)
        run.closeAll()
        XCTAssertNotNil(mismatch, "a folder `a` on one side only must show within 500 steps")
        var same = CallSequence(seed: 7, sides: [folder.path + "/c", folder.path + "/d"])
        for f in same.sides { XCTAssertEqual(mkdir(f, 0o755), 0) }
        XCTAssertNil(same.run(steps: 500), "two empty folders on one disk behave alike")
        same.closeAll()
    }
}

/// A seeded sequence of file system calls applied to several folders at once, each step's outcome (return value,
/// errno, bytes read, attributes) compared across them.
struct CallSequence {
    let seed: UInt64
    let sides: [String]
    private var random: SplitMix64
    /// Open descriptors per slot, one per side.
    private var slots: [[Int32]?] = Array(repeating: nil, count: 6)
    private var history = [String]()
    /// How many steps ended in each kind of outcome (errno, or the first word of a success).
    private(set) var tally = [String: Int]()

    init(seed: UInt64, sides: [String]) {
        self.seed = seed
        self.sides = sides
        random = SplitMix64(seed: seed)
    }

    /// Runs `steps` steps; returns a description of the first step whose outcome differs between the sides.
    mutating func run(steps: Int) -> String? {
        for step in 0..<steps {
            let op = nextOperation()
            history.append("\(step): \(op)")
            let outcomes = sides.indices.map { apply(op, side: $0) }
            let kind = outcomes[0].hasPrefix("errno") ? outcomes[0] : String(outcomes[0].prefix { $0 != " " })
            tally[kind, default: 0] += 1
            if Set(outcomes).count > 1 {
                return mismatch("step \(step), \(op)", outcomes)
            }
            if step % 100 == 99 || step == steps - 1 {
                let trees = sides.map { (try? Self.describeTree($0)) ?? [:] }
                if Set(trees).count > 1 {
                    let first = trees[0]
                    let differing = Set(first.keys).union(trees[1].keys).sorted().filter { first[$0] != trees[1][$0] }
                    let lines = differing.prefix(10).map {
                        "\($0): \(first[$0] ?? "missing") | \(trees[1][$0] ?? "missing")"
                    }
                    return mismatch("tree after step \(step)", lines)
                }
            }
        }
        return nil
    }

    private func mismatch(_ what: String, _ outcomes: [String]) -> String {
        "seed \(seed): \(what) differs between \(sides):\n  " + outcomes.joined(separator: "\n  ")
            + "\nlast steps:\n  " + history.suffix(25).joined(separator: "\n  ")
    }

    mutating func closeAll() {
        for slot in slots.indices {
            for fd in slots[slot] ?? [] { Glibc.close(fd) }
            slots[slot] = nil
        }
    }

    // MARK: - Operations

    enum Time: CustomStringConvertible {
        case now, omit
        case at(Int)
        var description: String {
            switch self {
            case .now: "now"
            case .omit: "omit"
            case .at(let s): "\(s)"
            }
        }
    }

    enum Operation: CustomStringConvertible {
        case open(String, flags: Int32, mode: UInt32, slot: Int)
        case close(slot: Int)
        case pwrite(slot: Int, offset: Int, length: Int, seed: UInt64)
        case write(slot: Int, length: Int, seed: UInt64)
        case pread(slot: Int, offset: Int, length: Int)
        case ftruncate(slot: Int, length: Int)
        case fstat(slot: Int)
        case fsync(slot: Int, dataOnly: Bool)
        case fallocate(slot: Int, mode: Int32, offset: Int, length: Int)
        case seek(slot: Int, offset: Int, whence: Int32)
        case flock(slot: Int, operation: Int32)
        case mkdir(String, mode: UInt32)
        case rmdir(String)
        case unlink(String)
        case rename(String, String, flags: UInt32)
        case link(String, String)
        case symlink(target: String, String)
        case mkfifo(String, mode: UInt32)
        case truncate(String, length: Int)
        case chmod(String, mode: UInt32)
        case chown(String, uid: UInt32, gid: UInt32, follow: Bool)
        case utimens(String, access: Time, modification: Time, follow: Bool)
        case setxattr(String, name: String, length: Int, flags: Int32, follow: Bool)
        case getxattr(String, name: String, follow: Bool)
        case listxattr(String, follow: Bool)
        case removexattr(String, name: String, follow: Bool)
        case stat(String, follow: Bool)
        case readdir(String)
        case readlink(String)

        var description: String {
            switch self {
            case .open(let p, let flags, let mode, let slot):
                "open(\(p), \(CallSequence.describe(flags: flags)), 0\(String(mode, radix: 8))) -> slot \(slot)"
            case .close(let s): "close(slot \(s))"
            case .pwrite(let s, let o, let l, _): "pwrite(slot \(s), \(l) bytes at \(o))"
            case .write(let s, let l, _): "write(slot \(s), \(l) bytes)"
            case .pread(let s, let o, let l): "pread(slot \(s), \(l) bytes at \(o))"
            case .ftruncate(let s, let l): "ftruncate(slot \(s), \(l))"
            case .fstat(let s): "fstat(slot \(s))"
            case .fsync(let s, let d): d ? "fdatasync(slot \(s))" : "fsync(slot \(s))"
            case .fallocate(let s, let m, let o, let l): "fallocate(slot \(s), mode \(m), \(o), \(l))"
            case .seek(let s, let o, let w): "lseek(slot \(s), \(o), whence \(w))"
            case .flock(let s, let o): "flock(slot \(s), \(o))"
            case .mkdir(let p, let m): "mkdir(\(p), 0\(String(m, radix: 8)))"
            case .rmdir(let p): "rmdir(\(p))"
            case .unlink(let p): "unlink(\(p))"
            case .rename(let a, let b, let f): "renameat2(\(a), \(b), flags \(f))"
            case .link(let a, let b): "link(\(a), \(b))"
            case .symlink(let t, let p): "symlink(\(t), \(p))"
            case .mkfifo(let p, let m): "mkfifo(\(p), 0\(String(m, radix: 8)))"
            case .truncate(let p, let l): "truncate(\(p), \(l))"
            case .chmod(let p, let m): "chmod(\(p), 0\(String(m, radix: 8)))"
            case .chown(let p, let u, let g, let f): "\(f ? "chown" : "lchown")(\(p), \(u), \(g))"
            case .utimens(let p, let a, let m, let f): "utimensat(\(p), atime \(a), mtime \(m), follow \(f))"
            case .setxattr(let p, let n, let l, let fl, let f):
                "setxattr(\(p), \(n), \(l) bytes, flags \(fl), follow \(f))"
            case .getxattr(let p, let n, let f): "getxattr(\(p), \(n), follow \(f))"
            case .listxattr(let p, let f): "listxattr(\(p), follow \(f))"
            case .removexattr(let p, let n, let f): "removexattr(\(p), \(n), follow \(f))"
            case .stat(let p, let f): "\(f ? "stat" : "lstat")(\(p))"
            case .readdir(let p): "readdir(\(p))"
            case .readlink(let p): "readlink(\(p))"
            }
        }
    }

    static func describe(flags: Int32) -> String {
        var parts = [["O_RDONLY", "O_WRONLY", "O_RDWR", "?"][Int(flags & O_ACCMODE)]]
        let named: [(Int32, String)] = [
            (O_CREAT, "O_CREAT"), (O_EXCL, "O_EXCL"), (O_TRUNC, "O_TRUNC"), (O_APPEND, "O_APPEND"),
            (O_DIRECTORY, "O_DIRECTORY"), (O_NOFOLLOW, "O_NOFOLLOW"),
        ]
        for (flag, name) in named where flags & flag != 0 { parts.append(name) }
        return parts.joined(separator: "|")
    }

    private static let names = ["a", "b", "c d", "é"]
    private static let modes: [UInt32] = [0o644, 0o600, 0o755, 0o444, 0o000, 0o2775, 0o4755, 0o1777, 0o640, 0o711]

    private mutating func pick<T>(_ values: [T]) -> T { values[Int(random.next() % UInt64(values.count))] }
    private mutating func chance(_ percent: UInt64) -> Bool { random.next() % 100 < percent }
    private mutating func number(_ bound: Int) -> Int { Int(random.next() % UInt64(bound)) }

    /// Entries of the last side (the reference), refreshed before each step: half the paths name one of them, so
    /// calls meet each other's files; the rest are drawn from a small pool of names, one to three deep.
    private var entries: [(path: String, folder: Bool)] = []

    private mutating func path() -> String {
        if !entries.isEmpty, chance(55) { return pick(entries).path }
        let folders = entries.filter(\.folder).map(\.path)
        if !folders.isEmpty, chance(50) { return pick(folders) + "/" + pick(Self.names) }
        let depth = chance(60) ? 1 : (chance(70) ? 2 : 3)
        return (0..<depth).map { _ in pick(Self.names) }.joined(separator: "/")
    }

    private mutating func refreshEntries() {
        var found = [(path: String, folder: Bool)]()
        func walk(_ relative: String) {
            let path = relative.isEmpty ? sides[sides.count - 1] : sides[sides.count - 1] + "/" + relative
            guard let children = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
            for child in children.sorted() {
                let p = relative.isEmpty ? child : relative + "/" + child
                var st = stat()
                let folder = lstat(path + "/" + child, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
                found.append((p, folder))
                if folder { walk(p) }
            }
        }
        walk("")
        entries = found
    }

    /// An open slot most of the time (any slot otherwise, to meet "no descriptor" and reuse).
    private mutating func openSlot() -> Int {
        let open = slots.indices.filter { slots[$0]?.contains { $0 >= 0 } == true }
        return !open.isEmpty && chance(90) ? pick(open) : number(slots.count)
    }

    private mutating func offset() -> Int {
        chance(10) ? (1 << 20) + number(70_000) : number(70_000)
    }

    private mutating func xattrName() -> String {
        chance(90) ? "user.k\(number(3))" : pick(["trusted.t", "security.s", "user."])
    }

    private mutating func time() -> Time {
        switch number(3) {
        case 0: .now
        case 1: .omit
        default: .at(1_000_000_000 + number(1_000_000_000))
        }
    }

    private mutating func nextOperation() -> Operation {
        refreshEntries()
        let open = chance(15) || !slots.contains { $0?.contains { $0 >= 0 } == true }
        let slot = open ? number(slots.count) : openSlot()
        if open {
            var flags = pick([O_RDONLY, O_WRONLY, O_RDWR, O_RDWR, O_RDWR])
            if chance(70) { flags |= O_CREAT }
            if chance(20) { flags |= O_EXCL }
            if chance(20) { flags |= O_TRUNC }
            if chance(20) { flags |= O_APPEND }
            if chance(8) { flags |= O_DIRECTORY }
            if chance(10) { flags |= O_NOFOLLOW }
            return .open(path(), flags: flags, mode: pick(Self.modes), slot: slot)
        }
        switch number(100) {
        case 0..<5: return .close(slot: slot)
        case 5..<20: return .pread(slot: slot, offset: offset(), length: number(40_000))
        case 20..<30: return .pwrite(slot: slot, offset: offset(), length: number(20_000), seed: random.next())
        case 30..<35: return .write(slot: slot, length: number(20_000), seed: random.next())
        case 35..<41: return .pread(slot: slot, offset: offset(), length: number(40_000))
        case 41..<43: return .ftruncate(slot: slot, length: offset())
        case 43..<45: return .fstat(slot: slot)
        case 45..<46: return .fsync(slot: slot, dataOnly: chance(50))
        case 46..<48:
            return .fallocate(slot: slot, mode: pick([0, 1, 3, 16]), offset: offset(), length: 1 + number(40_000))
        case 48..<50: return .seek(slot: slot, offset: offset(), whence: pick([SEEK_SET, SEEK_END, 3, 4]))
        case 50..<51: return .flock(slot: slot, operation: pick([LOCK_EX | LOCK_NB, LOCK_SH | LOCK_NB, LOCK_UN]))
        case 51..<57: return .mkdir(path(), mode: pick(Self.modes))
        case 57..<60: return .rmdir(path())
        case 60..<64: return .unlink(path())
        case 64..<70: return .rename(path(), path(), flags: pick([0, 0, 1, 2]))
        case 70..<73: return .link(path(), path())
        case 73..<75: return .symlink(target: path(), path())
        case 75..<76: return .mkfifo(path(), mode: pick(Self.modes))
        case 76..<78: return .truncate(path(), length: offset())
        case 78..<80: return .chmod(path(), mode: pick(Self.modes))
        case 80..<82:
            return .chown(path(), uid: pick([0, 1000, 65534]), gid: pick([0, 100, 1000]), follow: chance(60))
        case 82..<84: return .utimens(path(), access: time(), modification: time(), follow: chance(70))
        case 84..<87:
            return .setxattr(
                path(),
                name: xattrName(),
                length: pick([0, 5, 300, 4000]),
                flags: pick([0, 0, 1, 2]),
                follow: chance(70)
            )
        case 87..<89: return .getxattr(path(), name: xattrName(), follow: chance(70))
        case 89..<90: return .listxattr(path(), follow: chance(70))
        case 90..<91: return .removexattr(path(), name: xattrName(), follow: chance(70))
        case 91..<95: return .stat(path(), follow: chance(50))
        case 95..<98: return .readdir(chance(20) ? "" : path())
        default: return .readlink(path())
        }
    }

    // MARK: - Applying

    private static func failure() -> String { "errno \(errno) (\(String(cString: strerror(errno))))" }

    private static func result(_ r: Int) -> String { r < 0 ? failure() : "ok \(r)" }

    private static func data(length: Int, seed: UInt64) -> [UInt8] { pseudoRandomBytes(length, seed: seed) }

    private static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    /// What a stat reply says that does not depend on when or where the call ran (no times, no inode number).
    static func describe(_ st: stat, blocks: Bool = true) -> String {
        let type = st.st_mode & S_IFMT
        var s = "mode 0\(String(st.st_mode, radix: 8)) nlink \(st.st_nlink) uid \(st.st_uid) gid \(st.st_gid)"
        if type == S_IFREG || type == S_IFLNK { s += " size \(st.st_size)" }
        if type == S_IFREG && blocks { s += " blocks \(st.st_blocks)" }
        return s
    }

    /// trusted.* and security.* attributes of a symlink itself: `/incoming` answers EOPNOTSUPP (the staged
    /// symlink is held by an O_PATH descriptor, and there is no race-free call that sets an attribute on the
    /// link through one; libfuse's passthrough_ll answers EPERM). Documented, not compared, not run.
    private static let symlinkXattr = "symlink's own trusted/security xattr: not compared"

    private static func isSymlink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFLNK
    }

    private mutating func apply(_ op: Operation, side: Int) -> String {
        let root = sides[side]
        func full(_ p: String) -> String { p.isEmpty ? root : root + "/" + p }
        func descriptor(_ slot: Int) -> Int32? { slots[slot]?[side] }
        switch op {
        case .open(let p, let flags, let mode, let slot):
            if let fd = descriptor(slot) {
                Glibc.close(fd)
                slots[slot]![side] = -1
            }
            let fd = Glibc.open(full(p), flags | O_NONBLOCK | O_CLOEXEC, mode)
            let outcome = fd < 0 ? Self.failure() : "opened"
            if slots[slot] == nil { slots[slot] = Array(repeating: -1, count: sides.count) }
            slots[slot]![side] = fd
            return outcome
        case .close(let slot):
            guard let fd = descriptor(slot), fd >= 0 else { return "no descriptor" }
            slots[slot]![side] = -1
            return Self.result(Int(Glibc.close(fd)))
        case .pwrite(let slot, let offset, let length, let seed):
            guard let fd = descriptor(slot), fd >= 0 else { return "no descriptor" }
            let bytes = Self.data(length: length, seed: seed)
            return Self.result(bytes.withUnsafeBytes { Glibc.pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) })
        case .write(let slot, let length, let seed):
            guard let fd = descriptor(slot), fd >= 0 else { return "no descriptor" }
            let bytes = Self.data(length: length, seed: seed)
            return Self.result(bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) })
        case .pread(let slot, let offset, let length):
            guard let fd = descriptor(slot), fd >= 0 else { return "no descriptor" }
            var buffer = [UInt8](repeating: 0, count: length)
            let n = buffer.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
            if n < 0 { return Self.failure() }
            return
                "read \(n) checksum \(buffer.withUnsafeBytes { Self.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<n])) })"
        case .ftruncate(let slot, let length):
            guard let fd = descriptor(slot), fd >= 0 else { return "no descriptor" }
            return Self.result(Int(Glibc.ftruncate(fd, off_t(length))))
        case .fstat(let slot):
            guard let fd = descriptor(slot), fd >= 0 else { return "no descriptor" }
            var st = stat()
            return Glibc.fstat(fd, &st) < 0 ? Self.failure() : Self.describe(st)
        case .fsync(let slot, let dataOnly):
            guard let fd = descriptor(slot), fd >= 0 else { return "no descriptor" }
            return Self.result(Int(dataOnly ? Glibc.fdatasync(fd) : Glibc.fsync(fd)))
        case .fallocate(let slot, let mode, let offset, let length):
            guard let fd = descriptor(slot), fd >= 0 else { return "no descriptor" }
            return Self.result(Int(polyad_fallocate(fd, mode, Int64(offset), Int64(length))))
        case .seek(let slot, let offset, let whence):
            guard let fd = descriptor(slot), fd >= 0 else { return "no descriptor" }
            var st = stat()
            if whence != SEEK_SET, Glibc.fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFDIR {
                // The kernel answers lseek on a FUSE directory itself (generic_file_llseek: SEEK_END and
                // SEEK_DATA work on the size), never asking the file system; tmpfs's directories take SEEK_SET
                // and SEEK_CUR only. Not ours to match.
                return "directory: not compared"
            }
            return Self.result(Int(Glibc.lseek(fd, off_t(offset), whence)))
        case .flock(let slot, let operation):
            guard let fd = descriptor(slot), fd >= 0 else { return "no descriptor" }
            return Self.result(Int(lockCall(fd, operation)))
        case .mkdir(let p, let mode): return Self.result(Int(Glibc.mkdir(full(p), mode)))
        case .rmdir(let p): return Self.result(Int(Glibc.rmdir(full(p))))
        case .unlink(let p): return Self.result(Int(Glibc.unlink(full(p))))
        case .rename(let a, let b, let flags):
            let f: UInt32 =
                flags == 1 ? polyad_rename_noreplace_flag() : flags == 2 ? polyad_rename_exchange_flag() : 0
            return Self.result(Int(polyad_renameat2(AT_FDCWD, full(a), AT_FDCWD, full(b), f)))
        case .link(let a, let b): return Self.result(Int(Glibc.link(full(a), full(b))))
        case .symlink(let target, let p): return Self.result(Int(Glibc.symlink(target, full(p))))
        case .mkfifo(let p, let mode): return Self.result(Int(Glibc.mkfifo(full(p), mode)))
        case .truncate(let p, let length): return Self.result(Int(Glibc.truncate(full(p), off_t(length))))
        case .chmod(let p, let mode): return Self.result(Int(Glibc.chmod(full(p), mode)))
        case .chown(let p, let uid, let gid, let follow):
            return Self.result(Int(follow ? Glibc.chown(full(p), uid, gid) : Glibc.lchown(full(p), uid, gid)))
        case .utimens(let p, let access, let modification, let follow):
            return Self.utimens(full(p), access, modification, follow: follow)
        case .setxattr(let p, let name, let length, let flags, let follow):
            if !follow, !name.hasPrefix("user."), Self.isSymlink(full(p)) { return Self.symlinkXattr }
            let value = Self.data(length: length, seed: UInt64(length))
            return Self.result(
                value.withUnsafeBytes {
                    Int(polyad_setxattr(full(p), name, $0.baseAddress, UInt($0.count), flags, follow ? 1 : 0))
                }
            )
        case .getxattr(let p, let name, let follow):
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = buffer.withUnsafeMutableBytes {
                polyad_getxattr(full(p), name, $0.baseAddress, UInt($0.count), follow ? 1 : 0)
            }
            if n < 0 { return Self.failure() }
            return
                "value \(n) checksum \(buffer.withUnsafeBytes { Self.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<Int(n)])) })"
        case .listxattr(let p, let follow):
            var buffer = [CChar](repeating: 0, count: 65536)
            let n = polyad_listxattr(full(p), &buffer, UInt(buffer.count), follow ? 1 : 0)
            if n < 0 { return Self.failure() }
            let names = buffer[0..<Int(n)].split(separator: 0).map {
                String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            return "names \(names.sorted())"
        case .removexattr(let p, let name, let follow):
            if !follow, !name.hasPrefix("user."), Self.isSymlink(full(p)) { return Self.symlinkXattr }
            return Self.result(Int(polyad_removexattr(full(p), name, follow ? 1 : 0)))
        case .stat(let p, let follow):
            var st = stat()
            let r = follow ? statCall(full(p), &st) : lstat(full(p), &st)
            return r < 0 ? Self.failure() : Self.describe(st)
        case .readdir(let p):
            guard let dir = opendir(full(p)) else { return Self.failure() }
            defer { closedir(dir) }
            var entries = [String]()
            while let e = Glibc.readdir(dir) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name != "." && name != ".." { entries.append("\(name):\(e.pointee.d_type)") }
            }
            return "entries \(entries.sorted())"
        case .readlink(let p):
            var buffer = [CChar](repeating: 0, count: 4096)
            let n = Glibc.readlink(full(p), &buffer, buffer.count)
            if n < 0 { return Self.failure() }
            return "target " + String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// utimensat, and what it did to the times it was asked to set: an explicit time is the given one, OMIT
    /// left the time as it was, NOW lies between the clock before and after the call.
    private static func utimens(_ path: String, _ access: Time, _ modification: Time, follow: Bool) -> String {
        let flags: Int32 = follow ? 0 : AT_SYMLINK_NOFOLLOW
        func spec(_ t: Time) -> timespec {
            switch t {
            case .now: timespec(tv_sec: 0, tv_nsec: (1 << 30) - 1)
            case .omit: timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2)
            case .at(let s): timespec(tv_sec: s, tv_nsec: 123_456_789)
            }
        }
        var before = stat()
        let statted = fstatat(AT_FDCWD, path, &before, flags)
        var clockBefore = timespec()
        clock_gettime(CLOCK_REALTIME, &clockBefore)
        let times = [spec(access), spec(modification)]
        if utimensat(AT_FDCWD, path, times, flags) < 0 { return failure() }
        var clockAfter = timespec()
        clock_gettime(CLOCK_REALTIME, &clockAfter)
        var after = stat()
        guard statted == 0, fstatat(AT_FDCWD, path, &after, flags) == 0 else { return "ok, stat " + failure() }
        func check(_ t: Time, _ old: timespec, _ new: timespec) -> String {
            switch t {
            case .at(let s): return new.tv_sec == s && new.tv_nsec == 123_456_789 ? "set" : "not set: \(new)"
            case .omit: return new.tv_sec == old.tv_sec && new.tv_nsec == old.tv_nsec ? "kept" : "changed"
            case .now:
                // Coarse clocks: the file system may stamp with a tick up to ~10 ms before the call.
                let lo = Double(clockBefore.tv_sec) + Double(clockBefore.tv_nsec) / 1e9 - 0.02
                let hi = Double(clockAfter.tv_sec) + Double(clockAfter.tv_nsec) / 1e9 + 0.02
                let v = Double(new.tv_sec) + Double(new.tv_nsec) / 1e9
                return v >= lo && v <= hi ? "now" : "not now"
            }
        }
        return
            "ok atime \(check(access, before.st_atim, after.st_atim)) mtime \(check(modification, before.st_mtim, after.st_mtim))"
    }

    /// Every entry under `root` (relative path → type, mode, owner, link count, size, content checksum, link
    /// target, xattrs), without times and inode numbers.
    /// Without `blocks`, sparse and preallocated space is not compared (a restore writes holes as holes but
    /// drops preallocation).
    /// Extended attributes whose names start with `skippingXattrs` are left out (the mount's own).
    static func describeTree(
        _ root: String,
        blocks: Bool = true,
        skippingXattrs hidden: String? = nil
    ) throws -> [String: String] {
        var out = [String: String]()
        func walk(_ relative: String) {
            let path = relative.isEmpty ? root : root + "/" + relative
            var st = stat()
            guard lstat(path, &st) == 0 else {
                out[relative] = failure()
                return
            }
            var entry = describe(st, blocks: blocks)
            let type = st.st_mode & S_IFMT
            if type == S_IFREG {
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                if fd >= 0 {
                    var bytes = [UInt8]()
                    var buffer = [UInt8](repeating: 0, count: 65536)
                    while true {
                        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                        if n <= 0 { break }
                        bytes += buffer[0..<n]
                    }
                    close(fd)
                    entry += " content \(bytes.withUnsafeBytes { checksum($0) })"
                }
            } else if type == S_IFLNK {
                var buffer = [CChar](repeating: 0, count: 4096)
                let n = readlink(path, &buffer, buffer.count)
                entry +=
                    " target " + String(decoding: buffer[0..<max(n, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            if type != S_IFLNK {
                var names = [CChar](repeating: 0, count: 65536)
                let n = polyad_listxattr(path, &names, UInt(names.count), 0)
                if n > 0 {
                    let sorted = names[0..<n].split(separator: 0).sorted { $0.lexicographicallyPrecedes($1) }
                    for name in sorted {
                        let text = String(decoding: name.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                        if let hidden, text.hasPrefix(hidden) { continue }
                        var value = [UInt8](repeating: 0, count: 65536)
                        let m = value.withUnsafeMutableBytes {
                            polyad_getxattr(path, text, $0.baseAddress, UInt($0.count), 0)
                        }
                        entry += " xattr \(text)=\(m < 0 ? -1 : Int(m))"
                    }
                }
            }
            out[relative] = entry
            if type == S_IFDIR, let children = try? FileManager.default.contentsOfDirectory(atPath: path) {
                for child in children.sorted() { walk(relative.isEmpty ? child : relative + "/" + child) }
            }
        }
        walk("")
        return out
    }
}

/// `flock(2)` and `stat(2)` by name: inside `CallSequence` the names are its operations.
private func lockCall(_ fd: Int32, _ operation: Int32) -> Int32 { flock(fd, operation) }
private func statCall(_ path: String, _ status: UnsafeMutablePointer<stat>) -> Int32 { stat(path, status) }
