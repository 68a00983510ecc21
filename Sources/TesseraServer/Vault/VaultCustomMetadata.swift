// KV v2 `custom_metadata` as Vault reads it: a map whose values are taken weakly (a number or a
// boolean becomes its text, as Go's weak decoding does), then validated with Vault's limits and
// error texts — at most 64 keys, keys of 1–128 bytes, values of 1–512 bytes, all printable.
import Foundation
import TesseraCore

enum VaultCustomMetadata {
    static let maxKeys = 64
    static let maxKeyBytes = 128
    static let maxValueBytes = 512

    /// The map to store: `nil` values (only in a patch) remove their key.
    static func parse(_ raw: JSON, patch: Bool) throws -> [String: String?] {
        guard case .object(let pairs) = raw else {
            throw TesseraError.badRequest("error converting input for field \"custom_metadata\": '' expected type "
                                          + "'map[string]interface {}', got unconvertible type '\(goType(raw))'")
        }
        var out: [String: String?] = [:]
        for (k, v) in pairs {
            switch v {
            case .string(let s): out[k] = s
            case .int(let n): out[k] = String(n)
            case .double(let d): out[k] = d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
            case .bool(let b): out[k] = b ? "1" : "0"
            case .null: out[k] = patch ? .some(nil) : ""
            case .array, .object:
                throw TesseraError.badRequest("custom_metadata validation failed: '' expected type 'string', got unconvertible type '\(goType(v))'")
            }
        }
        var errors: [String] = []
        if out.count > maxKeys {
            errors.append("payload must contain at most \(maxKeys) keys, provided \(out.count)")
        } else {
            for key in out.keys.sorted() {
                let value = (out[key] ?? nil) ?? ""
                if key.utf8.isEmpty || key.utf8.count > maxKeyBytes {
                    errors.append("length of key \(goQuote(key)) is \(key.utf8.count) but must be 0 < len(key) <= \(maxKeyBytes)")
                }
                // A patch's null removes the key: there is no value to check.
                guard let present = out[key], present != nil else { continue }
                if value.utf8.isEmpty || value.utf8.count > maxValueBytes {
                    errors.append("length of value for key \(goQuote(key)) is \(value.utf8.count) but must be 0 < len(value) <= \(maxValueBytes)")
                }
                if !printable(key) { errors.append("key \(goQuote(key)) (\(key)) contains unprintable characters") }
                if !printable(value) { errors.append("value for key \(goQuote(key)) contains unprintable characters") }
            }
        }
        guard errors.isEmpty else {
            let head = errors.count == 1 ? "1 error occurred:" : "\(errors.count) errors occurred:"
            throw TesseraError.badRequest(head + errors.map { "\n\t* custom_metadata validation failed: " + $0 }.joined() + "\n\n")
        }
        return out
    }

    static func goType(_ v: JSON) -> String {
        switch v {
        case .string: "string"
        case .int, .double: "float64"
        case .bool: "bool"
        case .null: "<nil>"
        case .array: "[]interface {}"
        case .object: "map[string]interface {}"
        }
    }

    static func printable(_ s: String) -> Bool {
        !s.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }

    /// Go's `%q`: quoted, with backslash escapes for quotes, backslashes and control characters.
    static func goQuote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 || u.value == 0x7F {
                    out += "\\x" + String(format: "%02x", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
