import Glibc
import PolyadFileSystem

/// The rule for files that can run code or name secrets (mount.conf, the key file, the key command's program),
/// as OpenSSH's StrictModes and sudo apply it: the file, and every folder above its real location up to `/`,
/// must be owned by the user running Polyad or by root, and must not be writable by group or others. A folder
/// that others may write is accepted only with the sticky bit (as `/tmp`), where nobody can replace another
/// user's entries.
///
/// Without this rule, root running `polyad` from cron on a config file another user can write would run that
/// user's `encryption_key_command` as root.
enum FileTrust {
    /// Why `path` is not trusted, as a message that names the file and the command that fixes it.
    struct Untrusted: Error {
        var message: String
    }

    /// The user whose files are trusted besides root's: the effective user.
    static var caller: UInt32 { geteuid() }

    /// Checks the file `path` whose status (from `fstat` of the descriptor that will be read) is `status`,
    /// then every folder above its real location. `what` names the file in messages ("the config file").
    static func check(file path: [UInt8], status: FileStatus, what: String) throws(Untrusted) {
        if let problem = problem(status, path: path, what: what, isFolder: false) {
            throw Untrusted(message: problem)
        }
        let real: [UInt8]
        do {
            real = try FileSystem.realPath(path)
        } catch {
            throw Untrusted(
                message: "cannot resolve \(what) \(PathBytes.display(path)) to check who may change it: \(error.reason)"
            )
        }
        try checkFolders(above: real, what: what)
    }

    /// Checks every folder from `/` down to the one holding `path` (an absolute path without symlinks).
    static func checkFolders(above path: [UInt8], what: String) throws(Untrusted) {
        var folder = PathBytes.parent(path)
        var chain: [[UInt8]] = []
        while true {
            chain.append(folder)
            if folder == [PathBytes.separator] || folder == [0x2E] { break }
            folder = PathBytes.parent(folder)
        }
        for folder in chain.reversed() {
            let status: FileStatus
            do {
                status = try FileSystem.lstat(folder)
            } catch {
                throw Untrusted(
                    message: "cannot check the folder \(PathBytes.display(folder)) above \(what): \(error.reason)"
                )
            }
            if let problem = problem(status, path: folder, what: "the folder", isFolder: true) {
                throw Untrusted(message: problem + " (it holds \(what) \(PathBytes.display(path)))")
            }
        }
    }

    /// Why a file or folder with `status` is not trusted, or nil.
    private static func problem(_ status: FileStatus, path: [UInt8], what: String, isFolder: Bool) -> String? {
        let shown = PathBytes.display(path)
        let me = caller
        if status.uid != me && status.uid != 0 {
            let owner = Accounts.userName(uid: status.uid) ?? "uid \(status.uid)"
            let myName = Accounts.userName(uid: me) ?? "\(me)"
            let who = me == 0 ? "root" : "you (\(myName)) or root"
            return "\(what) \(shown) is owned by \(owner), not by \(who), so its owner could make polyad run "
                + "their commands or read its secrets; if you trust it, run `chown \(myName) \(shown)`"
        }
        let writableByOthers = status.permissions & 0o022 != 0
        let sticky = status.permissions & UInt32(S_ISVTX) != 0
        if writableByOthers && !(isFolder && sticky) {
            return
                "\(what) \(shown) can be written by group or others (mode \(octal(status.permissions & 0o7777))), "
                + "so another user could make polyad run their commands; run `chmod go-w \(shown)`"
        }
        return nil
    }
}
