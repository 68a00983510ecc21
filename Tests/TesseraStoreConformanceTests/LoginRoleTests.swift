// Workload-identity access data: an auth method's settings and login roles, and the grant a
// token carries. Settings change in place (never the name, type or key); login roles are
// replaced whole, listed by name and removed with their method; every change moves the access
// generation, so every node's caches see it.
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Login roles")
    struct LoginRoles {
        static func jwtMethod(_ name: String, accessId: String) -> AuthMethod {
            AuthMethod(accessId: accessId, name: name, type: "oauth2", keyHash: [], keySalt: [], tokenTTLMinutes: 60,
                       createdAt: T.origin, config: .obj(("jwks_url", .string("https://issuer.example/jwks")),
                                                         ("bound_claims", .obj(("repo", .strings(["a", "b"]))))))
        }

        @Test("an auth method's settings read back as written and can be replaced in place", arguments: Engines.all)
        func settings(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                var m = Self.jwtMethod("/ci/jwt", accessId: "p-jwt000000001")
                try await s.store.createAuthMethod(m)
                #expect(try await s.store.authMethod(accessId: m.accessId) == m)
                let before = try await s.store.accessGeneration()
                m.config = .obj(("jwks_url", .string("https://other.example/jwks")), ("note", .string("é \u{0} \"q\"")))
                m.tokenTTLMinutes = 15
                m.boundCIDRs = ["10.0.0.0/8"]
                m.accessExpires = T.at(600)
                #expect(try await s.store.updateAuthMethod(m))
                #expect(try await s.store.authMethod(name: "/ci/jwt") == m)
                #expect(try await s.store.accessGeneration() > before)
                var renamed = m
                renamed.name = "/ci/other"
                renamed.type = "api_key"
                #expect(try await s.store.updateAuthMethod(renamed))
                #expect(try await s.store.authMethod(accessId: m.accessId) == m)
                #expect(try await s.store.updateAuthMethod(Self.jwtMethod("/ci/none", accessId: "p-none00000001")) == false)
            }
        }

        @Test("login roles are replaced whole, listed by name, deleted once, and go with their method", arguments: Engines.all)
        func roles(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let m = Self.jwtMethod("/jwt", accessId: "p-jwt000000002")
                let other = Self.jwtMethod("/jwt2", accessId: "p-jwt000000003")
                try await s.store.createAuthMethod(m)
                try await s.store.createAuthMethod(other)
                let before = try await s.store.accessGeneration()
                try await s.store.putAuthMethodRole(AuthMethodRole(accessId: m.accessId, name: "web", config: .obj(("ttl", .int(1)))))
                try await s.store.putAuthMethodRole(AuthMethodRole(accessId: m.accessId, name: "Z", config: .obj()))
                try await s.store.putAuthMethodRole(AuthMethodRole(accessId: m.accessId, name: "api", config: .obj()))
                try await s.store.putAuthMethodRole(AuthMethodRole(accessId: other.accessId, name: "web", config: .obj(("x", .bool(true)))))
                #expect(try await s.store.accessGeneration() > before)
                let replaced = AuthMethodRole(accessId: m.accessId, name: "web", config: .obj(("ttl", .int(2))))
                try await s.store.putAuthMethodRole(replaced)
                #expect(try await s.store.authMethodRole(accessId: m.accessId, name: "web") == replaced)
                #expect(try await s.store.authMethodRoles(accessId: m.accessId).map(\.name) == ["Z", "api", "web"])
                #expect(try await s.store.deleteAuthMethodRole(accessId: m.accessId, name: "api"))
                #expect(try await s.store.deleteAuthMethodRole(accessId: m.accessId, name: "api") == false)
                #expect(await outcome {
                    try await s.store.putAuthMethodRole(AuthMethodRole(accessId: "p-missing00001", name: "web", config: .obj()))
                } == .notFound)
                #expect(try await s.store.deleteAuthMethod(accessId: m.accessId))
                #expect(try await s.store.authMethodRoles(accessId: m.accessId).isEmpty)
                #expect(try await s.store.authMethodRole(accessId: other.accessId, name: "web")?.config == .obj(("x", .bool(true))))
            }
        }

        @Test("a token's grant reads back with it; API-key tokens have none", arguments: Engines.all)
        func grants(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let m = Self.jwtMethod("/jwt", accessId: "p-jwt000000004")
                try await s.store.createAuthMethod(m)
                var t = Make.token("hash-grant", accessId: m.accessId)
                t.grant = TokenGrant(roleNames: ["app-reader", "b"], loginRole: "ci", displayName: "jwt-repo:org/app",
                                     metadata: ["role": "ci", "repository": "org/app"], ttlSeconds: 600)
                try await s.store.createToken(t)
                try await s.store.createToken(Make.token("hash-plain", accessId: m.accessId))
                #expect(try await s.store.token(hash: "hash-grant") == t)
                #expect(try await s.store.token(hash: "hash-plain")?.grant == nil)
            }
        }
    }
}
