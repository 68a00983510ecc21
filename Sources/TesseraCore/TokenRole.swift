// A token role (Vault's `auth/token/roles/<name>`): a named template for `auth/token/create/<name>`
// that fixes which policies its tokens may carry, whether they are orphans, and their lifetime.
// With allowed policies, a role's tokens are bounded by the role, not by the creating token, so
// writing one needs the right to grant those policies.
import Foundation

public struct TokenRole: Sendable, Equatable {
    public var name: String
    public var allowedPolicies: [String] = []
    public var allowedPoliciesGlob: [String] = []
    public var disallowedPolicies: [String] = []
    public var disallowedPoliciesGlob: [String] = []
    public var orphan = false
    public var renewable = true
    public var pathSuffix = ""
    public var explicitMaxTTL = 0
    public var period = 0
    public var noDefaultPolicy = false
    /// Requests each of its tokens may make (0: no limit).
    public var numUses = 0

    public init(name: String) { self.name = name }

    public init(name: String, config: JSON) {
        func int(_ k: String) -> Int { if case .int(let v)? = config[k] { return Int(clamping: v) }; return 0 }
        func strings(_ k: String) -> [String] { if case .array(let a)? = config[k] { return a.compactMap(\.stringValue) }; return [] }
        func bool(_ k: String, _ d: Bool) -> Bool { if case .bool(let b)? = config[k] { return b }; return d }
        self.name = name
        allowedPolicies = strings("allowed_policies")
        allowedPoliciesGlob = strings("allowed_policies_glob")
        disallowedPolicies = strings("disallowed_policies")
        disallowedPoliciesGlob = strings("disallowed_policies_glob")
        orphan = bool("orphan", false)
        renewable = bool("renewable", true)
        pathSuffix = config["path_suffix"]?.stringValue ?? ""
        explicitMaxTTL = int("token_explicit_max_ttl")
        period = int("token_period")
        noDefaultPolicy = bool("token_no_default_policy", false)
        numUses = int("token_num_uses")
    }

    /// The stored form, in OpenBao's shape and order.
    public var json: JSON {
        .obj(("allowed_entity_aliases", .null), ("allowed_policies", JSON.strings(allowedPolicies)),
             ("allowed_policies_glob", JSON.strings(allowedPoliciesGlob)), ("disallowed_policies", JSON.strings(disallowedPolicies)),
             ("disallowed_policies_glob", JSON.strings(disallowedPoliciesGlob)), ("explicit_max_ttl", .int(0)), ("name", .string(name)),
             ("orphan", .bool(orphan)), ("path_suffix", .string(pathSuffix)), ("period", .int(0)), ("renewable", .bool(renewable)),
             ("token_explicit_max_ttl", .int(Int64(explicitMaxTTL))), ("token_no_default_policy", .bool(noDefaultPolicy)),
             ("token_num_uses", .int(Int64(numUses))), ("token_period", .int(Int64(period))), ("token_type", .string("default-service")))
    }

    /// What a role read shows: OpenBao lists `token_num_uses` only when it is set.
    public var shown: JSON {
        guard numUses == 0, case .object(let pairs) = json else { return json }
        return .object(pairs.filter { $0.0 != "token_num_uses" })
    }

    /// Vault's name rule for token roles and path suffixes: word characters, with `-` and `.`
    /// inside, at most 128 characters.
    public static func isValidName(_ s: String, minimum: Int = 1) -> Bool {
        let u = Array(s.utf8)
        guard u.count >= minimum, u.count <= 128 else { return false }
        func word(_ c: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || c == UInt8(ascii: "_")
        }
        guard let first = u.first, let last = u.last, word(first), word(last) else { return false }
        return u.allSatisfy { word($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
    }

    /// The policies a token created from this role carries, as Vault decides them: the requested
    /// ones (or, when none are requested, the role's allowed ones, else the parent's), each of
    /// which must be allowed by the role when it allows any, and none disallowed. `default` is
    /// added unless the request or the role leaves it out, or the role disallows it. The
    /// parent's subset rule applies only when the role names no policies at all (`boundByParent`).
    public func policies(requested: [String], noDefault: Bool, parent: [String]) throws -> (policies: [String], boundByParent: Bool) {
        let addDefault = !noDefault && !noDefaultPolicy && !disallowedPolicies.contains("default")
        func sanitized(_ list: [String], _ withDefault: Bool) -> [String] {
            var out = Set(list.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty })
            // Vault: a list with root is root alone.
            if out.contains("root") { return ["root"] }
            if withDefault { out.insert("default") }
            return out.sorted()
        }
        var final = requested.isEmpty ? [] : sanitized(requested, addDefault)
        let boundByParent: Bool
        if !allowedPolicies.isEmpty || !allowedPoliciesGlob.isEmpty {
            let allowed = sanitized(allowedPolicies, addDefault)
            if final.isEmpty {
                final = allowed
            } else {
                let globs = sanitized(allowedPoliciesGlob, false)
                for p in final where !allowed.contains(p) && !globs.contains(where: { Self.glob($0, matches: p) }) {
                    throw TesseraError.badRequest("token policies (\(Self.quoted(final))) must be subset of the role's allowed policies (\(Self.quoted(allowed))) or glob policies (\(Self.quoted(globs)))")
                }
            }
        } else if final.isEmpty {
            final = sanitized(parent, addDefault)
        }
        // Vault: a role that allows or disallows anything decides alone; otherwise the parent's
        // subset rule holds.
        boundByParent = !restrictsPolicies
        let denied = Set(disallowedPolicies.map { $0.lowercased() })
        let deniedGlobs = disallowedPoliciesGlob.map { $0.lowercased() }
        for p in final where denied.contains(p) || deniedGlobs.contains(where: { Self.glob($0, matches: p) }) {
            throw TesseraError.badRequest("token policy \"\(p.prefix(128))\" is disallowed by this role")
        }
        return (final, boundByParent)
    }

    /// Whether the role names allowed or disallowed policies; then its tokens are not bounded by
    /// their creator's policies, and only the role bounds them.
    public var restrictsPolicies: Bool {
        !allowedPolicies.isEmpty || !allowedPoliciesGlob.isEmpty || !disallowedPolicies.isEmpty || !disallowedPoliciesGlob.isEmpty
    }

    /// Go's `%q` of a string list, as Vault's messages print it: `["a" "b"]`.
    static func quoted(_ list: [String]) -> String {
        let shown = list.prefix(32).map { "\"" + String($0.prefix(128)) + "\"" }
        return "[" + (shown + (list.count > 32 ? ["…"] : [])).joined(separator: " ") + "]"
    }

    /// A glob where `*` matches any run of characters (Vault's policy globs).
    public static func glob(_ pattern: String, matches s: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        guard parts.count > 1 else { return pattern == s }
        guard s.hasPrefix(parts[0]), let lastPart = parts.last else { return false }
        var rest = Substring(s.dropFirst(parts[0].count))
        for part in parts.dropFirst().dropLast() where !part.isEmpty {
            guard let r = rest.range(of: part) else { return false }
            rest = rest[r.upperBound...]
        }
        return rest.count >= lastPart.count && rest.hasSuffix(lastPart)
    }
}
