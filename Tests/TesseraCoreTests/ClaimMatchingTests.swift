// Claim matching: `*` globs, claim lookup by name and JSON pointer, the string forms of claims,
// and bounds (every key must match one of its values).
import Testing
@testable import TesseraCore

@Suite struct ClaimMatchingTests {
    @Test func globs() {
        #expect(Glob.matches("*", ""))
        #expect(Glob.matches("org/*", "org/app"))
        #expect(Glob.matches("api-*", "api-gateway"))
        #expect(!Glob.matches("api-*", "web"))
        #expect(Glob.matches("*-prod-*", "eu-prod-1"))
        #expect(!Glob.matches("org/app", "org/app2"))
        #expect(Glob.matches("a*b*c", "aXXbYYc"))
        #expect(!Glob.matches("a*b*c", "aXXbYY"))
        #expect(!Glob.matches("", "x"))
        #expect(Glob.matches(String(repeating: "*a", count: 40), String(repeating: "a", count: 200)))
        #expect(!Glob.matches(String(repeating: "*a", count: 40) + "b", String(repeating: "a", count: 200)))
    }

    @Test func lookupAndStringForms() throws {
        let claims = try JSON.parse(Array(#"{"sub":"x","n":5,"f":true,"aud":["a","b"],"k":{"a/b":{"c":"deep"}},"o":{"x":1}}"#.utf8))
        #expect(Claims.strings(Claims.value(claims, "sub")) == ["x"])
        #expect(Claims.strings(Claims.value(claims, "n")) == ["5"])
        #expect(Claims.strings(Claims.value(claims, "f")) == ["true"])
        #expect(Claims.strings(Claims.value(claims, "aud")) == ["a", "b"])
        #expect(Claims.strings(Claims.value(claims, "/k/a~1b/c")) == ["deep"])
        #expect(Claims.strings(Claims.value(claims, "o")) == [])
        #expect(Claims.value(claims, "/k/missing/c") == nil)
    }

    @Test func bounds() throws {
        let claims = try JSON.parse(Array(#"{"repository":"org/app","ref":"refs/heads/main","groups":["dev","ops"]}"#.utf8))
        #expect(Claims.satisfy([:], claims))
        #expect(Claims.satisfy(["repository": ["org/app"], "ref": ["refs/heads/*"]], claims))
        #expect(Claims.satisfy(["groups": ["ops"]], claims))
        #expect(Claims.firstUnmatched(["repository": ["org/app"], "ref": ["refs/tags/*"]], claims) == "ref")
        #expect(Claims.firstUnmatched(["missing": ["*"]], claims) == "missing")
        #expect(!Claims.satisfy(["repository": ["org/*"]], claims, glob: false))
    }
}
