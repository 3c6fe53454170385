import Dispatch
import PolyadChunker
import PolyadCompression
import PolyadCrypto
import PolyadFileSystem
import PolyadFormat
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The part of the backup pipeline that runs on the worker threads: compress, seal and pack new chunks.
final class ChunkStore: Sendable {
    let repository: Repository
    let codec: BlobCodec
    let dataPacker: Packer
    let treePacker: Packer
    private let queue = DispatchQueue(label: "polyad.backup.workers", attributes: .concurrent)
    private let slots: DispatchSemaphore
    private let group = DispatchGroup()
    private let failure = Mutex<RepositoryError?>(nil)
    private let added = Atomic<UInt64>(0)
    private let blobs = Atomic<Int>(0)

    init(repository: Repository, level: Int, packSize: Int) {
        self.repository = repository
        codec = BlobCodec(encryptionKey: repository.key.encryptionKey, level: level)
        dataPacker = Packer(repository: repository, type: .data, targetSize: packSize)
        treePacker = Packer(repository: repository, type: .tree, targetSize: max(1 << 20, packSize / 4))
        // Bounded memory: at most this many chunks (each <= 8 MiB, typically 1 MiB) wait or are in flight.
        slots = DispatchSemaphore(value: 2 * Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) + 2)
    }

    /// The first error a worker hit, if any.
    func checkFailure() throws(RepositoryError) {
        if let e = failure.withLock({ $0 }) { throw e }
    }

    var addedBytes: UInt64 { added.load(ordering: .relaxed) }
    var blobsAdded: Int { blobs.load(ordering: .relaxed) }

    /// Queues a new data chunk for compression, sealing and packing; blocks while too many are in flight.
    func storeData(_ chunk: [UInt8], id: BlobID) throws(RepositoryError) {
        try submit { [self] in
            do throws(RepositoryError) {
                try seal(chunk, type: .data, id: id, packer: dataPacker)
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
        }
    }

    /// Runs `work` on a worker once an in-flight slot is free; `directory` (if any) is left when it is done.
    private func submit(directory: DispatchGroup? = nil, _ work: @escaping @Sendable () -> Void) throws(RepositoryError)
    {
        try checkFailure()
        slots.wait()
        group.enter()
        directory?.enter()
        queue.async { [self] in
            defer {
                slots.signal()
                directory?.leave()
                group.leave()
            }
            work()
        }
    }

    /// Reads a small file (at most the chunker's minimum size: one chunk) on a worker thread, stores its
    /// chunk if new, and puts the file's content into `slot`; `directory` is left when done.
    func storeSmallFile(path: [UInt8], size: Int, slot: FileSlot, directory: DispatchGroup) throws(RepositoryError) {
        try submit(directory: directory) { [self] in
            let bytes: [UInt8]
            do {
                let fd = try FileSystem.openForReading(path)
                defer { FileSystem.close(fd) }
                var buffer = [UInt8](repeating: 0, count: size)
                let n = try buffer.withUnsafeMutableBytes { b -> Int in try FileSystem.pread(fd, into: b, offset: 0) }
                if n < size { buffer.removeLast(size - n) }
                bytes = buffer
            } catch {
                slot.set(.failed("\(error)"))
                return
            }
            guard !bytes.isEmpty else {
                slot.set(.stored([], 0))
                return
            }
            let id = repository.blobID(bytes)
            do throws(RepositoryError) {
                if repository.index.reserve(id) { try seal(bytes, type: .data, id: id, packer: dataPacker) }
                slot.set(.stored([.chunk(ChunkID(id.hash), length: UInt32(bytes.count))], UInt64(bytes.count)))
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
                slot.set(.failed("\(error)"))
            }
        }
    }

    /// Seals and packs a tree blob on the calling thread.
    func storeTree(_ bytes: [UInt8], id: BlobID) throws(RepositoryError) {
        try seal(bytes, type: .tree, id: id, packer: treePacker)
    }

    private func seal(_ plain: [UInt8], type: BlobType, id: BlobID, packer: Packer) throws(RepositoryError) {
        let sealed = codec.encode(plain, type: type, id: id)
        try packer.add(id: id, sealed: sealed, rawLength: plain.count)
        added.add(UInt64(plain.count), ordering: .relaxed)
        blobs.add(1, ordering: .relaxed)
    }

    /// Waits for every queued chunk, then stores the last packs.
    func finish() throws(RepositoryError) {
        group.wait()
        try checkFailure()
        try dataPacker.flush()
        try treePacker.flush()
    }

    /// Waits for the workers without storing anything more (after a failure or interruption).
    func abandon() {
        group.wait()
        repository.index.dropReservations()
    }
}

/// Where a worker puts the content of a file it read.
final class FileSlot: Sendable {
    enum Outcome: Sendable {
        case stored([ContentPiece], UInt64)
        case failed(String)
    }

    private let outcome = Mutex<Outcome?>(nil)

    func set(_ o: Outcome) { outcome.withLock { $0 = o } }
    var value: Outcome? { outcome.withLock { $0 } }
}

/// A walked directory whose tree is built once the worker jobs for its files are done: the walker goes on
/// meanwhile, and finishes directories in post-order (children before parents).
final class PendingDirectory {
    var nodes = [Node]()
    /// Files read by workers: node index, slot, and whether the parent snapshot had the file.
    var jobs = [(index: Int, slot: FileSlot, changed: Bool)]()
    /// Subdirectories: node index and their pending directory.
    var children = [(index: Int, directory: PendingDirectory)]()
    let group = DispatchGroup()
    var treeID: TreeID?
}
