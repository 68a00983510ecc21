// Tests for the one canonical form of paths: NFC, byte comparison, no invisible code points,
// no segment that starts with a combining mark.
import Testing
@testable import TesseraCore

@Suite struct PathCanonicalFormTests {
    @Test func nfcAndNfdSpellingsAreOnePath() throws {
        let nfc = try ItemPath("/team/caf\u{E9}")
        let nfd = try ItemPath("/team/cafe\u{301}")
        #expect(Array(nfc.value.utf8) == Array(nfd.value.utf8))
    }

    @Test func aSegmentStartingWithACombiningMarkIsRefused() {
        #expect(throws: TesseraError.self) { try ItemPath("/team/secret/\u{301}x") }
        #expect(throws: TesseraError.self) { try PathPattern("/team/\u{301}*") }
    }

    @Test func invisibleAndReorderingCharactersAreRefused() {
        for c in ["\u{200B}", "\u{200D}", "\u{202E}", "\u{FEFF}", "\u{2028}", "\u{E000}"] {
            #expect(throws: TesseraError.self, "U+\(String(c.unicodeScalars.first!.value, radix: 16))") { try ItemPath("/a/b\(c)c") }
        }
    }

    @Test func denyOnAFolderCoversNamesWithCombiningMarksInside() throws {
        let deny = Rule(pattern: try PathPattern("/team/secret/*"), capabilities: [.deny], type: .item)
        let allow = Rule(pattern: try PathPattern("/team/*"), capabilities: [.create], type: .item)
        let a = Authorizer(rules: [allow, deny])
        // `"/team/secret/e\u{301}x"` has the deny's bytes as a prefix; Swift's hasPrefix would say no.
        #expect(!a.check(.create, on: try ItemPath("/team/secret/e\u{301}x")).isAllowed)
        #expect(a.check(.create, on: try ItemPath("/team/other")).isAllowed)
    }

    @Test func patternsCoverAndOverlapByBytes() throws {
        let team = try PathPattern("/team/*")
        #expect(team.covers(try PathPattern("/team/a/*")))
        #expect(team.covers(try PathPattern("/team/a")))
        #expect(!team.covers(try PathPattern("/*")))
        #expect(!(try PathPattern("/team/a")).covers(try PathPattern("/team/a/*")))
        #expect(team.overlaps(try PathPattern("/*")))
        #expect(!team.overlaps(try PathPattern("/prod/*")))
    }
}
