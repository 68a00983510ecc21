// The snapshot file of `operator backup`, in the shape Vault clients expect of a raft snapshot:
// a gzip'd tar whose last entry is a non-empty `SHA256SUMS.sealed` (what `bao operator raft
// snapshot save` checks). Entries: `manifest.json` (format, time, the files with size and
// SHA-256), `tessera.db`, `audit.db`, `SHA256SUMS`, and `SHA256SUMS.sealed` (an HMAC of
// SHA256SUMS under a key derived from the keyring). The gzip stream uses stored deflate blocks:
// the databases' values are encrypted and would not compress anyway. Values stay encrypted as
// stored and the keyring stays sealed, so a snapshot is no more readable than the data
// directory; the checksums catch a truncated or damaged file before anything is restored.
import Crypto
import Foundation
import TesseraCore

public enum SnapshotArchive {
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

    /// The databases a snapshot holds, in this order: data first, then the trail, so the trail
    /// reaches at least as far as the audit anchor kept with the data.
    public static let fileNames = ["tessera.db", "audit.db"]

    /// Builds the archive at `path` from `sources` (name → file). `sealKey` signs SHA256SUMS.
    /// Returns the archive's size.
    @discardableResult
    public static func write(_ sources: [(name: String, path: String)], to path: String, serverVersion: String,
                             sealKey: SymmetricKey, now: Date = Date()) throws -> Int64 {
        var files: [Manifest.File] = []
        for source in sources {
            let (size, digest) = try digest(of: source.path)
            files.append(.init(name: source.name, size: size, sha256: digest))
        }
        let manifest = Manifest(format: 1, createdAt: ISO8601DateFormatter().string(from: now), serverVersion: serverVersion, files: files)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let manifestBytes = Array(try encoder.encode(manifest))
        let sums = Array(files.map { "\($0.sha256)  \($0.name)\n" }.joined().utf8)
        let sealed = Array(HMAC<SHA256>.authenticationCode(for: sums, using: sealKey).hexString.utf8)

        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let out = FileHandle(forWritingAtPath: path) else {
            throw TesseraError.unavailable("cannot write the snapshot file")
        }
        defer { try? out.close() }
        var gzip = GzipStoredWriter(out, mtime: now)
        let tar = TarWriter(mtime: now)
        try gzip.write(tar.header(name: "manifest.json", size: Int64(manifestBytes.count)))
        try gzip.write(manifestBytes + tar.padding(Int64(manifestBytes.count)))
        for (source, file) in zip(sources, files) {
            try gzip.write(tar.header(name: source.name, size: file.size))
            guard let input = FileHandle(forReadingAtPath: source.path) else { throw TesseraError.unavailable("cannot read \(source.name)") }
            defer { try? input.close() }
            var copied: Int64 = 0
            while copied < file.size, let data = try input.read(upToCount: Int(min(Int64(chunk), file.size - copied))), !data.isEmpty {
                try gzip.write(Array(data))
                copied += Int64(data.count)
            }
            guard copied == file.size else { throw TesseraError.unavailable("\(source.name) changed while the snapshot was written") }
            try gzip.write(tar.padding(file.size))
        }
        for (name, bytes) in [("SHA256SUMS", sums), ("SHA256SUMS.sealed", sealed)] {
            try gzip.write(tar.header(name: name, size: Int64(bytes.count)))
            try gzip.write(bytes + tar.padding(Int64(bytes.count)))
        }
        try gzip.write(tar.end())
        try gzip.finish()
        try out.synchronize()
        return gzip.written
    }

    /// Reads the whole archive in order. `file(name, manifest)` may return a handle to write that
    /// database into (nil: only check it); `progress(done, total)` follows the databases' bytes.
    /// Every size and checksum is verified; any mismatch throws.
    static func walk(_ path: String, file: (String) throws -> FileHandle?, progress: (Int64, Int64) -> Void) throws -> Manifest {
        guard let input = FileHandle(forReadingAtPath: path) else { throw TesseraError.badRequest("cannot read the snapshot file \(path)") }
        defer { try? input.close() }
        var gzip = try GzipStoredReader(input)
        var manifest: Manifest?
        var done: Int64 = 0
        var index = 0
        let expected = ["manifest.json"] + fileNames + ["SHA256SUMS", "SHA256SUMS.sealed"]
        var sums: [UInt8] = []
        while let (name, size) = try TarReader.next(&gzip) {
            guard index < expected.count, name == expected[index] else {
                throw TesseraError.badRequest("the snapshot holds an unexpected entry \(String(name.prefix(64)))")
            }
            index += 1
            switch name {
            case "manifest.json":
                guard size < 1 << 20 else { throw TesseraError.badRequest("the snapshot's manifest is not valid") }
                let bytes = try gzip.read(Int(size))
                guard let m = try? JSONDecoder().decode(Manifest.self, from: Data(bytes)) else {
                    throw TesseraError.badRequest("the snapshot's manifest is not valid")
                }
                guard m.format == 1 else { throw TesseraError.badRequest("snapshot format \(m.format) is not supported by this version") }
                guard m.files.map(\.name) == fileNames, m.files.allSatisfy({ (0..<(1 << 44)).contains($0.size) }) else {
                    throw TesseraError.badRequest("the snapshot's manifest does not list tessera.db and audit.db with valid sizes")
                }
                manifest = m
            case "SHA256SUMS", "SHA256SUMS.sealed":
                guard size < 1 << 16 else { throw TesseraError.badRequest("the snapshot's \(name) is too large") }
                let bytes = try gzip.read(Int(size))
                if name == "SHA256SUMS" { sums = bytes } else if bytes.isEmpty {
                    throw TesseraError.badRequest("the snapshot is incomplete (SHA256SUMS.sealed is empty)")
                }
            default:
                guard let m = manifest, let entry = m.files.first(where: { $0.name == name }), entry.size == size else {
                    throw TesseraError.badRequest("the snapshot's \(name) does not match its manifest")
                }
                let total = m.files.reduce(0) { $0 + $1.size }
                let out = try file(name)
                var hasher = SHA256()
                var left = size
                while left > 0 {
                    let bytes = try gzip.read(Int(min(Int64(chunk), left)))
                    hasher.update(data: bytes)
                    try out?.write(contentsOf: bytes)
                    left -= Int64(bytes.count)
                    done += Int64(bytes.count)
                    progress(done, total)
                }
                try out?.synchronize()
                guard Array(hasher.finalize()).hexString == entry.sha256 else {
                    throw TesseraError.badRequest("the snapshot is damaged: \(name) does not match its checksum")
                }
            }
            try TarReader.skipPadding(&gzip, size: size)
        }
        guard index == expected.count, let manifest else { throw TesseraError.badRequest("the snapshot is truncated (entries are missing)") }
        let listed = Array(manifest.files.map { "\($0.sha256)  \($0.name)\n" }.joined().utf8)
        guard listed == sums else { throw TesseraError.badRequest("the snapshot's SHA256SUMS does not match its manifest") }
        try gzip.finishAndVerify()
        return manifest
    }

    /// Checks a whole archive without writing anything.
    public static func check(_ path: String) throws -> Manifest {
        try walk(path, file: { _ in nil }, progress: { _, _ in })
    }

    /// Extracts the databases into `directory`, checking everything. The caller removes what was
    /// written when this throws.
    public static func extract(_ path: String, into directory: String, progress: (Int64, Int64) -> Void = { _, _ in }) throws -> Manifest {
        var handles: [FileHandle] = []
        defer { for h in handles { try? h.close() } }
        return try walk(path, file: { name in
            let target = directory + "/" + name
            guard FileManager.default.createFile(atPath: target, contents: nil, attributes: [.posixPermissions: 0o600]),
                  let out = FileHandle(forWritingAtPath: target) else {
                throw TesseraError.unavailable("cannot write \(target)")
            }
            handles.append(out)
            return out
        }, progress: progress)
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

/// A gzip stream (RFC 1952) of stored deflate blocks (RFC 1951 §3.2.4) written to a file.
struct GzipStoredWriter {
    let out: FileHandle
    private var pending: [UInt8] = []
    private var crc = CRC32()
    private var size: UInt64 = 0
    private(set) var written: Int64 = 0

    init(_ out: FileHandle, mtime: Date) {
        self.out = out
        let t = UInt32(clamping: Int64(max(0, mtime.timeIntervalSince1970)))
        pending = [0x1F, 0x8B, 8, 0, UInt8(t & 0xFF), UInt8((t >> 8) & 0xFF), UInt8((t >> 16) & 0xFF), UInt8(t >> 24), 0, 3]
    }

    mutating func write(_ bytes: [UInt8]) throws {
        crc.update(bytes)
        size &+= UInt64(bytes.count)
        var offset = 0
        while offset < bytes.count {
            let n = min(65_535, bytes.count - offset)
            block(bytes[offset..<(offset + n)], final: false)
            offset += n
            if pending.count >= 1 << 20 { try flush() }
        }
    }

    private mutating func block(_ data: ArraySlice<UInt8>, final: Bool) {
        let n = UInt16(data.count)
        pending += [final ? 1 : 0, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8(~n >> 8)]
        pending += data
    }

    private mutating func flush() throws {
        try out.write(contentsOf: pending)
        written += Int64(pending.count)
        pending.removeAll(keepingCapacity: true)
    }

    mutating func finish() throws {
        block([], final: true)
        let c = crc.value, s = UInt32(truncatingIfNeeded: size)
        pending += [UInt8(c & 0xFF), UInt8((c >> 8) & 0xFF), UInt8((c >> 16) & 0xFF), UInt8(c >> 24),
                    UInt8(s & 0xFF), UInt8((s >> 8) & 0xFF), UInt8((s >> 16) & 0xFF), UInt8(s >> 24)]
        try flush()
    }
}

/// Reads the gzip stream that `GzipStoredWriter` writes: stored blocks only (anything else is
/// not a Tessera snapshot), with the CRC-32 and size checked at the end.
struct GzipStoredReader {
    let input: FileHandle
    private var buffer: [UInt8] = []
    private var position = 0
    private var blockLeft = 0
    private var finalSeen = false
    private var crc = CRC32()
    private var size: UInt64 = 0

    init(_ input: FileHandle) throws {
        self.input = input
        let head = try raw(10)
        guard head[0] == 0x1F, head[1] == 0x8B, head[2] == 8, head[3] == 0 else {
            throw TesseraError.badRequest("not a Tessera snapshot (expected a gzip'd tar)")
        }
    }

    /// Bytes straight from the file.
    private mutating func raw(_ n: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(n)
        while out.count < n {
            if position == buffer.count {
                guard let data = try input.read(upToCount: 1 << 20), !data.isEmpty else {
                    throw TesseraError.badRequest("the snapshot is truncated")
                }
                buffer = Array(data)
                position = 0
            }
            let take = min(n - out.count, buffer.count - position)
            out += buffer[position..<(position + take)]
            position += take
        }
        return out
    }

    /// Reads the next block header.
    private mutating func nextBlock() throws {
        guard !finalSeen else { throw TesseraError.badRequest("the snapshot is truncated") }
        let h = try raw(5)
        guard h[0] & 0b110 == 0 else { throw TesseraError.badRequest("not a Tessera snapshot (compressed deflate blocks)") }
        let len = Int(h[1]) | Int(h[2]) << 8, nlen = Int(h[3]) | Int(h[4]) << 8
        guard len ^ nlen == 0xFFFF else { throw TesseraError.badRequest("the snapshot is damaged (a block header is invalid)") }
        finalSeen = h[0] & 1 == 1
        blockLeft = len
    }

    /// Exactly `n` bytes of the uncompressed stream.
    mutating func read(_ n: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(n)
        while out.count < n {
            if blockLeft == 0 {
                try nextBlock()
                continue
            }
            let bytes = try raw(min(n - out.count, blockLeft))
            blockLeft -= bytes.count
            out += bytes
        }
        crc.update(out)
        size &+= UInt64(out.count)
        return out
    }

    /// Reads to the end of the stream and checks the CRC-32, the size, and that nothing follows.
    mutating func finishAndVerify() throws {
        while true {
            if blockLeft > 0 {
                let extra = try read(blockLeft)
                if extra.contains(where: { $0 != 0 }) { throw TesseraError.badRequest("the snapshot has data after its end") }
                continue
            }
            if finalSeen { break }
            try nextBlock()
        }
        let t = try raw(8)
        let c = UInt32(t[0]) | UInt32(t[1]) << 8 | UInt32(t[2]) << 16 | UInt32(t[3]) << 24
        let s = UInt32(t[4]) | UInt32(t[5]) << 8 | UInt32(t[6]) << 16 | UInt32(t[7]) << 24
        guard c == crc.value, s == UInt32(truncatingIfNeeded: size) else {
            throw TesseraError.badRequest("the snapshot is damaged (its gzip checksum does not match)")
        }
        if position < buffer.count { throw TesseraError.badRequest("the snapshot has bytes after its end") }
        if let more = try input.read(upToCount: 1), !more.isEmpty { throw TesseraError.badRequest("the snapshot has bytes after its end") }
    }
}

/// ustar headers for regular files, and their padding.
struct TarWriter {
    let mtime: Date

    func header(name: String, size: Int64) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (i, b) in text.utf8.prefix(width).enumerated() { h[offset + i] = b }
        }
        func octal(_ value: Int64, width: Int) -> String {
            let digits = String(value, radix: 8)
            return String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits
        }
        put(name, at: 0, width: 100)
        put("0000600", at: 100, width: 8)
        put("0000000", at: 108, width: 8)
        put("0000000", at: 116, width: 8)
        if size < 0o77777777777 {
            put(octal(size, width: 12), at: 124, width: 12)
        } else {
            // GNU base-256: a leading 0x80, then the size big-endian in the other 11 bytes.
            h[124] = 0x80
            for i in 0..<8 { h[135 - i] = UInt8((UInt64(size) >> (8 * UInt64(i))) & 0xFF) }
        }
        put(octal(Int64(max(0, mtime.timeIntervalSince1970)), width: 12), at: 136, width: 12)
        put("        ", at: 148, width: 8)
        h[156] = UInt8(ascii: "0")
        put("ustar", at: 257, width: 6)
        put("00", at: 263, width: 2)
        let sum = h.reduce(0) { $0 + Int64($1) }
        put(octal(sum, width: 7), at: 148, width: 7)
        h[155] = UInt8(ascii: " ")
        return h
    }

    func padding(_ size: Int64) -> [UInt8] {
        [UInt8](repeating: 0, count: Int((512 - size % 512) % 512))
    }

    func end() -> [UInt8] { [UInt8](repeating: 0, count: 1024) }
}

enum TarReader {
    /// The next entry's name and size, or nil at the end-of-archive blocks.
    static func next(_ gzip: inout GzipStoredReader) throws -> (String, Int64)? {
        let h = try gzip.read(512)
        if h.allSatisfy({ $0 == 0 }) {
            _ = try gzip.read(512)
            return nil
        }
        var expected: Int64 = 0
        for (i, b) in h.enumerated() { expected += (148..<156).contains(i) ? 32 : Int64(b) }
        let nameBytes = h[0..<100].prefix { $0 != 0 }
        let size: Int64?
        if h[124] == 0x80 {
            // GNU base-256 (files of 8 GiB and more): only the low 8 bytes may be set.
            size = h[125..<128].allSatisfy({ $0 == 0 }) ? h[128..<136].reduce(Int64(0)) { ($0 << 8) | Int64($1) } : nil
        } else {
            size = Int64(String(decoding: h[124..<136].prefix { $0 != 0 && $0 != 0x20 }, as: UTF8.self), radix: 8)
        }
        let sumText = String(decoding: h[148..<156].prefix { $0 != 0 && $0 != 0x20 }, as: UTF8.self)
        guard let size, size >= 0, size < 1 << 44, Int64(sumText, radix: 8) == expected else {
            throw TesseraError.badRequest("the snapshot is damaged (a tar header is invalid)")
        }
        return (String(decoding: nameBytes, as: UTF8.self), size)
    }

    static func skipPadding(_ gzip: inout GzipStoredReader, size: Int64) throws {
        let pad = Int((512 - size % 512) % 512)
        if pad > 0 { _ = try gzip.read(pad) }
    }
}

/// CRC-32 (IEEE 802.3, reflected, as gzip uses).
struct CRC32 {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
    private var state: UInt32 = 0xFFFF_FFFF

    mutating func update(_ bytes: [UInt8]) {
        var c = state
        bytes.withUnsafeBufferPointer { buffer in
            for b in buffer { c = Self.table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        state = c
    }

    var value: UInt32 { state ^ 0xFFFF_FFFF }
}
