// Audit device state in PostgreSQL: each device's delivery cursor, and API-created devices.
import Foundation
import PostgresNIO
import TesseraCore

extension PostgresStore {
    public func auditDeviceCursor(_ name: String) async throws -> Int64? {
        try await db.query("SELECT sequence FROM audit_device_cursors WHERE name = $1", [.text(name)]).first
            .map { try PGColumns($0).int64("sequence") }
    }

    public func setAuditDeviceCursor(_ name: String, _ sequence: Int64) async throws {
        try await db.query("""
            INSERT INTO audit_device_cursors AS c (name, sequence) VALUES ($1, $2)
            ON CONFLICT (name) DO UPDATE SET sequence = EXCLUDED.sequence WHERE EXCLUDED.sequence > c.sequence
            """, [.text(name), .int(sequence)])
    }

    public func storedAuditDevices() async throws -> [(name: String, config: String)] {
        try await db.query("SELECT name, config FROM audit_devices ORDER BY name").map { row in
            let c = PGColumns(row)
            return (try c.string("name"), try c.string("config"))
        }
    }

    public func storeAuditDevice(name: String, config: String, at date: Date) async throws {
        do {
            try await db.query("INSERT INTO audit_devices (name, config, created_at) VALUES ($1, $2, $3)", [.text(name), .text(config), .date(date)])
        } catch TesseraError.conflict {
            throw TesseraError.badRequest("an audit device named \(name) exists already")
        }
    }

    public func removeStoredAuditDevice(_ name: String) async throws -> Bool {
        try await db.transaction { tx in
            try await tx.query("DELETE FROM audit_device_cursors WHERE name = $1", [.text(name)])
            return try await tx.count("DELETE FROM audit_devices WHERE name = $1 RETURNING 1", [.text(name)]) > 0
        }
    }
}
