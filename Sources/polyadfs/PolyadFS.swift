import CFuseShim
import CSystemShim
import Foundation
import Glibc
import PolyadAudit
import PolyadConfig
import PolyadFileSystem
import PolyadMount
import PolyadRepository
import PolyadService
import Synchronization

/// `polyadfs CONF MOUNTPOINT [-o OPTIONS] [-f] [-d]`: mounts the store that CONF describes (README, "The mount"). It
/// follows the conventions of mount.fuse3 helpers, so `mount -t fuse.polyadfs CONF MNT` and fstab work.
/// Without `-f` it returns once the mount is up (the daemon goes on in the background); every startup error
/// is reported before anything is mounted, with an exit code from the README's "Exit codes".
@main
enum PolyadFS {
    static let usage = """
        usage: polyadfs CONFIG MOUNTPOINT [-o OPTION[,OPTION...]] [-f] [-d]
          -f            stay in the foreground
          -d            FUSE debug output (implies -f)
          -o allow_other,allow_root,default_permissions,max_read=N,ro,...   mount options
          -h, --help    this text;  -V, --version  the version
        Unmount with `umount MOUNTPOINT`, `fusermount3 -u MOUNTPOINT`, or SIGTERM/SIGINT to the daemon.
        """

    struct Arguments {
        var config: String?
        var mountpoint: String?
        var options: [String] = []
        var foreground = false
        var debug = false
    }

    static func main() {
        polyad_limit_malloc_caching()  // chunk buffers cross FUSE threads: keep freed ones from piling up
        polyad_keep_freed_heap()  // but reuse freed heap rather than fault in fresh pages
        var args = Arguments()
        // The arguments as the kernel gave them: a config or mount point path keeps every byte (see PathText).
        var list = PathText.commandLineArguments()
        while !list.isEmpty {
            let a = list.removeFirst()
            switch a {
            case "-h", "--help":
                print(usage)
                exit(0)
            case "-V", "--version":
                print("polyadfs \(PolyadVersion.string)")
                exit(0)
            case "-f": args.foreground = true
            case "-d", "-odebug":
                args.debug = true
                args.foreground = true
            case "-o":
                guard !list.isEmpty else { fail(.usage, "-o needs a list of options\n\(usage)") }
                args.options += list.removeFirst().split(separator: ",").map(String.init)
            default:
                if a.hasPrefix("-o") {
                    args.options += a.dropFirst(2).split(separator: ",").map(String.init)
                } else if a.hasPrefix("-") {
                    fail(.usage, "unknown option \(a)\n\(usage)")
                } else if args.config == nil {
                    args.config = a
                } else if args.mountpoint == nil {
                    args.mountpoint = a
                } else {
                    fail(.usage, "too many arguments: \(a)\n\(usage)")
                }
            }
        }
        guard let config = args.config, let mountpoint = args.mountpoint else { fail(.usage, usage) }
        let readyFD = ProcessInfo.processInfo.environment["POLYADFS_READY_FD"].flatMap(Int32.init)
        if !args.foreground && readyFD == nil {
            daemonize()
        }
        if let readyFD { closeInheritedDescriptors(keeping: readyFD) }
        exit(serve(config: config, mountpoint: mountpoint, args: args, readyFD: readyFD))
    }

    /// The daemon keeps no descriptor of the process that started it (a caller waiting for its output to
    /// end would otherwise wait for the whole life of the mount): everything above stderr but `keep` closes.
    static func closeInheritedDescriptors(keeping keep: Int32) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for fd in names.compactMap(Int32.init) where fd > 2 && fd != keep {
            close(fd)
        }
    }

    /// Reports a startup error: to the waiting parent when daemonized, else to stderr; then exits.
    static func fail(_ code: PolyadRepository.ExitCode, _ message: String) -> Never {
        if let fd = ProcessInfo.processInfo.environment["POLYADFS_READY_FD"].flatMap(Int32.init) {
            let line =
                "err \(code.rawValue) \(PathText.displayMessage(message).replacingOccurrences(of: "\n", with: "\\n"))\n"
            _ = line.withCString { write(fd, $0, strlen($0)) }
        } else {
            standardError("polyadfs: \(PathText.displayMessage(message))\n")
        }
        exit(code.rawValue)
    }

    /// Starts this program again in the foreground as a background session leader and waits until it says
    /// the mount is up (exit 0) or why it could not mount (its message and exit code).
    static func daemonize() -> Never {
        // The same program, from the kernel's copy of it, with the arguments and environment as given.
        let argv =
            [Array(CommandLine.arguments[0].utf8)] + PathText.commandLineArguments().map(PathText.bytes)
            + [Array("-f".utf8)]
        let child: Subprocess.Child
        do {
            child = try Subprocess.spawn(
                Array("/proc/self/exe".utf8),
                argv: argv,
                environment: Subprocess.currentEnvironment(),
                pipe: .descriptor(variable: "POLYADFS_READY_FD"),
                newSession: true
            )
        } catch {
            fail(.fatal, "cannot start the daemon: \(error.reason)")
        }
        // The daemon writes one line and closes its end; it does not exit.
        let reply = (try? FileSystem.readToEnd(child.readEnd, limit: 1 << 16)) ?? []
        FileSystem.close(child.readEnd)
        let text = String(decoding: reply, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text == "ok" { exit(0) }
        if text.hasPrefix("err ") {
            let parts = text.dropFirst(4).split(separator: " ", maxSplits: 1)
            let code = Int32(parts.first ?? "1") ?? 1
            standardError(
                "polyadfs: \((parts.count > 1 ? String(parts[1]) : "").replacingOccurrences(of: "\\n", with: "\n"))\n"
            )
            exit(code)
        }
        _ = try? Subprocess.wait(for: child.pid)
        standardError("polyadfs: the daemon exited before the mount was up (run with -f to see why)\n")
        exit(1)
    }

    /// Opens the store, mounts, serves until unmounted; returns the exit code.
    static func serve(config path: String, mountpoint: String, args: Arguments, readyFD: Int32?) -> Int32 {
        let configuration: Configuration
        do { configuration = try Configuration.load(file: path) } catch {
            fail(ExitCode(for: error), error.description)
        }
        // A mount shared with every local user must say who may see what.
        let sharing = configuration.mount.allowOther || args.options.contains("allow_other")
        if sharing, configuration.access == nil {
            fail(
                .usage,
                "\(PathText.display(path)): allow_other would let every local user read every snapshot: add an "
                    + "`access:` section naming who may (e.g. `access: { roles: { reader: { users: [alice] } } }`, "
                    + "see the README's \"Access control\"), or remove allow_other to serve only your own user"
            )
        }
        let access: AccessControl
        do {
            access =
                try configuration.access.map { s throws(AccessRuleError) in try AccessControl(settings: s) }
                ?? AccessControl(ownerOnly: getuid())
        } catch {
            fail(.usage, "\(PathText.display(path)): \(error.description)")
        }
        let accessLog: AccessLog?
        do {
            accessLog = try configuration.log.access.map { p throws(AccessLogError) in
                try AccessLog(path: PathText.bytes(p))
            }
        } catch {
            fail(.usage, "\(PathText.display(path)): log.access: \(error.description)")
        }
        // Nothing of this process (the keys it is about to hold) goes into a core dump.
        _ = polyad_disable_core_dumps()
        let manager = BackupManager(config: configuration)
        let repository: Repository
        do { repository = try manager.repository(indexInBackground: true) } catch {
            fail(ExitCode(for: error), (error as? RepositoryError)?.message ?? "\(error)")
        }
        let mountBytes = PathText.bytes(mountpoint)
        let shownMountpoint = PathBytes.display(mountBytes)
        guard !mountBytes.isEmpty else { fail(.usage, "the mount point is empty; give the folder to mount on") }
        guard let st = try? FileSystem.stat(mountBytes) else {
            fail(
                .usage,
                "the mount point \(shownMountpoint) does not exist: create it with `mkdir -p \(shownMountpoint)`"
            )
        }
        guard st.kind == .directory else { fail(.usage, "the mount point \(shownMountpoint) is not a folder") }
        if let parent = try? FileSystem.stat(PathBytes.join(mountBytes, Array("..".utf8))),
            parent.dev != st.dev || parent.ino == st.ino
        {
            fail(
                .usage,
                "\(shownMountpoint) is already a mount point (busy): unmount it first with `umount \(shownMountpoint)`"
            )
        }
        let logFile = configuration.log.file.map(PathText.bytes)
        let log: @Sendable (String) -> Void = { line in
            let stamped = "\(ISO8601DateFormatter().string(from: Date())) polyadfs: \(PathText.displayMessage(line))\n"
            if let logFile,
                let fd = try? FileSystem.open(logFile, flags: O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode: 0o600)
            {
                defer { FileSystem.close(fd) }
                let bytes = Array(stamped.utf8)
                try? FileSystem.writeAll(fd, bytes: bytes)
            } else {
                standardError(stamped)
            }
        }
        // The session, once made, for pushing decoded files to the kernel from the read-ahead threads.
        let sessionBits = Atomic<UInt>(0)
        // `/incoming`'s staging folder: private, and used by this mount alone.
        let staging: StagingArea
        do {
            staging = try StagingArea(
                path: configuration.stagingDirectory(environment: ProcessInfo.processInfo.environment)
            )
        } catch {
            fail(ExitCode(for: error), error.message)
        }
        raiseOpenFileLimit()  // every inode of /incoming the kernel holds is an open O_PATH descriptor
        let fs: MountFileSystem
        do {
            fs = try MountFileSystem(
                manager: manager,
                repository: repository,
                cacheBytes: max(16, configuration.mount.cacheMiB) << 20,
                staging: staging,
                settleSeconds: Double(configuration.mount.settleSeconds),
                cleanupInterval: Double(configuration.cleanupInterval),
                syncOnClose: configuration.mount.syncOnClose,
                log: log,
                willBlock: { polyad_fuse_worker_will_block() },
                pushToKernel: { inode, bytes in
                    guard let session = OpaquePointer(bitPattern: sessionBits.load(ordering: .acquiring)) else {
                        return
                    }
                    bytes.withUnsafeBytes { _ = polyad_fuse_notify_store(session, inode, $0.baseAddress, $0.count) }
                },
                invalidateEntry: { parent, name in
                    guard let session = OpaquePointer(bitPattern: sessionBits.load(ordering: .acquiring)) else {
                        return
                    }
                    let cName = name.map { CChar(bitPattern: $0) } + [0]
                    _ = fuse_lowlevel_notify_inval_entry(session, parent, cName, name.count)
                },
                access: access,
                accessLog: accessLog
            )
        } catch {
            fail(ExitCode(for: error), error.message)
        }
        fs.refreshSnapshots(interval: 0)
        let context = MountContext(fs: fs, readyDescriptor: readyFD, mountpoint: mountpoint)
        let userdata = Unmanaged.passRetained(context)

        // Writable for `/incoming`; the snapshots and control files answer EROFS themselves. The name's commas
        // are escaped for libfuse's option parser.
        let fsname = "polyad:" + PathText.display(configuration.localDirectory ?? path)
        // With roles the mount decides every request itself (an admin reads what the stored mode would refuse
        // them); without, the kernel checks the stored modes (`default_permissions`) for the owner.
        var fuseOptions = [
            "fsname=" + fsname.replacingOccurrences(of: ",", with: "\\,"), "subtype=polyadfs", "max_read=\(1 << 20)",
        ]
        if !access.enforced { fuseOptions.append("default_permissions") }
        let passThrough = ["allow_other", "allow_root", "ro", "default_permissions", "noatime", "nodev", "nosuid"]
        for o in args.options {
            if passThrough.contains(o) || o.hasPrefix("max_read=") {
                if !fuseOptions.contains(o) { fuseOptions.append(o) }
            }
        }
        if configuration.mount.allowOther, !fuseOptions.contains("allow_other") { fuseOptions.append("allow_other") }
        var argv = ["polyadfs", "-o", fuseOptions.joined(separator: ",")]
        if args.debug { argv.append("-d") }
        var cArgs = argv.map { strdup($0) }
        var ops = makeOperations()
        let session = cArgs.withUnsafeMutableBufferPointer { b in
            polyad_fuse_session_new(Int32(b.count), b.baseAddress, &ops, userdata.toOpaque())
        }
        guard let session else { fail(.usage, "FUSE refused the options \(fuseOptions.joined(separator: ","))") }
        guard fuse_set_signal_handlers(session) == 0 else { fail(.fatal, "cannot install signal handlers") }
        guard fuse_session_mount(session, mountBytes.map { CChar(bitPattern: $0) } + [0]) == 0 else {
            fuse_remove_signal_handlers(session)
            fuse_session_destroy(session)
            let hint =
                Glibc.access("/dev/fuse", R_OK | W_OK) == 0
                ? "" : " (/dev/fuse is missing or not accessible: load the fuse module)"
            fail(.fatal, "cannot mount on \(shownMountpoint)\(hint)")
        }
        sessionBits.store(UInt(bitPattern: session), ordering: .releasing)
        // SIGHUP (logrotate, a changed group): the rules resolved again, the access log reopened; the mount
        // goes on (libfuse's own handler would end it).
        let reloader = Reloader(fs: fs, log: log)
        reloader.start()
        fs.noteMounted(at: mountBytes)
        fs.startCommitting()
        fs.startMaintenance()
        // A mirror's copy that missed writes (mirror.require_all: false) is caught up in the background.
        let catchUp = MirrorCatchUp(
            manager: manager,
            interval: configuration.localDirectory != nil && configuration.s3Bucket != nil
                ? Double(configuration.mirror.syncInterval) : 0,
            log: log
        )
        catchUp.start()
        // 8 workers; the reading one polls for 100 µs after each request before it sleeps (see the shim).
        let status = polyad_fuse_session_loop(session, 8, 100)
        // No pushes to the kernel from here on, and none under way, before the session goes.
        sessionBits.store(0, ordering: .releasing)
        fs.finishBackgroundWork()
        catchUp.stop()
        // Unmounted (or a signal): what /incoming holds settled is committed now, the rest kept for next time.
        fs.finishCommitting()
        reloader.stop()
        fs.noteUnmounted()
        accessLog?.close()
        fuse_session_unmount(session)
        fuse_remove_signal_handlers(session)
        fuse_session_destroy(session)
        userdata.release()
        for p in cArgs { free(p) }
        // Unmount and SIGTERM/SIGINT/SIGHUP both end the loop with 0; a failing device read is an error.
        if status < 0 { standardError("polyadfs: reading /dev/fuse failed: \(String(cString: strerror(-status)))\n") }
        return status == 0 ? 0 : 1
    }
}

/// Raises the limit of open descriptors to the hard limit (as root, to the kernel's maximum).
func raiseOpenFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    if geteuid() == 0 {
        var wide = rlimit(rlim_cur: 1 << 20, rlim_max: max(limit.rlim_max, 1 << 20))
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &wide) == 0 { return }
    }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// Writes to standard error (unbuffered, from any thread).
func standardError(_ text: String) {
    // Nothing sensible is left to do when standard error itself fails.
    try? FileSystem.writeAll(STDERR_FILENO, bytes: Array(text.utf8))
}

/// Waits for SIGHUP on a thread of its own: resolves the access rules' names again and reopens the access log.
final class Reloader: Sendable {
    private let fs: MountFileSystem
    private let log: @Sendable (String) -> Void
    private let done = Atomic<Bool>(false)

    init(fs: MountFileSystem, log: @escaping @Sendable (String) -> Void) {
        self.fs = fs
        self.log = log
    }

    func start() {
        guard polyad_reload_signal_install(SIGHUP) == 0 else {
            log("cannot handle SIGHUP (\(String(cString: strerror(errno)))): the access log is not reopened on it")
            return
        }
        let thread = Thread { [self] in
            while polyad_reload_signal_wait() == 1, !done.load(ordering: .relaxed) {
                for p in fs.reload() { log("SIGHUP: \(p)") }
                log("SIGHUP: access rules resolved again, access log reopened")
            }
        }
        thread.name = "polyadfs-reload"
        thread.start()
    }

    func stop() {
        done.store(true, ordering: .relaxed)
        polyad_reload_signal_stop()
    }
}
