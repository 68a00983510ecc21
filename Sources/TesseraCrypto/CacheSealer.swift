// CacheSealer: the edge agent's encryption of what it caches, in memory and on disk (AES-256-GCM,
// with what a value is bound into the associated data so that sealed values cannot be swapped).
// The key comes from a file the operator keeps away from the cache (a tmpfs or a mounted secret),
// or is made fresh for each run and kept only in memory.
import Crypto
import Foundation
import TesseraCore

public struct CacheSealer: Sendable {
    private let key: SymmetricKey

    public init(keyBytes: [UInt8]) throws {
        guard keyBytes.count == 32 else { throw TesseraError.badRequest("the cache key must be 32 bytes") }
        key = SymmetricKey(data: keyBytes)
    }

    /// A key for this run only: a restarted agent cannot open what an earlier run left on disk.
    public static func ephemeral() -> CacheSealer {
        // 32 bytes is the one size `init(keyBytes:)` accepts.
        (try? CacheSealer(keyBytes: SecureRandom.bytes(32))) ?? CacheSealer(key: SymmetricKey(size: .bits256))
    }

    private init(key: SymmetricKey) { self.key = key }

    /// A key file holds 64 hex digits (a trailing newline is allowed) or 32 raw bytes.
    public static func load(keyFile: String) throws -> CacheSealer {
        guard let data = FileManager.default.contents(atPath: keyFile) else {
            throw TesseraError.badRequest("the cache key file cannot be read")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.utf8.count == 64, let bytes = hexBytes(text) { return try CacheSealer(keyBytes: bytes) }
        if data.count == 32 { return try CacheSealer(keyBytes: Array(data)) }
        throw TesseraError.badRequest("the cache key file must hold 64 hex digits or 32 bytes")
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var high: UInt8?
        for c in text.utf8 {
            let v: UInt8
            switch c {
            case 0x30...0x39: v = c - 0x30
            case 0x61...0x66: v = c - 0x61 + 10
            case 0x41...0x46: v = c - 0x41 + 10
            default: return nil
            }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return high == nil ? out : nil
    }

    public func seal(_ plaintext: [UInt8], context: String) throws -> [UInt8] {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Array(context.utf8))
        guard let combined = box.combined else { throw TesseraError.internalError("sealing failed") }
        return Array(combined)
    }

    /// Throws when the bytes were not sealed with this key and context (or were altered).
    public func open(_ sealed: [UInt8], context: String) throws -> [UInt8] {
        let box = try AES.GCM.SealedBox(combined: sealed)
        return Array(try AES.GCM.open(box, using: key, authenticating: Array(context.utf8)))
    }
}
