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
    public let auditAccess: AuditAccess
    public let isRoot: Bool

    /// - Parameters:
    ///   - rules: the union of the rules of every role that applies to the identity.
    public init(rules: [Rule], auditAccess: AuditAccess = .none, isRoot: Bool = false) {
        self.rules = rules
        self.auditAccess = auditAccess
        self.isRoot = isRoot
    }

    public init(roles: [Role]) {
        self.init(rules: roles.flatMap(\.rules),
                  auditAccess: roles.map(\.auditAccess).max { $0.rank < $1.rank } ?? .none)
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
    var rank: Int {
        switch self {
        case .none: 0
        case .own: 1
        case .all: 2
        }
    }
}
