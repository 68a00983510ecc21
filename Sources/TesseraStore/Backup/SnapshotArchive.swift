// The snapshot file of `operator backup`: a header line, a JSON manifest line naming each
// database file with its size and SHA-256, then the files' bytes one after another. Values stay
// encrypted as stored and the keyring stays sealed, so a snapshot is no more readable than the
// data directory; the checksums catch a truncated or damaged file before anything is restored.
import Crypto
import Foundation
import TesseraCore

public enum SnapshotArchive {
    static let magic = "TESSERA-SNAPSHOT 1\n"
    static let chunk = 1 << 20

    public struct Manifest: Codable, Sendable, Equatable {
        public struct File: Codable, Sendable, Equatable {
            public var name: String
            public var size: Int64
            public var sha256: String
        }
        public var format: Int
        public var createdAt: String
        public var serverVersion: String
        public var files: [File]

        enum CodingKeys: String, CodingKey {
            case format, files
            case createdAt = "created_at"
            case serverVersion = "server_version"
        }
    }

    /// The files a snapshot holds, in this order: data first, then the trail, so the trail
    /// reaches at least as far as the audit anchor kept with the data.
    public static let fileNames = ["tessera.db", "audit.db"]

    /// Builds the archive at `path` from `sources` (name → file). Returns its size.
    @discardableResult
    public static func write(_ sources: [(name: String, path: String)], to path: String, serverVersion: String, now: Date = Date()) throws -> Int64 {
        var files: [Manifest.File] = []
        for source in sources {
            let (size, digest) = try digest(of: source.path)
            files.append(.init(name: source.name, size: size, sha256: digest))
        }
        let manifest = Manifest(format: 1, createdAt: ISO8601DateFormatter().string(from: now), serverVersion: serverVersion, files: files)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let out = FileHandle(forWritingAtPath: path) else {
            throw TesseraError.unavailable("cannot write the snapshot file")
        }
        defer { try? out.close() }
        let head = Data(magic.utf8) + (try encoder.encode(manifest)) + Data("\n".utf8)
        try out.write(contentsOf: head)
        var total = Int64(head.count)
        for source in sources {
            guard let input = FileHandle(forReadingAtPath: source.path) else { throw TesseraError.unavailable("cannot read \(source.name)") }
            defer { try? input.close() }
            while let data = try input.read(upToCount: chunk), !data.isEmpty {
                try out.write(contentsOf: data)
                total += Int64(data.count)
            }
        }
        try out.synchronize()
        return total
    }

    /// Reads the header and manifest; the handle is left at the first file's bytes.
    public static func readManifest(_ handle: FileHandle) throws -> Manifest {
        guard let head = try handle.read(upToCount: magic.utf8.count), String(decoding: head, as: UTF8.self) == magic else {
            throw TesseraError.badRequest("not a Tessera snapshot (the header is missing)")
        }
        var line = Data()
        while line.count < 1 << 20 {
            guard let byte = try handle.read(upToCount: 1), let b = byte.first else {
                throw TesseraError.badRequest("the snapshot is truncated (its manifest is incomplete)")
            }
            if b == 0x0A { break }
            line.append(b)
        }
        guard let manifest = try? JSONDecoder().decode(Manifest.self, from: line) else {
            throw TesseraError.badRequest("the snapshot's manifest is not valid")
        }
        guard manifest.format == 1 else { throw TesseraError.badRequest("snapshot format \(manifest.format) is not supported by this version") }
        guard manifest.files.map(\.name) == fileNames, manifest.files.allSatisfy({ $0.size >= 0 && $0.size < 1 << 44 }) else {
            throw TesseraError.badRequest("the snapshot's manifest does not list tessera.db and audit.db")
        }
        return manifest
    }

    /// Extracts every file into `directory`, checking sizes and checksums. `progress(done, total)`
    /// is called as bytes are written. A mismatch throws; the caller removes what was written.
    public static func extract(_ path: String, into directory: String, progress: (Int64, Int64) -> Void = { _, _ in }) throws -> Manifest {
        guard let input = FileHandle(forReadingAtPath: path) else { throw TesseraError.badRequest("cannot read the snapshot file \(path)") }
        defer { try? input.close() }
        let manifest = try readManifest(input)
        let total = manifest.files.reduce(0) { $0 + $1.size }
        var done: Int64 = 0
        for file in manifest.files {
            let target = directory + "/" + file.name
            guard FileManager.default.createFile(atPath: target, contents: nil, attributes: [.posixPermissions: 0o600]),
                  let out = FileHandle(forWritingAtPath: target) else {
                throw TesseraError.unavailable("cannot write \(target)")
            }
            defer { try? out.close() }
            var hasher = SHA256()
            var left = file.size
            while left > 0 {
                guard let data = try input.read(upToCount: Int(min(Int64(chunk), left))), !data.isEmpty else {
                    throw TesseraError.badRequest("the snapshot is truncated (\(file.name) is incomplete)")
                }
                hasher.update(data: data)
                try out.write(contentsOf: data)
                left -= Int64(data.count)
                done += Int64(data.count)
                progress(done, total)
            }
            guard Array(hasher.finalize()).hexString == file.sha256 else {
                throw TesseraError.badRequest("the snapshot is damaged: \(file.name) does not match its checksum")
            }
            try out.synchronize()
        }
        if let extra = try input.read(upToCount: 1), !extra.isEmpty {
            throw TesseraError.badRequest("the snapshot has bytes after its last file")
        }
        return manifest
    }

    /// Checks a whole archive's checksums without extracting it.
    public static func check(_ path: String) throws -> Manifest {
        guard let input = FileHandle(forReadingAtPath: path) else { throw TesseraError.badRequest("cannot read the snapshot file \(path)") }
        defer { try? input.close() }
        let manifest = try readManifest(input)
        for file in manifest.files {
            var hasher = SHA256()
            var left = file.size
            while left > 0 {
                guard let data = try input.read(upToCount: Int(min(Int64(chunk), left))), !data.isEmpty else {
                    throw TesseraError.badRequest("the snapshot is truncated (\(file.name) is incomplete)")
                }
                hasher.update(data: data)
                left -= Int64(data.count)
            }
            guard Array(hasher.finalize()).hexString == file.sha256 else {
                throw TesseraError.badRequest("the snapshot is damaged: \(file.name) does not match its checksum")
            }
        }
        return manifest
    }

    static func digest(of path: String) throws -> (Int64, String) {
        guard let input = FileHandle(forReadingAtPath: path) else { throw TesseraError.unavailable("cannot read \(path)") }
        defer { try? input.close() }
        var hasher = SHA256()
        var size: Int64 = 0
        while let data = try input.read(upToCount: chunk), !data.isEmpty {
            hasher.update(data: data)
            size += Int64(data.count)
        }
        return (size, Array(hasher.finalize()).hexString)
    }
}
