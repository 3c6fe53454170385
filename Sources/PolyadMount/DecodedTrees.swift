import Dispatch
import Foundation
import PolyadFormat
import PolyadRepository

/// The snapshots' trees, loaded when first needed into a bounded cache (16,384 trees), each load shared by
/// the requests that want it, and the subfolders of a folder that was read loaded ahead in the background.
final class DecodedTrees: Sendable {
    private let cache = LRUCache<TreeID, Tree>(capacity: 16_384)
    private let loads = SharedLoads<TreeID, Tree, RepositoryError>()
    private let repository: Repository
    private let background: DispatchQueue
    private let activity: MountActivity
    private let willBlock: @Sendable () -> Void
    /// Called before a tree is read from the store (the mount's read lock).
    private let beforeStoreRead: @Sendable () throws(RepositoryError) -> Void

    /// - Parameters:
    ///   - background: where trees are loaded ahead (the mount's read-ahead queue).
    ///   - willBlock: called on a request's thread before it waits for the store.
    init(
        repository: Repository,
        background: DispatchQueue,
        activity: MountActivity,
        willBlock: @escaping @Sendable () -> Void,
        beforeStoreRead: @escaping @Sendable () throws(RepositoryError) -> Void = {}
    ) {
        self.beforeStoreRead = beforeStoreRead
        self.repository = repository
        self.background = background
        self.activity = activity
        self.willBlock = willBlock
    }

    /// The tree `id`: from the cache, or loaded (a damaged tree is reported and fails with `EIO`).
    func tree(_ id: TreeID) throws(FileSystemErrno) -> Tree {
        if let t = cache.value(for: id) { return t }
        willBlock()
        do {
            let t = try load(id)
            prefetchSubtrees(of: t)
            return t
        } catch  where error.code == .locked {
            activity.note("tree \(id.hash.shortHex) not read: \(error.message)")
            throw FileSystemErrno(EBUSY)
        } catch {
            activity.reportDamage("tree \(id.hash.shortHex): \(error.message)")
            throw FileSystemErrno(EIO)
        }
    }

    /// The tree if it is loaded, without counting a cache hit or loading it.
    func peek(_ id: TreeID) -> Tree? { cache.peek(id) }

    /// Loads the trees of a directory's subdirectories in the background (one level ahead), so that a walk
    /// (`ls -lR`, `find`, `cp -a`) finds them decoded and the other core does the decoding.
    private func prefetchSubtrees(of tree: Tree) {
        for node in tree.nodes {
            guard let sub = node.subtree, !cache.contains(sub), !loads.isLoading(sub) else { continue }
            background.async { [self] in _ = try? load(sub) }
        }
    }

    /// Loads a tree into the cache, or waits for the load of it already under way.
    private func load(_ id: TreeID) throws(RepositoryError) -> Tree {
        try loads.value(for: id) { () throws(RepositoryError) -> Tree in
            if let t = cache.peek(id) { return t }  // loaded while this prefetch waited in the queue
            try beforeStoreRead()
            let t = try repository.loadTree(id)
            cache.insert(t, for: id, cost: 1)
            return t
        }
    }
}
