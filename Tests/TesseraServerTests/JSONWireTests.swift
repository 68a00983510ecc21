// Tests of the JSON wire code every request goes through: the strict parser (valid and invalid
// documents, escapes, surrogates, numbers, invalid UTF-8, depth) and the serializer (Go-style
// escaping, sorted keys), cross-checked against Foundation's JSONSerialization.
import Foundation
import Testing
@testable import TesseraCore
@testable import TesseraServer

@Suite struct JSONWireTests {
    static let valid: [String] = [
        "{}", "[]", "null", "true", "false", "0", "-0", "12", "-7", "3.25", "1e3", "1E-2", "-1.5e+10",
        "9223372036854775807", "9223372036854775808", "\"\"", "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\u20ac\\ud83d\\ude00\"", "\"é€😀\"", " { \"b\" : 1 , \"a\" : [ true , null ] } ",
        "{\"data\":{\"password\":\"s3cr3t\",\"username\":\"app\"},\"options\":{\"cas\":0}}",
        "[[[[1]]],{\"x\":{\"y\":{}}}]", "\"\\u0000\"", "{\"a\":1,\"a\":2}",
    ]

    static let invalid: [String] = [
        "", " ", "{", "}", "[", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "'a'", "01", "-", "+1", "1.", ".5", "1e",
        "NaN", "Infinity", "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
        "\"a\nb\"", "{} {}", "[1] x", "{\"a\":}", "[,1]", "1 2",
    ]

    @Test func parsesWhatFoundationParses() throws {
        for text in Self.valid {
            let ours = try JSON.parse(Array(text.utf8))
            // Foundation parses the same text; its value, written out and parsed by us, is ours.
            let theirs = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
            let written = try JSONSerialization.data(withJSONObject: theirs, options: [.fragmentsAllowed, .sortedKeys])
            #expect(try JSON.parse(Array(written)).serialized == ours.serialized, "\(text)")
            // And what we write, Foundation reads.
            _ = try JSONSerialization.jsonObject(with: Data(ours.bytes), options: [.fragmentsAllowed])
        }
    }

    @Test func rejectsInvalidDocuments() {
        for text in Self.invalid {
            #expect(throws: (any Error).self, "\(text.debugDescription)") { try JSON.parse(Array(text.utf8)) }
        }
        // Invalid UTF-8 inside a string, and a lone continuation byte.
        #expect(throws: (any Error).self) { try JSON.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: (any Error).self) { try JSON.parse([0x22, 0x80, 0x22]) }
        // Too deep.
        let deep = String(repeating: "[", count: JSON.maxDepth + 1) + String(repeating: "]", count: JSON.maxDepth + 1)
        #expect(throws: (any Error).self) { try JSON.parse(Array(deep.utf8)) }
    }

    @Test func valuesAndOrder() throws {
        #expect(try JSON.parse(Array("9223372036854775807".utf8)) == .int(Int64.max))
        #expect(try JSON.parse(Array("1.5".utf8)) == .double(1.5))
        #expect(try JSON.parse(Array("\"\\ud83d\\ude00\"".utf8)) == .string("😀"))
        #expect(try JSON.parse(Array("{\"b\":1,\"a\":2,\"b\":3}".utf8)).serialized == "{\"a\":2,\"b\":3}")
    }

    @Test func serializesLikeGo() {
        #expect(JSON.string("<a&b>\"\\\n\u{01}\u{2028}é😀").serialized == "\"\\u003ca\\u0026b\\u003e\\\"\\\\\\n\\u0001\\u2028é😀\"")
        #expect(JSON.obj(("k", .array([.int(1), .double(2.0), .double(0.5), .null, .bool(false)]))).serialized
                == "{\"k\":[1,2,0.5,null,false]}")
        #expect(JSON.string("\u{E2}x").serialized == "\"\u{E2}x\"")
    }
}
