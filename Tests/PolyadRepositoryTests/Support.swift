import Foundation
import PolyadConfig
import PolyadService
import PolyadTestSupport
import XCTest

@testable import PolyadRepository

/// A fresh private folder for one test, removed at the end.
final class Scratch {
    private let folder = try! TemporaryFolder(prefix: "polyad-test")
    /// The managers' local state, outside `folder`: a backup of something in `folder` records the folder's own
    /// metadata, which a state file written inside it after each run would change.
    private let state = try! TemporaryFolder(prefix: "polyad-test-state")
    var path: String { folder.path }
    /// `XDG_STATE_HOME` of the managers made by ``manager(level:passphrase:verify:)``.
    var statePath: String { state.path }

    init() {}

    deinit {
        folder.remove()
        state.remove()
    }

    func sub(_ name: String) -> String { path + "/" + name }

    @discardableResult
    func write(_ relative: String, _ bytes: [UInt8]) -> String {
        let p = sub(relative)
        try? FileManager.default.createDirectory(
            atPath: (p as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    /// A manager for a store in this folder, with the passphrase in the environment.
    func manager(level: Int = 6, passphrase: String = "correct horse", verify: Bool = true) throws -> BackupManager {
        let conf = sub("mount.conf")
        let text = "backup:\n  local_dir: \"store\"\n  compression_level: \(level)\n  verify_integrity: \(verify)\n"
        _ = FileManager.default.createFile(
            atPath: conf,
            contents: Data(text.utf8),
            attributes: [.posixPermissions: 0o600]
        )
        let config = try Configuration.load(file: conf)
        // The local state (key uses, failures) in the scratch folder, not the user's ~/.local/state.
        return BackupManager(
            config: config,
            environment: ["POLYAD_PASSWORD": passphrase, "XDG_STATE_HOME": state.path]
        )
    }
}

/// Text that compresses well.
func textBytes(_ count: Int) -> [UInt8] {
    let words = ["alpha", "beta", "gamma", "delta", "backup", "store", "chunk", "pack", "index", "tree"]
    var out = [UInt8]()
    var i = 0
    while out.count < count {
        out += Array((words[(i * 7 + i / 3) % words.count] + (i % 11 == 0 ? "\n" : " ")).utf8)
        i += 1
    }
    return Array(out.prefix(count))
}

/// Flips one bit of a file in place, as bit rot would (same inode).
func flipByte(at offset: Int, in path: String) throws {
    chmod(path, 0o600)
    let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: UInt64(offset))
    var byte = [UInt8](try XCTUnwrap(handle.read(upToCount: 1)))
    byte[0] ^= 0x40
    try handle.seek(toOffset: UInt64(offset))
    try handle.write(contentsOf: Data(byte))
}
