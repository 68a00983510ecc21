// RequestFields: typed, lenient access to the fields of a JSON request body. Clients such as the
// Akeyless SDK send some numbers and booleans as strings ("max-versions": "5",
// "case-sensitive": "true"), so those are accepted; anything else of the wrong type is a 400
// that names the field.
import Foundation
import TesseraCore

public struct RequestFields: Sendable {
    public let body: JSON
    private let fields: [String: JSON]
    /// The endpoint's declaration, whose ranges apply when a handler names none.
    let declared: FieldSet?

    public init(_ body: JSON, declared: FieldSet? = nil) throws {
        guard case .object(let pairs) = body else {
            throw TesseraError.badRequest("the request body must be a JSON object")
        }
        self.body = body
        self.fields = Dictionary(pairs, uniquingKeysWith: { a, _ in a })
        self.declared = declared
    }

    public static let empty: RequestFields = {
        // `.object([])` always succeeds.
        (try? RequestFields(.object([]))) ?? RequestFields(trusted: [:])
    }()

    private init(trusted: [String: JSON]) {
        body = .object([])
        fields = trusted
        declared = nil
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

    /// The range an integer field has when its declaration names none: small enough that no
    /// arithmetic a handler does on it (× 60, × 1e6) can overflow.
    public static let defaultIntRange = Int(Int32.min)...Int(Int32.max)

    /// An integer field (a JSON number or a numeric string), range-checked through `InputNumber`.
    public func int(_ key: String, in range: ClosedRange<Int>? = nil) throws -> Int? {
        var declaredRange: ClosedRange<Int>?
        if case .integer(let r)? = declared?[key]?.kind { declaredRange = r }
        return try Self.int(fields[key], field: key, in: range ?? declaredRange ?? Self.defaultIntRange)
    }

    /// An integer from any JSON value: a number or a numeric string; `null` and `""` are absent.
    public static func int(_ value: JSON?, field: String, in range: ClosedRange<Int> = defaultIntRange) throws -> Int? {
        switch value {
        case nil, .null?: return nil
        case .int(let i)?: return try InputNumber.int(i, field: field, in: range)
        case .double(let d)?: return try InputNumber.int(d, field: field, in: range)
        case .string(let s)?:
            if s.trimmingCharacters(in: .whitespaces).isEmpty { return nil }
            return try InputNumber.int(text: s, field: field, in: range)
        default: throw TesseraError.badRequest("field '\(field)' must be an integer")
        }
    }

    /// A duration field in whole seconds: a number of seconds or Go-style text (`"1h30m"`).
    public func seconds(_ key: String, max: Int = InputNumber.maxSeconds) throws -> Int? {
        try Self.seconds(fields[key], field: key, max: max)
    }

    public static func seconds(_ value: JSON?, field: String, max: Int = InputNumber.maxSeconds) throws -> Int? {
        switch value {
        case nil, .null?: return nil
        case .int(let i)?: return try InputNumber.int(i, field: field, in: 0...max)
        case .double(let d)?:
            guard d.isFinite, d >= 0, d <= Double(max) else { throw InputNumber.outOfRangeError(field, 0...max) }
            return try InputNumber.int(d.rounded(.down), field: field, in: 0...max)
        case .string(let s)?: return try GoDuration.seconds(text: s, field: field, max: max)
        default: throw TesseraError.badRequest("field '\(field)' must be a duration")
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
