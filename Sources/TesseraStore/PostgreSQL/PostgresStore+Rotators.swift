// The PostgreSQL engine's rotated-secret storage: rotator rows next to their items, the pending
// record written before a password is applied, and the indexed query for due rotations.
import Foundation
import PostgresNIO
import TesseraCore

extension PostgresStore {
    static let rotatorStateColumns = """
        username, credentials, policy, custom_command, verify_port, auto_rotate, interval_minutes, rotation_hour, next_rotation_at,
        status, last_rotation_at, last_error, failures, pending_ciphertext, pending_key_term, pending_started_at, pending_actor
        """

    /// Values from `username` to `pending_actor`, in column order.
    static func rotatorStateValues(_ r: Rotator) throws -> [PGValue] {
        [.text(r.username), .text(r.credentials.rawValue), try .json(r.policy), .text(r.customCommand), .int(r.verifyPort),
         .bool(r.autoRotate), .int(r.intervalMinutes), .int(r.rotationHour.map(Int64.init)), .optionalDate(r.nextRotationAt),
         .text(r.status.rawValue), .optionalDate(r.lastRotationAt), .text(r.lastError), .int(r.failures),
         .bytes(r.pending?.ciphertext), .int(r.pending.map { Int64($0.keyTerm) }), .optionalDate(r.pending?.startedAt),
         .text(r.pending?.actor)]
    }

    static let rotatorUpdateSQL = """
        UPDATE rotators SET username = $1, credentials = $2, policy = $3, custom_command = $4, verify_port = $5, auto_rotate = $6,
                            interval_minutes = $7, rotation_hour = $8, next_rotation_at = $9, status = $10, last_rotation_at = $11,
                            last_error = $12, failures = $13, pending_ciphertext = $14, pending_key_term = $15, pending_started_at = $16,
                            pending_actor = $17
        WHERE item_id = $18
        """

    public func createRotatedSecret(_ item: Item, firstVersion: ItemVersion, rotator: Rotator) async throws {
        let creation = try Self.itemCreation(item, firstVersion: firstVersion)
        let rotatorValues: [PGValue] = [.int(rotator.itemId), .text(rotator.path.value), .text(rotator.kind.rawValue),
                                        .text(rotator.targetName)] + (try Self.rotatorStateValues(rotator)) + [.date(rotator.createdAt)]
        let placeholders = (1...rotatorValues.count).map { "$\($0)" }.joined(separator: ", ")
        do {
            try await db.transaction { tx in
                try await tx.query(creation.sql, creation.values)
                try await tx.query("""
                    INSERT INTO rotators (item_id, path, kind, target_name, \(Self.rotatorStateColumns), created_at)
                    VALUES (\(placeholders))
                    """, rotatorValues)
            }
        } catch TesseraError.conflict(let message) where message.hasPrefix("refers to") {
            throw TesseraError.conflict("target \(rotator.targetName) does not exist")
        } catch TesseraError.conflict {
            throw TesseraError.conflict("item \(item.path) already exists")
        }
    }

    public func rotator(itemId: Int64) async throws -> Rotator? {
        try await db.query("SELECT * FROM rotators WHERE item_id = $1", [.int(itemId)]).first.map(Self.rotator)
    }

    public func rotators() async throws -> [Rotator] {
        try await db.query("SELECT * FROM rotators ORDER BY path").map(Self.rotator)
    }

    public func updateRotator(_ r: Rotator) async throws {
        try await db.query(Self.rotatorUpdateSQL, try Self.rotatorStateValues(r) + [.int(r.itemId)])
    }

    public func beginRotation(itemId: Int64, pending: PendingRotation) async throws -> Bool {
        try await db.count("""
            UPDATE rotators SET pending_ciphertext = $1, pending_key_term = $2, pending_started_at = $3, pending_actor = $4, status = $5
            WHERE item_id = $6 AND pending_started_at IS NULL RETURNING 1
            """, [.bytes(pending.ciphertext), .int(Int64(pending.keyTerm)), .date(pending.startedAt), .text(pending.actor),
                  .text(Rotator.Status.inProgress.rawValue), .int(itemId)]) > 0
    }

    public func finishRotation(_ r: Rotator, version: ItemVersion?, expectedLastVersion: Int) async throws {
        let state = try Self.rotatorStateValues(r) + [.int(r.itemId)]
        try await db.transaction { tx in
            if let version {
                let append = Self.versionAppend(version, expectedLastVersion: expectedLastVersion, updatedAt: version.createdAt)
                guard try Self.appended(try await tx.query(append.sql, append.values)) else {
                    throw TesseraError.conflict("the item changed concurrently; retry")
                }
            }
            try await tx.query(Self.rotatorUpdateSQL, state)
        }
    }

    public func dueRotations(now: Date, limit: Int) async throws -> [Rotator] {
        try await db.query("""
            SELECT * FROM rotators WHERE next_rotation_at <= $1 AND auto_rotate AND pending_started_at IS NULL
            ORDER BY next_rotation_at LIMIT $2
            """, [.date(now), .int(limit)]).map(Self.rotator)
    }

    public func pendingRotations() async throws -> [Rotator] {
        try await db.query("SELECT * FROM rotators WHERE pending_started_at IS NOT NULL ORDER BY path").map(Self.rotator)
    }

    public func countRotators(status: Rotator.Status) async throws -> Int {
        try await db.query("SELECT count(*) AS n FROM rotators WHERE status = $1", [.text(status.rawValue)])
            .first.map { try PGColumns($0).int("n") } ?? 0
    }

    static func rotator(_ row: PostgresRow) throws -> Rotator {
        let c = PGColumns(row)
        guard let kind = Rotator.Kind(rawValue: try c.string("kind")),
              let credentials = Rotator.Credentials(rawValue: try c.string("credentials")),
              let status = Rotator.Status(rawValue: try c.string("status")) else {
            throw TesseraError.integrity("malformed rotator row")
        }
        var pending: PendingRotation?
        if let ciphertext = try c.optionalBytes("pending_ciphertext"), let started = try c.optionalDate("pending_started_at") {
            pending = PendingRotation(ciphertext: ciphertext, keyTerm: UInt32(clamping: try c.optionalInt64("pending_key_term") ?? 0),
                                      startedAt: started, actor: try c.optionalString("pending_actor") ?? "")
        }
        return Rotator(itemId: try c.int64("item_id"), path: try ItemPath(try c.string("path")), kind: kind,
                       targetName: try c.string("target_name"), username: try c.string("username"), credentials: credentials,
                       policy: try c.json(PasswordPolicy.self, "policy"), customCommand: try c.string("custom_command"),
                       verifyPort: try c.int("verify_port"), autoRotate: try c.bool("auto_rotate"),
                       intervalMinutes: try c.int("interval_minutes"), rotationHour: try c.optionalInt("rotation_hour"),
                       nextRotationAt: try c.optionalDate("next_rotation_at"), status: status,
                       lastRotationAt: try c.optionalDate("last_rotation_at"), lastError: try c.string("last_error"),
                       failures: try c.int("failures"), pending: pending, createdAt: try c.date("created_at"))
    }
}
