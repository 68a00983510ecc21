// Token roles in SQLite: one row per role, its settings as JSON.
import Foundation
import SQLiteNIO
import TesseraCore

extension SQLiteStore {
    public func putTokenRole(_ role: TokenRole, onlyIfAbsent: Bool) async throws -> Bool {
        let conflict = onlyIfAbsent ? "DO NOTHING" : "DO UPDATE SET config = excluded.config"
        return try await db.transaction { tx in
            try await tx.execute("INSERT INTO token_roles (name, config) VALUES (?, ?) ON CONFLICT (name) " + conflict,
                                 [.text(role.name), .text(role.json.serialized)]) == 1
        }
    }

    public func tokenRole(named name: String) async throws -> TokenRole? {
        try await db.read("SELECT * FROM token_roles WHERE name = ?", [.text(name)]).first.map(Self.tokenRole)
    }

    public func tokenRoles() async throws -> [TokenRole] {
        try await db.read("SELECT * FROM token_roles ORDER BY name", []).map(Self.tokenRole)
    }

    public func deleteTokenRole(named name: String) async throws -> Bool {
        try await db.transaction { tx in try await tx.execute("DELETE FROM token_roles WHERE name = ?", [.text(name)]) > 0 }
    }

    static func tokenRole(_ row: SQLiteRow) throws -> TokenRole {
        let c = Columns(row: row)
        return TokenRole(name: try c.string("name"), config: try JSON.parse(Array(try c.string("config").utf8)))
    }
}
