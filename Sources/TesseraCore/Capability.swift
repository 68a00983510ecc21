// Capabilities and rule types of access roles, with their wire names.

/// What a rule allows (or, for `deny`, forbids) on the paths it matches.
public enum Capability: String, Sendable, Codable, CaseIterable, Hashable {
    case read, create, update, delete, list, deny
}

/// Which kind of object a rule's path names.
public enum RuleType: String, Sendable, Codable, CaseIterable, Hashable {
    /// Items: secrets and, later, dynamic and rotated secrets.
    case item = "item-rule"
    /// Managing access roles themselves.
    case role = "role-rule"
    /// Managing auth methods themselves.
    case authMethod = "auth-method-rule"
    /// Targets (connections to databases, hosts, upstream vaults).
    case target = "target-rule"

    public init(wire: String?) throws {
        guard let wire, !wire.isEmpty else { self = .item; return }
        guard let t = RuleType(rawValue: wire) else {
            throw TesseraError.badRequest("invalid rule-type '\(wire)': expected one of "
                + RuleType.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self = t
    }
}

/// How much of the audit trail a role may read.
public enum AuditAccess: String, Sendable, Codable, CaseIterable {
    case none, own, all

    public init(wire: String?) throws {
        guard let wire, !wire.isEmpty else { self = .none; return }
        // Akeyless also has "scoped"; Tessera treats it as "own" until scoped views exist.
        if wire == "scoped" { self = .own; return }
        guard let v = AuditAccess(rawValue: wire) else {
            throw TesseraError.badRequest("invalid audit-access '\(wire)': expected none, own or all")
        }
        self = v
    }
}
