// SecretFile: writing a file that holds key material (the auto-unseal key, the dev TLS key):
// created new with mode 0600 from the first byte (O_EXCL, never following a symlink), synced,
// so no other user can open it while it is being written.
import Foundation
import TesseraCore

enum SecretFile {
    /// Creates `path` (it must not exist) with `bytes`, mode 0600.
    static func create(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw errno == EEXIST ? TesseraError.conflict("\(path) exists already") : TesseraError.unavailable("cannot create \(path) (errno \(errno))")
        }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                unlink(path)
                throw TesseraError.unavailable("cannot write \(path) (errno \(code))")
            }
            offset += n
        }
        guard fsync(fd) == 0 else {
            unlink(path)
            throw TesseraError.unavailable("cannot sync \(path)")
        }
    }
}
