// Node records and work claims in SQLite. One process owns the file, so there is one live node;
// the rules are the same as on PostgreSQL, so that the engines behave alike.
import Foundation
import SQLiteNIO
import TesseraCore

extension SQLiteStore {
    public func registerNode(_ n: NodeRecord) async throws {
        try await db.write("""
            INSERT INTO nodes (id, hostname, api_address, version, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, api_address = excluded.api_address, version = excluded.version,
                                           started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
            """, [.text(n.id), .text(n.hostname), .text(n.apiAddress), .text(n.version), .date(n.startedAt), .date(n.heartbeatAt)])
    }

    public func heartbeat(nodeId: String, at: Date) async throws -> Bool {
        try await db.write("UPDATE nodes SET heartbeat_at = ? WHERE id = ?", [.date(at), .text(nodeId)]) > 0
    }

    public func nodes() async throws -> [NodeRecord] {
        try await db.read("SELECT * FROM nodes ORDER BY api_address, id").map { row in
            let c = Columns(row: row)
            return NodeRecord(id: try c.string("id"), hostname: try c.string("hostname"), apiAddress: try c.string("api_address"),
                              version: try c.string("version"), startedAt: try c.date("started_at"), heartbeatAt: try c.date("heartbeat_at"))
        }
    }

    public func removeNodes(heartbeatBefore cutoff: Date) async throws -> Int {
        try await db.write("DELETE FROM nodes WHERE heartbeat_at < ?", [.date(cutoff)])
    }

    public func removeNode(id: String) async throws {
        try await db.write("DELETE FROM nodes WHERE id = ?", [.text(id)])
    }

    public func claim(kind: String, key: String, node: String, until: Date, now: Date, deadBefore: Date) async throws -> Bool {
        try await db.write("""
            INSERT INTO work_claims AS c (kind, key, node_id, claimed_until) VALUES (?, ?, ?, ?)
            ON CONFLICT (kind, key) DO UPDATE SET node_id = excluded.node_id, claimed_until = excluded.claimed_until
            WHERE c.node_id = excluded.node_id OR c.claimed_until < ?
               OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = c.node_id AND n.heartbeat_at >= ?)
            """, [.text(kind), .text(key), .text(node), .date(until), .date(now), .date(deadBefore)]) > 0
    }

    public func releaseClaim(kind: String, key: String, node: String) async throws {
        try await db.write("DELETE FROM work_claims WHERE kind = ? AND key = ? AND node_id = ?", [.text(kind), .text(key), .text(node)])
    }
}
