// Wrapped responses in SQLite: stored sealed, read while live, and taken (deleted) exactly once.
import Foundation
import SQLiteNIO
import TesseraCore

extension SQLiteStore {
    public func createWrappedResponse(_ w: WrappedResponse, now: Date, maxPerCreator: Int) async throws {
        try await db.transaction { tx in
            _ = try await tx.execute("DELETE FROM wrapped_responses WHERE expires_at <= ?", [.date(now)])
            let live = try await tx.query("SELECT COUNT(*) AS n FROM wrapped_responses WHERE creator_access_id = ?", [.text(w.creatorAccessId)])
            guard try Columns(row: live[0]).int("n") < maxPerCreator else { throw WrappedResponse.tooMany }
            _ = try await tx.execute(Self.insertWrapped, Self.wrappedBinds(w))
        }
    }

    public func wrappedResponse(hash: String, now: Date) async throws -> WrappedResponse? {
        try await db.read("SELECT * FROM wrapped_responses WHERE token_hash = ? AND expires_at > ?", [.text(hash), .date(now)])
            .first.map(Self.wrapped)
    }

    public func takeWrappedResponse(hash: String, now: Date) async throws -> WrappedResponse? {
        try await db.transaction { tx in
            guard let row = try await tx.query("SELECT * FROM wrapped_responses WHERE token_hash = ? AND expires_at > ?",
                                               [.text(hash), .date(now)]).first else { return nil }
            // The delete decides: one transaction at a time writes, so only one take removes the row.
            guard try await tx.execute("DELETE FROM wrapped_responses WHERE token_hash = ?", [.text(hash)]) == 1 else { return nil }
            return try Self.wrapped(row)
        }
    }

    public func replaceWrappedResponse(hash: String, with replacement: WrappedResponse, now: Date) async throws -> Bool {
        try await db.transaction { tx in
            guard try await tx.execute("DELETE FROM wrapped_responses WHERE token_hash = ? AND expires_at > ?", [.text(hash), .date(now)]) == 1 else {
                return false
            }
            _ = try await tx.execute(Self.insertWrapped, Self.wrappedBinds(replacement))
            return true
        }
    }

    public func restoreWrappedResponse(_ w: WrappedResponse) async throws {
        try await db.transaction { tx in
            _ = try await tx.execute(Self.insertWrapped + " ON CONFLICT (token_hash) DO NOTHING", Self.wrappedBinds(w))
        }
    }

    public func liveWrappedResponses(creator: String, now: Date) async throws -> Int {
        let rows = try await db.read("SELECT COUNT(*) AS n FROM wrapped_responses WHERE creator_access_id = ? AND expires_at > ?",
                                     [.text(creator), .date(now)])
        return try rows.first.map { try Columns(row: $0).int("n") } ?? 0
    }

    static let insertWrapped = """
        INSERT INTO wrapped_responses (token_hash, creation_path, created_at, ttl_seconds, expires_at, ciphertext, key_term, wrapped_accessor, creator_access_id)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    static func wrappedBinds(_ w: WrappedResponse) -> [SQLiteData] {
        [.text(w.tokenHash), .text(w.creationPath), .date(w.createdAt), .int(w.ttlSeconds), .date(w.expiresAt), .bytes(w.ciphertext),
         .int(Int(w.term)), .text(w.wrappedAccessor), .text(w.creatorAccessId)]
    }

    static func wrapped(_ row: SQLiteRow) throws -> WrappedResponse {
        let c = Columns(row: row)
        return WrappedResponse(tokenHash: try c.string("token_hash"), creationPath: try c.string("creation_path"), createdAt: try c.date("created_at"),
                               ttlSeconds: try c.int("ttl_seconds"), expiresAt: try c.date("expires_at"), ciphertext: try c.bytes("ciphertext"),
                               term: UInt32(clamping: try c.int("key_term")), wrappedAccessor: try c.string("wrapped_accessor"),
                               creatorAccessId: try c.string("creator_access_id"))
    }
}
