import PolyadFormat

/// A depth-first walk over trees, each loaded through the repository: the one walk `verify` uses (and prune
/// will) to reach every tree and node a snapshot references.
struct TreeWalker {
    /// What the walk reports, in walk order.
    enum Event {
        /// A tree that cannot be loaded (missing from the index, unreadable or damaged); nothing below it is walked.
        case unreadable(TreeID, path: [UInt8], RepositoryError)
        /// A tree was loaded; its nodes follow. Return false to skip them.
        case tree(TreeID, Tree, path: [UInt8])
        /// A node of the tree just reported. Return false not to walk its subtree.
        case node(Node, path: [UInt8])
    }

    let repository: Repository
    /// Walk each tree once across all roots (a tree shared by snapshots is reported once).
    var visitEachTreeOnce = true
    /// Build each node's path (`/a/b`, relative to its root); off, paths are empty and the walk allocates less.
    var tracksPaths = false

    /// Walks from `roots`, calling `handle` for every event; a root's path is empty.
    func walk(from roots: [TreeID], _ handle: (Event) -> Bool) {
        var seen = Set<TreeID>()
        var stack = roots.map { (id: $0, path: [UInt8]()) }
        while let (id, path) = stack.popLast() {
            if visitEachTreeOnce { guard seen.insert(id).inserted else { continue } }
            let tree: Tree
            do {
                tree = try repository.loadTree(id)
            } catch {
                _ = handle(.unreadable(id, path: path, error))
                continue
            }
            guard handle(.tree(id, tree, path: path)) else { continue }
            for node in tree.nodes {
                let nodePath = tracksPaths ? path + [UInt8(ascii: "/")] + node.name : []
                if handle(.node(node, path: nodePath)), let subtree = node.subtree {
                    stack.append((subtree, nodePath))
                }
            }
        }
    }
}
