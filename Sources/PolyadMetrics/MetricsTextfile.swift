import Foundation
import PolyadFileSystem

/// Writes the metrics for node-exporter's textfile collector: to a temporary file in the same folder, synced,
/// then renamed over the target, so the collector never reads half a file. Mode 0644 (the collector runs as
/// its own user; the metrics hold no secret).
public enum MetricsTextfile {
    public static func write(_ text: String, to path: String) throws(SystemError) {
        let target = PathText.bytes(path)
        let folder = PathBytes.parent(target)
        let temporary = folder + Array("/.polyad-metrics-\(getpid()).prom.tmp".utf8)
        let fd = try FileSystem.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o644)
        do {
            defer { FileSystem.close(fd) }
            try FileSystem.writeAll(fd, bytes: Array(text.utf8))
            try FileSystem.changeMode(descriptor: fd, mode: 0o644)  // whatever the umask
            try FileSystem.fsync(fd)
        } catch {
            try? FileSystem.unlink(temporary)
            throw error
        }
        do { try FileSystem.rename(temporary, target) } catch {
            try? FileSystem.unlink(temporary)
            throw error
        }
    }
}
