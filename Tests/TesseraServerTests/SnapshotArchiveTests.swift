// The snapshot archive format (a gzip'd tar of stored deflate blocks): a round trip keeps every
// byte, the output is a standard gzip/tar (CRC-32 of known data), and every kind of damage —
// truncation anywhere, a flipped byte anywhere, extra bytes, a manifest with absurd sizes — is
// refused with a 400 and never traps.
import Crypto
import Foundation
import Testing
@testable import TesseraCore
@testable import TesseraStore

@Suite struct SnapshotArchiveTests {
    let dir: String = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("snaptest-" + UUID().uuidString).path
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    func makeArchive(dataSize: Int = 200_000) throws -> String {
        var data = [UInt8](repeating: 0, count: dataSize)
        for i in data.indices { data[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 7) }
        _ = FileManager.default.createFile(atPath: dir + "/t.db", contents: Data(data))
        _ = FileManager.default.createFile(atPath: dir + "/a.db", contents: Data("audit bytes".utf8))
        let archive = dir + "/s.snap"
        try SnapshotArchive.write([("tessera.db", dir + "/t.db"), ("audit.db", dir + "/a.db")], to: archive, serverVersion: "test",
                                  sealKey: SymmetricKey(size: .bits256))
        return archive
    }

    @Test func crcOfKnownData() {
        var c = CRC32()
        c.update(Array("123456789".utf8))
        #expect(c.value == 0xCBF4_3926)
    }

    @Test func roundTripKeepsEveryByte() throws {
        let archive = try makeArchive()
        let out = dir + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let manifest = try SnapshotArchive.extract(archive, into: out)
        #expect(manifest.files.map(\.name) == ["tessera.db", "audit.db"])
        #expect(FileManager.default.contents(atPath: out + "/tessera.db") == FileManager.default.contents(atPath: dir + "/t.db"))
        #expect(FileManager.default.contents(atPath: out + "/audit.db") == Data("audit bytes".utf8))
        let bytes = try #require(FileManager.default.contents(atPath: archive))
        #expect(bytes.prefix(2) == Data([0x1F, 0x8B]))
    }

    @Test func everyTruncationAndFlipIsRefused() throws {
        let archive = try makeArchive(dataSize: 70_000)
        let good = try #require(FileManager.default.contents(atPath: archive))
        let damaged = dir + "/d.snap"
        var cuts = Array(stride(from: 0, to: good.count, by: max(1, good.count / 97)))
        cuts += [good.count - 1, good.count - 4, good.count - 8, 10, 15, 527, 1551]
        for cut in cuts where cut < good.count {
            _ = FileManager.default.createFile(atPath: damaged, contents: good.prefix(cut))
            #expect(throws: TesseraError.self) { _ = try SnapshotArchive.check(damaged) }
        }
        for at in Array(stride(from: 0, to: good.count, by: max(1, good.count / 131))) + [3, 12, 13] where at < good.count && !(4..<10).contains(at) {
            var b = good
            b[at] ^= 0x40
            _ = FileManager.default.createFile(atPath: damaged, contents: b)
            #expect(throws: TesseraError.self, "flip at \(at)") { _ = try SnapshotArchive.check(damaged) }
        }
        _ = FileManager.default.createFile(atPath: damaged, contents: good + Data([0]))
        #expect(throws: TesseraError.self) { _ = try SnapshotArchive.check(damaged) }
        #expect(try SnapshotArchive.check(archive).files.count == 2)
    }

    @Test func tarHeadersCarryLargeSizesInBase256() throws {
        let header = TarWriter(mtime: Date()).header(name: "tessera.db", size: 10 << 30)
        #expect(header[124] == 0x80)
        var reader = try GzipStoredReaderHarness(bytes: header + [UInt8](repeating: 0, count: 1024)).reader()
        let entry = try TarReader.next(&reader)
        #expect(entry?.0 == "tessera.db" && entry?.1 == 10 << 30)
    }
}

/// Wraps raw tar bytes in a stored-gzip file, to feed `TarReader` directly.
struct GzipStoredReaderHarness {
    let bytes: [UInt8]

    func reader() throws -> GzipStoredReader {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gz-" + UUID().uuidString).path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let out = try #require(FileHandle(forWritingAtPath: path))
        var gzip = GzipStoredWriter(out, mtime: Date())
        try gzip.write(bytes)
        try gzip.finish()
        try out.close()
        return try GzipStoredReader(try #require(FileHandle(forReadingAtPath: path)))
    }
}
