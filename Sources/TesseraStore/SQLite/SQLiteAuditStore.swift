// The audit trail in its own SQLite file (audit.db), so that audit group commits never wait
// on data writes and the trail can live on its own disk.
import Foundation
import Logging
import SQLiteNIO
import TesseraCore

public final class SQLiteAuditStore: AuditStore {
    let db: SQLiteDatabaseFile

    public static func open(path: String, busyTimeoutMillis: Int = 2000, durability: Durability = .process, logger: Logger) async throws -> SQLiteAuditStore {
        let db = try await SQLiteDatabaseFile.open(path: path, readers: 1, busyTimeoutMillis: busyTimeoutMillis, durability: durability, logger: logger)
        do {
            try await SQLiteSchema.migrate(db, SQLiteSchema.auditMigrations)
        } catch {
            await db.close()
            throw error
        }
        return SQLiteAuditStore(db: db)
    }

    init(db: SQLiteDatabaseFile) { self.db = db }

    public func close() async throws { await db.close() }
    public func snapshot(to path: String) async throws { try await db.snapshot(to: path) }

    public func append(_ events: [AuditEvent]) async throws {
        guard !events.isEmpty else { return }
        // One multi-row INSERT per chunk: a batch of up to `chunk` events is a single statement,
        // atomic on its own, and one trip to the database thread.
        let chunk = 100
        let statements = try stride(from: 0, to: events.count, by: chunk).map { start in
            let slice = events[start..<min(start + chunk, events.count)]
            let sql = Self.insertPrefix + Array(repeating: Self.rowPlaceholders, count: slice.count).joined(separator: ", ")
            return (sql, try slice.flatMap(Self.binds))
        }
        if statements.count == 1, let (sql, binds) = statements.first {
            try await db.write(sql, binds)
            return
        }
        try await db.transaction { tx in
            for (sql, binds) in statements { _ = try await tx.query(sql, binds) }
        }
    }

    /// The head is read and the batch inserted in one write transaction (the file's write lock
    /// serializes writers).
    public func appendChained(_ events: [AuditEvent], known: AuditAnchor?,
                              chain: @escaping @Sendable (AuditAnchor?, [AuditEvent]) throws -> [AuditEvent]) async throws -> [AuditEvent] {
        guard !events.isEmpty else { return [] }
        return try await db.transaction { tx in
            let stored = try await tx.query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").first.map { row in
                let c = Columns(row: row)
                return AuditAnchor(sequence: try c.int64("seq"), hash: try c.string("hash"))
            }
            let head = [stored, known].compactMap { $0 }.max { $0.sequence < $1.sequence }
            let chained = try chain(head, events)
            for start in stride(from: 0, to: chained.count, by: 100) {
                let slice = chained[start..<min(start + 100, chained.count)]
                let sql = Self.insertPrefix + Array(repeating: Self.rowPlaceholders, count: slice.count).joined(separator: ", ")
                _ = try await tx.query(sql, try slice.flatMap(Self.binds))
            }
            return chained
        }
    }

    static let insertPrefix = """
        INSERT INTO audit_events (seq, time, request_id, interface, auth_method_type, access_id, actor_name, client_address,
            action, path, result, status, duration_us, error, parameters, prev_hash, hash) VALUES
        """
    static let rowPlaceholders = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

    static func binds(_ e: AuditEvent) throws -> [SQLiteData] {
        [.int64(e.sequence), .date(e.time), .text(e.requestId), .text(e.interface.rawValue), .text(e.authMethodType),
         .text(e.accessId), .text(e.actorName), .text(e.clientAddress), .text(e.action), .text(e.path), .text(e.result.rawValue),
         .int(e.status), .int64(e.durationMicros), .text(e.error), try .json(e.parameters), .text(e.prevHash), .text(e.hash)]
    }

    public func lastEvent() async throws -> AuditEvent? {
        try await db.read("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1").first.map(Self.event)
    }

    public func query(_ q: AuditQuery) async throws -> [AuditEvent] {
        var clauses: [String] = []
        var binds: [SQLiteData] = []
        if let p = q.pathPrefix, !p.isEmpty {
            clauses.append("path >= ? AND path < ?")
            binds += [.text(p), .text(p + "\u{10FFFF}")]
        }
        if let a = q.accessId { clauses.append("access_id = ?"); binds.append(.text(a)) }
        if let a = q.action { clauses.append("action = ?"); binds.append(.text(a)) }
        if let r = q.result { clauses.append("result = ?"); binds.append(.text(r.rawValue)) }
        if let s = q.since { clauses.append("time >= ?"); binds.append(.date(s)) }
        if let u = q.until { clauses.append("time <= ?"); binds.append(.date(u)) }
        if let after = q.afterSequence { clauses.append("seq > ?"); binds.append(.int64(after)) }
        let whereSQL = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        binds.append(.int(max(1, min(q.limit, 100_000))))
        return try await db.read("SELECT * FROM audit_events \(whereSQL) ORDER BY seq LIMIT ?", binds).map(Self.event)
    }

    public func scan(afterSequence: Int64, limit: Int) async throws -> [AuditEvent] {
        try await db.read("SELECT * FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?", [.int64(afterSequence), .int(limit)]).map(Self.event)
    }

    static func event(_ row: SQLiteRow) throws -> AuditEvent {
        let c = Columns(row: row)
        var e = AuditEvent(time: try c.date("time"), requestId: try c.string("request_id"),
                           interface: Interface(rawValue: try c.string("interface")) ?? .native,
                           authMethodType: try c.string("auth_method_type"), accessId: try c.string("access_id"),
                           actorName: try c.string("actor_name"), clientAddress: try c.string("client_address"),
                           action: try c.string("action"), path: try c.string("path"),
                           result: AuditResult(rawValue: try c.string("result")) ?? .error, status: try c.int("status"),
                           durationMicros: try c.int64("duration_us"), error: try c.string("error"),
                           parameters: try c.json([String: String].self, "parameters"))
        e.sequence = try c.int64("seq")
        e.prevHash = try c.string("prev_hash")
        e.hash = try c.string("hash")
        return e
    }
}
