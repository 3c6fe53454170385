import Dispatch
import Foundation
import PolyadFileSystem
import Synchronization

/// Warms the kernel's directory and inode caches ahead of the backup walker: a few threads list folders and
/// `lstat` their entries in parallel, so that on a cold cache the disk serves several metadata reads at once
/// while the walker (which must go in order) finds them cached. It only reads metadata, keeps nothing, and
/// stops when the walk is done.
final class MetadataPrefetcher: Sendable {
    private struct State {
        var pending: [[UInt8]]
        var busy = 0
        var stopped = false
    }

    private let state: Mutex<State>
    private let group = DispatchGroup()
    private let excluded: @Sendable ([UInt8]) -> Bool

    /// Starts `threads` threads on the folders `roots`.
    init(roots: [[UInt8]], threads: Int = 4, excluded: @escaping @Sendable ([UInt8]) -> Bool) {
        state = Mutex(State(pending: roots.reversed()))
        self.excluded = excluded
        for _ in 0..<threads {
            group.enter()
            Thread.detachNewThread { [self] in
                run()
                group.leave()
            }
        }
    }

    /// Stops the threads and waits for them.
    func stop() {
        state.withLock { $0.stopped = true }
        group.wait()
    }

    private func run() {
        while true {
            let next: [UInt8]? = state.withLock { s in
                if s.stopped { return nil }
                guard let dir = s.pending.popLast() else { return nil }
                s.busy += 1
                return dir
            }
            guard let dir = next else {
                // Nothing queued: finished if nobody else may still add folders.
                let done = state.withLock { $0.stopped || $0.busy == 0 }
                if done { return }
                usleep(1000)
                continue
            }
            var subfolders = [[UInt8]]()
            if let names = try? FileSystem.directoryEntries(dir) {
                for name in names {
                    let path = PathBytes.join(dir, name)
                    if excluded(path) { continue }
                    if let st = try? FileSystem.lstat(path), st.kind == .directory { subfolders.append(path) }
                }
            }
            state.withLock { s in
                s.busy -= 1
                // Depth first, in reverse name order so the walker's next folders are fetched first.
                s.pending.append(contentsOf: subfolders.sorted { $1.lexicographicallyPrecedes($0) })
            }
        }
    }
}
