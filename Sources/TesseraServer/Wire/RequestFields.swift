// RequestFields: typed, lenient access to the fields of a JSON request body. Clients such as the
// Akeyless SDK send some numbers and booleans as strings ("max-versions": "5",
// "case-sensitive": "true"), so those are accepted; anything else of the wrong type is a 400
// that names the field.
import Foundation
import TesseraCore

public struct RequestFields: Sendable {
    public let body: JSON
    private let fields: [String: JSON]

    public init(_ body: JSON) throws {
        guard case .object(let pairs) = body else {
            throw TesseraError.badRequest("the request body must be a JSON object")
        }
        self.body = body
        self.fields = Dictionary(pairs, uniquingKeysWith: { a, _ in a })
    }

    public static let empty: RequestFields = {
        // `.object([])` always succeeds.
        (try? RequestFields(.object([]))) ?? RequestFields(trusted: [:])
    }()

    private init(trusted: [String: JSON]) {
        body = .object([])
        fields = trusted
    }

    public func has(_ key: String) -> Bool {
        if let v = fields[key], v != .null { return true }
        return false
    }

    public func raw(_ key: String) -> JSON? { fields[key] }

    public func string(_ key: String) throws -> String? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        default: throw wrongType(key, "a string")
        }
    }

    public func requiredString(_ key: String) throws -> String {
        guard let s = try string(key), !s.isEmpty else { throw TesseraError.badRequest("missing required field '\(key)'") }
        return s
    }

    public func int(_ key: String) throws -> Int? {
        switch fields[key] {
        case nil, .null?: return nil
        case .int(let i)?:
            guard let v = Int(exactly: i) else { throw wrongType(key, "an integer") }
            return v
        case .double(let d)?:
            guard d == d.rounded(), let v = Int(exactly: d) else { throw wrongType(key, "an integer") }
            return v
        case .string(let s)?:
            let t = s.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { return nil }
            guard let v = Int(t) else { throw wrongType(key, "an integer") }
            return v
        default: throw wrongType(key, "an integer")
        }
    }

    public func bool(_ key: String) throws -> Bool? {
        switch fields[key] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        case .string(let s)?:
            switch s.lowercased() {
            case "true", "1", "yes": return true
            case "false", "0", "no", "": return false
            default: throw wrongType(key, "a boolean")
            }
        case .int(let i)? where i == 0 || i == 1: return i == 1
        default: throw wrongType(key, "a boolean")
        }
    }

    /// A list of strings; a single string is taken as a list of one.
    public func stringList(_ key: String) throws -> [String]? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let s)?: return [s]
        case .array(let items)?:
            return try items.map {
                guard case .string(let s) = $0 else { throw wrongType(key, "a list of strings") }
                return s
            }
        default: throw wrongType(key, "a list of strings")
        }
    }

    public func requiredStringList(_ key: String) throws -> [String] {
        guard let l = try stringList(key), !l.isEmpty else { throw TesseraError.badRequest("missing required field '\(key)'") }
        return l
    }

    /// A map of string to list of strings; values may be single strings or comma-separated text.
    public func stringListMap(_ key: String) throws -> [String: [String]]? {
        switch fields[key] {
        case nil, .null?: return nil
        case .object(let pairs)?:
            var out: [String: [String]] = [:]
            for (k, v) in pairs {
                switch v {
                case .string(let s): out[k] = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                case .array(let items):
                    out[k] = try items.map {
                        guard case .string(let s) = $0 else { throw wrongType(key, "a map of strings") }
                        return s
                    }
                default: throw wrongType(key, "a map of strings")
                }
            }
            return out
        default: throw wrongType(key, "a map of strings")
        }
    }

    func wrongType(_ key: String, _ expected: String) -> TesseraError {
        .badRequest("field '\(key)' must be \(expected)")
    }
}
