// Token roles on both engines: read back as written, replaced whole, listed by name (bytewise,
// case-sensitive as in Vault), and deleted once.
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Token roles")
    struct TokenRoles {
        static func role(_ name: String) -> TokenRole {
            var r = TokenRole(name: name)
            r.allowedPolicies = ["app", "ci"]
            r.disallowedPoliciesGlob = ["admin*"]
            r.orphan = true
            r.renewable = false
            r.pathSuffix = "v1.2"
            r.explicitMaxTTL = 36000
            r.period = 3600
            r.noDefaultPolicy = true
            return r
        }

        @Test("a token role reads back as written, is created once, replaced whole, listed by name and deleted once", arguments: Engines.all)
        func lifecycle(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                #expect(try await s.store.tokenRoles().isEmpty)
                let created = try await s.store.putTokenRole(Self.role("ci"), onlyIfAbsent: true)
                #expect(created)
                #expect(try await s.store.putTokenRole(TokenRole(name: "CI"), onlyIfAbsent: false))
                #expect(try await s.store.putTokenRole(TokenRole(name: "b-é"), onlyIfAbsent: true))
                #expect(try await s.store.putTokenRole(TokenRole(name: "ci"), onlyIfAbsent: true) == false)
                #expect(try await s.store.tokenRole(named: "ci") == Self.role("ci"))
                #expect(try await s.store.tokenRole(named: "CI") == TokenRole(name: "CI"))
                #expect(try await s.store.tokenRole(named: "nope") == nil)
                #expect(try await s.store.tokenRoles().map(\.name) == ["CI", "b-é", "ci"])
                var changed = Self.role("ci")
                changed.allowedPolicies = []
                changed.orphan = false
                #expect(try await s.store.putTokenRole(changed, onlyIfAbsent: false))
                #expect(try await s.store.tokenRole(named: "ci") == changed)
                #expect(try await s.store.deleteTokenRole(named: "ci"))
                #expect(try await s.store.deleteTokenRole(named: "ci") == false)
                #expect(try await s.store.tokenRoles().map(\.name) == ["CI", "b-é"])
            }
        }
    }
}
