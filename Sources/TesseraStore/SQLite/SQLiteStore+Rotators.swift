// The SQLite engine's rotated-secret storage: rotator rows next to their items, the pending
// record written before a password is applied, and the indexed query for due rotations.
import Foundation
import SQLiteNIO
import TesseraCore

extension SQLiteStore {
    public func createRotatedSecret(_ item: Item, firstVersion: ItemVersion, rotator: Rotator) async throws {
        defer { cache.invalidate(path: item.path.value) }
        do {
            try await db.transaction { tx in
                let creation = try Self.itemCreation(item, firstVersion: firstVersion)
                _ = try await tx.query(creation.sql, creation.binds)
                try await tx.execute("""
                    INSERT INTO rotators (item_id, path, kind, target_name, username, credentials, policy, custom_command, verify_port,
                                          auto_rotate, interval_minutes, rotation_hour, next_rotation_at, status, last_rotation_at,
                                          last_error, failures, pending_ciphertext, pending_key_term, pending_started_at, pending_actor,
                                          created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.int64(rotator.itemId), .text(rotator.path.value), .text(rotator.kind.rawValue), .text(rotator.targetName)]
                    + (try Self.rotatorStateBinds(rotator)) + [.date(rotator.createdAt)])
            }
        } catch TesseraError.conflict {
            throw TesseraError.conflict("item \(item.path) already exists")
        }
    }

    /// Binds from `username` to `pending_actor`, in column order.
    static func rotatorStateBinds(_ r: Rotator) throws -> [SQLiteData] {
        [.text(r.username), .text(r.credentials.rawValue), try .json(r.policy), .text(r.customCommand), .int(r.verifyPort),
         .bool(r.autoRotate), .int(r.intervalMinutes), r.rotationHour.map { .int($0) } ?? .null, .optionalDate(r.nextRotationAt),
         .text(r.status.rawValue), .optionalDate(r.lastRotationAt), .text(r.lastError), .int(r.failures),
         .optionalBytes(r.pending?.ciphertext), r.pending.map { .int(Int($0.keyTerm)) } ?? .null, .optionalDate(r.pending?.startedAt),
         r.pending.map { .text($0.actor) } ?? .null]
    }

    static let rotatorUpdateSQL = """
        UPDATE rotators SET username = ?, credentials = ?, policy = ?, custom_command = ?, verify_port = ?, auto_rotate = ?,
                            interval_minutes = ?, rotation_hour = ?, next_rotation_at = ?, status = ?, last_rotation_at = ?,
                            last_error = ?, failures = ?, pending_ciphertext = ?, pending_key_term = ?, pending_started_at = ?,
                            pending_actor = ?
        WHERE item_id = ?
        """

    public func rotator(itemId: Int64) async throws -> Rotator? {
        try await db.read("SELECT * FROM rotators WHERE item_id = ?", [.int64(itemId)]).first.map(Self.rotator)
    }

    public func rotators() async throws -> [Rotator] {
        try await db.read("SELECT * FROM rotators ORDER BY path").map(Self.rotator)
    }

    public func updateRotator(_ r: Rotator) async throws {
        _ = try await db.write(Self.rotatorUpdateSQL, try Self.rotatorStateBinds(r) + [.int64(r.itemId)])
    }

    public func beginRotation(itemId: Int64, pending: PendingRotation) async throws -> Bool {
        try await db.write("""
            UPDATE rotators SET pending_ciphertext = ?, pending_key_term = ?, pending_started_at = ?, pending_actor = ?, status = ?
            WHERE item_id = ? AND pending_started_at IS NULL
            """, [.bytes(pending.ciphertext), .int(Int(pending.keyTerm)), .date(pending.startedAt), .text(pending.actor),
                  .text(Rotator.Status.inProgress.rawValue), .int64(itemId)]) > 0
    }

    public func finishRotation(_ r: Rotator, version: ItemVersion?, expectedLastVersion: Int) async throws {
        defer { cache.invalidate(itemId: r.itemId) }
        do {
            try await db.transaction { tx in
                if let version {
                    let append = Self.versionAppend(version, expectedLastVersion: expectedLastVersion, updatedAt: version.createdAt)
                    _ = try await tx.query(append.sql, append.binds)
                }
                try await tx.execute(Self.rotatorUpdateSQL, try Self.rotatorStateBinds(r) + [.int64(r.itemId)])
            }
        } catch TesseraError.conflict {
            throw TesseraError.conflict("the item changed concurrently; retry")
        }
    }

    public func dueRotations(now: Date, limit: Int) async throws -> [Rotator] {
        try await db.read("""
            SELECT * FROM rotators WHERE next_rotation_at <= ? AND auto_rotate = 1 AND pending_started_at IS NULL
            ORDER BY next_rotation_at LIMIT ?
            """, [.date(now), .int(limit)]).map(Self.rotator)
    }

    public func pendingRotations() async throws -> [Rotator] {
        try await db.read("SELECT * FROM rotators WHERE pending_started_at IS NOT NULL ORDER BY path").map(Self.rotator)
    }

    public func countRotators(status: Rotator.Status) async throws -> Int {
        try await db.read("SELECT COUNT(*) AS n FROM rotators WHERE status = ?", [.text(status.rawValue)]).first?.column("n")?.integer ?? 0
    }

    static func rotator(_ row: SQLiteRow) throws -> Rotator {
        let c = Columns(row: row)
        guard let kind = Rotator.Kind(rawValue: try c.string("kind")),
              let credentials = Rotator.Credentials(rawValue: try c.string("credentials")),
              let status = Rotator.Status(rawValue: try c.string("status")) else {
            throw TesseraError.integrity("malformed rotator row")
        }
        var pending: PendingRotation?
        if let ciphertext = c.optionalBytes("pending_ciphertext"), let started = c.optionalDate("pending_started_at") {
            pending = PendingRotation(ciphertext: ciphertext, keyTerm: UInt32(truncatingIfNeeded: row.column("pending_key_term")?.integer ?? 0),
                                      startedAt: started, actor: row.column("pending_actor")?.string ?? "")
        }
        return Rotator(itemId: try c.int64("item_id"), path: try ItemPath(try c.string("path")), kind: kind,
                       targetName: try c.string("target_name"), username: try c.string("username"), credentials: credentials,
                       policy: try c.json(PasswordPolicy.self, "policy"), customCommand: try c.string("custom_command"),
                       verifyPort: try c.int("verify_port"), autoRotate: try c.bool("auto_rotate"),
                       intervalMinutes: try c.int("interval_minutes"), rotationHour: row.column("rotation_hour")?.integer,
                       nextRotationAt: c.optionalDate("next_rotation_at"), status: status, lastRotationAt: c.optionalDate("last_rotation_at"),
                       lastError: try c.string("last_error"), failures: try c.int("failures"), pending: pending,
                       createdAt: try c.date("created_at"))
    }
}
