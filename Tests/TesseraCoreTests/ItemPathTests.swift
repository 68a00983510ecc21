// Tests for the path parser: normalization and every rejection rule.
import Testing
@testable import TesseraCore

@Suite struct ItemPathTests {
    @Test func addsLeadingSlash() throws {
        #expect(try ItemPath("prod/db/password").value == "/prod/db/password")
        #expect(try ItemPath("/prod/db").value == "/prod/db")
    }

    @Test(arguments: ["/a/../b", "/a/./b", "..", "/..", "/a/..", "a//b", "//x", "/a/b/", "/", "", "/%2e%2e/x", "/a/%2E%2E/b",
                      "/a/%2e/b", "/a/%2f%2f/b", "/a\u{0}b", "/a\nb", "/a\u{7f}", "/a/%00b", "/a/%0ab", "/a\\b", "/a/ /b", "/a%zz"])
    func rejects(_ raw: String) {
        #expect(throws: TesseraError.self) { try ItemPath(raw) }
    }

    @Test func rejectsOverlongPathsAndSegments() {
        #expect(throws: TesseraError.self) { try ItemPath("/" + String(repeating: "a", count: 300)) }
        let long = (0..<200).map { _ in "abcdef" }.joined(separator: "/")
        #expect(throws: TesseraError.self) { try ItemPath("/" + long) }
        #expect(throws: Never.self) { try ItemPath("/" + String(repeating: "a", count: 255)) }
    }

    @Test func rejectionNamesTheProblem() {
        do {
            _ = try ItemPath("/a/../b")
            Issue.record("expected a rejection")
        } catch let e as TesseraError {
            #expect(e.status == 400)
            #expect(e.message.contains(".."))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func foldersAcceptRootAndTrailingSlash() throws {
        #expect(try ItemPath(folder: "/").isRoot)
        #expect(try ItemPath(folder: "/prod/").value == "/prod")
        #expect(try ItemPath(folder: "prod").folderPrefix == "/prod/")
        #expect(throws: TesseraError.self) { try ItemPath(folder: "/prod/../x/") }
    }

    @Test func containment() throws {
        let prod = try ItemPath(folder: "/prod")
        #expect(prod.contains(try ItemPath("/prod/db")))
        #expect(!prod.contains(try ItemPath("/production/db")))
        #expect(try ItemPath("/prod/db/pw").parent.value == "/prod/db")
        #expect(try ItemPath("/x").parent.isRoot)
    }

    @Test func patterns() throws {
        let star = try PathPattern("/prod/*")
        #expect(star.matches(try ItemPath("/prod/a")))
        #expect(star.matches(try ItemPath("/prod/a/b")))
        #expect(!star.matches(try ItemPath("/production")))
        #expect(!star.matches(try ItemPath("/prod")))
        let exact = try PathPattern("prod/db")
        #expect(exact.description == "/prod/db")
        #expect(exact.matches(try ItemPath("/prod/db")))
        #expect(!exact.matches(try ItemPath("/prod/db2")))
        #expect(try PathPattern("/*").matches(try ItemPath("/anything/at/all")))
        #expect(try PathPattern("/prod/db*").matches(try ItemPath("/prod/db-replica")))
        #expect(throws: TesseraError.self) { try PathPattern("/a/*/b") }
        #expect(throws: TesseraError.self) { try PathPattern("/a/../*") }
    }
}

/// `+` segments in rule patterns (Vault's one-segment glob): what they match, what they refuse,
/// and that delegation treats them conservatively.
@Suite struct SegmentGlobTests {
    func matches(_ pattern: String, _ path: String) throws -> Bool {
        try PathPattern(pattern).matches(try ItemPath(path))
    }

    @Test func plusMatchesExactlyOneSegment() throws {
        #expect(try matches("/prod/+/db", "/prod/eu/db"))
        #expect(try !matches("/prod/+/db", "/prod/db"))
        #expect(try !matches("/prod/+/db", "/prod/eu/x/db"))
        #expect(try !matches("/prod/+/db", "/prod/eu/db2"))
        #expect(try matches("/prod/+", "/prod/eu"))
        #expect(try !matches("/prod/+", "/prod/eu/x"))
        #expect(try !matches("/prod/+", "/prod"))
        #expect(try matches("/+/+", "/a/b"))
        #expect(try !matches("/+/+", "/a"))
    }

    @Test func plusWithAFinalStar() throws {
        #expect(try matches("/secret/+/team*", "/secret/a/team"))
        #expect(try matches("/secret/+/team*", "/secret/a/team-b/x"))
        #expect(try !matches("/secret/+/team*", "/secret/a/b/team"))
        #expect(try matches("/secret/+/*", "/secret/a/b"))
        #expect(try matches("/secret/+/*", "/secret/a/b/c"))
        #expect(try !matches("/secret/+/*", "/secret/a"))
        #expect(try PathPattern("/secret/+/").description == "/secret/+/*")
        #expect(try PathPattern("secret/+/x").description == "/secret/+/x")
    }

    @Test(arguments: ["/a/+/../b", "/a//+", "/a/+/b*c", "/a/*/+", "/+/x\u{0}"])
    func refuses(_ raw: String) {
        #expect(throws: TesseraError.self) { try PathPattern(raw) }
    }

    @Test func literalPlusInsideANameIsLiteral() throws {
        #expect(try matches("/a+b/x", "/a+b/x"))
        #expect(try !matches("/a+b/x", "/ab/x"))
    }

    @Test func coversAndOverlapsErrOnTheSafeSide() throws {
        let plus = try PathPattern("/prod/+/db")
        #expect(plus.covers(plus))
        #expect(try !plus.covers(PathPattern("/prod/eu/db")))
        #expect(try PathPattern("/prod/*").covers(plus))
        #expect(try !PathPattern("/prod/eu/*").covers(plus))
        #expect(try plus.overlaps(PathPattern("/prod/eu/db")))
        #expect(try plus.overlaps(PathPattern("/prod/x/y")))
        #expect(try !plus.overlaps(PathPattern("/staging/*")))
    }
}
