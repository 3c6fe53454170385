import Foundation
import PolyadStorage
import Synchronization

/// What comparing the two copies of a mirrored store found, and what it mended.
public struct MirrorReport: Sendable {
    /// One object that a copy lacks or holds damaged.
    public struct Problem: Sendable, CustomStringConvertible {
        public enum Kind: String, Sendable {
            /// The copy lacks the object (a write it missed while it was down).
            case missing
            /// The copy's bytes do not match the object's name (SHA-256), or its size differs from the other's.
            case damaged
        }

        public var target: String
        public var handle: ObjectHandle
        public var kind: Kind
        /// Whether the copy was rewritten from the other.
        public var repaired: Bool
        /// Why it could not be (both copies bad, or the write failed), when it was not.
        public var reason: String?

        public var description: String {
            "\(handle) is \(kind.rawValue) on \(target)"
                + (repaired ? " (repaired)" : reason.map { " (not repaired: \($0))" } ?? "")
        }
    }

    /// Objects compared (each counted once, whichever copies hold it).
    public var objects = 0
    /// Bytes read to check copies against their names.
    public var bytesRead: Int64 = 0
    /// Bytes written to mend copies.
    public var bytesCopied: Int64 = 0
    public var problems: [Problem] = []

    /// The problems left unmended.
    public var unrepaired: [Problem] { problems.filter { !$0.repaired } }
}

extension MirrorBackend {
    /// Compares the copies object by object, every kind but locks, and with `repair` rewrites a copy that lacks
    /// an object or holds it damaged from the copy whose bytes match its name. Kinds go in the order a backup
    /// writes them (config, keys, packs, index, snapshots), so a copy being caught up never shows a snapshot
    /// before what it references.
    ///
    /// Without `readData` copies are compared by listing and size (cheap on S3: one listing per kind); with it
    /// each copy's bytes are read and hashed. A copy is only ever written from bytes that match the name.
    ///
    /// - Parameters:
    ///   - workers: transfers in flight at once.
    ///   - progress: called with (objects done, objects in all).
    /// - Throws: a ``StorageError`` when a copy cannot be listed (unreachable: `polyad sync` again once it is back).
    public func reconcile(
        readData: Bool,
        repair: Bool,
        workers: Int = 4,
        progress: (@Sendable (Int, Int) -> Void)? = nil
    ) throws(StorageError) -> MirrorReport {
        var plan: [[(handle: ObjectHandle, sizes: [Int64?])]] = []
        for kind in [ObjectKind.config, .keys, .data, .index, .snapshots] {
            var sizes = [ObjectHandle: [Int64?]]()
            for (i, target) in targets.enumerated() {
                for info in try target.backend.list(kind) {
                    sizes[info.handle, default: Array(repeating: nil, count: targets.count)][i] = info.size
                }
            }
            plan.append(sizes.map { (handle: $0.key, sizes: $0.value) }.sorted { $0.handle.name < $1.handle.name })
        }
        let total = plan.reduce(0) { $0 + $1.count }
        let missedBefore = missedWrites
        let report = Mutex(MirrorReport())
        let done = Atomic<Int>(0)
        for group in plan {
            Self.parallel(count: group.count, workers: workers) { n in
                let item = group[n]
                var part = MirrorReport()
                self.check(item.handle, sizes: item.sizes, readData: readData, repair: repair, into: &part)
                report.withLock { r in
                    r.objects += 1
                    r.bytesRead += part.bytesRead
                    r.bytesCopied += part.bytesCopied
                    r.problems += part.problems
                }
                progress?(done.add(1, ordering: .relaxed).newValue, total)
            }
        }
        let result = report.withLock { $0 }
        // Every copy listed, so every copy is reachable: one set aside takes writes again, unless a write
        // skipped it while this run went on (then it lacks an object this run did not see, and a snapshot
        // written to it next could reference that object: it stays aside until the next run).
        if repair, result.unrepaired.isEmpty, missedWrites == missedBefore { takeBackSetAsideTargets() }
        return result
    }

    /// Checks one object on every copy and mends the bad copies when asked to.
    private func check(
        _ handle: ObjectHandle,
        sizes: [Int64?],
        readData: Bool,
        repair: Bool,
        into report: inout MirrorReport
    ) {
        var good: [Int: [UInt8]] = [:]
        var bad: [(Int, MirrorReport.Problem.Kind)] = []
        let present = sizes.indices.filter { sizes[$0] != nil }
        let mustRead = readData || Set(present.map { sizes[$0]! }).count > 1 || (repair && present.count < sizes.count)
        for i in sizes.indices {
            guard sizes[i] != nil else {
                bad.append((i, .missing))
                continue
            }
            guard mustRead else { continue }
            do {
                let bytes = try targets[i].backend.load(handle)
                report.bytesRead += Int64(bytes.count)
                // The config object has no name to check against: a copy that differs from the preferred one is bad.
                let fine =
                    handle.kind.isHashed ? Self.matchesName(bytes, handle) : good.values.allSatisfy { $0 == bytes }
                if fine {
                    good[i] = bytes
                } else {
                    bad.append((i, .damaged))
                }
            } catch {
                bad.append((i, error.code == .notFound ? .missing : .damaged))
            }
        }
        for (i, kind) in bad {
            var problem = MirrorReport.Problem(target: targets[i].name, handle: handle, kind: kind, repaired: false)
            if !repair {
                problem.reason = "run `polyad verify --repair` or `polyad sync`"
            } else if let (_, bytes) = good.min(by: { $0.key < $1.key }) {
                do {
                    try replace(handle, with: bytes, on: targets[i].backend)
                    problem.repaired = true
                    report.bytesCopied += Int64(bytes.count)
                } catch {
                    problem.reason = "\(error)"
                }
            } else {
                problem.reason = "no copy of it checks out"
            }
            report.problems.append(problem)
        }
    }

    /// Runs `body(0..<count)` on `workers` threads (transfers wait on the network, so more threads than cores).
    static func parallel(count: Int, workers: Int, _ body: @escaping @Sendable (Int) -> Void) {
        guard count > 0 else { return }
        let next = Atomic<Int>(0)
        let group = DispatchGroup()
        for _ in 0..<min(count, max(1, workers)) {
            group.enter()
            Thread.detachNewThread {
                while true {
                    let n = next.add(1, ordering: .relaxed).oldValue
                    guard n < count else { break }
                    body(n)
                }
                group.leave()
            }
        }
        group.wait()
    }
}
