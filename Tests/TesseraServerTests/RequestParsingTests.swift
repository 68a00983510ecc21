// Tests of the per-request parsing that was rewritten at byte level for speed: the Vault token
// header (token or `<access-id>..<access-key>`, blanks trimmed) and request ids (UUID v4 form).
import Foundation
import Testing
@testable import TesseraCore
@testable import TesseraServer

@Suite struct RequestParsingTests {
    @Test func vaultTokenHeader() {
        func describe(_ c: Credentials) -> String {
            switch c {
            case .none: "none"
            case .token(let t): "token:" + t
            case .accessKey(let id, let key): "key:" + id + "|" + key
            }
        }
        #expect(describe(SystemAPI.credentials(fromHeader: nil)) == "none")
        #expect(describe(SystemAPI.credentials(fromHeader: "")) == "none")
        #expect(describe(SystemAPI.credentials(fromHeader: " \t ")) == "none")
        #expect(describe(SystemAPI.credentials(fromHeader: "t-abc")) == "token:t-abc")
        #expect(describe(SystemAPI.credentials(fromHeader: "  t-abc\t")) == "token:t-abc")
        #expect(describe(SystemAPI.credentials(fromHeader: "p-123..k+ey/=")) == "key:p-123|k+ey/=")
        #expect(describe(SystemAPI.credentials(fromHeader: "p-1...x")) == "key:p-1|.x")
        #expect(describe(SystemAPI.credentials(fromHeader: "..")) == "key:|")
        #expect(describe(SystemAPI.credentials(fromHeader: "a.b")) == "token:a.b")
        #expect(describe(SystemAPI.credentials(fromHeader: "é..ü")) == "key:é|ü")
    }

    @Test func requestIdsAreVersion4UUIDs() {
        var seen = Set<String>()
        for _ in 0..<1000 {
            let id = RequestContext.newRequestId()
            #expect(UUID(uuidString: id) != nil, "\(id)")
            #expect(id == id.lowercased())
            let chars = Array(id)
            #expect(chars.count == 36 && chars[14] == "4" && "89ab".contains(chars[19]), "\(id)")
            seen.insert(id)
        }
        #expect(seen.count == 1000)
    }
}
