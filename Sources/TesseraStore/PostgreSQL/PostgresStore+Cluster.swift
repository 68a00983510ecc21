// Node records and work claims in PostgreSQL. A claim is one upsert: the row lock of ON CONFLICT
// DO UPDATE makes concurrent claimers of one piece of work take turns, and the WHERE clause lets
// only a free, expired, own or dead holder's claim change hands.
import Foundation
import PostgresNIO
import TesseraCore

extension PostgresStore {
    public func registerNode(_ n: NodeRecord) async throws {
        try await db.query("""
            INSERT INTO nodes (id, hostname, api_address, version, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (id) DO UPDATE SET hostname = EXCLUDED.hostname, api_address = EXCLUDED.api_address, version = EXCLUDED.version,
                                           started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at
            """, [.text(n.id), .text(n.hostname), .text(n.apiAddress), .text(n.version), .date(n.startedAt), .date(n.heartbeatAt)])
    }

    public func heartbeat(nodeId: String, at: Date) async throws -> Bool {
        try await db.count("UPDATE nodes SET heartbeat_at = $1 WHERE id = $2 RETURNING 1", [.date(at), .text(nodeId)]) > 0
    }

    public func nodes() async throws -> [NodeRecord] {
        try await db.query("SELECT * FROM nodes ORDER BY api_address, id").map { row in
            let c = PGColumns(row)
            return NodeRecord(id: try c.string("id"), hostname: try c.string("hostname"), apiAddress: try c.string("api_address"),
                              version: try c.string("version"), startedAt: try c.date("started_at"), heartbeatAt: try c.date("heartbeat_at"))
        }
    }

    public func removeNodes(heartbeatBefore cutoff: Date) async throws -> Int {
        try await db.count("DELETE FROM nodes WHERE heartbeat_at < $1 RETURNING 1", [.date(cutoff)])
    }

    public func removeNode(id: String) async throws {
        try await db.query("DELETE FROM nodes WHERE id = $1", [.text(id)])
    }

    public func claim(kind: String, key: String, node: String, until: Date, now: Date, deadBefore: Date) async throws -> Bool {
        try await db.count("""
            INSERT INTO work_claims AS c (kind, key, node_id, claimed_until) VALUES ($1, $2, $3, $4)
            ON CONFLICT (kind, key) DO UPDATE SET node_id = EXCLUDED.node_id, claimed_until = EXCLUDED.claimed_until
            WHERE c.node_id = EXCLUDED.node_id OR c.claimed_until < $5
               OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = c.node_id AND n.heartbeat_at >= $6)
            RETURNING 1
            """, [.text(kind), .text(key), .text(node), .date(until), .date(now), .date(deadBefore)]) > 0
    }

    public func releaseClaim(kind: String, key: String, node: String) async throws {
        try await db.query("DELETE FROM work_claims WHERE kind = $1 AND key = $2 AND node_id = $3", [.text(kind), .text(key), .text(node)])
    }
}
