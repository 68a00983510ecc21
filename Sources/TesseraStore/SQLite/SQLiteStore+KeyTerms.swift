// The rewrap's view of SQLite: which key terms seal the stored values (item versions, target
// credentials, passwords mid-rotation), and batches that re-seal the oldest under the newest term.
import Foundation
import SQLiteNIO
import TesseraCore

extension SQLiteStore {
    public func keyTermUsage() async throws -> KeyTermUsage {
        var usage = KeyTermUsage()
        let sql = """
            SELECT key_term AS term, COUNT(*) AS n FROM item_versions GROUP BY key_term
            UNION ALL SELECT key_term AS term, COUNT(*) AS n FROM targets GROUP BY key_term
            UNION ALL SELECT pending_key_term AS term, COUNT(*) AS n FROM rotators WHERE pending_key_term IS NOT NULL GROUP BY pending_key_term
            """
        for row in try await db.read(sql) {
            let c = Columns(row: row)
            let term = UInt32(clamping: try c.int("term"))
            usage.byTerm[term, default: 0] += try c.int("n")
        }
        return usage
    }

    public func rewrapBatch(below term: UInt32, limit: Int, _ reseal: @escaping @Sendable (SealedValue) throws -> [UInt8]) async throws -> Int {
        let moved = try await db.transaction { tx -> Int in
            var moved = 0
            let versions = try await tx.query("""
                SELECT item_id, version, ciphertext, key_term FROM item_versions WHERE key_term < ? LIMIT ?
                """, [.int(Int(term)), .int(limit)])
            for row in versions {
                let c = Columns(row: row)
                let itemId = try c.int64("item_id"), version = try c.int("version"), old = try c.int("key_term")
                // A destroyed version keeps no value: only its term moves.
                let next: SQLiteData = try c.optionalBytes("ciphertext").map {
                    .blob(ByteBuffer(bytes: try reseal(SealedValue(owner: .itemVersion(itemId: itemId, version: version), ciphertext: $0,
                                                                   term: UInt32(clamping: old)))))
                } ?? .null
                moved += try await tx.execute("UPDATE item_versions SET ciphertext = ?, key_term = ? WHERE item_id = ? AND version = ? AND key_term = ?",
                                              [next, .int(Int(term)), .int(Int(itemId)), .int(version), .int(old)])
            }
            guard moved < limit else { return moved }
            for row in try await tx.query("SELECT name, credential, key_term FROM targets WHERE key_term < ? LIMIT ?", [.int(Int(term)), .int(limit - moved)]) {
                let c = Columns(row: row)
                let name = try c.string("name"), old = try c.int("key_term")
                let sealed = try reseal(SealedValue(owner: .target(name: name), ciphertext: try c.bytes("credential"), term: UInt32(clamping: old)))
                moved += try await tx.execute("UPDATE targets SET credential = ?, key_term = ? WHERE name = ? AND key_term = ?",
                                              [.blob(ByteBuffer(bytes: sealed)), .int(Int(term)), .text(name), .int(old)])
            }
            guard moved < limit else { return moved }
            for row in try await tx.query("""
                SELECT item_id, pending_ciphertext, pending_key_term FROM rotators
                WHERE pending_key_term IS NOT NULL AND pending_key_term < ? AND pending_ciphertext IS NOT NULL LIMIT ?
                """, [.int(Int(term)), .int(limit - moved)]) {
                let c = Columns(row: row)
                let itemId = try c.int64("item_id"), old = try c.int("pending_key_term")
                let sealed = try reseal(SealedValue(owner: .pendingRotation(itemId: itemId), ciphertext: try c.bytes("pending_ciphertext"),
                                                    term: UInt32(clamping: old)))
                moved += try await tx.execute("UPDATE rotators SET pending_ciphertext = ?, pending_key_term = ? WHERE item_id = ? AND pending_key_term = ?",
                                              [.blob(ByteBuffer(bytes: sealed)), .int(Int(term)), .int(Int(itemId)), .int(old)])
            }
            return moved
        }
        if moved > 0 { cache.invalidateAll() }
        return moved
    }
}
