// Audit device state in SQLite: each device's delivery cursor, and API-created devices.
import Foundation
import SQLiteNIO
import TesseraCore

extension SQLiteStore {
    public func auditDeviceCursor(_ name: String) async throws -> Int64? {
        guard let row = try await db.read("SELECT sequence FROM audit_device_cursors WHERE name = ?", [.text(name)]).first else { return nil }
        return try Columns(row: row).int64("sequence")
    }

    public func setAuditDeviceCursor(_ name: String, _ sequence: Int64) async throws {
        try await db.write("""
            INSERT INTO audit_device_cursors (name, sequence) VALUES (?, ?)
            ON CONFLICT(name) DO UPDATE SET sequence = excluded.sequence WHERE excluded.sequence > audit_device_cursors.sequence
            """, [.text(name), .int(Int(sequence))])
    }

    public func storedAuditDevices() async throws -> [(name: String, config: String)] {
        try await db.read("SELECT name, config FROM audit_devices ORDER BY name").map { row in
            let c = Columns(row: row)
            return (try c.string("name"), try c.string("config"))
        }
    }

    public func storeAuditDevice(name: String, config: String, at date: Date) async throws {
        do {
            try await db.write("INSERT INTO audit_devices (name, config, created_at) VALUES (?, ?, ?)", [.text(name), .text(config), .date(date)])
        } catch TesseraError.conflict {
            throw TesseraError.badRequest("an audit device named \(name) exists already")
        }
    }

    public func removeStoredAuditDevice(_ name: String) async throws -> Bool {
        try await db.transaction { tx in
            _ = try await tx.execute("DELETE FROM audit_device_cursors WHERE name = ?", [.text(name)])
            return try await tx.execute("DELETE FROM audit_devices WHERE name = ?", [.text(name)]) > 0
        }
    }
}
