// JSON: a small JSON value type with a bounded-depth parser and a compact serializer, used by
// every front-end so that request limits and response shapes are controlled in one place.
import Foundation


public indirect enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    /// Keys keep their insertion order on output.
    case object([(String, JSON)])

    public static func == (lhs: JSON, rhs: JSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case let (.bool(a), .bool(b)): a == b
        case let (.int(a), .int(b)): a == b
        case let (.double(a), .double(b)): a == b
        case let (.string(a), .string(b)): a == b
        case let (.array(a), .array(b)): a == b
        case let (.object(a), .object(b)):
            // Objects are equal whatever their key order.
            a.count == b.count && a.allSatisfy { pair in b.contains { $0.0 == pair.0 && $0.1 == pair.1 } }
        default: false
        }
    }

    public subscript(key: String) -> JSON? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.first { $0.0 == key }?.1
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// Builds an object from pairs, dropping nothing (use `.null` for empty values).
    public static func obj(_ pairs: (String, JSON)...) -> JSON { .object(pairs) }

    public static func strings(_ values: [String]) -> JSON { .array(values.map(JSON.string)) }

    /// An object of string values, keys sorted.
    public static func stringMap(_ m: [String: String]) -> JSON { .object(m.keys.sorted().map { ($0, .string(m[$0] ?? "")) }) }

    /// An ISO-8601 timestamp with fractional seconds and `Z`, as both Akeyless SDK and Vault clients parse.
    public static func date(_ d: Date?) -> JSON {
        guard let d else { return .null }
        return .string(JSON.formatDate(d))
    }

    public static func formatDate(_ d: Date) -> String {
        d.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon).timeZone(separator: .omitted))
    }

    // MARK: Parsing

    public static let maxDepth = 32

    /// Parses a request body. Rejects malformed JSON and nesting deeper than `maxDepth` with a 400.
    /// Object keys come out sorted (a repeated key keeps its last value), as Go's encoder writes maps.
    public static func parse(_ bytes: some Collection<UInt8>) throws -> JSON {
        try checkDepth(bytes)
        let input = Array(bytes)
        var parser = JSONParser(input)
        guard let value = parser.document() else { throw TesseraError.badRequest("malformed JSON body") }
        return value
    }

    /// A linear scan that counts nesting outside strings, so that deep input is refused before
    /// any recursive decoding starts.
    public static func checkDepth(_ bytes: some Collection<UInt8>) throws {
        var depth = 0
        var inString = false
        var escaped = false
        for b in bytes {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maxDepth { throw TesseraError.badRequest("JSON body is nested deeper than \(maxDepth) levels") }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
    }

    // MARK: Serialization

    public var serialized: String { String(decoding: bytes, as: UTF8.self) }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    public func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d):
            if d.isFinite {
                out.append(contentsOf: (d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)).utf8)
            } else {
                out.append(contentsOf: "null".utf8)
            }
        case .string(let s): JSON.writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let pairs):
            out.append(UInt8(ascii: "{"))
            for (i, pair) in pairs.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSON.writeString(pair.0, into: &out)
                out.append(UInt8(ascii: ":"))
                pair.1.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Writes a string literal with the escapes Go's encoder uses (`<`, `>`, `&`, U+2028 and
    /// U+2029 as `\uXXXX`), working on UTF-8 bytes.
    public static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var utf8 = s.utf8.makeIterator()
        var pending: [UInt8] = []
        while let b = utf8.next() {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"), 0x00..<0x20:
                writeEscape(UInt32(b), into: &out)
            case 0xE2:
                // U+2028 and U+2029 are E2 80 A8 / E2 80 A9.
                pending.removeAll(keepingCapacity: true)
                pending.append(b)
                if let b1 = utf8.next() { pending.append(b1) }
                if let b2 = utf8.next() { pending.append(b2) }
                if pending.count == 3, pending[1] == 0x80, pending[2] == 0xA8 || pending[2] == 0xA9 {
                    writeEscape(pending[2] == 0xA8 ? 0x2028 : 0x2029, into: &out)
                } else {
                    out.append(contentsOf: pending)
                }
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func writeEscape(_ value: UInt32, into out: inout [UInt8]) {
        out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u")])
        for shift in stride(from: 12, through: 0, by: -4) { out.append(hexDigits[Int((value >> UInt32(shift)) & 0xF)]) }
    }
}

extension JSON: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int64.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSON].self) { self = .array(a); return }
        if let o = try? c.decode([String: JSON].self) {
            self = .object(o.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
            return
        }
        throw TesseraError.badRequest("malformed JSON value")
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let pairs): try c.encode(Dictionary(pairs, uniquingKeysWith: { a, _ in a }))
        }
    }
}
