// AppRole on the API-key model: an AppRole role is an auth method of type `approle`, named
// `/approle/role/<name>`, whose access id is the role_id and whose settings are its config. Its
// secret ids are credentials of that one identity (`approle_secret_ids`), spent atomically per
// login; a login issues a token carrying the role's token_policies as Tessera roles. No second
// identity store: associations, audit, bound CIDRs and deletion work as for any auth method.
import Foundation
import TesseraCore
import TesseraCrypto

/// An AppRole role's settings, under Vault's names.
public struct AppRoleSettings: Sendable, Equatable {
    public var bindSecretID = true
    public var secretIDBoundCIDRs: [String] = []
    public var secretIDNumUses = 0
    public var secretIDTTL = 0
    public var tokenTTL = 0
    public var tokenMaxTTL = 0
    public var tokenExplicitMaxTTL = 0
    public var tokenPolicies: [String] = []
    public var tokenBoundCIDRs: [String] = []
    public var tokenNoDefaultPolicy = false
    public var tokenPeriod = 0
    /// Requests each login's token may make (0: no limit).
    public var tokenNumUses = 0
    /// A role_id set through `role-id` (Vault's custom role ids); nil: the role's access id.
    public var customRoleID: String?

    public init() {}

    public init(config: JSON) {
        func int(_ k: String) -> Int { if case .int(let v)? = config[k] { return Int(clamping: v) }; return 0 }
        func strings(_ k: String) -> [String] { if case .array(let a)? = config[k] { return a.compactMap(\.stringValue) }; return [] }
        func bool(_ k: String, _ d: Bool) -> Bool { if case .bool(let b)? = config[k] { return b }; return d }
        bindSecretID = bool("bind_secret_id", true)
        secretIDBoundCIDRs = strings("secret_id_bound_cidrs")
        secretIDNumUses = int("secret_id_num_uses")
        secretIDTTL = int("secret_id_ttl")
        tokenTTL = int("token_ttl")
        tokenMaxTTL = int("token_max_ttl")
        tokenExplicitMaxTTL = int("token_explicit_max_ttl")
        tokenPolicies = strings("token_policies")
        tokenBoundCIDRs = strings("token_bound_cidrs")
        tokenNoDefaultPolicy = bool("token_no_default_policy", false)
        tokenPeriod = int("token_period")
        tokenNumUses = int("token_num_uses")
        customRoleID = config["custom_role_id"]?.stringValue
    }

    /// The stored form: what a role read shows, and the custom role_id.
    public var stored: JSON {
        guard let customRoleID, case .object(var pairs) = json else { return json }
        pairs.append(("custom_role_id", .string(customRoleID)))
        return .object(pairs)
    }

    /// What a role read shows (Vault's shape).
    public var json: JSON {
        .obj(("bind_secret_id", .bool(bindSecretID)), ("local_secret_ids", .bool(false)),
             ("secret_id_bound_cidrs", secretIDBoundCIDRs.isEmpty ? .null : JSON.strings(secretIDBoundCIDRs)),
             ("secret_id_num_uses", .int(Int64(secretIDNumUses))), ("secret_id_ttl", .int(Int64(secretIDTTL))),
             ("token_bound_cidrs", JSON.strings(tokenBoundCIDRs)), ("token_explicit_max_ttl", .int(Int64(tokenExplicitMaxTTL))),
             ("token_max_ttl", .int(Int64(tokenMaxTTL))), ("token_no_default_policy", .bool(tokenNoDefaultPolicy)),
             ("token_num_uses", .int(Int64(tokenNumUses))), ("token_period", .int(Int64(tokenPeriod))), ("token_policies", JSON.strings(tokenPolicies)),
             ("token_strictly_bind_ip", .bool(false)), ("token_ttl", .int(Int64(tokenTTL))), ("token_type", .string("default")))
    }
}

/// A generated secret id, shown once.
public struct IssuedSecretID: Sendable {
    public var secretID: String
    public var record: SecretIDRecord
}

extension AccessEngine {
    public static let appRoleType = "approle"

    /// The marker of an AppRole mount enabled at a path other than the built-in `approle/`.
    public static let appRoleMountType = "approle_mount"
    public static let builtInAppRoleMount = "approle"

    /// The auth method name of an AppRole role on a mount.
    public static func appRoleMethodName(_ role: String, mount: String = builtInAppRoleMount) -> String { "/\(mount)/role/" + role }

    /// The role name of an AppRole role's auth method (the part after `/role/`).
    public static func appRoleName(of method: AuthMethod) -> String {
        guard let r = method.name.range(of: "/role/", options: .backwards) else { return method.name }
        return String(method.name[r.upperBound...])
    }

    /// The mount an AppRole role's auth method belongs to (`approle`, `test-approle`).
    public static func appRoleMount(of method: AuthMethod) -> String {
        guard let r = method.name.range(of: "/role/", options: .backwards) else { return builtInAppRoleMount }
        return String(method.name[method.name.index(after: method.name.startIndex)..<r.lowerBound])
    }

    /// Refuses an auth mount path that is taken, or that is under or above another auth mount
    /// (or the built-in `approle/` and `token/`), as Vault refuses overlapping mounts.
    public func requireFreeAuthMountPath(_ mount: String) async throws {
        var taken = [Self.builtInAppRoleMount, "token"]
        for m in try await store.authMethods() where m.type == Self.appRoleMountType || m.type == Self.userpassMountType
                || WorkloadIdentityEngine.isWorkloadType(m.type) {
            taken.append(String(m.name.dropFirst()))
        }
        for t in taken where mount == t || mount.hasPrefix(t + "/") || t.hasPrefix(mount + "/") {
            throw TesseraError.badRequest("path is already in use at \(t)/")
        }
    }

    /// Whether an AppRole mount is enabled at `mount` (the built-in one always is).
    public func appRoleMountExists(_ mount: String) async throws -> Bool {
        if mount == Self.builtInAppRoleMount { return true }
        return try await store.authMethod(name: "/" + mount)?.type == Self.appRoleMountType
    }

    /// AppRole role names: lower-cased letters, digits, `-`, `_`, `.` and `@`.
    public static func appRoleName(_ raw: String) throws -> String {
        let name = raw.lowercased()
        guard !name.isEmpty, name.utf8.count <= 128, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.@".contains($0)) }) else {
            throw TesseraError.badRequest("invalid role name \"\(raw.prefix(128))\"")
        }
        return name
    }

    public func appRole(named name: String, mount: String = builtInAppRoleMount) async throws -> (method: AuthMethod, settings: AppRoleSettings)? {
        guard let m = try await store.authMethod(name: Self.appRoleMethodName(name, mount: mount)), m.type == Self.appRoleType else { return nil }
        return (m, AppRoleSettings(config: m.config))
    }

    public func appRoles(mount: String = builtInAppRoleMount) async throws -> [String] {
        let prefix = "/\(mount)/role/"
        return try await store.authMethods().filter { $0.type == Self.appRoleType && $0.name.hasPrefix(prefix) }
            .map { String($0.name.dropFirst(prefix.count)) }
            .filter { !$0.contains("/") }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// The role a login's role_id names on `mount`: by its access id, or by the custom role_id
    /// set through `role-id`. Nil when none (or when the role belongs to another mount).
    public func appRole(roleID: String, mount: String) async throws -> AuthMethod? {
        guard roleID.utf8.count <= 256 else { return nil }
        let prefix = "/\(mount)/role/"
        // Exactly this mount's roles: not those of a mount nested below it.
        let onMount = { (m: AuthMethod) in m.name.hasPrefix(prefix) && !m.name.dropFirst(prefix.count).contains("/") }
        if Self.isValidAccessId(roleID), let m = try await store.authMethod(accessId: roleID), m.type == Self.appRoleType {
            // A role with a custom role_id answers to that one only.
            return onMount(m) && AppRoleSettings(config: m.config).customRoleID == nil ? m : nil
        }
        return try await store.authMethods().first {
            $0.type == Self.appRoleType && onMount($0) && AppRoleSettings(config: $0.config).customRoleID == roleID
        }
    }

    /// A caller-chosen AppRole id (custom role_id or secret id): 1 to 256 bytes, no spaces or
    /// control characters.
    public static func isValidChosenID(_ s: String) -> Bool {
        (1...256).contains(s.utf8.count) && s.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value != 0x7f }
    }

    /// The role_id a role's logins name: its custom one, else its access id.
    public static func roleID(_ method: AuthMethod) -> String { AppRoleSettings(config: method.config).customRoleID ?? method.accessId }

    /// Enables an AppRole mount at a path other than `approle/` (a marker auth method).
    public func enableAppRoleMount(_ mount: String, description: String) async throws {
        try await requireFreeAuthMountPath(mount)
        // Roles left under the path (from before this mount) would come back with it.
        guard try await appRoles(mount: mount).isEmpty else { throw TesseraError.badRequest("path is already in use at \(mount)/") }
        _ = try await createMethod(name: "/" + mount, type: Self.appRoleMountType, config: .obj(("description", .string(description))),
                                   tokenTTLMinutes: nil)
    }

    /// Disables an AppRole mount: its roles go (and with them their secret ids and tokens), then
    /// the marker. The built-in `approle/` stays enabled, without roles.
    public func disableAppRoleMount(_ mount: String) async throws {
        for name in try await appRoles(mount: mount) { _ = try await deleteAuthMethod(named: Self.appRoleMethodName(name, mount: mount)) }
        if mount != Self.builtInAppRoleMount, try await store.authMethod(name: "/" + mount)?.type == Self.appRoleMountType {
            _ = try await deleteAuthMethod(named: "/" + mount)
        }
    }

    /// Creates or replaces an AppRole role's settings. Returns whether it was created.
    public func putAppRole(named name: String, mount: String = builtInAppRoleMount, settings: AppRoleSettings) async throws -> Bool {
        for cidr in settings.secretIDBoundCIDRs + settings.tokenBoundCIDRs { _ = try CIDR(cidr) }
        let ttlMinutes = min(max(1, (settings.tokenTTL + 59) / 60), AuthMethod.maxTokenTTLMinutes)
        if var (m, _) = try await appRole(named: name, mount: mount) {
            m.config = settings.stored
            m.boundCIDRs = settings.tokenBoundCIDRs
            m.tokenTTLMinutes = ttlMinutes
            try await updateMethod(m)
            return false
        }
        _ = try await createMethod(name: Self.appRoleMethodName(name, mount: mount), type: Self.appRoleType, config: settings.stored,
                                   tokenTTLMinutes: ttlMinutes, boundCIDRs: settings.tokenBoundCIDRs)
        return true
    }

    /// A new secret id for a role: its TTL and uses are the role's unless asked for fewer.
    public func generateSecretID(method: AuthMethod, settings: AppRoleSettings, metadata: [String: String], cidrs: [String],
                                 ttlSeconds: Int?, numUses: Int?, custom: String? = nil) async throws -> IssuedSecretID {
        for cidr in cidrs { _ = try CIDR(cidr) }
        var ttl = settings.secretIDTTL
        if let asked = ttlSeconds, asked > 0 {
            guard ttl == 0 || asked <= ttl else { throw TesseraError.badRequest("ttl cannot be longer than the role's secret_id_ttl") }
            ttl = asked
        }
        var uses = settings.secretIDNumUses
        if let asked = numUses, asked > 0 {
            guard uses == 0 || asked <= uses else { throw TesseraError.badRequest("num_uses cannot be higher than the role's secret_id_num_uses") }
            uses = asked
        }
        // A custom secret id is the caller's choice (Vault's custom-secret-id), stored by hash too.
        let secret = custom ?? SecureRandom.uuid()
        if let custom {
            guard Self.isValidChosenID(custom) else {
                throw TesseraError.badRequest("secret_id must be 1 to 256 printable characters without spaces")
            }
            if try await store.secretID(accessId: method.accessId, hash: AccessKeyHasher.tokenHash(custom)) != nil {
                throw TesseraError.badRequest("failed to store secret_id: SecretID is already registered")
            }
        }
        let t = now()
        let record = SecretIDRecord(accessId: method.accessId, secretHash: AccessKeyHasher.tokenHash(secret), accessor: SecureRandom.uuid(),
                                    createdAt: t, expiresAt: ttl > 0 ? t.addingTimeInterval(InputNumber.interval(seconds: ttl)) : nil,
                                    usesLeft: uses > 0 ? uses : nil, metadata: metadata, cidrs: cidrs)
        try await store.createSecretID(record)
        return IssuedSecretID(secretID: secret, record: record)
    }

    public func secretID(method: AuthMethod, secret: String) async throws -> SecretIDRecord? {
        guard secret.utf8.count <= 256, let r = try await store.secretID(accessId: method.accessId, hash: AccessKeyHasher.tokenHash(secret)),
              r.expiresAt.map({ $0 > now() }) ?? true else { return nil }
        return r
    }

    public func secretID(method: AuthMethod, accessor: String) async throws -> SecretIDRecord? {
        guard accessor.utf8.count <= 64, let r = try await store.secretID(accessId: method.accessId, accessor: accessor),
              r.expiresAt.map({ $0 > now() }) ?? true else { return nil }
        return r
    }

    public func secretIDs(method: AuthMethod) async throws -> [SecretIDRecord] {
        let t = now()
        return try await store.secretIDs(accessId: method.accessId).filter { $0.expiresAt.map { $0 > t } ?? true }
    }

    public func destroySecretID(method: AuthMethod, accessor: String) async throws -> Bool {
        try await store.deleteSecretID(accessId: method.accessId, accessor: accessor)
    }

    /// A login whose role_id names no role: the same 400 as any failure, and throttled like one,
    /// so that role_ids cannot be guessed faster than secret ids.
    public func appRoleLoginMiss(roleID: String, clientAddress: String) throws -> Never {
        let t = now()
        let throttleId = String(roleID.prefix(80))
        try throttle.check(accessId: throttleId, address: clientAddress, now: t)
        throttle.recordFailure(accessId: throttleId, address: clientAddress, now: t)
        throw TesseraError.badRequest("invalid role or secret ID")
    }

    /// An AppRole login: every failure is the same 400, throttled per role_id and address.
    public func appRoleLogin(method: AuthMethod, secret: String?, clientAddress: String) async throws -> IssuedToken {
        let failure = TesseraError.badRequest("invalid role or secret ID")
        let t = now()
        let throttleId = String(method.accessId.prefix(80))
        try throttle.check(accessId: throttleId, address: clientAddress, now: t)
        let settings = AppRoleSettings(config: method.config)
        let inside = { (cidrs: [String]) in cidrs.isEmpty || cidrs.contains { (try? CIDR($0))?.contains(clientAddress) ?? false } }
        var metadata: [String: String] = [:]
        // The token's own CIDRs are checked before anything is spent or issued.
        guard inside(settings.tokenBoundCIDRs) else {
            throttle.recordFailure(accessId: throttleId, address: clientAddress, now: t)
            throw failure
        }
        if settings.bindSecretID {
            guard let secret, !secret.isEmpty, let found = try await secretID(method: method, secret: secret),
                  inside(found.cidrs), inside(settings.secretIDBoundCIDRs),
                  let used = try await store.useSecretID(accessId: method.accessId, hash: found.secretHash, now: t) else {
                throttle.recordFailure(accessId: throttleId, address: clientAddress, now: t)
                throw failure
            }
            metadata = used.metadata
        } else {
            guard inside(settings.secretIDBoundCIDRs) else {
                throttle.recordFailure(accessId: throttleId, address: clientAddress, now: t)
                throw failure
            }
        }
        let roleName = Self.appRoleName(of: method)
        metadata["role_name"] = roleName
        var roles = settings.tokenPolicies.filter { $0 != "default" }
        var shown = Set(roles)
        if !settings.tokenNoDefaultPolicy {
            roles.append("default")
            shown.insert("default")
        }
        // The mount's tune (an AppRole mount other than `approle/`): its default TTL for roles
        // without one, its max for every token.
        let mount = Self.appRoleMount(of: method)
        let marker = mount == Self.builtInAppRoleMount ? nil : try await store.authMethod(name: "/" + mount).flatMap { $0.type == Self.appRoleMountType ? $0 : nil }
        let tunedDefault = marker?.tunedDefaultLeaseTTL
        let ttl = [settings.tokenTTL, settings.tokenPeriod].first { $0 > 0 } ?? tunedDefault ?? Self.maxCreatedTokenTTLSeconds
        let maxTTL = [settings.tokenExplicitMaxTTL, settings.tokenMaxTTL, marker?.tunedMaxLeaseTTL ?? 0].filter { $0 > 0 }.min() ?? 0
        let grant = TokenGrant(roleNames: roles, loginRole: roleName, displayName: "approle", metadata: metadata,
                               ttlSeconds: maxTTL > 0 ? min(ttl, maxTTL) : ttl, policies: shown.sorted(), path: "auth/\(Self.appRoleMount(of: method))/login",
                               explicitMaxTTLSeconds: maxTTL, renewable: true, numUses: settings.tokenNumUses > 0 ? settings.tokenNumUses : nil)
        return try await issueToken(method: method, grant: grant, clientAddress: clientAddress)
    }
}
