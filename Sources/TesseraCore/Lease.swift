// Dynamic-secret producers and the leases of the credentials they issue.
import Foundation

/// A dynamic-secret producer: how to create and revoke short-lived credentials on a target.
public struct Producer: Sendable, Equatable {
    /// The producer's item path, e.g. `/db/readonly`.
    public var path: ItemPath
    public var targetName: String
    /// Statements run to create the credential; `{{name}}`, `{{password}}`, `{{expiration}}`.
    public var creationStatements: String
    /// Statements run to revoke it; `{{name}}`. Empty means the built-in safe default.
    public var revocationStatements: String
    public var userTTL: Int
    public var maxTTL: Int
    public var passwordLength: Int
    /// The prefix of generated user names.
    public var usernamePrefix: String
    /// The most leases that may be active at once (0 = no limit).
    public var maxLeases: Int
    public var createdAt: Date

    public init(path: ItemPath, targetName: String, creationStatements: String, revocationStatements: String, userTTL: Int,
                maxTTL: Int, passwordLength: Int, usernamePrefix: String, maxLeases: Int, createdAt: Date) {
        self.path = path
        self.targetName = targetName
        self.creationStatements = creationStatements
        self.revocationStatements = revocationStatements
        self.userTTL = userTTL
        self.maxTTL = maxTTL
        self.passwordLength = passwordLength
        self.usernamePrefix = usernamePrefix
        self.maxLeases = maxLeases
        self.createdAt = createdAt
    }
}

/// A lease on one issued credential.
public struct Lease: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        /// Recorded before the credential is created; reconciled at start-up if the server died.
        case pending
        case active
        /// Revocation failed and is being retried with backoff.
        case revoking
        case revoked
        /// Revocation failed too often; needs an operator (force revoke).
        case irrevocable
    }

    /// `<producer path without leading slash>/<24 random characters>`, as Vault's lease ids.
    public var id: String
    public var producer: String
    public var username: String
    public var accessId: String
    public var issuedAt: Date
    public var expiresAt: Date
    public var maxExpiresAt: Date
    public var lastRenewal: Date?
    public var state: State
    public var attempts: Int
    public var nextAttemptAt: Date?
    public var lastError: String

    public init(id: String, producer: String, username: String, accessId: String, issuedAt: Date, expiresAt: Date,
                maxExpiresAt: Date, lastRenewal: Date? = nil, state: State, attempts: Int = 0, nextAttemptAt: Date? = nil,
                lastError: String = "") {
        self.id = id
        self.producer = producer
        self.username = username
        self.accessId = accessId
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.maxExpiresAt = maxExpiresAt
        self.lastRenewal = lastRenewal
        self.state = state
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
    }
}
