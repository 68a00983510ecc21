// AppRole secret ids: the credentials of an AppRole role, which is an auth method of type
// `approle` (its access id is the role_id). Stored by the SHA-256 of the secret id, like tokens;
// the accessor names one without being it.
import Foundation

public struct SecretIDRecord: Sendable, Equatable {
    /// The AppRole role's auth method.
    public var accessId: String
    public var secretHash: String
    public var accessor: String
    public var createdAt: Date
    /// nil: it does not expire.
    public var expiresAt: Date?
    /// Logins left; nil: unlimited.
    public var usesLeft: Int?
    /// Shown in lookups and copied into the tokens of its logins.
    public var metadata: [String: String]
    /// Client addresses it may log in from (empty: any).
    public var cidrs: [String]

    public init(accessId: String, secretHash: String, accessor: String, createdAt: Date, expiresAt: Date?, usesLeft: Int?,
                metadata: [String: String], cidrs: [String]) {
        self.accessId = accessId
        self.secretHash = secretHash
        self.accessor = accessor
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.usesLeft = usesLeft
        self.metadata = metadata
        self.cidrs = cidrs
    }
}
