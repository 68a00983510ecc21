// FieldValues: how auth-method settings are read from a request body, with Vault's framework
// semantics (a comma-separated string or a list, durations as seconds or Go durations, weak
// booleans, key=value pairs) and the Akeyless SDK's (booleans as "true"/"false" strings). Every
// size and number is bounded here, so a configuration can never hold unbounded input.
import Foundation
import TesseraCore

enum FieldValues {
    static let maxItems = 256
    static let maxText = 64 * 1024

    static func string(_ v: JSON?, _ field: String) throws -> String? {
        switch v {
        case nil, .null?: return nil
        case .string(let s)?:
            guard s.utf8.count <= maxText else { throw TesseraError.badRequest("\(field) is too long") }
            return s
        case .int(let i)?: return String(i)
        case .bool(let b)?: return b ? "true" : "false"
        default: throw TesseraError.badRequest("\(field) must be a string")
        }
    }

    /// A list of strings, or one comma-separated string (`""` is the empty list).
    static func list(_ v: JSON?, _ field: String) throws -> [String]? {
        let items: [String]
        switch v {
        case nil, .null?: return nil
        case .string(let s)?:
            items = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        case .array(let a)?:
            items = try a.map { item in
                guard let s = try string(item, field) else { throw TesseraError.badRequest("\(field) must be a list of strings") }
                return s
            }
        default: throw TesseraError.badRequest("\(field) must be a list of strings or a comma-separated string")
        }
        guard items.count <= maxItems else { throw TesseraError.badRequest("\(field) has more than \(maxItems) entries") }
        guard items.reduce(0, { $0 + $1.utf8.count }) <= maxText * 4 else { throw TesseraError.badRequest("\(field) is too long") }
        return items
    }

    /// PEM blocks: a list, or one string holding one or more blocks.
    static func pemList(_ v: JSON?, _ field: String) throws -> [String]? {
        switch v {
        case nil, .null?: return nil
        case .string(let s)?:
            guard s.utf8.count <= maxText * 4 else { throw TesseraError.badRequest("\(field) is too long") }
            return splitPEM(s)
        default:
            return try list(v, field)?.flatMap(splitPEM)
        }
    }

    static func splitPEM(_ text: String) -> [String] {
        var out: [String] = []
        var current: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let l = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if l.hasPrefix("-----BEGIN") { current = [Substring(l)] } else if !current.isEmpty { current.append(Substring(l)) }
            if l.hasPrefix("-----END"), !current.isEmpty {
                out.append(current.joined(separator: "\n") + "\n")
                current = []
            }
        }
        return out
    }

    /// Seconds, from an integer or a Go duration ("1h", "90s"); negative only when `signed`.
    static func duration(_ v: JSON?, _ field: String, signed: Bool = false) throws -> Int? {
        let max = InputNumber.maxSeconds
        switch v {
        case nil, .null?: return nil
        case .int(let i)?:
            let n = try InputNumber.int(i, field: field, in: (signed ? -1 : 0)...max)
            return n
        case .double(let d)?: return try InputNumber.int(d, field: field, in: (signed ? -1 : 0)...max)
        case .string(let s)?:
            let t = s.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { return 0 }
            if signed, t == "-1" { return -1 }
            if let n = Int(t) { return try InputNumber.int(text: String(n), field: field, in: 0...max) }
            return try GoDuration.seconds(text: t, field: field)
        default: throw TesseraError.badRequest("\(field) must be a number of seconds or a duration")
        }
    }

    static func int(_ v: JSON?, _ field: String, in range: ClosedRange<Int>) throws -> Int? {
        switch v {
        case nil, .null?: return nil
        case .int(let i)?: return try InputNumber.int(i, field: field, in: range)
        case .double(let d)?: return try InputNumber.int(d, field: field, in: range)
        case .string(let s)?: return s.isEmpty ? nil : try InputNumber.int(text: s, field: field, in: range)
        default: throw TesseraError.badRequest("\(field) must be an integer")
        }
    }

    static func bool(_ v: JSON?, _ field: String) throws -> Bool? {
        switch v {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        case .int(let i)?: return i != 0
        case .string(let s)?:
            switch s.lowercased() {
            case "true", "1", "t", "yes": return true
            case "false", "0", "f", "no", "": return false
            default: throw TesseraError.badRequest("\(field) must be a boolean")
            }
        default: throw TesseraError.badRequest("\(field) must be a boolean")
        }
    }

    /// An object of string values, or a list of `k=v` strings.
    static func pairs(_ v: JSON?, _ field: String) throws -> [String: String]? {
        switch v {
        case nil, .null?: return nil
        case .object(let members)?:
            guard members.count <= maxItems else { throw TesseraError.badRequest("\(field) has too many entries") }
            var out: [String: String] = [:]
            for (k, value) in members {
                guard let s = try string(value, field) else { throw TesseraError.badRequest("\(field) values must be strings") }
                out[k] = s
            }
            return out
        default:
            guard let items = try list(v, field) else { return nil }
            var out: [String: String] = [:]
            for item in items {
                let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2, !kv[0].isEmpty else { throw TesseraError.badRequest("\(field) entries must be key=value") }
                out[kv[0]] = kv[1]
            }
            return out
        }
    }

    /// An object whose values are a string or a list of strings (bound claims, sub-claims).
    static func listMap(_ v: JSON?, _ field: String) throws -> [String: [String]]? {
        switch v {
        case nil, .null?: return nil
        case .object(let members)?:
            guard members.count <= maxItems else { throw TesseraError.badRequest("\(field) has too many entries") }
            var out: [String: [String]] = [:]
            for (k, value) in members {
                guard !k.isEmpty else { throw TesseraError.badRequest("\(field) keys must not be empty") }
                if case .string(let s) = value { out[k] = [s] } else { out[k] = try list(value, field) ?? [] }
            }
            return out
        default: throw TesseraError.badRequest("\(field) must be an object")
        }
    }

    static func listMapJSON(_ m: [String: [String]]) -> JSON {
        .object(m.keys.sorted().map { ($0, .strings(m[$0] ?? [])) })
    }
}
