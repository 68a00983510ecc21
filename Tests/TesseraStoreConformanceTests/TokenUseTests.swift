// Tokens limited by use count (Vault's num_uses) on both engines: a spend is atomic, the last
// one revokes the token, and concurrent requests never spend more uses than the token has.
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Tokens limited by use count")
    struct TokenUses {
        @Test("each spend takes one use; the last revokes the token; a token without a limit spends nothing", arguments: Engines.all)
        func spends(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let limited = TokenRecord(tokenHash: "h-limited", accessId: "p-a", issuedAt: T.origin, expiresAt: T.at(3600), usesLeft: 2)
                let free = TokenRecord(tokenHash: "h-free", accessId: "p-a", issuedAt: T.origin, expiresAt: T.at(3600))
                try await s.store.createToken(limited)
                try await s.store.createToken(free)
                #expect(try await s.store.token(hash: "h-limited")?.usesLeft == 2)
                #expect(try await s.store.token(hash: "h-free")?.usesLeft == nil)
                #expect(try await s.store.spendTokenUse(hash: "h-limited") == 1)
                #expect(try await s.store.token(hash: "h-limited")?.revoked == false)
                #expect(try await s.store.spendTokenUse(hash: "h-limited") == 0)
                #expect(try await s.store.token(hash: "h-limited")?.revoked == true)
                #expect(try await s.store.spendTokenUse(hash: "h-limited") == nil)
                #expect(try await s.store.spendTokenUse(hash: "h-free") == nil)
                #expect(try await s.store.token(hash: "h-free")?.revoked == false)
                #expect(try await s.store.spendTokenUse(hash: "h-none") == nil)
            }
        }

        @Test("concurrent spends never spend more uses than the token has", arguments: Engines.all)
        func concurrentSpends(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createToken(TokenRecord(tokenHash: "h-race", accessId: "p-a", issuedAt: T.origin, expiresAt: T.at(3600), usesLeft: 5))
                let store = s.store
                let results = await concurrently(20) { _ in try await store.spendTokenUse(hash: "h-race") }
                let spent = results.compactMap { try? $0.get() }.compactMap { $0 }
                #expect(spent.count == 5)
                #expect(Set(spent) == [0, 1, 2, 3, 4])
                #expect(try await s.store.token(hash: "h-race")?.revoked == true)
            }
        }
    }
}
