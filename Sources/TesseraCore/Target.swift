// Targets (named connections with credentials) and Universal Secret Connectors as domain records.
import Foundation

/// A connection to an external system. Credentials appear here only as ciphertext.
public struct Target: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case hashiVault = "hashi-vault"
        case database = "db"
        case ssh = "ssh"
    }

    public var name: String
    public var kind: Kind
    /// Non-secret settings, e.g. `url`, `namespace`, `kv_mount` for a Vault target.
    public var settings: [String: String]
    /// The credential (e.g. the Vault token), sealed with AAD bound to the target's name.
    public var credentialCiphertext: [UInt8]
    public var keyTerm: UInt32
    public var createdAt: Date

    public init(name: String, kind: Kind, settings: [String: String], credentialCiphertext: [UInt8], keyTerm: UInt32, createdAt: Date) {
        self.name = name
        self.kind = kind
        self.settings = settings
        self.credentialCiphertext = credentialCiphertext
        self.keyTerm = keyTerm
        self.createdAt = createdAt
    }

    /// Target names follow the item-name rules (no leading slash kept).
    public static func validateName(_ raw: String) throws -> String {
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw TesseraError.badRequest("name is required") }
        return String(try ItemPath(trimmed).value.dropFirst())
    }
}

/// A Universal Secret Connector: a name bound to a target whose secrets it exposes in place.
public struct SecretConnector: Sendable, Equatable {
    public var name: String
    public var targetName: String
    /// Only secrets under this prefix of the upstream mount are exposed ("" = all).
    public var prefix: String
    public var description: String
    public var createdAt: Date

    public init(name: String, targetName: String, prefix: String = "", description: String = "", createdAt: Date) {
        self.name = name
        self.targetName = targetName
        self.prefix = prefix
        self.description = description
        self.createdAt = createdAt
    }

    /// The item path that authorizes a secret of this connector: `/<usc-name>/<secret-id>`.
    public func itemPath(secretId: String) throws -> ItemPath {
        try ItemPath("/" + name + "/" + secretId)
    }

    public var folder: ItemPath {
        get throws { try ItemPath(folder: "/" + name) }
    }
}
