// Auth methods and issued tokens as domain records. Keys and tokens appear only as hashes.
import Foundation

public struct AuthMethod: Sendable, Equatable {
    /// `p-` followed by 12 random characters.
    public var accessId: String
    public var name: String
    /// `api_key`, `oauth2` (JWT/OIDC, Vault's `jwt`), `k8s` (Vault's `kubernetes`) or `cert`.
    public var type: String
    /// Salted hash of the access key (see TesseraCrypto.AccessKeyHasher).
    public var keyHash: [UInt8]
    public var keySalt: [UInt8]
    /// Token lifetime in minutes.
    public var tokenTTLMinutes: Int
    /// Source addresses allowed to authenticate (CIDRs); empty means any.
    public var boundCIDRs: [String]
    /// When the method stops being usable; nil means never.
    public var accessExpires: Date?
    public var createdAt: Date
    /// The method's settings (key sources, bound claims, API servers, trusted CAs); an empty
    /// object for API keys. Credentials inside it are sealed by the engine that writes them.
    public var config: JSON

    public init(accessId: String, name: String, type: String, keyHash: [UInt8], keySalt: [UInt8],
                tokenTTLMinutes: Int, boundCIDRs: [String] = [], accessExpires: Date? = nil, createdAt: Date,
                config: JSON = .object([])) {
        self.accessId = accessId
        self.name = name
        self.type = type
        self.keyHash = keyHash
        self.keySalt = keySalt
        self.tokenTTLMinutes = tokenTTLMinutes
        self.boundCIDRs = boundCIDRs
        self.accessExpires = accessExpires
        self.createdAt = createdAt
        self.config = config
    }

    public static let apiKeyType = "api_key"

    public static let defaultTokenTTLMinutes = 60
    public static let maxTokenTTLMinutes = 60 * 24 * 30
}

/// An association between a role and an auth method.
public struct RoleAssociation: Sendable, Equatable {
    public var id: String
    public var roleName: String
    public var accessId: String
    public var subClaims: [String: [String]]

    public init(id: String, roleName: String, accessId: String, subClaims: [String: [String]] = [:]) {
        self.id = id
        self.roleName = roleName
        self.accessId = accessId
        self.subClaims = subClaims
    }
}

/// A named login role of an auth method (Vault's `auth/<mount>/role/<name>`): the bounds a
/// credential must meet and what the token it gets carries.
public struct AuthMethodRole: Sendable, Equatable {
    public var accessId: String
    public var name: String
    public var config: JSON

    public init(accessId: String, name: String, config: JSON) {
        self.accessId = accessId
        self.name = name
        self.config = config
    }
}

/// What a workload-identity login granted, fixed when the token is issued (as Vault fixes a
/// token's policies): the access roles, the login role, and the identifying claims shown in
/// lookups. API-key tokens have none and take their roles from the method's associations.
public struct TokenGrant: Sendable, Equatable, Codable {
    public var roleNames: [String]
    public var loginRole: String
    public var displayName: String
    public var metadata: [String: String]
    public var ttlSeconds: Int
    /// Set for a token made by `auth/token/create`: the policy names as Vault shows them, the
    /// path it was created on, its explicit max TTL (0: none) and whether it may be renewed.
    public var policies: [String]?
    public var path: String?
    public var explicitMaxTTLSeconds: Int?
    public var renewable: Bool?
    /// The period of a periodic token (shown in lookups; its TTL is the period).
    public var periodSeconds: Int?
    /// Vault's `num_uses`: the number of requests the token may make (nil or 0: no limit).
    public var numUses: Int?

    public init(roleNames: [String], loginRole: String, displayName: String, metadata: [String: String], ttlSeconds: Int,
                policies: [String]? = nil, path: String? = nil, explicitMaxTTLSeconds: Int? = nil, renewable: Bool? = nil,
                periodSeconds: Int? = nil, numUses: Int? = nil) {
        self.numUses = numUses
        self.roleNames = roleNames
        self.loginRole = loginRole
        self.displayName = displayName
        self.metadata = metadata
        self.ttlSeconds = ttlSeconds
        self.policies = policies
        self.path = path
        self.explicitMaxTTLSeconds = explicitMaxTTLSeconds
        self.renewable = renewable
        self.periodSeconds = periodSeconds
    }

    /// The stored form (`tokens.grant_info`); `""` stands for no grant.
    public static func storedText(_ grant: TokenGrant?) throws -> String {
        guard let grant else { return "" }
        return String(decoding: try JSONEncoder().encode(grant), as: UTF8.self)
    }

    public static func fromStoredText(_ text: String) throws -> TokenGrant? {
        text.isEmpty ? nil : try JSONDecoder().decode(TokenGrant.self, from: Data(text.utf8))
    }
}

/// An issued token, stored by the hash of its text.
public struct TokenRecord: Sendable, Equatable {
    public var tokenHash: String
    public var accessId: String
    public var issuedAt: Date
    public var expiresAt: Date
    public var revoked: Bool
    public var clientAddress: String
    public var grant: TokenGrant?
    /// The hash of the token that created this one (`auth/token/create`); empty for a login's
    /// token and for orphans. Revoking the parent revokes this token.
    public var parentHash: String
    /// The requests a token limited by use count may still make (nil: no limit). Each request
    /// spends one before it is served; the one that spends the last revokes the token.
    public var usesLeft: Int?

    /// Vault's accessor: the first 24 hex digits of the token's hash, which names the token
    /// without being it.
    public var accessor: String { String(tokenHash.prefix(24)) }

    public init(tokenHash: String, accessId: String, issuedAt: Date, expiresAt: Date, revoked: Bool = false, clientAddress: String = "",
                grant: TokenGrant? = nil, parentHash: String = "", usesLeft: Int? = nil) {
        self.usesLeft = usesLeft
        self.parentHash = parentHash
        self.tokenHash = tokenHash
        self.accessId = accessId
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.revoked = revoked
        self.clientAddress = clientAddress
        self.grant = grant
    }
}

extension AuthMethod {
    /// Keys of an auth mount's `config` that hold its tuned lease TTLs (`sys/auth/<path>/tune`).
    public static let tunedDefaultLeaseTTLKey = "tune_default_lease_ttl"
    public static let tunedMaxLeaseTTLKey = "tune_max_lease_ttl"

    /// The tuned maximum lifetime of the tokens its logins issue, if one was set.
    public var tunedMaxLeaseTTL: Int? { tuned(Self.tunedMaxLeaseTTLKey) }
    /// The tuned default lifetime of those tokens, if one was set.
    public var tunedDefaultLeaseTTL: Int? { tuned(Self.tunedDefaultLeaseTTLKey) }

    private func tuned(_ key: String) -> Int? {
        if case .int(let v)? = config[key], v > 0 { return Int(exactly: v) }
        return nil
    }
}
