// The authorizer: decides whether a set of rules grants a capability on a path. Deny beats every
// allow, the union of all rules applies, and anything not granted is denied.

/// The outcome of one capability check.
public enum Decision: Sendable, Equatable {
    case allow
    /// Denied, either by an explicit deny rule or because no rule grants the capability.
    case deny(explicit: Bool)

    public var isAllowed: Bool { self == .allow }
}

public struct Authorizer: Sendable {
    public let rules: [Rule]
    /// The role each rule came from (parallel to `rules`), for the evidence of a decision.
    public let ruleRoles: [String]
    /// "role R item-rule /p/* [read]" per rule, built once: the authorizer is cached with its
    /// principal, and the evidence of every request quotes these.
    let ruleEvidence: [String]
    public let auditAccess: AuditAccess
    public let isRoot: Bool

    /// - Parameters:
    ///   - rules: the union of the rules of every role that applies to the identity.
    public init(rules: [Rule], auditAccess: AuditAccess = .none, isRoot: Bool = false, ruleRoles: [String]? = nil) {
        self.rules = rules
        let roles = ruleRoles ?? Array(repeating: "", count: rules.count)
        self.ruleRoles = roles
        self.ruleEvidence = rules.enumerated().map { i, rule in
            "role \(i < roles.count && !roles[i].isEmpty ? roles[i] : "?") " + Self.describe(rule)
        }
        self.auditAccess = auditAccess
        self.isRoot = isRoot
    }

    public init(roles: [Role]) {
        self.init(rules: roles.flatMap(\.rules),
                  auditAccess: roles.map(\.auditAccess).max { $0.rank < $1.rank } ?? .none,
                  ruleRoles: roles.flatMap { role in role.rules.map { _ in role.name } })
    }

    /// Why a check is decided as it is: the deny rule that matched, the rules that grant the
    /// capability, or that no rule grants it. Written into every audit event (Vault's
    /// `policy_results`) and answered by `explain`.
    public func evidence(_ capability: Capability, on path: ItemPath, type: RuleType = .item) -> (decision: Decision, evidence: String) {
        var granting: [Int] = []
        for (i, rule) in rules.enumerated() where rule.type == type && rule.pattern.matches(path) {
            if rule.capabilities.contains(.deny) { return (.deny(explicit: true), "denied by " + ruleEvidence[i]) }
            if rule.capabilities.contains(capability) { granting.append(i) }
        }
        if granting.isEmpty { return (.deny(explicit: false), "no rule grants \(capability.rawValue) on \(type.rawValue) \(path.value)") }
        if granting.count == 1 { return (.allow, capability.rawValue + " granted by " + ruleEvidence[granting[0]]) }
        return (.allow, capability.rawValue + " granted by " + granting.map { ruleEvidence[$0] }.joined(separator: "; "))
    }

    /// `item-rule /prod/* [list,read]`
    public static func describe(_ rule: Rule) -> String {
        "\(rule.type.rawValue) \(rule.pattern) [" + Capability.allCases.filter { rule.capabilities.contains($0) }.map(\.rawValue).joined(separator: ",") + "]"
    }

    /// Checks one capability on one path.
    public func check(_ capability: Capability, on path: ItemPath, type: RuleType = .item) -> Decision {
        var granted = false
        for rule in rules where rule.type == type && rule.pattern.matches(path) {
            if rule.capabilities.contains(.deny) { return .deny(explicit: true) }
            if rule.capabilities.contains(capability) { granted = true }
        }
        return granted ? .allow : .deny(explicit: false)
    }

    /// Throws `forbidden` naming the path and the missing capability unless it is granted.
    public func require(_ capability: Capability, on path: ItemPath, type: RuleType = .item) throws {
        guard check(capability, on: path, type: type).isAllowed else {
            throw TesseraError.forbidden(path: path.value, capability: capability.rawValue)
        }
    }

    /// Whether these rules hold everything `rule` grants, so that a delegated administrator who
    /// holds them may grant it: for each capability (a `deny` only takes away, so it needs nothing),
    /// an allowing rule of the same type whose pattern covers the rule's whole pattern, and no deny
    /// rule of the same type that overlaps it.
    public func mayGrant(_ rule: Rule) -> Bool {
        if isRoot { return true }
        let granted = rule.capabilities.subtracting([.deny])
        if granted.isEmpty { return true }
        let same = rules.filter { $0.type == rule.type }
        if same.contains(where: { $0.capabilities.contains(.deny) && $0.pattern.overlaps(rule.pattern) }) { return false }
        return granted.allSatisfy { cap in
            same.contains { $0.capabilities.contains(cap) && $0.pattern.covers(rule.pattern) }
        }
    }

    /// Whether these rules may remove `rule`. Removing a deny gives back everything it took away,
    /// so it needs the rights of granting every capability on the deny's pattern.
    public func mayRemove(_ rule: Rule) -> Bool {
        guard rule.capabilities.contains(.deny) else { return true }
        var everything = Set(Capability.allCases).subtracting([.deny])
        if rule.type != .target { everything.remove(.use) }
        return mayGrant(Rule(pattern: rule.pattern, capabilities: everything, type: rule.type))
    }

    /// Whether these rules could grant anything at all: every capability on every path of every
    /// rule type, with no deny in the way (an administrator, Vault's root).
    public var holdsEverything: Bool {
        if isRoot { return true }
        return RuleType.allCases.allSatisfy { type in
            (try? PathPattern("/*")).map { mayRemove(Rule(pattern: $0, capabilities: [.deny], type: type)) } ?? false
        }
    }

    /// Whether these rules may grant every rule of `role` and its audit access.
    public func mayGrant(_ role: Role) -> Bool {
        role.auditAccess.rank <= auditAccess.rank && role.rules.allSatisfy(mayGrant)
    }

    /// Whether some rule grants any capability on a path within `folder` (the Vault KV preflight).
    public func hasGrant(within folder: ItemPath, type: RuleType = .item) -> Bool {
        rules.contains { rule in
            rule.type == type && !rule.capabilities.subtracting([.deny]).isEmpty
                && (rule.pattern.overlaps(folder: folder) || rule.pattern.matches(folder))
        }
    }

    /// Whether listing `folder` can show anything: some rule grants `list` on a path inside it
    /// and the folder itself is not explicitly denied.
    public func mayList(folder: ItemPath, type: RuleType = .item) -> Bool {
        // A wildcard deny covering the whole folder (e.g. `/secret/*` when listing `/secret`) hides it.
        for rule in rules where rule.type == type && rule.capabilities.contains(.deny) && rule.pattern.hasWildcard
            && ItemPath.bytes(folder.folderPrefix, haveprefix: rule.pattern.prefix) {
            return false
        }
        return rules.contains { $0.type == type && $0.capabilities.contains(.list) && $0.pattern.overlaps(folder: folder) }
    }
}

extension AuditAccess {
    public var rank: Int {
        switch self {
        case .none: 0
        case .own: 1
        case .all: 2
        }
    }
}
