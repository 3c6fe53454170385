import CFuseShim
import Dispatch
import Foundation
import Glibc
import PolyadFileSystem
import PolyadMount
import Synchronization

/// What the C callbacks reach through `fuse_req_userdata`: the filesystem model, the listings being read,
/// and the readiness pipe of a daemonizing parent.
final class MountContext: Sendable {
    let fs: MountFileSystem
    let readyDescriptor: Int32?
    let ready = Atomic<Bool>(false)
    /// Listings being read, by directory inode: taken at offset 0, kept until read to the end.
    let directories = Mutex<[UInt64: [DirectoryEntry]]>([:])
    let mountpoint: String?

    init(fs: MountFileSystem, readyDescriptor: Int32?, mountpoint: String?) {
        self.fs = fs
        self.readyDescriptor = readyDescriptor
        self.mountpoint = mountpoint
    }

    /// Tells the waiting parent (if any) that the mount is up: called from FUSE's `init`.
    func signalReady() {
        guard !ready.exchange(true, ordering: .relaxed), let fd = readyDescriptor else { return }
        _ = "ok\n".withCString { write(fd, $0, 3) }
        close(fd)
    }
}

/// The context of a request (retained once by `main` for the session's life, so unretained here).
func context(_ req: fuse_req_t?) -> MountContext {
    Unmanaged<MountContext>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
}

/// Who sent a request: uid, gid and thread id from `fuse_req_ctx`. The supplementary groups stay empty (see
/// `Caller.groups`: `fuse_req_getgroups` reads a file per call, so access control will ask for them only
/// where a group matters).
func caller(_ req: fuse_req_t?) -> Caller {
    guard let c = fuse_req_ctx(req)?.pointee else { return Caller(uid: UInt32.max, gid: UInt32.max, pid: 0) }
    return Caller(uid: c.uid, gid: c.gid, pid: c.pid)
}

/// A name from the kernel, as bytes.
func name(_ c: UnsafePointer<CChar>?) -> [UInt8] {
    guard let c else { return [] }
    return PathBytes.bytes(ofCString: c)
}

/// The low-level operations. Every callback replies exactly once. The read operations are in
/// FuseReadOperations.swift, the ones that would change the tree in FuseWriteOperations.swift.
func makeOperations() -> fuse_lowlevel_ops {
    var ops = fuse_lowlevel_ops()
    ops.`init` = { userdata, conn in
        polyad_fuse_conn_configure(conn, 1 << 20)
        let ctx = Unmanaged<MountContext>.fromOpaque(userdata!).takeUnretainedValue()
        ctx.signalReady()
        // The kernel's read-ahead for a FUSE mount starts at 128 KiB; raise it to 1 MiB (as root) so that
        // sequential reads arrive as 1 MiB requests. Off the loop's thread: stat() of the mount point is
        // itself a request to this daemon.
        if let mountpoint = ctx.mountpoint {
            DispatchQueue.global().async { raiseReadAhead(mountpoint: mountpoint, kilobytes: 1024) }
        }
    }
    installReadOperations(into: &ops)
    installWriteOperations(into: &ops)
    return ops
}

/// Sets the read-ahead of the mount's backing device info (`/sys/class/bdi/MAJOR:MINOR/read_ahead_kb`).
/// Needs root; without it the kernel's default stays (reads then arrive in smaller requests).
func raiseReadAhead(mountpoint: String, kilobytes: Int) {
    guard let status = try? FileSystem.stat(PathText.bytes(mountpoint)) else { return }
    let (major, minor) = (DeviceNumber.major(status.dev), DeviceNumber.minor(status.dev))
    let path = "/sys/class/bdi/\(major):\(minor)/read_ahead_kb"
    try? "\(kilobytes)\n".write(toFile: path, atomically: false, encoding: .utf8)
}
