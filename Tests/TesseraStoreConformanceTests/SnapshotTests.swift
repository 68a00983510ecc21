// Snapshots: `snapshot(to:)` writes a copy, as of one moment, that opens as a store holding
// the same data (what backup and restore rely on), while writes go on; the copy is a store of
// its own, and the audit trail's snapshot keeps every event.
import Foundation
import Testing
import TesseraCore
import TesseraCrypto
import TesseraStore

extension StoreConformance {
    @Suite("Snapshots")
    struct Snapshots {
        /// A bit of everything the data store holds.
        struct Contents {
            var item: Item
            var rotated: Item
            var lease: Lease
        }

        func fill(_ store: any Store) async throws -> Contents {
            try await store.createSealConfig(Make.sealConfig())
            let item = try await store.appendVersions(try await store.createItem("/snap/item", maxVersions: 3), through: 5)
            try await store.setVersionsDeleted(itemId: item.id, numbers: [4], at: T.at(40))
            try await store.destroyVersions(itemId: item.id, numbers: [3], at: T.at(41))
            _ = try await store.createItem("/snap/other")
            try await store.createAuthMethod(Make.authMethod("/m/a", accessId: "p-a00000000001"))
            try await store.createRole(try Make.role("r", rules: [("/snap/*", [.read, .list], .item)]))
            try await store.createAssociation(RoleAssociation(id: "ass-1", roleName: "r", accessId: "p-a00000000001"))
            try await store.createToken(Make.token("tok", accessId: "p-a00000000001"))
            for name in ["t-a", "t-b", "t-c"] { try await store.createTarget(Make.target(name)) }
            _ = try await store.deleteTarget(named: "t-a")
            try await store.createConnector(SecretConnector(name: "usc", targetName: "t-b", createdAt: T.origin))
            try await store.createMount(try Make.mount("secret/", folder: "/secret"))
            try await store.createProducer(try Make.producer("/db/p", target: "t-b", maxLeases: 4))
            let lease = Make.lease("db/p/L1", producer: "/db/p", state: .active)
            _ = try await store.insertLease(lease, limit: 4)
            let rotated = try Make.item("/snap/rotated", type: .rotatedSecret)
            try await store.createRotatedSecret(rotated, firstVersion: Make.version(rotated, 1),
                                                rotator: Make.rotator(rotated, target: "t-c"))
            _ = try await store.beginRotation(itemId: rotated.id, pending: Make.pending())
            try await store.setAuditAnchor(AuditAnchor(sequence: 77, hash: "h77"))
            try await store.setAuditDeviceCursor("file", 70)
            try await store.storeAuditDevice(name: "hook", config: "{}", at: T.origin)
            return Contents(item: item, rotated: rotated, lease: lease)
        }

        /// Checks that `copy` reads as `original` does, through the protocol.
        func expectSameData(_ copy: any Store, _ original: any Store, _ c: Contents) async throws {
            #expect(try await copy.sealConfig() == original.sealConfig())
            #expect(try await copy.items(withPrefix: "/", limit: 100) == original.items(withPrefix: "/", limit: 100))
            for item in [c.item, c.rotated] {
                #expect(try await copy.versions(itemId: item.id) == original.versions(itemId: item.id))
            }
            #expect(try await copy.authMethods() == original.authMethods())
            #expect(try await copy.roles() == original.roles())
            #expect(try await copy.associations(accessId: "p-a00000000001") == original.associations(accessId: "p-a00000000001"))
            #expect(try await copy.token(hash: "tok") == original.token(hash: "tok"))
            #expect(try await copy.accessGeneration() == original.accessGeneration())
            #expect(try await copy.targets() == original.targets())
            for name in ["t-b", "t-c"] { #expect(try await copy.targetId(named: name) == original.targetId(named: name)) }
            #expect(try await copy.connectors() == original.connectors())
            #expect(try await copy.mounts() == original.mounts())
            #expect(try await copy.producers() == original.producers())
            #expect(try await copy.leases(prefix: "", state: nil, limit: 10)
                    == original.leases(prefix: "", state: nil, limit: 10))
            #expect(try await copy.rotators() == original.rotators())
            #expect(try await copy.auditAnchor() == original.auditAnchor())
            #expect(try await copy.auditDeviceCursor("file") == original.auditDeviceCursor("file"))
            #expect(try await copy.storedAuditDevices().map(\.name) == original.storedAuditDevices().map(\.name))
            #expect(try await copy.keyTermUsage() == original.keyTermUsage())
        }

        @Test("a data snapshot opens as a store with the same data", arguments: Engines.snapshotting)
        func dataSnapshot(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let contents = try await fill(s.store)
                let file = s.scratchFile("snapshot.db")
                try await s.store.snapshot(to: file)
                let copy = try await s.openStoreSnapshot(file)
                do {
                    try await expectSameData(copy, s.store, contents)
                    #expect(try await copy.rotator(itemId: contents.rotated.id)?.pending == Make.pending())
                    #expect(try await copy.lease(id: contents.lease.id) == contents.lease)
                } catch {
                    try? await copy.close()
                    throw error
                }
                try await copy.close()
            }
        }

        @Test("a snapshot is a store of its own: writes to either do not reach the other", arguments: Engines.snapshotting)
        func snapshotIsIndependent(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.createItem("/snap/own")
                let file = s.scratchFile("own.db")
                try await s.store.snapshot(to: file)
                try await s.store.appendVersions(item, through: 2)
                let copy = try await s.openStoreSnapshot(file)
                do {
                    #expect(try await copy.item(at: item.path)?.lastVersion == 1)
                    try await copy.appendVersion(Make.version(item, 2, value: "in the copy"), expectedLastVersion: 1,
                                                 updatedAt: T.at(3))
                    #expect(try await copy.version(itemId: item.id, number: 2)?.ciphertext == sealed("in the copy"))
                    #expect(try await s.store.version(itemId: item.id, number: 2)?.ciphertext == sealed("/snap/own#2"))
                } catch {
                    try? await copy.close()
                    throw error
                }
                try await copy.close()
            }
        }

        @Test("a snapshot taken while writes go on holds one consistent moment", arguments: Engines.snapshotting)
        func snapshotUnderWrites(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.createItem("/snap/busy", maxVersions: 1000)
                let store = s.store
                let writers = Task {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for w in 0..<4 {
                            group.addTask {
                                for k in 0..<25 { try await appendWithRetry(store, path: item.path, value: "w\(w)-\(k)") }
                            }
                        }
                        try await group.waitForAll()
                    }
                }
                // Snapshot once the writers are under way (or after 5 s, if they never get going).
                for _ in 0..<5000 {
                    if try await s.store.item(at: item.path)?.lastVersion ?? 0 >= 10 { break }
                    try await Task.sleep(for: .milliseconds(1))
                }
                let file = s.scratchFile("busy.db")
                try await s.store.snapshot(to: file)
                try await writers.value
                #expect(try await s.store.item(at: item.path)?.lastVersion == 101)
                let copy = try await s.openStoreSnapshot(file)
                do {
                    let last = try #require(try await copy.item(at: item.path)).lastVersion
                    #expect(last >= 10)
                    #expect(try await copy.versionNumbers(item) == Array(1...last))
                } catch {
                    try? await copy.close()
                    throw error
                }
                try await copy.close()
            }
        }

        @Test("an engine without snapshot files refuses with a clear 400 and changes nothing",
              arguments: Engines.all.filter { !$0.writesSnapshots })
        func noSnapshotFiles(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let file = s.scratchFile("refused.db")
                await #expect(throws: TesseraError.self) { try await s.store.snapshot(to: file) }
                await #expect(throws: TesseraError.self) { try await s.audit.snapshot(to: file) }
                #expect(!FileManager.default.fileExists(atPath: file))
            }
        }

        @Test("an audit snapshot opens as an audit store with every event", arguments: Engines.snapshotting)
        func auditSnapshot(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let events = (1...150).map { Make.event(Int64($0)) }
                try await s.audit.append(events)
                let file = s.scratchFile("audit-snapshot.db")
                try await s.audit.snapshot(to: file)
                try await s.audit.append([Make.event(151)])
                let copy = try await s.openAuditSnapshot(file)
                do {
                    #expect(try await copy.scan(afterSequence: 0, limit: 1000) == events)
                    #expect(try await copy.lastEvent() == events.last)
                    try await copy.append([Make.event(151)])
                } catch {
                    try? await copy.close()
                    throw error
                }
                try await copy.close()
            }
        }
    }
}
