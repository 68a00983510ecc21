// FieldSpec: the declaration of one request field — name, aliases, type, whether it is required
// or sensitive, its range, and its help text. One list per endpoint drives validation (typed,
// range-checked, unknown fields warned about), the audit's sensitive fields, the CLI's help and
// the OpenAPI document; handlers read values through `RequestFields`, which applies the same ranges.
import TesseraCore

public struct FieldSpec: Sendable {
    public enum Kind: Sendable, Equatable {
        case string
        /// An integer (JSON number or numeric string) within the range.
        case integer(ClosedRange<Int>)
        case boolean
        /// Seconds or Go-style text (`"1h30m"`), at most this many seconds.
        case duration(max: Int)
        /// A list of strings (a single string is a list of one).
        case stringList
        /// A JSON object (a map, or a KV data object).
        case object
        /// Anything (relayed or interpreted by the handler).
        case any
    }

    public let name: String
    public let aliases: [String]
    public let kind: Kind
    public let required: Bool
    /// Recorded in the audit event only as an HMAC; the CLI reads it from stdin, a file or the environment.
    public let sensitive: Bool
    public let help: String

    public init(_ name: String, _ kind: Kind, required: Bool = false, sensitive: Bool = false, aliases: [String] = [], help: String) {
        self.name = name
        self.aliases = aliases
        self.kind = kind
        self.required = required
        self.sensitive = sensitive
        self.help = help
    }

    public static func string(_ name: String, required: Bool = false, sensitive: Bool = false, aliases: [String] = [], _ help: String) -> FieldSpec {
        FieldSpec(name, .string, required: required, sensitive: sensitive, aliases: aliases, help: help)
    }

    public static func int(_ name: String, _ range: ClosedRange<Int>, required: Bool = false, aliases: [String] = [], _ help: String) -> FieldSpec {
        FieldSpec(name, .integer(range), required: required, aliases: aliases, help: help)
    }

    public static func bool(_ name: String, aliases: [String] = [], _ help: String) -> FieldSpec {
        FieldSpec(name, .boolean, aliases: aliases, help: help)
    }

    public static func duration(_ name: String, max: Int = InputNumber.maxSeconds, aliases: [String] = [], _ help: String) -> FieldSpec {
        FieldSpec(name, .duration(max: max), aliases: aliases, help: help)
    }

    public static func list(_ name: String, required: Bool = false, aliases: [String] = [], _ help: String) -> FieldSpec {
        FieldSpec(name, .stringList, required: required, aliases: aliases, help: help)
    }

    public static func object(_ name: String, required: Bool = false, aliases: [String] = [], _ help: String) -> FieldSpec {
        FieldSpec(name, .object, required: required, aliases: aliases, help: help)
    }

    public static func any(_ name: String, required: Bool = false, aliases: [String] = [], _ help: String) -> FieldSpec {
        FieldSpec(name, .any, required: required, aliases: aliases, help: help)
    }

    /// Every name the field answers to.
    public var names: [String] { [name] + aliases }

    /// Checks one present value against the declaration (400 naming the field).
    func validate(_ value: JSON, as key: String) throws {
        if value == .null { return }
        switch kind {
        case .string:
            guard case .string = value else { throw TesseraError.badRequest("field '\(key)' must be a string") }
        case .integer(let range):
            _ = try RequestFields.int(value, field: key, in: range)
        case .boolean:
            switch value {
            case .bool: break
            case .int(let i) where i == 0 || i == 1: break
            case .string(let s) where ["true", "1", "yes", "false", "0", "no", ""].contains(s.lowercased()): break
            default: throw TesseraError.badRequest("field '\(key)' must be a boolean")
            }
        case .duration(let max):
            _ = try RequestFields.seconds(value, field: key, max: max)
        case .stringList:
            switch value {
            case .string: break
            case .array(let items) where items.allSatisfy({ if case .string = $0 { true } else { false } }): break
            default: throw TesseraError.badRequest("field '\(key)' must be a list of strings")
            }
        case .object:
            guard case .object = value else { throw TesseraError.badRequest("field '\(key)' must be an object") }
        case .any:
            break
        }
    }
}

extension FieldSet {
    /// A warning naming unknown fields, safe as a header value: printable ASCII only, bounded.
    public static func warningList(_ names: [String]) -> String {
        names.prefix(20).map { name in
            String(String.UnicodeScalarView(name.unicodeScalars.prefix(64).map { (0x20..<0x7F).contains($0.value) ? $0 : "?" }))
        }.joined(separator: " ")
    }
}

/// The declared fields of one endpoint.
public struct FieldSet: Sendable {
    public let fields: [FieldSpec]
    private let byName: [String: FieldSpec]

    public init(_ fields: [FieldSpec]) {
        self.fields = fields
        var map: [String: FieldSpec] = [:]
        for f in fields { for n in f.names { map[n] = f } }
        byName = map
    }

    public subscript(name: String) -> FieldSpec? { byName[name] }

    public var sensitiveNames: [String] { fields.filter(\.sensitive).flatMap(\.names) }

    /// Validates a body: every declared field that is present has its type and range; required
    /// fields are present. Returns the names of fields that are not declared (warned about, as
    /// Vault's "Endpoint ignored these unrecognized parameters").
    public func validate(_ body: JSON, ignoring: Set<String> = [], checkRequired: Bool = true) throws -> [String] {
        guard case .object(let pairs) = body else { return [] }
        var unknown: [String] = []
        for (key, value) in pairs {
            if let spec = byName[key] { try spec.validate(value, as: key) } else if !ignoring.contains(key) { unknown.append(key) }
        }
        for spec in fields where spec.required && checkRequired {
            let present = spec.names.contains { n in pairs.contains { $0.0 == n && $0.1 != .null } }
            if !present { throw TesseraError.badRequest("missing required field '\(spec.name)'") }
        }
        return unknown.sorted()
    }
}
