import PolyadFormat

/// On open: decode the first chunk of this file and of the next files in walk order (depth first, names in
/// order: how `find | xargs cat`, `cp -r` and `tar` read a tree), so that their data is ready before they
/// ask. The walk goes on into subfolders whose trees are loaded and, at the end of this folder, out to the
/// folders that follow it; at most 16 files or 2 MiB. A whole one-chunk file the kernel already has an inode
/// for goes straight into its page cache.
struct WalkOrderPrefetch: Sendable {
    let table: InodeTable
    let catalog: SnapshotCatalog
    let trees: DecodedTrees
    let chunks: DecodedChunks

    /// Starts the decodes for the files after (and including) `node`, the file with inode `inode`.
    func start(after inode: UInt64, node: Node) {
        var budget = 2 << 20
        var files = 0
        // Prefetches from `nodes` (of the folder with inode `folder`, if the kernel knows it) on, descending
        // into loaded subtrees; false once the budget is spent.
        func visit(_ nodes: ArraySlice<Node>, folder: UInt64?, depth: Int) -> Bool {
            // The inode of `name` in `folder`, if the kernel has been given one.
            func known(_ name: [UInt8]) -> UInt64? {
                folder.flatMap { f in table.knownChild(of: f, named: name) }
            }
            for n in nodes {
                guard files < 16, budget > 0 else { return false }
                if n.kind == .file, case .chunk(let id, let length)? = n.content.first {
                    if let file = known(n.name), file != inode, n.content.count == 1, n.size == UInt64(length) {
                        chunks.prefetchWhole(id, into: file)
                    } else {
                        chunks.prefetch(id)
                    }
                    budget -= Int(length)
                    files += 1
                } else if n.kind == .directory, depth < 8, let sub = n.subtree, let t = trees.peek(sub) {
                    guard visit(t.nodes[...], folder: known(n.name), depth: depth + 1) else { return false }
                }
            }
            return true
        }
        // From this file's folder up towards the snapshot's root: the rest of each folder after the entry
        // the walk came from (this file itself included, at the first level).
        var at = inode
        var name = node.name
        var inclusive = true
        for _ in 0..<8 {
            guard let (parent, parentName, parentEntry) = table.parent(of: at) else { return }
            // A folder of a snapshot, or the snapshot's root (where the walk stops going up).
            var atSnapshotRoot = false
            let treeID: TreeID?
            if let dir = parentEntry as? SnapshotNode {
                treeID = dir.node.subtree
            } else if let root = parentEntry as? CatalogEntry, case .snapshotRoot(let id) = root.kind {
                treeID = catalog.info(id)?.snapshot.tree
                atSnapshotRoot = true
            } else {
                return
            }
            guard let treeID, let tree = trees.peek(treeID) else { return }
            guard visit(tree.nodes[tree.firstIndex(from: name, inclusive: inclusive)...], folder: parent, depth: 0)
            else { return }
            if atSnapshotRoot { return }
            at = parent
            name = parentName
            inclusive = false
        }
    }
}
