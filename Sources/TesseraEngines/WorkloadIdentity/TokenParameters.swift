// TokenParameters: the `token_*` settings every Vault login role has (and their deprecated
// names, which hvac's kubernetes client still sends), and how they shape the token a login gets:
// its Tessera roles (`token_policies` names access roles), TTL and bound CIDRs.
import Foundation
import TesseraCore

struct TokenParameters: Sendable, Equatable {
    var policies: [String] = []
    var ttl = 0
    var maxTTL = 0
    var explicitMaxTTL = 0
    var period = 0
    var numUses = 0
    var boundCIDRs: [String] = []
    var noDefaultPolicy = false
    var type = "default"
    /// The deprecated names that were set, echoed on read as Vault does.
    var legacy: [String] = []

    static let legacyNames: [(legacy: String, current: String)] = [
        ("policies", "token_policies"), ("ttl", "token_ttl"), ("max_ttl", "token_max_ttl"), ("period", "token_period"),
        ("num_uses", "token_num_uses"), ("bound_cidrs", "token_bound_cidrs"),
    ]

    /// Reads the fields present in `body` over `base` (a role update keeps what it does not name).
    static func parse(_ body: JSON, over base: TokenParameters = TokenParameters()) throws -> TokenParameters {
        var p = base
        func pick(_ current: String, _ legacy: String) -> (JSON?, String)? {
            if let v = body[current], v != .null { return (v, current) }
            if let v = body[legacy], v != .null {
                if !p.legacy.contains(legacy) { p.legacy.append(legacy) }
                return (v, legacy)
            }
            return nil
        }
        if let (v, f) = pick("token_policies", "policies") {
            p.policies = try FieldValues.list(v, f) ?? []
        }
        if let (v, f) = pick("token_ttl", "ttl") { p.ttl = try FieldValues.duration(v, f) ?? 0 }
        if let (v, f) = pick("token_max_ttl", "max_ttl") { p.maxTTL = try FieldValues.duration(v, f) ?? 0 }
        if let (v, f) = pick("token_period", "period") { p.period = try FieldValues.duration(v, f) ?? 0 }
        if let (v, f) = pick("token_num_uses", "num_uses") { p.numUses = try FieldValues.int(v, f, in: 0...Int(Int32.max)) ?? 0 }
        if let (v, f) = pick("token_bound_cidrs", "bound_cidrs") {
            p.boundCIDRs = try FieldValues.list(v, f) ?? []
            for c in p.boundCIDRs { _ = try CIDR(c) }
        }
        if let v = body["token_explicit_max_ttl"] { p.explicitMaxTTL = try FieldValues.duration(v, "token_explicit_max_ttl") ?? 0 }
        if let v = body["token_no_default_policy"] { p.noDefaultPolicy = try FieldValues.bool(v, "token_no_default_policy") ?? false }
        if let v = try FieldValues.string(body["token_type"], "token_type") {
            let t = v.isEmpty ? "default" : v
            guard ["default", "service", "batch", "default-service", "default-batch"].contains(t) else {
                throw TesseraError.badRequest("invalid 'token_type' value \"\(v.prefix(32))\"")
            }
            p.type = t
        }
        if p.maxTTL > 0, p.ttl > p.maxTTL { throw TesseraError.badRequest("'token_ttl' cannot be greater than 'token_max_ttl'") }
        return p
    }

    init() {}

    /// The stored and read-back form.
    var json: [(String, JSON)] {
        var out: [(String, JSON)] = [
            ("token_bound_cidrs", .strings(boundCIDRs)), ("token_explicit_max_ttl", .int(Int64(explicitMaxTTL))),
            ("token_max_ttl", .int(Int64(maxTTL))), ("token_no_default_policy", .bool(noDefaultPolicy)),
            ("token_num_uses", .int(Int64(numUses))), ("token_period", .int(Int64(period))),
            ("token_policies", .strings(policies)), ("token_ttl", .int(Int64(ttl))), ("token_type", .string(type)),
        ]
        for name in legacy {
            switch name {
            case "policies": out.append(("policies", .strings(policies)))
            case "ttl": out.append(("ttl", .int(Int64(ttl))))
            case "max_ttl": out.append(("max_ttl", .int(Int64(maxTTL))))
            case "period": out.append(("period", .int(Int64(period))))
            case "num_uses": out.append(("num_uses", .int(Int64(numUses))))
            case "bound_cidrs": out.append(("bound_cidrs", .strings(boundCIDRs)))
            default: break
            }
        }
        return out
    }

    init(stored: JSON) {
        policies = Claims.strings(stored["token_policies"])
        ttl = Int(Self.int(stored["token_ttl"]))
        maxTTL = Int(Self.int(stored["token_max_ttl"]))
        explicitMaxTTL = Int(Self.int(stored["token_explicit_max_ttl"]))
        period = Int(Self.int(stored["token_period"]))
        numUses = Int(Self.int(stored["token_num_uses"]))
        boundCIDRs = Claims.strings(stored["token_bound_cidrs"])
        if case .bool(let b)? = stored["token_no_default_policy"] { noDefaultPolicy = b }
        type = stored["token_type"]?.stringValue ?? "default"
        legacy = Self.legacyNames.map(\.legacy).filter { stored[$0] != nil }
    }

    static func int(_ v: JSON?) -> Int64 {
        if case .int(let i)? = v { return max(0, min(i, Int64(InputNumber.maxSeconds))) }
        return 0
    }

    /// The token lifetime: the role's TTL (else the method's), never beyond its max TTLs.
    func lifetime(methodDefaultSeconds: Int) -> Int {
        var t = ttl > 0 ? ttl : (period > 0 ? period : methodDefaultSeconds)
        if maxTTL > 0 { t = min(t, maxTTL) }
        if explicitMaxTTL > 0 { t = min(t, explicitMaxTTL) }
        return max(1, min(t, AuthMethod.maxTokenTTLMinutes * 60))
    }

    /// The policies shown in the login response, as Vault lists them (`default` first).
    func shownPolicies(extra: [String]) -> [String] {
        let all = Set(policies + extra).subtracting(["default"])
        return (noDefaultPolicy ? [] : ["default"]) + all.sorted()
    }

    /// Whether the client address may log in with this role.
    func admits(clientAddress: String) -> Bool {
        boundCIDRs.isEmpty || boundCIDRs.contains { (try? CIDR($0))?.contains(clientAddress) ?? false }
    }
}
