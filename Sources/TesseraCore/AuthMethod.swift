// Auth methods and issued tokens as domain records. Keys and tokens appear only as hashes.
import Foundation

public struct AuthMethod: Sendable, Equatable {
    /// `p-` followed by 12 random characters.
    public var accessId: String
    public var name: String
    /// `api_key` for now.
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

    public init(accessId: String, name: String, type: String, keyHash: [UInt8], keySalt: [UInt8],
                tokenTTLMinutes: Int, boundCIDRs: [String] = [], accessExpires: Date? = nil, createdAt: Date) {
        self.accessId = accessId
        self.name = name
        self.type = type
        self.keyHash = keyHash
        self.keySalt = keySalt
        self.tokenTTLMinutes = tokenTTLMinutes
        self.boundCIDRs = boundCIDRs
        self.accessExpires = accessExpires
        self.createdAt = createdAt
    }

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

/// An issued token, stored by the hash of its text.
public struct TokenRecord: Sendable, Equatable {
    public var tokenHash: String
    public var accessId: String
    public var issuedAt: Date
    public var expiresAt: Date
    public var revoked: Bool
    public var clientAddress: String

    public init(tokenHash: String, accessId: String, issuedAt: Date, expiresAt: Date, revoked: Bool = false, clientAddress: String = "") {
        self.tokenHash = tokenHash
        self.accessId = accessId
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.revoked = revoked
        self.clientAddress = clientAddress
    }
}
