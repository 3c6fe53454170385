import Foundation
import PolyadFileSystem
import Synchronization

/// The inode numbers that never change, all in this one place. Every other inode is allocated from
/// `firstDynamic` on, by the provider that owns it, and dropped when the kernel forgets it.
public enum FixedInode {
    /// The mount's root folder.
    public static let root: UInt64 = 1
    /// `/snapshots`.
    public static let snapshots: UInt64 = 2
    /// `/incoming`.
    public static let incoming: UInt64 = 3
    /// `/.polyad`.
    public static let control: UInt64 = 4
    /// The files of `/.polyad`, in name order from here (room up to `firstDynamic`).
    public static let firstControlFile: UInt64 = 8
    /// The first inode number handed out on demand.
    public static let firstDynamic: UInt64 = 16

    /// Whether `inode` is one of the fixed ones (never forgotten, lookups not counted).
    public static func isFixed(_ inode: UInt64) -> Bool { inode < firstDynamic }
}

/// Which provider owns an inode: its place in `MountFileSystem`'s list of providers.
struct ProviderID: Hashable, Sendable {
    let index: Int
}

/// What an inode stands for, to the provider that owns it: an object the provider made and alone interprets
/// (a class, so that a record holds one reference, and a provider tells its own entries apart with a cheap
/// class cast).
typealias InodeEntry = AnyObject & Sendable

/// What makes entries reached under different names (or listed again) one inode: a hard-link group, a
/// snapshot, a day. The provider that owns the entries makes the key.
///
/// `@unchecked Sendable`: `AnyHashable` is not `Sendable`, but the only initializer takes a `Sendable` key,
/// and the key is never mutated.
struct InodeIdentity: Hashable, @unchecked Sendable {
    let owner: ProviderID
    private let key: AnyHashable

    init(owner: ProviderID, key: some Hashable & Sendable) {
        self.owner = owner
        self.key = AnyHashable(key)
    }
}

/// The table's record of one inode.
struct InodeRecord: Sendable {
    var owner: ProviderID
    var entry: any InodeEntry
    var parent: UInt64
    var name: [UInt8]
    var lookups: UInt64 = 0
    /// Children by name, once listed or looked up (folders).
    var children: [[UInt8]: UInt64]?
}

/// One inode, as the table gives it to the provider that owns it.
struct Inode: Sendable {
    let number: UInt64
    let owner: ProviderID
    let entry: any InodeEntry
    let parent: UInt64
    /// The children known by name (folders; only when asked for with `InodeTable.folder`).
    let children: [[UInt8]: UInt64]?
}

/// Every inode the kernel knows: who owns it, what it stands for, its place in the tree, and how many lookups
/// the kernel holds. Safe to share between FUSE threads (one lock; each call takes it once).
final class InodeTable: Sendable {
    private struct State {
        var records: [UInt64: InodeRecord] = [:]
        var next = FixedInode.firstDynamic
        var identities: [InodeIdentity: UInt64] = [:]
    }

    private let state = Mutex(State())

    init() {}

    /// Records one of the fixed inodes (at start-up).
    func insertFixed(_ number: UInt64, owner: ProviderID, entry: any InodeEntry, parent: UInt64, name: String) {
        precondition(FixedInode.isFixed(number), "inode \(number) is not a fixed one")
        state.withLock {
            $0.records[number] = InodeRecord(owner: owner, entry: entry, parent: parent, name: Array(name.utf8))
        }
    }

    /// Gives a fixed inode a new entry (`/incoming`'s live tree after a commit took the old one).
    func replaceFixedEntry(_ number: UInt64, entry: any InodeEntry) {
        precondition(FixedInode.isFixed(number), "inode \(number) is not a fixed one")
        state.withLock { $0.records[number]?.entry = entry }
    }

    /// The inode numbered `number`; `ENOENT` if the table holds none.
    func inode(_ number: UInt64) throws(FileSystemErrno) -> Inode {
        guard
            let i = state.withLock({ s -> Inode? in
                guard let r = s.records[number] else { return nil }
                return Inode(number: number, owner: r.owner, entry: r.entry, parent: r.parent, children: nil)
            })
        else { throw FileSystemErrno(ENOENT) }
        return i
    }

    /// The inode numbered `number` with the children known by name (for a lookup in it).
    func folder(_ number: UInt64) throws(FileSystemErrno) -> Inode {
        guard
            let i = state.withLock({ s -> Inode? in
                guard let r = s.records[number] else { return nil }
                return Inode(number: number, owner: r.owner, entry: r.entry, parent: r.parent, children: r.children)
            })
        else { throw FileSystemErrno(ENOENT) }
        return i
    }

    /// Finds or makes the inode named `name` in folder `parent`, owned by `owner`.
    /// - Parameters:
    ///   - countLookup: counts one lookup of the result (a LOOKUP reply), or none (a plain listing).
    ///   - isCurrent: whether the entry already known under this name still stands for what the caller means
    ///     (false makes a new inode: `latest` gets one whenever it moves).
    ///   - identity: the key that makes this one inode wherever it is reached, if any (asked only when no
    ///     current entry is known under the name).
    ///   - make: the new inode's entry (made only when a new inode is needed).
    func child(
        of parent: UInt64,
        name: [UInt8],
        owner: ProviderID,
        countLookup: Bool,
        isCurrent: (any InodeEntry) -> Bool = { _ in true },
        identity: () -> InodeIdentity? = { nil },
        make: () -> any InodeEntry
    ) -> UInt64 {
        state.withLock { s in
            if let existing = s.records[parent]?.children?[name], let known = s.records[existing],
                isCurrent(known.entry)
            {
                if countLookup { s.records[existing]!.lookups += 1 }
                return existing
            }
            let key = identity()
            let number: UInt64
            if let key, let n = s.identities[key], s.records[n] != nil {
                number = n
            } else {
                number = s.next
                s.next += 1
                s.records[number] = InodeRecord(owner: owner, entry: make(), parent: parent, name: name)
                if let key { s.identities[key] = number }
            }
            if countLookup { s.records[number]!.lookups += 1 }
            if s.records[parent]?.children == nil { s.records[parent]?.children = [:] }
            s.records[parent]?.children?[name] = number
            return number
        }
    }

    /// Counts one lookup of `number` if the table still holds it; returns it then.
    func countLookupIfPresent(_ number: UInt64) -> UInt64? {
        state.withLock { s -> UInt64? in
            guard s.records[number] != nil else { return nil }
            s.records[number]!.lookups += 1
            return number
        }
    }

    /// Counts one lookup of `number` (an entry returned by `readdirplus` counts as one). Fixed inodes are not
    /// counted.
    func countLookup(_ number: UInt64) {
        guard !FixedInode.isFixed(number) else { return }
        state.withLock { $0.records[number]?.lookups += 1 }
    }

    /// The kernel forgets `count` lookups of `number`; at zero the inode is dropped (it is made again on the
    /// next lookup). The fixed inodes stay.
    func forget(_ number: UInt64, count: UInt64) {
        guard !FixedInode.isFixed(number) else { return }
        state.withLock { s in
            guard var r = s.records[number] else { return }
            r.lookups = r.lookups > count ? r.lookups - count : 0
            if r.lookups == 0 && (r.children?.isEmpty ?? true) {
                s.records[number] = nil
                // In place (no copy of a large folder's children); by value if the name went stale.
                if s.records[r.parent]?.children?[r.name] == number {
                    s.records[r.parent]?.children?[r.name] = nil
                } else if let children = s.records[r.parent]?.children, children.values.contains(number) {
                    s.records[r.parent]?.children = children.filter { $0.value != number }
                }
            } else {
                s.records[number] = r
            }
        }
    }

    /// Inodes of `owner` the kernel holds that have no children in the table (files, and folders whose
    /// entries the kernel has forgotten), with the folder and name the kernel reached them by.
    func leaves(ownedBy owner: ProviderID) -> [(inode: UInt64, parent: UInt64, name: [UInt8], entry: any InodeEntry)] {
        state.withLock { s in
            s.records.compactMap { number, r in
                guard r.owner == owner, !FixedInode.isFixed(number), r.children?.isEmpty ?? true else { return nil }
                return (number, r.parent, r.name, r.entry)
            }
        }
    }

    /// The inode of `name` in folder `folder`, if the kernel has been given one.
    func knownChild(of folder: UInt64, named name: [UInt8]) -> UInt64? {
        state.withLock { $0.records[folder]?.children?[name] }
    }

    /// The folder holding `number`: its inode, its name and its entry.
    func parent(of number: UInt64) -> (inode: UInt64, name: [UInt8], entry: any InodeEntry)? {
        state.withLock { s in
            guard let r = s.records[number], let p = s.records[r.parent] else { return nil }
            return (r.parent, p.name, p.entry)
        }
    }

    /// The path of an inode below the mount point, as bytes (for the access log).
    func pathBytes(of number: UInt64) -> [UInt8] {
        state.withLock { s in
            var parts = [[UInt8]]()
            var at = number
            var guardCount = 0
            while at != FixedInode.root, let r = s.records[at], guardCount < 4096 {
                parts.append(r.name)
                at = r.parent
                guardCount += 1
            }
            var out: [UInt8] = []
            for p in parts.reversed() { out += [0x2F] + p }
            return out.isEmpty ? [0x2F] : out
        }
    }

    /// The path of an inode below the mount point, for log lines.
    func path(of number: UInt64) -> String { PathBytes.display(pathBytes(of: number)) }

    /// How many inodes the table holds.
    var count: Int { state.withLock { $0.records.count } }
}
