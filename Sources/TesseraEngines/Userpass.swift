// Vault's userpass auth method on the API-key model: a user is an auth method of type `userpass`
// named `/<mount>/users/<name>`, its password in the key hash (PasswordHasher: salted PBKDF2,
// checked in constant time, throttled per user and address), its token settings Vault's
// `token_*` fields.
// A userpass mount is a marker auth method of type `userpass_mount` named `/<mount>`.
import Foundation
import TesseraCore
import TesseraCrypto

extension AccessEngine {
    public static let userpassType = "userpass"
    public static let userpassMountType = "userpass_mount"

    public static func userpassMethodName(_ user: String, mount: String) -> String { "/\(mount)/users/" + user }

    /// Vault lower-cases user names; Tessera also keeps them to letters, digits, `-`, `_`, `.` and `@`.
    public static func userpassName(_ raw: String) throws -> String {
        let name = raw.lowercased()
        guard !name.isEmpty, name.utf8.count <= 128, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.@".contains($0)) }) else {
            throw TesseraError.badRequest("invalid username \"\(raw.prefix(128))\"")
        }
        return name
    }

    static func validPassword(_ password: String) throws -> String {
        guard !password.isEmpty else { throw TesseraError.badRequest("missing password") }
        guard password.utf8.count <= 1024 else { throw TesseraError.badRequest("password is longer than 1024 bytes") }
        return password
    }

    public func enableUserpassMount(_ mount: String, description: String) async throws {
        try await requireFreeAuthMountPath(mount)
        guard try await userpassUsers(mount: mount).isEmpty else { throw TesseraError.badRequest("path is already in use at \(mount)/") }
        _ = try await createMethod(name: "/" + mount, type: Self.userpassMountType, config: .obj(("description", .string(description))),
                                   tokenTTLMinutes: nil)
    }

    /// The marker of a userpass mount, if one is enabled at `mount`.
    public func userpassMount(_ mount: String) async throws -> AuthMethod? {
        guard let m = try await store.authMethod(name: "/" + mount), m.type == Self.userpassMountType else { return nil }
        return m
    }

    /// Disables a userpass mount: its users go (and with them their tokens), then the marker.
    public func disableUserpassMount(_ mount: String) async throws {
        for name in try await userpassUsers(mount: mount) { _ = try await deleteAuthMethod(named: Self.userpassMethodName(name, mount: mount)) }
        if try await userpassMount(mount) != nil { _ = try await deleteAuthMethod(named: "/" + mount) }
    }

    public func userpassUser(named name: String, mount: String) async throws -> AuthMethod? {
        guard let m = try await store.authMethod(name: Self.userpassMethodName(name, mount: mount)), m.type == Self.userpassType else { return nil }
        return m
    }

    public func userpassUsers(mount: String) async throws -> [String] {
        let prefix = "/\(mount)/users/"
        return try await store.authMethods().filter { $0.type == Self.userpassType && $0.name.hasPrefix(prefix) }
            .map { String($0.name.dropFirst(prefix.count)) }.sorted()
    }

    /// The token settings of a user write over the stored ones; the password is not among them.
    public static func userpassSettings(_ body: JSON, over old: JSON?) throws -> JSON {
        let p = try TokenParameters.parse(body, over: old.map(TokenParameters.init(stored:)) ?? TokenParameters())
        for c in p.boundCIDRs { _ = try CIDR(c) }
        return .object(p.json)
    }

    /// What a user read shows: its token settings (never the password).
    public static func userpassView(_ user: AuthMethod) -> JSON {
        var pairs = TokenParameters(stored: user.config).json
        pairs.append(("token_strictly_bind_ip", .bool(false)))
        return .object(pairs.sorted { $0.0 < $1.0 })
    }

    /// The policies a user's tokens carry, for a grant check.
    public static func userpassPolicies(_ config: JSON) -> [String] { TokenParameters(stored: config).policies.map { $0.lowercased() } }

    /// Creates a user (`create`: a password is needed, and a user created meanwhile is a
    /// conflict) or replaces an existing one's settings and, when one is given, its password.
    /// Nothing changes when the password is refused.
    public func putUserpassUser(named name: String, mount: String, password: String?, settings: JSON, create: Bool) async throws {
        if let password { _ = try Self.validPassword(password) }
        let cidrs = TokenParameters(stored: settings).boundCIDRs
        if !create {
            guard var m = try await userpassUser(named: name, mount: mount) else { throw TesseraError.conflict("the user changed meanwhile: try again") }
            m.config = settings
            m.boundCIDRs = cidrs
            try await updateMethod(m)
            if let password { try await setUserpassPassword(m, password) }
            return
        }
        guard let password else { throw TesseraError.badRequest("missing password") }
        let salt = SecureRandom.bytes(16)
        let method = AuthMethod(accessId: SecureRandom.accessId(), name: Self.userpassMethodName(name, mount: mount), type: Self.userpassType,
                                keyHash: PasswordHasher.hash(password: password, salt: salt), keySalt: salt,
                                tokenTTLMinutes: AuthMethod.defaultTokenTTLMinutes, boundCIDRs: cidrs, createdAt: now(), config: settings)
        // The name is unique in the store: a user created since the caller looked is a conflict.
        try await store.createAuthMethod(method)
        accessChanged()
    }

    public func setUserpassPassword(_ user: AuthMethod, _ password: String) async throws {
        let salt = SecureRandom.bytes(16)
        guard try await store.replaceAuthMethodKey(accessId: user.accessId, keyHash: PasswordHasher.hash(password: try Self.validPassword(password), salt: salt),
                                                   keySalt: salt) else {
            throw TesseraError.notFound("")
        }
        accessChanged()
    }

    /// A userpass login. Every failure is the same 400, throttled per user and address; an
    /// unknown user costs the same work as a wrong password.
    public func userpassLogin(mount: String, name raw: String, password: String,
                              clientAddress: String) async throws -> (issued: IssuedToken, policies: [String], metadata: [String: String]) {
        let failure = TesseraError.badRequest("invalid username or password")
        let t = now()
        let name = (try? Self.userpassName(raw)) ?? ""
        // Failures count per user and address (so that nobody can lock a user out from
        // elsewhere), and per address.
        let throttleId = String("\(mount)/\(name)@\(clientAddress)".prefix(200))
        try throttle.check(accessId: throttleId, address: clientAddress, now: t)
        let tooLong = password.utf8.count > 1024
        let user = name.isEmpty || tooLong ? nil : try await userpassUser(named: name, mount: mount)
        guard let user else {
            // An unknown user costs the same work as a wrong password.
            _ = PasswordHasher.verify(password: tooLong ? "" : password, salt: [UInt8](repeating: 0, count: 16), hash: [UInt8](repeating: 0, count: 32))
            throttle.recordFailure(accessId: throttleId, address: clientAddress, now: t)
            throw failure
        }
        let tokens = TokenParameters(stored: user.config)
        guard PasswordHasher.verify(password: password, salt: user.keySalt, hash: user.keyHash), tokens.admits(clientAddress: clientAddress) else {
            throttle.recordFailure(accessId: throttleId, address: clientAddress, now: t)
            throw failure
        }
        var roles = tokens.policies.map { $0.lowercased() }.filter { $0 != "default" }
        if !tokens.noDefaultPolicy { roles.append("default") }
        let shown = tokens.shownPolicies(extra: [])
        let metadata = ["username": name]
        // The mount's tune: its default TTL for users without one, its max for every token.
        let marker = try await userpassMount(mount)
        let tunedDefault = marker?.tunedDefaultLeaseTTL
        var ttl = tokens.lifetime(methodDefaultSeconds: tunedDefault ?? Self.maxCreatedTokenTTLSeconds)
        if let cap = marker?.tunedMaxLeaseTTL { ttl = min(ttl, cap) }
        let grant = TokenGrant(roleNames: Array(Set(roles)).sorted(), loginRole: name, displayName: "\(mount)-\(name)", metadata: metadata,
                               ttlSeconds: ttl, policies: shown,
                               path: "auth/\(mount)/login/\(name)", explicitMaxTTLSeconds: tokens.explicitMaxTTL, renewable: true,
                               numUses: tokens.numUses > 0 ? tokens.numUses : nil)
        let issued = try await issueToken(method: user, grant: grant, clientAddress: clientAddress)
        return (issued, shown, metadata)
    }
}
