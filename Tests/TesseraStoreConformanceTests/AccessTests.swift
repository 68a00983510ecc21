// Access data: auth methods (unique by access id and by name), roles and their rules, role
// associations, tokens found by their hash and revoked once, and the access generation, the
// number that tells caches on any node that roles, rules, associations or auth methods changed.
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Access")
    struct Access {
        @Test("an auth method reads back by access id and by name; methods are listed by name", arguments: Engines.all)
        func authMethods(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let bob = Make.authMethod("/team/bob", accessId: "p-bob000000001")
                var alice = Make.authMethod("/team/alice", accessId: "p-alice00000001")
                alice.accessExpires = nil
                alice.boundCIDRs = []
                try await s.store.createAuthMethod(bob)
                try await s.store.createAuthMethod(alice)
                #expect(try await s.store.authMethod(accessId: bob.accessId) == bob)
                #expect(try await s.store.authMethod(name: "/team/alice") == alice)
                #expect(try await s.store.authMethod(accessId: "p-nobody") == nil)
                #expect(try await s.store.authMethod(name: "/team/nobody") == nil)
                #expect(try await s.store.authMethods() == [alice, bob])
            }
        }

        @Test("replacing a method's key changes its hash and salt only, and keeps its tokens", arguments: Engines.all)
        func replaceKey(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let bob = Make.authMethod("/userpass/users/bob", accessId: "p-bobkey000001")
                try await s.store.createAuthMethod(bob)
                try await s.store.createToken(TokenRecord(tokenHash: "h-bob", accessId: bob.accessId, issuedAt: T.origin, expiresAt: T.at(3600)))
                #expect(try await s.store.replaceAuthMethodKey(accessId: bob.accessId, keyHash: Array(repeating: 1, count: 32),
                                                              keySalt: Array(repeating: 2, count: 16)))
                var expected = bob
                expected.keyHash = Array(repeating: 1, count: 32)
                expected.keySalt = Array(repeating: 2, count: 16)
                #expect(try await s.store.authMethod(accessId: bob.accessId) == expected)
                #expect(try await s.store.token(hash: "h-bob")?.revoked == false)
                #expect(try await s.store.replaceAuthMethodKey(accessId: "p-nobody", keyHash: [], keySalt: []) == false)
            }
        }

        @Test("a second auth method with the same access id or the same name is a conflict", arguments: Engines.all)
        func authMethodUniqueness(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let m = Make.authMethod("/team/a", accessId: "p-a00000000001")
                try await s.store.createAuthMethod(m)
                #expect(await outcome { try await s.store.createAuthMethod(Make.authMethod("/team/other", accessId: m.accessId)) }
                        == .conflict)
                #expect(await outcome {
                    try await s.store.createAuthMethod(Make.authMethod("/team/a", accessId: "p-b00000000001"))
                }
                        == .conflict)
                #expect(try await s.store.authMethods() == [m])
            }
        }

        @Test("deleting an auth method removes its tokens and associations", arguments: Engines.all)
        func deleteAuthMethod(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let m = Make.authMethod("/team/gone", accessId: "p-gone00000001")
                let keep = Make.authMethod("/team/kept", accessId: "p-kept00000001")
                try await s.store.createAuthMethod(m)
                try await s.store.createAuthMethod(keep)
                try await s.store.createRole(try Make.role("readers"))
                try await s.store.createAssociation(RoleAssociation(id: "ass-1", roleName: "readers", accessId: m.accessId))
                try await s.store.createAssociation(RoleAssociation(id: "ass-2", roleName: "readers", accessId: keep.accessId))
                try await s.store.createToken(Make.token("hash-gone", accessId: m.accessId))
                try await s.store.createToken(Make.token("hash-kept", accessId: keep.accessId))
                #expect(try await s.store.deleteAuthMethod(accessId: m.accessId))
                #expect(try await s.store.authMethod(accessId: m.accessId) == nil)
                #expect(try await s.store.token(hash: "hash-gone") == nil)
                #expect(try await s.store.associations(accessId: m.accessId).isEmpty)
                #expect(try await s.store.associations(roleName: "readers").map(\.id) == ["ass-2"])
                #expect(try await s.store.token(hash: "hash-kept") != nil)
                #expect(try await s.store.deleteAuthMethod(accessId: m.accessId) == false)
                // The access id can be used again, with nothing of the old method attached.
                try await s.store.createAuthMethod(Make.authMethod("/team/gone", accessId: m.accessId, at: T.at(100)))
                #expect(try await s.store.associations(accessId: m.accessId).isEmpty)
            }
        }

        @Test("a role reads back with its rules, and roles are listed by name", arguments: Engines.all)
        func roles(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let writers = try Make.role("writers", rules: [("/prod/*", [.read, .update, .create], .item),
                                                              ("/prod/secret", [.deny], .item),
                                                              ("/sys/*", [.read], .system)])
                let admins = try Make.role("admins", rules: [("/*", Set(Capability.allCases), .item)])
                try await s.store.createRole(writers)
                try await s.store.createRole(admins)
                #expect(try await s.store.role(named: "writers") == writers)
                #expect(try await s.store.role(named: "nobody") == nil)
                #expect(try await s.store.roles() == [admins, writers])
                #expect(await outcome { try await s.store.createRole(try Make.role("writers")) } == .conflict)
            }
        }

        @Test("updating a role replaces its rules and settings as a whole; an unknown role is notFound", arguments: Engines.all)
        func updateRole(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createRole(try Make.role("r", rules: [("/a/*", [.read], .item), ("/b/*", [.list], .item)]))
                var changed = try Make.role("r", rules: [("/c/*", [.update], .target)])
                changed.description = "changed"
                changed.auditAccess = .all
                try await s.store.updateRole(changed)
                #expect(try await s.store.role(named: "r") == changed)
                #expect(await outcome { try await s.store.updateRole(try Make.role("ghost")) } == .notFound)
                #expect(try await s.store.role(named: "ghost") == nil)
            }
        }

        @Test("associations are found by access id (by role name) and by role (by access id)", arguments: Engines.all)
        func associations(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                for (name, id) in [("/m/x", "p-x00000000001"), ("/m/y", "p-y00000000001")] {
                    try await s.store.createAuthMethod(Make.authMethod(name, accessId: id))
                }
                for name in ["zeta", "alpha"] { try await s.store.createRole(try Make.role(name)) }
                let a1 = RoleAssociation(id: "ass-a1", roleName: "zeta", accessId: "p-y00000000001",
                                         subClaims: ["groups": ["dev", "ops"]])
                let a2 = RoleAssociation(id: "ass-a2", roleName: "alpha", accessId: "p-y00000000001")
                let a3 = RoleAssociation(id: "ass-a3", roleName: "zeta", accessId: "p-x00000000001")
                for a in [a1, a2, a3] { try await s.store.createAssociation(a) }
                #expect(try await s.store.associations(accessId: "p-y00000000001") == [a2, a1])
                #expect(try await s.store.associations(roleName: "zeta") == [a3, a1])
                #expect(await outcome {
                    try await s.store.createAssociation(RoleAssociation(id: "ass-dup", roleName: "zeta",
                                                                        accessId: "p-x00000000001"))
                } == .conflict)
                #expect(try await s.store.deleteAssociation(id: "ass-a1"))
                #expect(try await s.store.deleteAssociation(id: "ass-a1") == false)
                #expect(try await s.store.associations(roleName: "zeta") == [a3])
            }
        }

        @Test("an association needs an existing role and auth method", arguments: Engines.all)
        func associationNeedsBothEnds(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createAuthMethod(Make.authMethod("/m/x", accessId: "p-x00000000001"))
                try await s.store.createRole(try Make.role("r"))
                #expect(await outcome {
                    try await s.store.createAssociation(RoleAssociation(id: "ass-1", roleName: "missing",
                                                                        accessId: "p-x00000000001"))
                }.isFailure)
                #expect(await outcome {
                    try await s.store.createAssociation(RoleAssociation(id: "ass-2", roleName: "r", accessId: "p-missing"))
                }.isFailure)
                #expect(try await s.store.associations(accessId: "p-x00000000001").isEmpty)
                #expect(try await s.store.associations(roleName: "r").isEmpty)
            }
        }

        @Test("deleting a role removes its associations", arguments: Engines.all)
        func deleteRole(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createAuthMethod(Make.authMethod("/m/x", accessId: "p-x00000000001"))
                try await s.store.createRole(try Make.role("r"))
                try await s.store.createAssociation(RoleAssociation(id: "ass-1", roleName: "r", accessId: "p-x00000000001"))
                #expect(try await s.store.deleteRole(named: "r"))
                #expect(try await s.store.role(named: "r") == nil)
                #expect(try await s.store.associations(accessId: "p-x00000000001").isEmpty)
                #expect(try await s.store.deleteRole(named: "r") == false)
                // A new role of that name starts without the old associations.
                try await s.store.createRole(try Make.role("r"))
                #expect(try await s.store.associations(roleName: "r").isEmpty)
            }
        }

        @Test("a token is found by its hash exactly, and reads back as written", arguments: Engines.all)
        func tokens(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let t = Make.token("a1b2c3", accessId: "p-x00000000001")
                try await s.store.createToken(t)
                #expect(try await s.store.token(hash: "a1b2c3") == t)
                #expect(try await s.store.token(hash: "A1B2C3") == nil)
                #expect(try await s.store.token(hash: "a1b2c") == nil)
                #expect(await outcome { try await s.store.createToken(Make.token("a1b2c3", accessId: "p-other")) }.isFailure)
                #expect(try await s.store.token(hash: "a1b2c3")?.accessId == "p-x00000000001")
            }
        }

        @Test("a token is found by a prefix of its hash only when exactly one matches; children are found by parent", arguments: Engines.all)
        func accessorsAndChildren(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                var child = Make.token("abc111", accessId: "p-x00000000001")
                child.parentHash = "abc000"
                try await s.store.createToken(Make.token("abc000", accessId: "p-x00000000001"))
                try await s.store.createToken(child)
                try await s.store.createToken(Make.token("abd222", accessId: "p-x00000000001"))
                #expect(try await s.store.token(hash: "abc111") == child)
                #expect(try await s.store.token(hashPrefix: "abc1")?.tokenHash == "abc111")
                #expect(try await s.store.token(hashPrefix: "abc") == nil)
                #expect(try await s.store.token(hashPrefix: "ab~") == nil)
                #expect(try await s.store.token(hashPrefix: "") == nil)
                #expect(try await s.store.token(hashPrefix: "abd2")?.tokenHash == "abd222")
                #expect(try await s.store.childTokens(parentHash: "abc000") == ["abc111"])
                #expect(try await s.store.childTokens(parentHash: "") == [])
                _ = try await s.store.revokeToken(hash: "abc111")
                #expect(try await s.store.childTokens(parentHash: "abc000") == [])
            }
        }

        @Test("a role keeps the policy text it was written from, and its version", arguments: Engines.all)
        func rolePolicyText(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                var r = try Make.role("p")
                r.policyText = "path \"a\" { capabilities = [\"read\"] }\n"
                r.policyVersion = 1
                try await s.store.createRole(r)
                #expect(try await s.store.role(named: "p")?.policyText == r.policyText)
                r.policyText = ""
                r.policyVersion = 2
                try await s.store.updateRole(r)
                #expect(try await s.store.role(named: "p")?.policyText == "")
                #expect(try await s.store.role(named: "p")?.policyVersion == 2)
            }
        }

        @Test("a token is revoked once; a revoked or unknown token is not renewed", arguments: Engines.all)
        func revokeAndRenew(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createToken(Make.token("tok", accessId: "p-x00000000001"))
                #expect(try await s.store.renewToken(hash: "tok", expiresAt: T.at(7200)))
                #expect(try await s.store.token(hash: "tok")?.expiresAt == T.at(7200))
                #expect(try await s.store.revokeToken(hash: "tok"))
                #expect(try await s.store.revokeToken(hash: "tok") == false)
                #expect(try await s.store.token(hash: "tok")?.revoked == true)
                #expect(try await s.store.renewToken(hash: "tok", expiresAt: T.at(9000)) == false)
                #expect(try await s.store.token(hash: "tok")?.expiresAt == T.at(7200))
                #expect(try await s.store.revokeToken(hash: "unknown") == false)
                #expect(try await s.store.renewToken(hash: "unknown", expiresAt: T.at(9000)) == false)
            }
        }

        @Test("of concurrent revocations of one token, exactly one reports it", arguments: Engines.all)
        func revokeUnderRace(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createToken(Make.token("raced", accessId: "p-x00000000001"))
                let store = s.store
                let results = await concurrently(10) { _ in try await store.revokeToken(hash: "raced") }
                #expect(results.filter { (try? $0.get()) == true }.count == 1)
                #expect(results.allSatisfy { (try? $0.get()) != nil })
            }
        }

        @Test("revoking an access id's tokens revokes all of them and no others", arguments: Engines.all)
        func revokeAll(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                for i in 0..<3 { try await s.store.createToken(Make.token("x\(i)", accessId: "p-x00000000001")) }
                try await s.store.createToken(Make.token("y", accessId: "p-y00000000001"))
                try await s.store.revokeTokens(accessId: "p-x00000000001")
                for i in 0..<3 { #expect(try await s.store.token(hash: "x\(i)")?.revoked == true) }
                #expect(try await s.store.token(hash: "y")?.revoked == false)
            }
        }

        @Test("purging removes the tokens that expired before the cutoff, revoked or not, and counts them",
              arguments: Engines.all)
        func purge(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createToken(Make.token("old", accessId: "p-x", expiresAt: T.at(10)))
                try await s.store.createToken(Make.token("old-revoked", accessId: "p-x", expiresAt: T.at(20)))
                _ = try await s.store.revokeToken(hash: "old-revoked")
                try await s.store.createToken(Make.token("at-cutoff", accessId: "p-x", expiresAt: T.at(30)))
                try await s.store.createToken(Make.token("live", accessId: "p-x", expiresAt: T.at(40)))
                #expect(try await s.store.purgeExpiredTokens(before: T.at(30)) == 2)
                #expect(try await s.store.token(hash: "old") == nil)
                #expect(try await s.store.token(hash: "old-revoked") == nil)
                #expect(try await s.store.token(hash: "at-cutoff") != nil)
                #expect(try await s.store.token(hash: "live") != nil)
                #expect(try await s.store.purgeExpiredTokens(before: T.at(30)) == 0)
            }
        }

        @Test("the access generation increases with every change to auth methods, roles, rules and associations",
              arguments: Engines.all)
        func generation(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                var last = try await s.store.accessGeneration()
                func changed(_ what: Comment) async throws {
                    let now = try await s.store.accessGeneration()
                    #expect(now > last, what)
                    last = now
                }
                try await s.store.createAuthMethod(Make.authMethod("/m/x", accessId: "p-x00000000001"))
                try await changed("auth method created")
                try await s.store.createRole(try Make.role("r"))
                try await changed("role created")
                try await s.store.updateRole(try Make.role("r", rules: [("/a/*", [.read], .item)]))
                try await changed("rules replaced")
                try await s.store.createAssociation(RoleAssociation(id: "ass-1", roleName: "r", accessId: "p-x00000000001"))
                try await changed("association created")
                _ = try await s.store.deleteAssociation(id: "ass-1")
                try await changed("association deleted")
                _ = try await s.store.deleteRole(named: "r")
                try await changed("role deleted")
                _ = try await s.store.deleteAuthMethod(accessId: "p-x00000000001")
                try await changed("auth method deleted")
            }
        }

        @Test("concurrent access changes each move the generation on: no increment is lost", arguments: Engines.all)
        func generationUnderRace(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let before = try await s.store.accessGeneration()
                let store = s.store
                let results = await concurrently(10) { i in try await store.createRole(try Make.role("role\(i)")) }
                #expect(results.allSatisfy { (try? $0.get()) != nil })
                let after = try await s.store.accessGeneration()
                #expect(after - before >= 10)
                #expect(try await s.store.roles().count == 10)
            }
        }
    }
}
