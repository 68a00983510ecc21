// AppRole secret ids on both engines: found by hash and by accessor, spent atomically (the last
// use exactly once under a race), expired ones never spent, and removed with their role.
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("AppRole secret ids")
    struct SecretIDs {
        static func secret(_ hash: String, accessor: String, uses: Int?, expires: Date? = nil) -> SecretIDRecord {
            SecretIDRecord(accessId: "p-role00000001", secretHash: hash, accessor: accessor, createdAt: T.origin, expiresAt: expires,
                           usesLeft: uses, metadata: ["job": "build"], cidrs: ["10.0.0.0/8"])
        }

        @Test("a secret id reads back by hash and by accessor, and is removed with its role", arguments: Engines.all)
        func readBack(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createAuthMethod(Make.authMethod("/approle/role/ci", accessId: "p-role00000001"))
                let r = Self.secret("h1", accessor: "acc-1", uses: nil)
                try await s.store.createSecretID(r)
                try await s.store.createSecretID(Self.secret("h2", accessor: "acc-2", uses: 3))
                #expect(try await s.store.secretID(accessId: "p-role00000001", hash: "h1") == r)
                #expect(try await s.store.secretID(accessId: "p-role00000001", accessor: "acc-1") == r)
                #expect(try await s.store.secretID(accessId: "p-other", hash: "h1") == nil)
                #expect(try await s.store.secretIDs(accessId: "p-role00000001").map(\.accessor) == ["acc-1", "acc-2"])
                #expect(try await s.store.deleteSecretID(accessId: "p-role00000001", accessor: "acc-1"))
                #expect(try await s.store.deleteSecretID(accessId: "p-role00000001", accessor: "acc-1") == false)
                _ = try await s.store.deleteAuthMethod(accessId: "p-role00000001")
                #expect(try await s.store.secretIDs(accessId: "p-role00000001").isEmpty)
            }
        }

        @Test("uses are spent one by one, the last removes it, an unlimited one stays, an expired one is never spent", arguments: Engines.all)
        func spending(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createAuthMethod(Make.authMethod("/approle/role/ci", accessId: "p-role00000001"))
                try await s.store.createSecretID(Self.secret("two", accessor: "a2", uses: 2))
                try await s.store.createSecretID(Self.secret("free", accessor: "af", uses: nil))
                try await s.store.createSecretID(Self.secret("old", accessor: "ao", uses: nil, expires: T.at(10)))
                #expect(try await s.store.useSecretID(accessId: "p-role00000001", hash: "two", now: T.at(1))?.usesLeft == 1)
                #expect(try await s.store.useSecretID(accessId: "p-role00000001", hash: "two", now: T.at(1))?.usesLeft == 0)
                #expect(try await s.store.useSecretID(accessId: "p-role00000001", hash: "two", now: T.at(1)) == nil)
                #expect(try await s.store.secretID(accessId: "p-role00000001", hash: "two") == nil)
                for _ in 0..<3 { #expect(try await s.store.useSecretID(accessId: "p-role00000001", hash: "free", now: T.at(1))?.usesLeft == nil) }
                #expect(try await s.store.useSecretID(accessId: "p-role00000001", hash: "old", now: T.at(11)) == nil)
                #expect(try await s.store.useSecretID(accessId: "p-role00000001", hash: "unknown", now: T.at(1)) == nil)
            }
        }

        @Test("purging removes the secret ids that expired before the cutoff; ones without expiry stay", arguments: Engines.all)
        func purge(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createAuthMethod(Make.authMethod("/approle/role/ci", accessId: "p-role00000001"))
                try await s.store.createSecretID(Self.secret("old", accessor: "ao", uses: nil, expires: T.at(10)))
                try await s.store.createSecretID(Self.secret("new", accessor: "an", uses: nil, expires: T.at(100)))
                try await s.store.createSecretID(Self.secret("free", accessor: "af", uses: nil))
                #expect(try await s.store.purgeExpiredSecretIDs(before: T.at(50)) == 1)
                #expect(try await s.store.purgeExpiredSecretIDs(before: T.at(50)) == 0)
                #expect(try await s.store.secretIDs(accessId: "p-role00000001").map(\.accessor) == ["af", "an"])
            }
        }

        @Test("of concurrent logins with a one-use secret id, exactly one spends it", arguments: Engines.all)
        func raced(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createAuthMethod(Make.authMethod("/approle/role/ci", accessId: "p-role00000001"))
                try await s.store.createSecretID(Self.secret("once", accessor: "a1", uses: 1))
                let store = s.store
                let results = await concurrently(10) { _ in try await store.useSecretID(accessId: "p-role00000001", hash: "once", now: T.at(1)) }
                let spent = results.filter { if case .success(let r) = $0 { return r != nil }; return false }
                #expect(spent.count == 1)
                #expect(results.allSatisfy { if case .success = $0 { return true }; return false })
            }
        }
    }
}
