// Tests for delegated administration (a role-rule holder grants at most what it holds) and for
// the evidence the authorizer gives for each decision.
import Testing
@testable import TesseraCore

@Suite struct DelegationTests {
    func rule(_ path: String, _ caps: Set<Capability>, _ type: RuleType = .item) throws -> Rule {
        Rule(pattern: try PathPattern(path), capabilities: caps, type: type)
    }

    @Test func aManagerCannotGrantBeyondItsOwnPaths() throws {
        let manager = Authorizer(rules: [try rule("/team/*", [.read, .list]), try rule("/team/*", [.create, .update], .role)])
        #expect(manager.mayGrant(try rule("/team/app/*", [.read])))
        #expect(!manager.mayGrant(try rule("/*", [.read])))
        #expect(!manager.mayGrant(try rule("/team/*", [.delete])))
        #expect(!manager.mayGrant(try rule("/*", [.read], .system)))
        #expect(manager.mayGrant(try rule("/anything/*", [.deny])), "a deny only takes rights away")
    }

    @Test func aManagerCannotGrantWhatADenyTakesFromIt() throws {
        let manager = Authorizer(rules: [try rule("/team/*", [.read]), try rule("/team/secret/*", [.deny])])
        #expect(!manager.mayGrant(try rule("/team/*", [.read])))
        #expect(manager.mayGrant(try rule("/team/public/*", [.read])))
    }

    @Test func aManagerCannotRaiseAuditAccess() throws {
        let manager = Authorizer(rules: [try rule("/team/*", [.read])], auditAccess: .own)
        #expect(!manager.mayGrant(Role(name: "x", auditAccess: .all)))
        #expect(manager.mayGrant(Role(name: "x", auditAccess: .own)))
    }

    @Test func evidenceNamesTheDecidingRule() throws {
        let a = Authorizer(roles: [Role(name: "devs", rules: [try rule("/dev/*", [.read])]),
                                   Role(name: "guard", rules: [try rule("/dev/secret", [.deny])])])
        let allowed = a.evidence(.read, on: try ItemPath("/dev/app"))
        #expect(allowed.decision == .allow)
        #expect(allowed.evidence.contains("role devs item-rule /dev/* [read]"))
        let denied = a.evidence(.read, on: try ItemPath("/dev/secret"))
        #expect(denied.decision == .deny(explicit: true))
        #expect(denied.evidence.contains("denied by role guard"))
        let none = a.evidence(.update, on: try ItemPath("/dev/app"))
        #expect(none.evidence == "no rule grants update on item-rule /dev/app")
    }

    @Test func itemRulesNeverGrantSystemOperations() throws {
        let a = Authorizer(rules: [try rule("/*", [.read, .create, .update, .delete, .list])])
        #expect(!a.check(.update, on: SystemPath.seal, type: .system).isAllowed)
        #expect(!a.check(.create, on: SystemPath.mount("x/"), type: .system).isAllowed)
    }
}
