// Audit device state: each device's delivery cursor, which only moves forward (so that a slow
// or restarted follower never re-delivers from an older point over a newer one), and the
// devices created through the API, whose removal also forgets their cursor.
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Audit device cursors")
    struct AuditDevices {
        @Test("a cursor starts unset and reads back per device", arguments: Engines.all)
        func cursors(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                #expect(try await s.store.auditDeviceCursor("file") == nil)
                try await s.store.setAuditDeviceCursor("file", 42)
                try await s.store.setAuditDeviceCursor("syslog", 7)
                #expect(try await s.store.auditDeviceCursor("file") == 42)
                #expect(try await s.store.auditDeviceCursor("syslog") == 7)
                #expect(try await s.store.auditDeviceCursor("webhook") == nil)
            }
        }

        @Test("a cursor only moves forward", arguments: Engines.all)
        func forwardOnly(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.setAuditDeviceCursor("file", 100)
                try await s.store.setAuditDeviceCursor("file", 99)
                try await s.store.setAuditDeviceCursor("file", 0)
                #expect(try await s.store.auditDeviceCursor("file") == 100)
                try await s.store.setAuditDeviceCursor("file", 101)
                #expect(try await s.store.auditDeviceCursor("file") == 101)
            }
        }

        @Test("of concurrent cursor moves, the furthest is what stays", arguments: Engines.all)
        func forwardOnlyUnderRace(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let store = s.store
                let positions: [Int64] = [5, 80, 12, 64, 3, 99, 41, 77, 18, 90]
                let results = await concurrently(positions.count) { i in
                    try await store.setAuditDeviceCursor("file", positions[i])
                }
                #expect(results.allSatisfy { (try? $0.get()) != nil })
                let cursor = try await s.store.auditDeviceCursor("file")
                #expect(cursor == 99)
            }
        }

        @Test("API-created devices are listed by name; a taken name is refused", arguments: Engines.all)
        func storedDevices(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.storeAuditDevice(name: "webhook", config: #"{"type":"webhook"}"#, at: T.origin)
                try await s.store.storeAuditDevice(name: "file2", config: #"{"type":"file","path":"/var/log/t"}"#, at: T.origin)
                #expect(await outcome { try await s.store.storeAuditDevice(name: "file2", config: "{}", at: T.origin) }.isFailure)
                let stored = try await s.store.storedAuditDevices()
                #expect(stored.map(\.name) == ["file2", "webhook"])
                #expect(stored.map(\.config) == [#"{"type":"file","path":"/var/log/t"}"#, #"{"type":"webhook"}"#])
            }
        }

        @Test("removing a device forgets its cursor, so a new device of that name starts afresh", arguments: Engines.all)
        func removal(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.storeAuditDevice(name: "hook", config: "{}", at: T.origin)
                try await s.store.setAuditDeviceCursor("hook", 500)
                try await s.store.setAuditDeviceCursor("other", 9)
                #expect(try await s.store.removeStoredAuditDevice("hook"))
                #expect(try await s.store.auditDeviceCursor("hook") == nil)
                #expect(try await s.store.auditDeviceCursor("other") == 9)
                #expect(try await s.store.storedAuditDevices().isEmpty)
                #expect(try await s.store.removeStoredAuditDevice("hook") == false)
                try await s.store.storeAuditDevice(name: "hook", config: "{}", at: T.at(1))
                try await s.store.setAuditDeviceCursor("hook", 3)
                #expect(try await s.store.auditDeviceCursor("hook") == 3)
            }
        }
    }
}
