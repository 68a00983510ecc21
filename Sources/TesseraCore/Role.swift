// Access roles and their rules: what the authorizer evaluates.
import Foundation

/// One rule of a role: a path pattern, the capabilities it grants (or `deny`), and its type.
public struct Rule: Sendable, Hashable, Codable {
    public var pattern: PathPattern
    public var capabilities: Set<Capability>
    public var type: RuleType

    public init(pattern: PathPattern, capabilities: Set<Capability>, type: RuleType) {
        self.pattern = pattern
        self.capabilities = capabilities
        self.type = type
    }
}

/// An access role: a named set of rules plus admin scopes.
public struct Role: Sendable, Hashable, Codable {
    public var name: String
    public var description: String
    public var rules: [Rule]
    public var auditAccess: AuditAccess
    public var createdAt: Date
    /// The Vault ACL policy text these rules were translated from, as it was written
    /// (`sys/policies/acl/<name>`); empty when the rules were set natively, or changed natively
    /// since — the policy then reads back as the rules themselves.
    public var policyText: String
    /// How many times the policy text was written (Vault's policy `version`).
    public var policyVersion: Int

    enum CodingKeys: String, CodingKey { case name, description, rules, auditAccess, createdAt }

    public init(name: String, description: String = "", rules: [Rule] = [], auditAccess: AuditAccess = .none, createdAt: Date = Date(),
                policyText: String = "", policyVersion: Int = 0) {
        self.name = name
        self.description = description
        self.rules = rules
        self.auditAccess = auditAccess
        self.createdAt = createdAt
        self.policyText = policyText
        self.policyVersion = policyVersion
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(name: try c.decode(String.self, forKey: .name), description: try c.decode(String.self, forKey: .description),
                  rules: try c.decode([Rule].self, forKey: .rules), auditAccess: try c.decode(AuditAccess.self, forKey: .auditAccess),
                  createdAt: try c.decode(Date.self, forKey: .createdAt))
    }

    /// Role names are plain names (optionally folder-like), validated like item paths.
    public static func validateName(_ raw: String) throws -> String {
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw TesseraError.badRequest("role-name is required") }
        // Reuse the path parser so that the same character rules apply; keep the caller's form
        // without the leading slash when it had none.
        let path = try ItemPath(trimmed)
        return trimmed.hasPrefix("/") ? path.value : String(path.value.dropFirst())
    }
}
