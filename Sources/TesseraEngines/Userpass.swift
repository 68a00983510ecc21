// Vault's userpass auth method on the API-key model: a user is an auth method of type `userpass`
// named `/<mount>/users/<name>`, its password hashed and checked like an access key (salted,
// constant time, throttled per user and address), its token settings Vault's `token_*` fields.
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

    /// Creates a user (a password is needed) or replaces its settings (and its password when one is given).
    public func putUserpassUser(named name: String, mount: String, password: String?, settings: JSON) async throws {
        if var m = try await userpassUser(named: name, mount: mount) {
            m.config = settings
            try await updateMethod(m)
            if let password { try await setUserpassPassword(m, try Self.validPassword(password)) }
            return
        }
        guard let password else { throw TesseraError.badRequest("missing password") }
        let salt = SecureRandom.bytes(16)
        let method = AuthMethod(accessId: SecureRandom.accessId(), name: Self.userpassMethodName(name, mount: mount), type: Self.userpassType,
                                keyHash: AccessKeyHasher.hash(key: try Self.validPassword(password), salt: salt), keySalt: salt,
                                tokenTTLMinutes: AuthMethod.defaultTokenTTLMinutes, createdAt: now(), config: settings)
        try await store.createAuthMethod(method)
        accessChanged()
    }

    public func setUserpassPassword(_ user: AuthMethod, _ password: String) async throws {
        let salt = SecureRandom.bytes(16)
        guard try await store.replaceAuthMethodKey(accessId: user.accessId, keyHash: AccessKeyHasher.hash(key: try Self.validPassword(password), salt: salt),
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
        let throttleId = String("\(mount)/\(name)".prefix(80))
        try throttle.check(accessId: throttleId, address: clientAddress, now: t)
        let user = name.isEmpty || password.utf8.count > 1024 ? nil : try await userpassUser(named: name, mount: mount)
        guard let user else {
            _ = AccessKeyHasher.verify(key: password, salt: [UInt8](repeating: 0, count: 16), hash: [UInt8](repeating: 0, count: 32))
            throttle.recordFailure(accessId: throttleId, address: clientAddress, now: t)
            throw failure
        }
        let tokens = TokenParameters(stored: user.config)
        guard AccessKeyHasher.verify(key: password, salt: user.keySalt, hash: user.keyHash), tokens.admits(clientAddress: clientAddress) else {
            throttle.recordFailure(accessId: throttleId, address: clientAddress, now: t)
            throw failure
        }
        var roles = tokens.policies.map { $0.lowercased() }.filter { $0 != "default" }
        if !tokens.noDefaultPolicy { roles.append("default") }
        let shown = tokens.shownPolicies(extra: [])
        let metadata = ["username": name]
        let grant = TokenGrant(roleNames: Array(Set(roles)).sorted(), loginRole: name, displayName: "\(mount)-\(name)", metadata: metadata,
                               ttlSeconds: tokens.lifetime(methodDefaultSeconds: Self.maxCreatedTokenTTLSeconds), policies: shown,
                               path: "auth/\(mount)/login/\(name)", explicitMaxTTLSeconds: tokens.explicitMaxTTL, renewable: true,
                               numUses: tokens.numUses > 0 ? tokens.numUses : nil)
        let issued = try await issueToken(method: user, grant: grant, clientAddress: clientAddress)
        return (issued, shown, metadata)
    }
}
