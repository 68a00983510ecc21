// Capabilities and rule types of access roles, with their wire names.

/// What a rule allows (or, for `deny`, forbids) on the paths it matches.
public enum Capability: String, Sendable, Codable, CaseIterable, Hashable {
    case read, create, update, delete, list, deny
    /// Using a target's stored credentials: creating or changing a connector, producer, rotated
    /// secret or connector-backed mount over the target. Distinct from `read`, which shows only
    /// the target's metadata.
    case use
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
    /// System operations, Vault's `sudo` paths: `/sys/seal`, `/sys/mounts/<path>`,
    /// `/sys/leases/revoke-prefix/<prefix>`, `/sys/leases/revoke-force`, `/sys/metrics`,
    /// `/sys/rotators/custom-command`. No item rule grants any of them.
    case system = "sys-rule"

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
