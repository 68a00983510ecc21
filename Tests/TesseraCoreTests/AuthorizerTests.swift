// Tests for the authorizer: wildcard, deny over allow, default deny, union across roles.
import Testing
@testable import TesseraCore

@Suite struct AuthorizerTests {
    func rule(_ path: String, _ caps: Set<Capability>, _ type: RuleType = .item) throws -> Rule {
        Rule(pattern: try PathPattern(path), capabilities: caps, type: type)
    }

    @Test func defaultDeny() throws {
        let a = Authorizer(rules: [])
        #expect(a.check(.read, on: try ItemPath("/x")) == .deny(explicit: false))
    }

    @Test func wildcardGrants() throws {
        let a = Authorizer(rules: [try rule("/dev/*", [.read, .list])])
        #expect(a.check(.read, on: try ItemPath("/dev/app/key")).isAllowed)
        #expect(!a.check(.update, on: try ItemPath("/dev/app/key")).isAllowed)
        #expect(!a.check(.read, on: try ItemPath("/prod/key")).isAllowed)
    }

    @Test func denyBeatsAllow() throws {
        let a = Authorizer(rules: [try rule("/path/to/folder/*", [.read, .list]), try rule("/path/to/folder/topSecret", [.deny])])
        #expect(a.check(.read, on: try ItemPath("/path/to/folder/ok")).isAllowed)
        #expect(a.check(.read, on: try ItemPath("/path/to/folder/topSecret")) == .deny(explicit: true))
        // Order does not matter.
        let b = Authorizer(rules: [try rule("/path/to/folder/topSecret", [.deny]), try rule("/*", [.read])])
        #expect(!b.check(.read, on: try ItemPath("/path/to/folder/topSecret")).isAllowed)
    }

    @Test func unionAcrossRoles() throws {
        let r1 = Role(name: "r1", rules: [try rule("/a/*", [.read])])
        let r2 = Role(name: "r2", rules: [try rule("/b/*", [.read, .update])])
        let r3 = Role(name: "r3", rules: [try rule("/b/locked", [.deny])])
        let a = Authorizer(roles: [r1, r2, r3])
        #expect(a.check(.read, on: try ItemPath("/a/x")).isAllowed)
        #expect(a.check(.update, on: try ItemPath("/b/x")).isAllowed)
        #expect(!a.check(.update, on: try ItemPath("/a/x")).isAllowed)
        #expect(!a.check(.read, on: try ItemPath("/b/locked")).isAllowed)
    }

    @Test func ruleTypesAreSeparate() throws {
        let a = Authorizer(rules: [try rule("/*", [.read], .role)])
        #expect(a.check(.read, on: try ItemPath("/r"), type: .role).isAllowed)
        #expect(!a.check(.read, on: try ItemPath("/r"), type: .item).isAllowed)
    }

    @Test func denialNamesPathAndCapabilityOnly() throws {
        let a = Authorizer(rules: [])
        #expect(throws: TesseraError.forbidden(path: "/prod/db", capability: "read")) {
            try a.require(.read, on: try ItemPath("/prod/db"))
        }
        #expect(TesseraError.forbidden(path: "/prod/db", capability: "read").message == "access denied: missing 'read' capability on /prod/db")
    }

    @Test func listingNeedsAListGrantInside() throws {
        let a = Authorizer(rules: [try rule("/dev/*", [.list])])
        #expect(a.mayList(folder: .root))
        #expect(a.mayList(folder: try ItemPath(folder: "/dev")))
        #expect(a.mayList(folder: try ItemPath(folder: "/dev/sub")))
        #expect(!a.mayList(folder: try ItemPath(folder: "/prod")))
        let d = Authorizer(rules: [try rule("/*", [.list]), try rule("/secret/*", [.deny])])
        #expect(!d.mayList(folder: try ItemPath(folder: "/secret")))
    }

    @Test func auditAccessIsTheHighestOfTheRoles() {
        let a = Authorizer(roles: [Role(name: "a", auditAccess: .own), Role(name: "b", auditAccess: .all), Role(name: "c")])
        #expect(a.auditAccess == .all)
        #expect(Authorizer(roles: []).auditAccess == .none)
    }
}
