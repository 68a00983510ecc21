// The rewrap's view of PostgreSQL: which key terms seal the stored values, and batches that
// re-seal the oldest under the newest term. Each batch locks the rows it re-seals (FOR UPDATE
// SKIP LOCKED): a concurrent destroy or rotation waits for the batch and then applies to the
// re-sealed row, and two nodes re-sealing at once take different rows.
import Foundation
import PostgresNIO
import TesseraCore

extension PostgresStore {
    public func keyTermUsage() async throws -> KeyTermUsage {
        var usage = KeyTermUsage()
        let sql = """
            SELECT key_term AS term, count(*) AS n FROM item_versions GROUP BY key_term
            UNION ALL SELECT key_term AS term, count(*) AS n FROM targets GROUP BY key_term
            UNION ALL SELECT pending_key_term AS term, count(*) AS n FROM rotators WHERE pending_key_term IS NOT NULL GROUP BY pending_key_term
            """
        for row in try await db.query(sql) {
            let c = PGColumns(row)
            usage.byTerm[try c.term("term"), default: 0] += try c.int("n")
        }
        return usage
    }

    public func rewrapBatch(below term: UInt32, limit: Int, _ reseal: @escaping @Sendable (SealedValue) throws -> [UInt8]) async throws -> Int {
        let newTerm = Int64(term)
        return try await db.transaction { tx -> Int in
            var moved = 0
            let versions = try await tx.query("""
                SELECT item_id, version, ciphertext, key_term FROM item_versions WHERE key_term < $1 LIMIT $2 FOR UPDATE SKIP LOCKED
                """, [.int(newTerm), .int(limit)])
            for row in versions {
                let c = PGColumns(row)
                let itemId = try c.int64("item_id"), version = try c.int("version"), old = try c.int64("key_term")
                // A destroyed version keeps no value: only its term moves.
                let next = try c.optionalBytes("ciphertext").map {
                    try reseal(SealedValue(owner: .itemVersion(itemId: itemId, version: version), ciphertext: $0, term: UInt32(clamping: old)))
                }
                moved += try await tx.count("""
                    UPDATE item_versions SET ciphertext = $1, key_term = $2 WHERE item_id = $3 AND version = $4 AND key_term = $5 RETURNING 1
                    """, [.bytes(next), .int(newTerm), .int(itemId), .int(version), .int(old)])
            }
            guard moved < limit else { return moved }
            for row in try await tx.query("SELECT name, credential, key_term FROM targets WHERE key_term < $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
                                          [.int(newTerm), .int(limit - moved)]) {
                let c = PGColumns(row)
                let name = try c.string("name"), old = try c.int64("key_term")
                let sealed = try reseal(SealedValue(owner: .target(name: name), ciphertext: try c.bytes("credential"), term: UInt32(clamping: old)))
                moved += try await tx.count("UPDATE targets SET credential = $1, key_term = $2 WHERE name = $3 AND key_term = $4 RETURNING 1",
                                            [.bytes(sealed), .int(newTerm), .text(name), .int(old)])
            }
            guard moved < limit else { return moved }
            for row in try await tx.query("""
                SELECT item_id, pending_ciphertext, pending_key_term FROM rotators
                WHERE pending_key_term IS NOT NULL AND pending_key_term < $1 AND pending_ciphertext IS NOT NULL LIMIT $2 FOR UPDATE SKIP LOCKED
                """, [.int(newTerm), .int(limit - moved)]) {
                let c = PGColumns(row)
                let itemId = try c.int64("item_id"), old = try c.int64("pending_key_term")
                let sealed = try reseal(SealedValue(owner: .pendingRotation(itemId: itemId), ciphertext: try c.bytes("pending_ciphertext"),
                                                    term: UInt32(clamping: old)))
                moved += try await tx.count("""
                    UPDATE rotators SET pending_ciphertext = $1, pending_key_term = $2 WHERE item_id = $3 AND pending_key_term = $4 RETURNING 1
                    """, [.bytes(sealed), .int(newTerm), .int(itemId), .int(old)])
            }
            return moved
        }
    }
}
