// The access engine: API-key auth methods, tokens, roles, rules and role associations, and the
// resolution of a token into an Identity with its Authorizer.
import Foundation
import TesseraCore
import TesseraCrypto
import TesseraStore

/// A created auth method with its access key, which is shown once and never stored.
public struct IssuedAuthMethod: Sendable {
    public var method: AuthMethod
    public var accessKey: String
}

/// A token issued by `auth`, with its text (shown once, stored only as a hash).
public struct IssuedToken: Sendable {
    public var token: String
    public var record: TokenRecord
}

/// The caller behind a valid token.
public struct Principal: Sendable {
    public var identity: Identity
    public var authorizer: Authorizer
    public var token: TokenRecord?
    /// When the auth method was created.
    public var createdAt: Date?
    /// The auth method's bound CIDRs, checked against the client address on every request.
    public var boundCIDRs: [String] = []
    /// The auth method's `access-expires`: no credential of the method works after it.
    public var accessExpires: Date?

    /// Who owns what this principal issues (leases): an API key's auth method, or, for a token
    /// that carries a grant (a created token, an AppRole or workload-identity login), that token
    /// alone — logins of one method with different grants are not one another.
    public var leaseOwner: String {
        if let t = token, t.grant != nil { return identity.accessId + ":" + t.accessor }
        return identity.accessId
    }

    /// Whether this principal may act from `clientAddress` at `now`: the method has not expired and
    /// the address is inside its bound CIDRs (when it has any).
    func admits(clientAddress: String, now: Date) -> Bool {
        if let accessExpires, accessExpires <= now { return false }
        if let token, token.expiresAt <= now { return false }
        guard !boundCIDRs.isEmpty else { return true }
        return boundCIDRs.contains { (try? CIDR($0))?.contains(clientAddress) ?? false }
    }
}

public struct AccessEngine: Sendable {
    public static let adminRoleName = "admin"
    let store: any Store
    let now: @Sendable () -> Date
    let cache: PrincipalCache
    public let throttle: LoginThrottle
    /// Hits and misses of the principal cache, for the metrics.
    public var principalCacheCounter: HitCounter { cache.counter }

    public init(store: any Store, now: @escaping @Sendable () -> Date = Date.init, cacheLifetime: TimeInterval = 5,
                loginLimits: LoginThrottleLimits = LoginThrottleLimits()) {
        self.store = store
        self.now = now
        self.cache = PrincipalCache(lifetime: cacheLifetime)
        self.throttle = LoginThrottle(limits: loginLimits)
    }

    /// Forgets every cached verification (after any change to access data).
    func accessChanged() {
        cache.removeAll()
    }

    /// A change to access data committed by another node: forget every cached verification.
    public func accessChangedElsewhere() {
        cache.removeAll()
    }

    /// While changes from other nodes may be missed, verify every request against the store.
    public func setCacheUsable(_ usable: Bool) {
        cache.setUsable(usable)
    }

    // MARK: Auth methods

    /// Normalizes an auth method name as an item-like path (`admins/ci` → `/admins/ci`).
    public static func authMethodName(_ raw: String) throws -> String {
        guard !raw.trimmingCharacters(in: .whitespaces).isEmpty else { throw TesseraError.badRequest("name is required") }
        return try ItemPath(raw).value
    }

    public func createAPIKeyMethod(name rawName: String, tokenTTLMinutes: Int?, boundCIDRs: [String] = [],
                                   accessExpires: Date? = nil, accessId: String? = nil, accessKey: String? = nil) async throws -> IssuedAuthMethod {
        let name = try Self.authMethodName(rawName)
        let ttl = tokenTTLMinutes.flatMap { $0 > 0 ? $0 : nil } ?? AuthMethod.defaultTokenTTLMinutes
        guard ttl <= AuthMethod.maxTokenTTLMinutes else {
            throw TesseraError.badRequest("jwt-ttl must be at most \(AuthMethod.maxTokenTTLMinutes) minutes")
        }
        for cidr in boundCIDRs { _ = try CIDR(cidr) }
        let id = accessId ?? SecureRandom.accessId()
        guard Self.isValidAccessId(id) else {
            throw TesseraError.badRequest("access id must be 'p-' followed by 1 to 64 letters or digits")
        }
        let key = accessKey ?? SecureRandom.accessKey()
        guard key.utf8.count >= 8, !key.contains("..") else {
            throw TesseraError.badRequest("access key must be at least 8 characters and must not contain '..'")
        }
        let salt = SecureRandom.bytes(16)
        let method = AuthMethod(accessId: id, name: name, type: "api_key", keyHash: AccessKeyHasher.hash(key: key, salt: salt),
                                keySalt: salt, tokenTTLMinutes: ttl, boundCIDRs: boundCIDRs, accessExpires: accessExpires,
                                createdAt: now())
        if try await store.authMethod(accessId: id) != nil {
            throw TesseraError.conflict("an auth method with this access id already exists")
        }
        try await store.createAuthMethod(method)
        accessChanged()
        return IssuedAuthMethod(method: method, accessKey: key)
    }

    /// Creates an auth method of a workload-identity type: no access key, its settings in `config`.
    public func createMethod(name rawName: String, type: String, config: JSON, tokenTTLMinutes: Int?, boundCIDRs: [String] = [],
                             accessExpires: Date? = nil) async throws -> AuthMethod {
        let name = try Self.authMethodName(rawName)
        let ttl = tokenTTLMinutes.flatMap { $0 > 0 ? $0 : nil } ?? AuthMethod.defaultTokenTTLMinutes
        guard ttl <= AuthMethod.maxTokenTTLMinutes else {
            throw TesseraError.badRequest("jwt-ttl must be at most \(AuthMethod.maxTokenTTLMinutes) minutes")
        }
        for cidr in boundCIDRs { _ = try CIDR(cidr) }
        let method = AuthMethod(accessId: SecureRandom.accessId(), name: name, type: type, keyHash: [], keySalt: [],
                                tokenTTLMinutes: ttl, boundCIDRs: boundCIDRs, accessExpires: accessExpires, createdAt: now(), config: config)
        try await store.createAuthMethod(method)
        accessChanged()
        return method
    }

    /// Replaces a method's settings (never its type, name or key).
    public func updateMethod(_ method: AuthMethod) async throws {
        for cidr in method.boundCIDRs { _ = try CIDR(cidr) }
        guard try await store.updateAuthMethod(method) else { throw TesseraError.notFound("auth method \(method.name) not found") }
        accessChanged()
    }

    public func putLoginRole(_ role: AuthMethodRole) async throws {
        try await store.putAuthMethodRole(role)
        accessChanged()
    }

    public func loginRole(accessId: String, name: String) async throws -> AuthMethodRole? {
        try await store.authMethodRole(accessId: accessId, name: name)
    }

    public func loginRoles(accessId: String) async throws -> [AuthMethodRole] {
        try await store.authMethodRoles(accessId: accessId)
    }

    public func deleteLoginRole(accessId: String, name: String) async throws -> Bool {
        let removed = try await store.deleteAuthMethodRole(accessId: accessId, name: name)
        accessChanged()
        return removed
    }

    public func authMethod(accessId: String) async throws -> AuthMethod? {
        Self.isValidAccessId(accessId) ? try await store.authMethod(accessId: accessId) : nil
    }

    /// Issues a token for a verified workload-identity login, carrying what the login granted.
    /// Its lifetime is the grant's TTL, never beyond the method's `access-expires`.
    public func issueToken(method: AuthMethod, grant: TokenGrant, clientAddress: String) async throws -> IssuedToken {
        let t = now()
        if let expires = method.accessExpires, expires <= t {
            throw TesseraError.unauthorized("authentication failed: the auth method's access has expired")
        }
        let token = SecureRandom.token()
        // The mount's tuned max lease TTL caps its logins' tokens.
        let longest = min(method.tunedMaxLeaseTTL ?? Int.max, AuthMethod.maxTokenTTLMinutes * 60)
        var expires = t.addingTimeInterval(InputNumber.interval(seconds: min(max(grant.ttlSeconds, 1), longest)))
        if let limit = method.accessExpires { expires = min(expires, limit) }
        let record = TokenRecord(tokenHash: AccessKeyHasher.tokenHash(token), accessId: method.accessId, issuedAt: t,
                                 expiresAt: expires, clientAddress: clientAddress, grant: grant,
                                 usesLeft: grant.numUses.flatMap { $0 > 0 ? $0 : nil })
        try await store.createToken(record)
        return IssuedToken(token: token, record: record)
    }

    public static func isValidAccessId(_ id: String) -> Bool {
        guard id.hasPrefix("p-") else { return false }
        let rest = id.dropFirst(2)
        return (1...64).contains(rest.count) && rest.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
    }

    public func authMethod(named raw: String) async throws -> AuthMethod {
        let name = try Self.authMethodName(raw)
        guard let m = try await store.authMethod(name: name) else { throw TesseraError.notFound("auth method \(name) not found") }
        return m
    }

    public func authMethods() async throws -> [AuthMethod] { try await store.authMethods() }

    public func deleteAuthMethod(named raw: String) async throws -> AuthMethod {
        let m = try await authMethod(named: raw)
        _ = try await store.deleteAuthMethod(accessId: m.accessId)
        accessChanged()
        return m
    }

    // MARK: Tokens

    /// Exchanges an access id and key for a token. Every failure gives the same message, so that
    /// a caller cannot tell an unknown id from a wrong key.
    public func authenticate(accessId: String, accessKey: String, clientAddress: String) async throws -> IssuedToken {
        let method = try await verifiedMethod(accessId: accessId, accessKey: accessKey, clientAddress: clientAddress,
                                              failure: TesseraError.unauthorized("authentication failed: invalid access id or access key"))
        let t = now()
        let token = SecureRandom.token()
        var expires = t.addingTimeInterval(Self.tokenTTL(method))
        if let limit = method.accessExpires { expires = min(expires, limit) }
        let record = TokenRecord(tokenHash: AccessKeyHasher.tokenHash(token), accessId: method.accessId, issuedAt: t,
                                 expiresAt: expires, clientAddress: clientAddress)
        try await store.createToken(record)
        return IssuedToken(token: token, record: record)
    }

    /// Checks an access id and key (throttled per access id and per address), the method's expiry
    /// and its bound CIDRs. Every wrong id or key gives `failure`, so an unknown id and a wrong key
    /// look the same.
    func verifiedMethod(accessId: String, accessKey: String, clientAddress: String, failure: TesseraError) async throws -> AuthMethod {
        let t = now()
        let throttleId = String(accessId.prefix(80))
        try throttle.check(accessId: throttleId, address: clientAddress, now: t)
        let method = Self.isValidAccessId(accessId) ? try await store.authMethod(accessId: accessId) : nil
        guard let method else {
            // Spend the same work as a real check.
            _ = AccessKeyHasher.verify(key: accessKey, salt: [UInt8](repeating: 0, count: 16), hash: [UInt8](repeating: 0, count: 32))
            throttle.recordFailure(accessId: throttleId, address: clientAddress, now: t)
            throw failure
        }
        guard method.type == AuthMethod.apiKeyType, AccessKeyHasher.verify(key: accessKey, salt: method.keySalt, hash: method.keyHash) else {
            throttle.recordFailure(accessId: throttleId, address: clientAddress, now: t)
            throw failure
        }
        if let expires = method.accessExpires, expires <= t {
            throw TesseraError.unauthorized("authentication failed: the auth method's access has expired")
        }
        if !method.boundCIDRs.isEmpty {
            let allowed = method.boundCIDRs.contains { (try? CIDR($0))?.contains(clientAddress) ?? false }
            guard allowed else { throw TesseraError.unauthorized("authentication failed: client address is not allowed for this auth method") }
        }
        return method
    }

    /// The lifetime of a new token, and the longest a renewal may extend it from its issue time.
    static func tokenTTL(_ method: AuthMethod) -> TimeInterval {
        InputNumber.interval(seconds: min(max(method.tokenTTLMinutes, 0), AuthMethod.maxTokenTTLMinutes) * 60)
    }

    /// No renewal takes a token beyond this time after it was issued (Vault's max TTL).
    public static let maxTokenLifetime = InputNumber.interval(seconds: AuthMethod.maxTokenTTLMinutes * 60)

    /// Resolves a token into its principal, or throws `unauthorized`.
    /// The token dies with its auth method: when the method is deleted (or replaced by a new one
    /// with the same access id), or its `access-expires` passes. The method's bound CIDRs apply to
    /// every request the token makes, not only to the login.
    /// A token limited by use count spends one use here, unless `spendingUse` is false (a
    /// second look at the token within the request that spent it, or a check that is no use).
    public func principal(token: String, clientAddress: String, spendingUse: Bool = true) async throws -> Principal {
        let invalid = TesseraError.unauthorized("invalid, expired or revoked token")
        guard token.hasPrefix("t-"), token.utf8.count <= 256 else { throw invalid }
        let hash = AccessKeyHasher.tokenHash(token)
        let t = now()
        let generation = cache.generation
        if let cached = cache.get(hash, now: t) {
            guard cached.admits(clientAddress: clientAddress, now: t) else { throw invalid }
            return cached
        }
        guard var record = try await store.token(hash: hash), !record.revoked, record.expiresAt > t else { throw invalid }
        guard let method = try await store.authMethod(accessId: record.accessId),
              record.issuedAt.addingTimeInterval(0.001) >= method.createdAt else { throw invalid }
        var p = try await principal(method: method, grant: record.grant)
        p.identity.tokenHash = hash
        p.token = record
        guard p.admits(clientAddress: clientAddress, now: t) else { throw invalid }
        if record.usesLeft != nil {
            guard spendingUse else { return p }
            // Limited by use count: never cached, and this request spends a use before it is
            // served (the last one revokes the token).
            guard let left = try await store.spendTokenUse(hash: hash) else { throw invalid }
            record.usesLeft = left
            p.token = record
            return p
        }
        cache.put(hash, p, now: t, generation: generation)
        return p
    }

    /// Resolves an access id and key directly (the Vault front-end's `<access-id>..<access-key>` token).
    /// Every use is a login: throttled, bound CIDRs and expiry checked on every request.
    public func principal(accessId: String, accessKey: String, clientAddress: String) async throws -> Principal {
        let invalid = TesseraError.unauthorized("invalid access id or access key")
        let cacheKey = "ak:" + AccessKeyHasher.tokenHash(accessId + ".." + accessKey)
        let t = now()
        let generation = cache.generation
        if let cached = cache.get(cacheKey, now: t) {
            try throttle.check(accessId: String(accessId.prefix(80)), address: clientAddress, now: t)
            guard cached.admits(clientAddress: clientAddress, now: t) else { throw invalid }
            return cached
        }
        let method = try await verifiedMethod(accessId: accessId, accessKey: accessKey, clientAddress: clientAddress, failure: invalid)
        let p = try await principal(method: method)
        cache.put(cacheKey, p, now: t, generation: generation)
        return p
    }

    /// The principal of a method's credential: with the roles its login granted (a workload
    /// identity), else with every role associated with the method (an API key).
    func principal(method: AuthMethod, grant: TokenGrant? = nil) async throws -> Principal {
        let names: [String]
        if let grant { names = grant.roleNames } else { names = try await store.associations(accessId: method.accessId).map(\.roleName) }
        var roles: [Role] = []
        for name in Set(names).sorted() {
            if let r = try await store.role(named: name) { roles.append(r) }
        }
        let identity = Identity(authMethodType: method.type, accessId: method.accessId, authMethodName: method.name,
                                roleNames: roles.map(\.name))
        return Principal(identity: identity, authorizer: Authorizer(roles: roles), token: nil, createdAt: method.createdAt,
                         boundCIDRs: method.boundCIDRs, accessExpires: method.accessExpires)
    }

    /// The authorizer of an auth method, for `explain` (no credential is checked or issued).
    public func authorizer(accessId: String) async throws -> Authorizer {
        guard Self.isValidAccessId(accessId), let method = try await store.authMethod(accessId: accessId) else {
            throw TesseraError.notFound("auth method with access id \(accessId.prefix(80)) not found")
        }
        return try await principal(method: method).authorizer
    }

    /// Extends a token by its auth method's TTL from now, but never beyond `maxTokenLifetime` after
    /// it was issued, nor beyond the method's `access-expires`.
    public func renew(token: String, clientAddress: String) async throws -> TokenRecord {
        let p = try await principal(token: token, clientAddress: clientAddress, spendingUse: false)
        guard let record = p.token else { throw TesseraError.unauthorized("invalid, expired or revoked token") }
        return try await renew(record: record)
    }

    /// Extends a live token (see `renew(token:)`), found by its record.
    public func renew(record found: TokenRecord) async throws -> TokenRecord {
        var record = found
        guard let method = try await store.authMethod(accessId: record.accessId) else {
            throw TesseraError.unauthorized("invalid, expired or revoked token")
        }
        if record.grant?.renewable == false { throw TesseraError.badRequest("token is not renewable") }
        let ttl = record.grant.map { InputNumber.interval(seconds: min(max($0.ttlSeconds, 1), AuthMethod.maxTokenTTLMinutes * 60)) }
            ?? Self.tokenTTL(method)
        var expires = min(now().addingTimeInterval(ttl), record.issuedAt.addingTimeInterval(Self.maxTokenLifetime))
        if let limit = method.accessExpires { expires = min(expires, limit) }
        if let tuned = method.tunedMaxLeaseTTL { expires = min(expires, record.issuedAt.addingTimeInterval(InputNumber.interval(seconds: tuned))) }
        if let explicit = record.grant?.explicitMaxTTLSeconds, explicit > 0 {
            expires = min(expires, record.issuedAt.addingTimeInterval(InputNumber.interval(seconds: explicit)))
        }
        // A child never outlives its parent.
        if !record.parentHash.isEmpty {
            let parent = try await store.token(hash: record.parentHash)
            expires = min(expires, parent.map { $0.revoked ? now() : $0.expiresAt } ?? now())
        }
        record.expiresAt = max(record.expiresAt, expires)
        guard try await store.renewToken(hash: record.tokenHash, expiresAt: record.expiresAt) else {
            throw TesseraError.unauthorized("invalid, expired or revoked token")
        }
        cache.remove(record.tokenHash)
        return record
    }

    /// Revokes a token and every token created below it.
    public func revoke(token: String) async throws {
        guard try await revokeTree(hash: AccessKeyHasher.tokenHash(token)) > 0 else {
            throw TesseraError.notFound("token not found or already revoked")
        }
    }

    // MARK: Roles

    public func createRole(name raw: String, description: String, auditAccess: AuditAccess) async throws -> Role {
        let name = try Role.validateName(raw)
        let role = Role(name: name, description: description, rules: [], auditAccess: auditAccess, createdAt: now())
        try await store.createRole(role)
        accessChanged()
        return role
    }

    public func role(named raw: String) async throws -> Role {
        let name = try Role.validateName(raw)
        guard let r = try await store.role(named: name) else { throw TesseraError.notFound("role \(name) not found") }
        return r
    }

    public func roles() async throws -> [Role] { try await store.roles() }

    public func deleteRole(named raw: String) async throws -> Role {
        let r = try await role(named: raw)
        _ = try await store.deleteRole(named: r.name)
        accessChanged()
        return r
    }

    /// Sets the capabilities of the rule with this path and type, replacing an existing one.
    public func setRule(roleName: String, pattern: PathPattern, capabilities: Set<Capability>, type: RuleType) async throws -> Role {
        guard !capabilities.isEmpty else { throw TesseraError.badRequest("at least one capability is required") }
        var r = try await role(named: roleName)
        r.rules.removeAll { $0.pattern == pattern && $0.type == type }
        r.rules.append(Rule(pattern: pattern, capabilities: capabilities, type: type))
        // The policy text no longer says what the rules are: it reads back as the rules.
        r.policyText = ""
        try await store.updateRole(r)
        accessChanged()
        return r
    }

    public func deleteRule(roleName: String, pattern: PathPattern, type: RuleType) async throws -> Bool {
        var r = try await role(named: roleName)
        let before = r.rules.count
        r.rules.removeAll { $0.pattern == pattern && $0.type == type }
        guard r.rules.count != before else {
            throw TesseraError.notFound("role \(r.name) has no \(type.rawValue) for \(pattern)")
        }
        r.policyText = ""
        try await store.updateRole(r)
        accessChanged()
        return true
    }

    /// Writes a Vault ACL policy: the role of that name gets exactly `rules` (created when it does
    /// not exist) and keeps the text it was translated from. Returns the role before and after.
    public func putPolicy(name raw: String, rules: [Rule], text: String) async throws -> (old: Role?, new: Role) {
        let name = try Role.validateName(raw)
        if var r = try await store.role(named: name) {
            let old = r
            r.rules = rules
            r.policyText = text
            r.policyVersion += 1
            try await store.updateRole(r)
            accessChanged()
            return (old, r)
        }
        let r = Role(name: name, rules: rules, createdAt: now(), policyText: text, policyVersion: 1)
        try await store.createRole(r)
        accessChanged()
        return (nil, r)
    }

    public func associate(roleName: String, authMethodName: String, subClaims: [String: [String]]) async throws -> RoleAssociation {
        let r = try await role(named: roleName)
        let m = try await authMethod(named: authMethodName)
        let a = RoleAssociation(id: "ass-" + SecureRandom.string(length: 20), roleName: r.name, accessId: m.accessId, subClaims: subClaims)
        try await store.createAssociation(a)
        accessChanged()
        return a
    }

    public func associations(roleName: String) async throws -> [RoleAssociation] {
        try await store.associations(roleName: roleName)
    }

    public func associations(accessId: String) async throws -> [RoleAssociation] {
        try await store.associations(accessId: accessId)
    }

    public func deleteAssociation(id: String) async throws {
        guard try await store.deleteAssociation(id: id) else { throw TesseraError.notFound("association \(id) not found") }
        accessChanged()
    }

    /// The admin role: every capability on every path of every rule type, and all of the audit trail.
    public static func adminRole(at date: Date) throws -> Role {
        let all: Set<Capability> = [.read, .create, .update, .delete, .list, .use]
        let everything = try PathPattern("/*")
        return Role(name: adminRoleName, description: "Full access, created at initialization",
                    rules: RuleType.allCases.map { Rule(pattern: everything, capabilities: all, type: $0) },
                    auditAccess: .all, createdAt: date)
    }

    /// An admin role created before system rules and the target `use` capability existed gets
    /// them, so that its holders keep every right they had. Returns whether it changed.
    public func upgradeAdminRole() async throws -> Bool {
        guard var role = try await store.role(named: Self.adminRoleName) else { return false }
        let full = try Self.adminRole(at: role.createdAt).rules
        let missing = full.filter { wanted in !role.rules.contains { $0.type == wanted.type && $0.pattern == wanted.pattern && $0.capabilities.isSuperset(of: wanted.capabilities) } }
        guard !missing.isEmpty, role.rules.contains(where: { $0.type == .item && $0.pattern.description == "/*" && $0.capabilities.contains(.update) }) else {
            return false
        }
        role.rules.removeAll { r in missing.contains { $0.type == r.type && $0.pattern == r.pattern } }
        role.rules += missing
        try await store.updateRole(role)
        accessChanged()
        return true
    }

    /// Creates the first admin: an ordinary API-key auth method associated with the admin role.
    public func bootstrapAdmin(accessId: String? = nil, accessKey: String? = nil) async throws -> IssuedAuthMethod {
        let role = try Self.adminRole(at: now())
        if try await store.role(named: role.name) == nil { try await store.createRole(role) }
        let issued = try await createAPIKeyMethod(name: "/admin", tokenTTLMinutes: AuthMethod.defaultTokenTTLMinutes,
                                                  accessId: accessId, accessKey: accessKey)
        let a = RoleAssociation(id: "ass-" + SecureRandom.string(length: 20), roleName: role.name, accessId: issued.method.accessId)
        try await store.createAssociation(a)
        return issued
    }
}

extension AccessEngine {
    /// The access id a token was issued to, even if it has expired or was revoked (for audit only).
    public func tokenOwner(token: String) async throws -> String? {
        guard token.hasPrefix("t-"), token.utf8.count <= 256 else { return nil }
        return try await store.token(hash: AccessKeyHasher.tokenHash(token))?.accessId
    }
}
