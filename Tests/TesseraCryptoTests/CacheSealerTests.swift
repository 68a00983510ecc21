// The edge cache's sealing: a value opens only with its own key and its own context (the cache
// key it was stored under), any change to the bytes is detected, and key files are read strictly.
import Foundation
import Testing
import TesseraCore
@testable import TesseraCrypto

@Suite struct CacheSealerTests {
    let secret = Array("db-password-1234".utf8)

    @Test func roundTripAndNoPlaintext() throws {
        let s = CacheSealer.ephemeral()
        let sealed = try s.seal(secret, context: "answer:a")
        #expect(try s.open(sealed, context: "answer:a") == secret)
        #expect(Data(sealed).range(of: Data(secret)) == nil)
        // a fresh nonce each time
        #expect(try s.seal(secret, context: "answer:a") != sealed)
    }

    @Test func wrongContextKeyOrBytesAreRefused() throws {
        let s = CacheSealer.ephemeral()
        let sealed = try s.seal(secret, context: "answer:a")
        #expect(throws: (any Error).self) { try s.open(sealed, context: "answer:b") }
        #expect(throws: (any Error).self) { try CacheSealer.ephemeral().open(sealed, context: "answer:a") }
        for i in [0, 12, sealed.count / 2, sealed.count - 1] {
            var t = sealed
            t[i] ^= 0x01
            #expect(throws: (any Error).self) { try s.open(t, context: "answer:a") }
        }
        #expect(throws: (any Error).self) { try s.open(Array(sealed.prefix(10)), context: "answer:a") }
        #expect(throws: (any Error).self) { try s.open([], context: "answer:a") }
    }

    @Test func keyFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sealer-" + UUID().uuidString).path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hex = dir + "/hex", raw = dir + "/raw", short = dir + "/short", junk = dir + "/junk"
        let bytes = SecureRandom.bytes(32)
        try Data((bytes.hexString + "\n").utf8).write(to: URL(fileURLWithPath: hex))
        try Data(bytes).write(to: URL(fileURLWithPath: raw))
        try Data("abcd".utf8).write(to: URL(fileURLWithPath: short))
        try Data(String(repeating: "zz", count: 32).utf8).write(to: URL(fileURLWithPath: junk))
        let a = try CacheSealer.load(keyFile: hex)
        let b = try CacheSealer.load(keyFile: raw)
        #expect(try b.open(a.seal(secret, context: "c"), context: "c") == secret)
        #expect(throws: TesseraError.self) { try CacheSealer.load(keyFile: short) }
        #expect(throws: TesseraError.self) { try CacheSealer.load(keyFile: junk) }
        #expect(throws: TesseraError.self) { try CacheSealer.load(keyFile: dir + "/missing") }
        #expect(throws: TesseraError.self) { try CacheSealer(keyBytes: [1, 2, 3]) }
    }
}
