// Token roles in PostgreSQL: one row per role, its settings as JSON.
import Foundation
import PostgresNIO
import TesseraCore

extension PostgresStore {
    public func putTokenRole(_ role: TokenRole, onlyIfAbsent: Bool) async throws -> Bool {
        let conflict = onlyIfAbsent ? "DO NOTHING" : "DO UPDATE SET config = excluded.config"
        return try await db.count("INSERT INTO token_roles (name, config) VALUES ($1, $2) ON CONFLICT (name) " + conflict + " RETURNING 1",
                                  [.text(role.name), .text(role.json.serialized)]) == 1
    }

    public func tokenRole(named name: String) async throws -> TokenRole? {
        try await db.query("SELECT * FROM token_roles WHERE name = $1", [.text(name)]).first.map(Self.tokenRole)
    }

    public func tokenRoles() async throws -> [TokenRole] {
        try await db.query("SELECT * FROM token_roles ORDER BY name", []).map(Self.tokenRole)
    }

    public func deleteTokenRole(named name: String) async throws -> Bool {
        try await db.count("DELETE FROM token_roles WHERE name = $1 RETURNING 1", [.text(name)]) > 0
    }

    static func tokenRole(_ row: PostgresRow) throws -> TokenRole {
        let c = PGColumns(row)
        return TokenRole(name: try c.string("name"), config: try JSON.parse(Array(try c.string("config").utf8)))
    }
}
