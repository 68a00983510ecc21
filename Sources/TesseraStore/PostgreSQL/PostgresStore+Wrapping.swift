// Wrapped responses in PostgreSQL: stored sealed, read while live, and taken (deleted) exactly
// once across every node (`DELETE … RETURNING` under the row lock).
import Foundation
import PostgresNIO
import TesseraCore

extension PostgresStore {
    public func createWrappedResponse(_ w: WrappedResponse, now: Date, maxPerCreator: Int) async throws {
        try await db.transaction { tx in
            try await tx.query("DELETE FROM wrapped_responses WHERE expires_at <= $1", [.date(now)])
            // Serialized per creator, so that concurrent wraps cannot both pass the count.
            try await tx.query("SELECT pg_advisory_xact_lock(hashtext('tessera-wrap:' || $1))", [.text(w.creatorAccessId)])
            guard try await tx.count("SELECT 1 FROM wrapped_responses WHERE creator_access_id = $1 LIMIT $2",
                                        [.text(w.creatorAccessId), .int(maxPerCreator)]) < maxPerCreator else {
                throw WrappedResponse.tooMany
            }
            try await tx.query(Self.insertWrapped, Self.wrappedBinds(w))
        }
    }

    public func wrappedResponse(hash: String, now: Date) async throws -> WrappedResponse? {
        try await db.query("SELECT * FROM wrapped_responses WHERE token_hash = $1 AND expires_at > $2", [.text(hash), .date(now)])
            .first.map(Self.wrapped)
    }

    public func takeWrappedResponse(hash: String, now: Date) async throws -> WrappedResponse? {
        try await db.query("DELETE FROM wrapped_responses WHERE token_hash = $1 AND expires_at > $2 RETURNING *", [.text(hash), .date(now)])
            .first.map(Self.wrapped)
    }

    public func replaceWrappedResponse(hash: String, with replacement: WrappedResponse, now: Date) async throws -> Bool {
        try await db.transaction { tx in
            guard try await tx.count("DELETE FROM wrapped_responses WHERE token_hash = $1 AND expires_at > $2 RETURNING 1",
                                     [.text(hash), .date(now)]) == 1 else { return false }
            try await tx.query(Self.insertWrapped, Self.wrappedBinds(replacement))
            return true
        }
    }

    public func restoreWrappedResponse(_ w: WrappedResponse) async throws {
        try await db.query(Self.insertWrapped + " ON CONFLICT (token_hash) DO NOTHING", Self.wrappedBinds(w))
    }

    public func liveWrappedResponses(creator: String, now: Date) async throws -> Int {
        try await db.count("SELECT 1 FROM wrapped_responses WHERE creator_access_id = $1 AND expires_at > $2", [.text(creator), .date(now)])
    }

    static let insertWrapped = """
        INSERT INTO wrapped_responses (token_hash, creation_path, created_at, ttl_seconds, expires_at, ciphertext, key_term, wrapped_accessor, creator_access_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        """

    static func wrappedBinds(_ w: WrappedResponse) -> [PGValue] {
        [.text(w.tokenHash), .text(w.creationPath), .date(w.createdAt), .int(w.ttlSeconds), .date(w.expiresAt), .bytes(w.ciphertext),
         .int(Int64(w.term)), .text(w.wrappedAccessor), .text(w.creatorAccessId)]
    }

    static func wrapped(_ row: PostgresRow) throws -> WrappedResponse {
        let c = PGColumns(row)
        return WrappedResponse(tokenHash: try c.string("token_hash"), creationPath: try c.string("creation_path"), createdAt: try c.date("created_at"),
                               ttlSeconds: try c.int("ttl_seconds"), expiresAt: try c.date("expires_at"),
                               ciphertext: try c.bytes("ciphertext"), term: try c.term("key_term"),
                               wrappedAccessor: try c.string("wrapped_accessor"), creatorAccessId: try c.string("creator_access_id"))
    }
}
