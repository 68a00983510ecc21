// Token management, Vault's `auth/token/*`: tokens created by other tokens (children that die
// with their parent, and orphans), lookups and revocation by accessor, and revoking a whole
// tree. A created token belongs to its creator's auth method, so it dies with that method too,
// and it carries exactly the roles it was created with.
import Foundation
import TesseraCore
import TesseraCrypto

/// What a new token should carry, as `auth/token/create` asks.
public struct TokenRequest: Sendable {
    public var roleNames: [String]
    /// The policy names as Vault shows them (with `default` unless it was left out).
    public var policies: [String]
    public var ttlSeconds: Int?
    public var explicitMaxTTLSeconds: Int
    public var displayName: String
    public var metadata: [String: String]
    public var orphan: Bool
    public var renewable: Bool
    public var path: String
    /// The token role it is created from ("" for none).
    public var tokenRole: String
    /// Set for a periodic token (its TTL is then the period).
    public var periodSeconds: Int?
    /// Vault's `num_uses` (0: no limit).
    public var numUses: Int

    public init(roleNames: [String], policies: [String], ttlSeconds: Int?, explicitMaxTTLSeconds: Int, displayName: String,
                metadata: [String: String], orphan: Bool, renewable: Bool, path: String, tokenRole: String = "",
                periodSeconds: Int? = nil, numUses: Int = 0) {
        self.numUses = numUses
        self.roleNames = roleNames
        self.policies = policies
        self.ttlSeconds = ttlSeconds
        self.explicitMaxTTLSeconds = explicitMaxTTLSeconds
        self.displayName = displayName
        self.metadata = metadata
        self.orphan = orphan
        self.renewable = renewable
        self.path = path
        self.tokenRole = tokenRole
        self.periodSeconds = periodSeconds
    }
}

extension AccessEngine {
    /// The longest TTL a created token gets, and its default (Vault's system max, 32 days, is
    /// capped at Tessera's 30).
    public static var maxCreatedTokenTTLSeconds: Int { AuthMethod.maxTokenTTLMinutes * 60 }

    /// Creates a token for `parent`'s auth method. A child (not an orphan) never outlives its
    /// parent token, and is revoked with it.
    public func createToken(parent: Principal, request: TokenRequest, clientAddress: String) async throws -> IssuedToken {
        let t = now()
        guard let method = try await store.authMethod(accessId: parent.identity.accessId) else {
            throw TesseraError.unauthorized("invalid, expired or revoked token")
        }
        var ttl = min(request.ttlSeconds ?? Self.maxCreatedTokenTTLSeconds, Self.maxCreatedTokenTTLSeconds)
        if request.explicitMaxTTLSeconds > 0 { ttl = min(ttl, request.explicitMaxTTLSeconds) }
        var expires = t.addingTimeInterval(InputNumber.interval(seconds: max(ttl, 1)))
        if let limit = method.accessExpires { expires = min(expires, limit) }
        // A token limited by use count would escape its limit through children.
        if parent.token?.usesLeft != nil { throw TesseraError.badRequest("restricted use token cannot generate child tokens") }
        let parentHash = request.orphan ? "" : (parent.token?.tokenHash ?? "")
        // The parent as stored now, not as cached: a revoked parent makes no children.
        if !parentHash.isEmpty {
            guard let p = try await store.token(hash: parentHash), !p.revoked, p.expiresAt > t else {
                throw TesseraError.unauthorized("invalid, expired or revoked token")
            }
            expires = min(expires, p.expiresAt)
        }
        let grant = TokenGrant(roleNames: request.roleNames, loginRole: request.tokenRole, displayName: request.displayName, metadata: request.metadata,
                               ttlSeconds: max(ttl, 1), policies: request.policies, path: request.path,
                               explicitMaxTTLSeconds: request.explicitMaxTTLSeconds, renewable: request.renewable,
                               periodSeconds: request.periodSeconds, numUses: request.numUses > 0 ? request.numUses : nil)
        let token = SecureRandom.token()
        let record = TokenRecord(tokenHash: AccessKeyHasher.tokenHash(token), accessId: method.accessId, issuedAt: t, expiresAt: expires,
                                 clientAddress: clientAddress, grant: grant, parentHash: parentHash,
                                 usesLeft: request.numUses > 0 ? request.numUses : nil)
        try await store.createToken(record)
        // A revocation of the parent that ran between the check and the insert did not see this
        // child: look again, and take the child back if so.
        if !parentHash.isEmpty, try await store.token(hash: parentHash).map({ $0.revoked }) ?? true {
            _ = try await store.revokeToken(hash: record.tokenHash)
            throw TesseraError.unauthorized("invalid, expired or revoked token")
        }
        return IssuedToken(token: token, record: record)
    }

    // MARK: Token roles

    public func tokenRole(named name: String) async throws -> TokenRole? { try await store.tokenRole(named: name) }
    public func tokenRoles() async throws -> [TokenRole] { try await store.tokenRoles() }
    /// Stores `role`; with `onlyIfAbsent`, only when no role of that name exists (false then).
    public func putTokenRole(_ role: TokenRole, onlyIfAbsent: Bool = false) async throws -> Bool {
        try await store.putTokenRole(role, onlyIfAbsent: onlyIfAbsent)
    }
    public func deleteTokenRole(named name: String) async throws -> Bool { try await store.deleteTokenRole(named: name) }

    /// The accessors of live tokens (`auth/token/accessors`), at most `limit`.
    public func liveTokenAccessors(limit: Int) async throws -> [String] {
        try await store.liveTokenHashes(now: now(), limit: limit).map { String($0.prefix(24)) }
    }

    /// A live token by its accessor, or nil. Accessors are 24 lower-case hex digits.
    public func token(accessor: String) async throws -> TokenRecord? {
        guard Self.isAccessor(accessor), let record = try await store.token(hashPrefix: accessor),
              !record.revoked, record.expiresAt > now() else { return nil }
        return record
    }

    /// A live token by its text, or nil.
    public func token(text: String) async throws -> TokenRecord? {
        guard text.hasPrefix("t-"), text.utf8.count <= 256,
              let record = try await store.token(hash: AccessKeyHasher.tokenHash(text)), !record.revoked, record.expiresAt > now() else { return nil }
        return record
    }

    public static func isAccessor(_ s: String) -> Bool {
        s.utf8.count == 24 && s.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }

    /// Revokes the token with this hash and, unless `orphanChildren`, every token below it.
    /// Returns how many tokens were revoked (0: it was unknown or already revoked).
    @discardableResult
    public func revokeTree(hash: String, orphanChildren: Bool = false) async throws -> Int {
        cache.remove(hash)
        let revoked = try await store.revokeToken(hash: hash)
        if orphanChildren { return revoked ? 1 : 0 }
        // The children are walked even when the token itself was already revoked, so that a
        // second revocation finishes what an interrupted one left.
        var count = revoked ? 1 : 0
        var pending = [hash]
        // Breadth first; a tree is bounded by what was created, and each level is one query.
        while let next = pending.popLast() {
            for child in try await store.childTokens(parentHash: next) {
                cache.remove(child)
                if try await store.revokeToken(hash: child) { count += 1 }
                pending.append(child)
            }
        }
        return count
    }

    /// The principal a stored token resolves to (for lookups of another token).
    public func principal(record: TokenRecord) async throws -> Principal? {
        guard let method = try await store.authMethod(accessId: record.accessId) else { return nil }
        var p = try await principal(method: method, grant: record.grant)
        p.identity.tokenHash = record.tokenHash
        p.token = record
        return p
    }
}
