// VaultPolicy: the parser of Vault ACL policy documents, in HCL or in JSON. It reads the path
// blocks and their capabilities (or the old `policy = "read"` form) and refuses everything that
// would restrict a grant in a way Tessera cannot keep (parameter constraints, wrapping limits,
// identity templates), because ignoring a restriction would grant more than the text says.
// The translation onto Tessera rules is the Vault front-end's (`VaultPolicyTranslator`).

public struct VaultPolicy: Sendable, Equatable {
    /// One `path "…" { capabilities = […] }` block.
    public struct PathRule: Sendable, Equatable {
        public var path: String
        public var capabilities: [String]

        public init(path: String, capabilities: [String]) {
            self.path = path
            self.capabilities = capabilities
        }
    }

    public var paths: [PathRule]

    public init(paths: [PathRule]) { self.paths = paths }

    /// The most path blocks a policy may have: every request evaluates every rule.
    public static let maxPaths = 4096

    /// Vault's capability names.
    public static let capabilityNames: Set<String> = ["create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe"]

    /// The old form `policy = "…"`, as Vault expands it.
    static let legacyPolicies: [String: [String]] = [
        "deny": ["deny"], "read": ["read", "list"],
        "write": ["create", "read", "update", "delete", "list"],
        "sudo": ["create", "read", "update", "delete", "list", "sudo"],
    ]

    static func failure(_ message: String) -> TesseraError { .badRequest("failed to parse policy: " + message) }

    /// Parses a policy document: JSON when it starts with `{`, else HCL.
    public static func parse(_ text: String) throws -> VaultPolicy {
        var parser = HCLParser(Array(text.utf8))
        let body = try parser.document()
        var paths: [PathRule] = []
        for (key, value) in body {
            switch key {
            case "name": continue
            case "path":
                guard case .object(let blocks) = value else { throw failure("path: expected a block per path") }
                for (path, block) in blocks {
                    paths.append(PathRule(path: path, capabilities: try capabilities(path, block)))
                }
            default:
                throw failure("invalid key \"\(String(key.prefix(64)))\"")
            }
        }
        guard paths.count <= maxPaths else { throw failure("a policy has at most \(maxPaths) paths, this one has \(paths.count)") }
        for rule in paths where rule.path.contains("{{") {
            throw failure("path \"\(String(rule.path.prefix(128)))\": identity templates are not supported")
        }
        return VaultPolicy(paths: paths)
    }

    static func capabilities(_ path: String, _ block: HCLValue) throws -> [String] {
        let shown = String(path.prefix(128))
        guard case .object(let fields) = block else { throw failure("path \"\(shown)\": expected a block") }
        var out: [String] = []
        for (key, value) in fields {
            switch key {
            case "capabilities":
                guard case .list(let items) = value else { throw failure("path \"\(shown)\": capabilities must be a list") }
                for item in items {
                    guard case .string(let name) = item else { throw failure("path \"\(shown)\": capabilities must be strings") }
                    guard capabilityNames.contains(name) else {
                        throw failure("path \"\(shown)\": path \"\(shown)\": invalid capability \"\(String(name.prefix(32)))\"")
                    }
                    if !out.contains(name) { out.append(name) }
                }
            case "policy":
                guard case .string(let name) = value, let expanded = legacyPolicies[name] else {
                    throw failure("path \"\(shown)\": invalid policy")
                }
                for name in expanded where !out.contains(name) { out.append(name) }
            case "allowed_parameters", "denied_parameters", "required_parameters", "min_wrapping_ttl", "max_wrapping_ttl":
                throw TesseraError.badRequest("path \"\(shown)\": \(key) is not supported by Tessera; the policy was not written")
            default:
                throw failure("path \"\(shown)\": invalid key \"\(String(key.prefix(64)))\"")
            }
        }
        return out
    }
}

/// A value of the HCL subset that policies use.
indirect enum HCLValue: Sendable, Equatable {
    case string(String)
    case number(String)
    case bool(Bool)
    case list([HCLValue])
    /// Keys in document order; a repeated block (`path "a" {…} path "b" {…}`) adds entries.
    case object([(String, HCLValue)])

    static func == (a: HCLValue, b: HCLValue) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)), (.number(let x), .number(let y)): x == y
        case (.bool(let x), .bool(let y)): x == y
        case (.list(let x), .list(let y)): x == y
        case (.object(let x), .object(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }
}

/// A recursive-descent parser of HCL 1 bodies (`key = value`, `key "label" { … }`, lists,
/// strings, numbers, booleans, comments) and of JSON, which is the same grammar with `:`.
/// Nesting is bounded, so a hostile document cannot exhaust the stack.
struct HCLParser {
    let bytes: [UInt8]
    var i = 0
    var depth = 0
    static let maxDepth = 16

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func document() throws -> [(String, HCLValue)] {
        skipSpace()
        if peek == UInt8(ascii: "{") {
            // JSON: one object.
            guard case .object(let body) = try value() else { throw error("expected an object") }
            skipSpace()
            guard i == bytes.count else { throw error("unexpected text after the document") }
            return body
        }
        let body = try self.body(closing: nil)
        return body
    }

    var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    func position() -> String {
        var line = 1, column = 1
        for b in bytes[..<min(i, bytes.count)] {
            if b == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
        }
        return "At \(line):\(column)"
    }

    func error(_ message: String) -> TesseraError { VaultPolicy.failure(position() + ": " + message) }

    mutating func skipSpace() {
        while let b = peek {
            switch b {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                i += 1
            case UInt8(ascii: "#"):
                while let c = peek, c != UInt8(ascii: "\n") { _ = c; i += 1 }
            case UInt8(ascii: "/") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "/"):
                while let c = peek, c != UInt8(ascii: "\n") { _ = c; i += 1 }
            case UInt8(ascii: "/") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "*"):
                i += 2
                while i + 1 < bytes.count && !(bytes[i] == UInt8(ascii: "*") && bytes[i + 1] == UInt8(ascii: "/")) { i += 1 }
                i = min(i + 2, bytes.count)
            default:
                return
            }
        }
    }

    /// Statements until `closing` (or the end of the document when nil).
    mutating func body(closing: UInt8?) throws -> [(String, HCLValue)] {
        var out: [(String, HCLValue)] = []
        var index: [String: Int] = [:]
        while true {
            skipSpace()
            guard let b = peek else {
                if closing != nil { throw error("unexpected token while parsing object: EOF") }
                return out
            }
            if b == closing {
                i += 1
                return out
            }
            let key = b == UInt8(ascii: "\"") ? try string() : try identifier()
            skipSpace()
            var labels: [String] = []
            while peek == UInt8(ascii: "\"") {
                // Policies use one label (`path "…"`); more would nest without bound.
                guard labels.count < 2 else { throw error("too many labels") }
                labels.append(try string())
                skipSpace()
            }
            var value: HCLValue
            if peek == UInt8(ascii: "=") || peek == UInt8(ascii: ":") {
                guard labels.isEmpty else { throw error("unexpected token after labels") }
                i += 1
                value = try self.value()
            } else if peek == UInt8(ascii: "{") {
                value = try self.value()
            } else {
                throw error("expected '=' or a block after \"\(String(key.prefix(64)))\"")
            }
            for label in labels.reversed() { value = .object([(label, value)]) }
            // `path "a" {…}` then `path "b" {…}`: one object under `path` with both. The slot is
            // emptied while appending, so the array is not copied for every block.
            if let at = index[key], case .object(var old) = out[at].1, case .object(let new) = value {
                out[at].1 = .bool(false)
                old.append(contentsOf: new)
                out[at].1 = .object(old)
            } else {
                index[key] = out.count
                out.append((key, value))
            }
            skipSpace()
            if peek == UInt8(ascii: ",") { i += 1 }
        }
    }

    mutating func value() throws -> HCLValue {
        skipSpace()
        guard let b = peek else { throw error("unexpected token while parsing value: EOF") }
        switch b {
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "["):
            i += 1
            depth += 1
            guard depth <= Self.maxDepth else { throw error("nested too deeply") }
            defer { depth -= 1 }
            var items: [HCLValue] = []
            while true {
                skipSpace()
                guard let c = peek else { throw error("unexpected token while parsing list: EOF") }
                if c == UInt8(ascii: "]") { i += 1; return .list(items) }
                items.append(try value())
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                guard peek == UInt8(ascii: "]") else {
                    throw error(peek == nil ? "unexpected token while parsing list: EOF" : "expected ',' or ']' in a list")
                }
            }
        case UInt8(ascii: "{"):
            i += 1
            depth += 1
            guard depth <= Self.maxDepth else { throw error("nested too deeply") }
            defer { depth -= 1 }
            return .object(try body(closing: UInt8(ascii: "}")))
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let start = i
            i += 1
            while let c = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || c == UInt8(ascii: ".")
                || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") { i += 1 }
            return .number(String(decoding: bytes[start..<i], as: UTF8.self))
        default:
            let word = try identifier()
            switch word {
            case "true": return .bool(true)
            case "false": return .bool(false)
            default: throw error("unexpected token \"\(String(word.prefix(32)))\"")
            }
        }
    }

    mutating func identifier() throws -> String {
        let start = i
        while let c = peek, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") || c == UInt8(ascii: ".") {
            i += 1
        }
        guard i > start else {
            throw error(peek == nil ? "unexpected token: EOF" : "unexpected character")
        }
        return String(decoding: bytes[start..<i], as: UTF8.self)
    }

    /// A double-quoted string with JSON/HCL escapes.
    mutating func string() throws -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw error("unterminated string") }
            i += 1
            switch c {
            case UInt8(ascii: "\""):
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\n"):
                throw error("unterminated string")
            case UInt8(ascii: "\\"):
                guard let e = peek else { throw error("unterminated string") }
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(UInt8(ascii: "\n"))
                case UInt8(ascii: "t"): out.append(UInt8(ascii: "\t"))
                case UInt8(ascii: "r"): out.append(UInt8(ascii: "\r"))
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "u"):
                    guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16),
                          let scalar = Unicode.Scalar(v) else { throw error("invalid escape") }
                    i += 4
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                default:
                    throw error("invalid escape")
                }
            default:
                out.append(c)
            }
        }
    }
}
