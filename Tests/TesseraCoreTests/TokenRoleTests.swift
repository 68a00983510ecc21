// Tests for token roles' policy rules (Vault's): allowed bounds requested, disallowed refused,
// default added unless left out, root alone, the parent's subset rule only for a role that names
// no policies, and the globs and names Vault accepts.
import Testing
@testable import TesseraCore

@Suite struct TokenRoleTests {
    func role(allowed: [String] = [], disallowed: [String] = [], allowedGlob: [String] = [], disallowedGlob: [String] = []) -> TokenRole {
        var r = TokenRole(name: "ci")
        r.allowedPolicies = allowed
        r.disallowedPolicies = disallowed
        r.allowedPoliciesGlob = allowedGlob
        r.disallowedPoliciesGlob = disallowedGlob
        return r
    }

    @Test func allowedPoliciesAreTheDefaultAndTheBound() throws {
        let r = role(allowed: ["app", "ci"])
        #expect(try r.policies(requested: [], noDefault: false, parent: ["x"]) == (["app", "ci", "default"], false))
        #expect(try r.policies(requested: ["App "], noDefault: false, parent: []) == (["app", "default"], false))
        #expect(try r.policies(requested: ["app"], noDefault: true, parent: []) == (["app"], false))
        #expect(throws: TesseraError.self) { try r.policies(requested: ["other"], noDefault: false, parent: ["other"]) }
        // Asking for default explicitly while leaving it out of the allowed set is refused, as in Vault.
        #expect(throws: TesseraError.self) { try r.policies(requested: ["app", "default"], noDefault: true, parent: []) }
    }

    @Test func globsAndDisallowed() throws {
        let r = role(allowedGlob: ["team-*"], disallowedGlob: ["team-admin*"])
        #expect(try r.policies(requested: ["team-a"], noDefault: true, parent: []) == (["team-a"], false))
        #expect(throws: TesseraError.self) { try r.policies(requested: ["team-admins"], noDefault: true, parent: []) }
        #expect(throws: TesseraError.self) { try r.policies(requested: ["other"], noDefault: true, parent: []) }
        let d = role(disallowed: ["secret"])
        #expect(try d.policies(requested: ["anything"], noDefault: true, parent: []) == (["anything"], false))
        #expect(throws: TesseraError.self) { try d.policies(requested: ["secret"], noDefault: true, parent: []) }
        // Disallowing default leaves it out.
        #expect(try role(allowed: ["a"], disallowed: ["default"]).policies(requested: [], noDefault: false, parent: []) == (["a"], false))
    }

    @Test func aRoleWithoutPoliciesIsBoundByTheParent() throws {
        let r = role()
        #expect(try r.policies(requested: [], noDefault: false, parent: ["p", "q"]) == (["default", "p", "q"], true))
        #expect(try r.policies(requested: ["x"], noDefault: false, parent: ["p"]) == (["default", "x"], true))
        #expect(try r.policies(requested: [], noDefault: false, parent: ["root", "p"]) == (["root"], true))
    }

    @Test func globMatching() {
        #expect(TokenRole.glob("*", matches: "anything"))
        #expect(TokenRole.glob("a*", matches: "a"))
        #expect(TokenRole.glob("a*c", matches: "abc"))
        #expect(!TokenRole.glob("a*c", matches: "ab"))
        #expect(TokenRole.glob("*b*", matches: "abc"))
        #expect(!TokenRole.glob("a*b*c", matches: "acb"))
        #expect(TokenRole.glob("ab", matches: "ab") && !TokenRole.glob("ab", matches: "abc"))
        #expect(!TokenRole.glob("aa*aa", matches: "aaa"))
    }

    @Test func names() {
        for ok in ["a", "ci", "a.b-c_d", "A9"] { #expect(TokenRole.isValidName(ok), "\(ok)") }
        for bad in ["", "-a", "a-", ".", "a b", "a/b", String(repeating: "x", count: 129), "é"] { #expect(!TokenRole.isValidName(bad), "\(bad)") }
        #expect(!TokenRole.isValidName("v1", minimum: 3) && TokenRole.isValidName("v1x", minimum: 3))
    }
}
