// A wrapped response (Vault's response wrapping): an answer held back under a single-use
// wrapping token, stored sealed until it is unwrapped once or its TTL passes. Stored by the
// SHA-256 of the token, like tokens; the accessor (the hash's first 24 hex digits) names it.
import Foundation

public struct WrappedResponse: Sendable, Equatable {
    public var tokenHash: String
    /// The Vault path whose answer this is (`secret/data/app`, `sys/wrapping/wrap`).
    public var creationPath: String
    public var createdAt: Date
    public var ttlSeconds: Int
    public var expiresAt: Date
    /// The answer's JSON envelope, sealed under `term` with `Keyring.wrappingAAD`.
    public var ciphertext: [UInt8]
    public var term: UInt32
    /// The accessor of the token inside, for a wrapped login or token creation ("" otherwise).
    public var wrappedAccessor: String
    /// Who asked for the wrapped answer (for the audit trail).
    public var creatorAccessId: String

    public init(tokenHash: String, creationPath: String, createdAt: Date, ttlSeconds: Int, expiresAt: Date, ciphertext: [UInt8],
                term: UInt32, wrappedAccessor: String, creatorAccessId: String) {
        self.tokenHash = tokenHash
        self.creationPath = creationPath
        self.createdAt = createdAt
        self.ttlSeconds = ttlSeconds
        self.expiresAt = expiresAt
        self.ciphertext = ciphertext
        self.term = term
        self.wrappedAccessor = wrappedAccessor
        self.creatorAccessId = creatorAccessId
    }

    public static let tooMany = TesseraError.tooManyRequests("too many wrapped responses are outstanding for this identity; unwrap or let some expire")

    /// The wrapping token's accessor.
    public var accessor: String { String(tokenHash.prefix(24)) }
}
