// The audit trail in PostgreSQL (the audit_events table, in the same database as the data):
// batches are one multi-row INSERT each, atomic, and a sequence number written twice is refused.
import Foundation
import Logging
import PostgresNIO
import Synchronization
import TesseraCore

public final class PostgresAuditStore: AuditStore {
    let db: PostgresDatabase
    /// The newest head this store wrote or read: where the next batch is numbered from.
    let seenHead = Mutex<AuditAnchor?>(nil)

    public static func open(_ settings: PostgresSettings, logger: Logger) async throws -> PostgresAuditStore {
        let db = try await PostgresDatabase.open(settings, logger: logger)
        do {
            try await PostgresSchema.migrate(db, component: "audit", PostgresSchema.auditMigrations)
        } catch {
            await db.close()
            throw error
        }
        return PostgresAuditStore(db: db)
    }

    init(db: PostgresDatabase) { self.db = db }

    public func close() async throws { await db.close() }

    public func snapshot(to path: String) async throws {
        throw TesseraError.badRequest("this server keeps its audit trail in PostgreSQL: back it up with pg_dump or the database's own backups")
    }

    static let columns = """
        seq, time, request_id, interface, auth_method_type, access_id, actor_name, client_address, action, path, result, status,
        duration_us, error, parameters, prev_hash, hash
        """
    static let columnCount = 17


    /// Numbered after the head this store last saw, then inserted in one statement (one
    /// transaction past 1000 events): the primary key on `seq` is the arbiter. If another writer
    /// (another node, or another batch of this one) took those numbers first, the insert changes
    /// nothing, the head is read again and the batch is numbered after it. The common case is
    /// one round trip per batch and no lock held across round trips, so nodes do not queue
    /// behind each other's network and scheduling delays. Gives up, fail-closed, after
    /// `maxAttempts` lost races.
    public func appendChained(_ events: [AuditEvent], known: AuditAnchor?,
                              chain: @escaping @Sendable (AuditAnchor?, [AuditEvent]) throws -> [AuditEvent]) async throws -> [AuditEvent] {
        guard !events.isEmpty else { return [] }
        var head = seenHead.withLock { $0 }
        if head == nil { head = try await storedHead() }
        for attempt in 1...Self.maxAttempts {
            let start = [head, known].compactMap { $0 }.max { $0.sequence < $1.sequence }
            let chained = try chain(start, events)
            do {
                try await insertAtomically(chained)
            } catch TesseraError.conflict {
                // Those sequence numbers are taken: number the batch after the stored head.
                if attempt > 2 { try await Task.sleep(for: .microseconds(Int.random(in: 100...(500 * min(attempt, 20))))) }
                head = try await storedHead()
                continue
            }
            if let last = chained.last {
                seenHead.withLock { seen in
                    if (seen?.sequence ?? -1) < last.sequence { seen = AuditAnchor(sequence: last.sequence, hash: last.hash) }
                }
            }
            return chained
        }
        throw TesseraError.unavailable("the audit trail could not be appended: other writers kept taking its sequence numbers")
    }

    static let maxAttempts = 100

    /// The last event stored, as the head a batch is numbered after.
    func storedHead() async throws -> AuditAnchor? {
        try await db.query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").first.map { row in
            let c = PGColumns(row)
            return AuditAnchor(sequence: try c.int64("seq"), hash: try c.string("hash"))
        }
    }

    /// All of the events or none: one statement, or one transaction for several.
    func insertAtomically(_ events: [AuditEvent]) async throws {
        let statements = try Self.inserts(events)
        if statements.count == 1, let (sql, values) = statements.first {
            try await db.query(sql, values)
            return
        }
        try await db.transaction { tx in
            for (sql, values) in statements { try await tx.query(sql, values) }
        }
    }

    /// Multi-row INSERTs of at most 1000 events each (PostgreSQL takes at most 65535 parameters).
    static func inserts(_ events: [AuditEvent]) throws -> [(String, [PGValue])] {
        try stride(from: 0, to: events.count, by: 1000).map { start in
            let slice = events[start..<min(start + 1000, events.count)]
            var rows: [String] = []
            var values: [PGValue] = []
            for e in slice {
                let base = values.count
                rows.append("(" + (1...Self.columnCount).map { "$\(base + $0)" }.joined(separator: ", ") + ")")
                values += try Self.values(e)
            }
            return ("INSERT INTO audit_events (\(Self.columns)) VALUES " + rows.joined(separator: ", "), values)
        }
    }

    public func append(_ events: [AuditEvent]) async throws {
        guard !events.isEmpty else { return }
        try await insertAtomically(events)
    }

    static func values(_ e: AuditEvent) throws -> [PGValue] {
        [.int(e.sequence), .date(e.time), .text(e.requestId), .text(e.interface.rawValue), .text(e.authMethodType),
         .text(e.accessId), .text(e.actorName), .text(e.clientAddress), .text(e.action), .text(e.path), .text(e.result.rawValue),
         .int(e.status), .int(e.durationMicros), .text(e.error), try .json(e.parameters), .text(e.prevHash), .text(e.hash)]
    }

    public func lastEvent() async throws -> AuditEvent? {
        try await db.query("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1").first.map(Self.event)
    }

    public func query(_ q: AuditQuery) async throws -> [AuditEvent] {
        var clauses: [String] = []
        var values: [PGValue] = []
        func next(_ v: PGValue) -> String { values.append(v); return "$\(values.count)" }
        if let p = q.pathPrefix, !p.isEmpty {
            clauses.append("path >= \(next(.text(p))) AND path < \(next(.text(p + "\u{10FFFF}")))")
        }
        if let a = q.accessId { clauses.append("access_id = \(next(.text(a)))") }
        if let a = q.action { clauses.append("action = \(next(.text(a)))") }
        if let r = q.result { clauses.append("result = \(next(.text(r.rawValue)))") }
        if let s = q.since { clauses.append("time >= \(next(.date(s)))") }
        if let u = q.until { clauses.append("time <= \(next(.date(u)))") }
        if let after = q.afterSequence { clauses.append("seq > \(next(.int(after)))") }
        let whereSQL = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let limit = next(.int(max(1, min(q.limit, 100_000))))
        return try await db.query("SELECT * FROM audit_events \(whereSQL) ORDER BY seq LIMIT \(limit)", values).map(Self.event)
    }

    public func scan(afterSequence: Int64, limit: Int) async throws -> [AuditEvent] {
        try await db.query("SELECT * FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2", [.int(afterSequence), .int(limit)]).map(Self.event)
    }

    static func event(_ row: PostgresRow) throws -> AuditEvent {
        let c = PGColumns(row)
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
