import Foundation
import XCTest

extension CLIFixture {
    /// Starts `polyad backup -q source` as a child process and returns it once its lock is in the store's
    /// `locks/` (it holds it for the whole run), or once it ended without one (up to 60 s); stderr goes to
    /// `errors` if given. The caller stops, resumes or kills it.
    func startBackupHoldingLock(_ source: String, errors: String? = nil) throws -> (backup: Process, sawLock: Bool) {
        let locks = root + "/store/locks"
        let backup = Process()
        backup.executableURL = URL(fileURLWithPath: CLIFixture.binary)
        backup.arguments = ["backup", "-q", source]
        backup.environment = environment
        backup.standardOutput = FileHandle.nullDevice
        if let errors {
            _ = FileManager.default.createFile(atPath: errors, contents: nil)
            backup.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        } else {
            backup.standardError = FileHandle.nullDevice
        }
        try backup.run()
        for _ in 0..<12_000 {
            if ((try? FileManager.default.contentsOfDirectory(atPath: locks)) ?? []).contains(where: { $0.count == 64 })
            {
                return (backup, true)
            }
            if !backup.isRunning { break }
            usleep(5_000)
        }
        return (backup, false)
    }
}
