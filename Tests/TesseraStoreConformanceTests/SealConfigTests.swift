// The seal configuration: one per installation, created once (a second initialization is a
// conflict, also when two nodes race to initialize), and replaced only as a whole or in its
// encrypted keyring.
import Foundation
import Testing
import TesseraCore
import TesseraCrypto
import TesseraStore

extension StoreConformance {
    @Suite("Seal configuration")
    struct SealConfiguration {
        @Test("a new store has no seal configuration; a created one reads back as written", arguments: Engines.all)
        func create(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                #expect(try await s.store.sealConfig() == nil)
                try await s.store.createSealConfig(Make.sealConfig())
                #expect(try await s.store.sealConfig() == Make.sealConfig())
            }
        }

        @Test("of concurrent initializations exactly one is stored; the others are conflicts", arguments: Engines.all)
        func initializeOnce(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let store = s.store
                let results = await concurrently(6) { i in try await store.createSealConfig(Make.sealConfig("keyring-\(i)")) }
                let winners = results.enumerated().filter { (try? $0.element.get()) != nil }.map(\.offset)
                #expect(winners.count == 1)
                #expect(results.filter(isConflict).count == 5)
                let winner = try #require(winners.first)
                #expect(try await s.store.sealConfig() == Make.sealConfig("keyring-\(winner)"))
            }
        }

        @Test("the keyring and the whole configuration can be replaced once initialized", arguments: Engines.all)
        func replace(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createSealConfig(Make.sealConfig())
                try await s.store.updateEncryptedKeyring(sealed("keyring-2"))
                #expect(try await s.store.sealConfig()?.encryptedKeyring == sealed("keyring-2"))
                let next = SealConfig(shares: 7, threshold: 4, encryptedKeyring: sealed("keyring-3"), createdAt: T.origin)
                try await s.store.replaceSealConfig(next)
                #expect(try await s.store.sealConfig() == next)
            }
        }

        @Test("the keyring is replaced only if it is still the one expected; of racing replacements exactly one wins",
              arguments: Engines.all)
        func keyringCheckAndSet(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createSealConfig(Make.sealConfig())
                guard let first = try await s.store.sealConfig()?.encryptedKeyring else { Issue.record("no seal config"); return }
                #expect(try await s.store.replaceEncryptedKeyring(sealed("k2"), expected: sealed("not it")) == false)
                #expect(try await s.store.sealConfig()?.encryptedKeyring == first)
                let store = s.store
                let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for n in 0..<8 { group.addTask { try await store.replaceEncryptedKeyring(sealed("k-\(n)"), expected: first) } }
                    return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
                #expect(winners == 1)
                #expect(try await s.store.sealConfig()?.encryptedKeyring != first)
            }
        }

        @Test("replacing the configuration of an uninitialized store is a conflict", arguments: Engines.all)
        func replaceUninitialized(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                #expect(await outcome { try await s.store.replaceSealConfig(Make.sealConfig()) } == .conflict)
                let config = try await s.store.sealConfig()
                #expect(config == nil)
            }
        }
    }
}
