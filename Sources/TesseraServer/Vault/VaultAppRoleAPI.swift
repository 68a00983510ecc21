// Vault's AppRole, `auth/approle/*`: roles (create, read, list, delete), role-id, secret ids
// (generate, list, lookup and destroy, by value or by accessor) and login. Administration is
// authorized under the auth-method rule type on the Vault path itself (`/approle/role/<name>`,
// `/approle/role/<name>/secret-id`, …), which a policy's `auth/approle/…` paths translate to;
// naming token_policies also needs the right to grant those roles. A login with role_id and
// secret_id is anonymous and audited with the role_id as the actor, never the secret id. An
// API key still logs in here with its access id as role_id and its access key as secret_id.
import Foundation
import Hummingbird
import TesseraCore
import TesseraEngines

struct VaultAppRoleAPI: Sendable {
    let tessera: Tessera
    /// The mount: the built-in `approle`, or one enabled with `sys/auth/<path>` type approle.
    var mount = AccessEngine.builtInAppRoleMount

    func handle(_ vr: VaultRequest) async throws -> Response {
        let rest = String(vr.path.dropFirst("auth/\(mount)/".count))
        if rest == "login" {
            guard vr.operation == .write else { return VaultResponses.errors([], status: .methodNotAllowed) }
            return try await login(vr)
        }
        if rest == "role" {
            guard vr.operation == .list else { return VaultResponses.errors([], status: .methodNotAllowed) }
            return try await listRoles(vr)
        }
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts[0] == "role" else { return try await unsupported(vr) }
        let name = try AccessEngine.appRoleName(parts[1].removingPercentEncoding ?? parts[1])
        let sub = parts.dropFirst(2).joined(separator: "/")
        switch (sub, vr.operation) {
        case ("", .read): return try await readRole(vr, name)
        case ("", .write): return try await writeRole(vr, name)
        case ("", .delete): return try await deleteRole(vr, name)
        case ("role-id", .read): return try await roleId(vr, name)
        case ("role-id", .write): return try await setRoleID(vr, name)
        case ("secret-id", .write): return try await generate(vr, name)
        case ("custom-secret-id", .write): return try await generate(vr, name, custom: true)
        case ("secret-id", .list): return try await listSecretIDs(vr, name)
        case ("secret-id/lookup", .write), ("secret-id-accessor/lookup", .write):
            return try await lookup(vr, name, sub)
        case ("secret-id/destroy", .write), ("secret-id/destroy", .delete), ("secret-id-accessor/destroy", .write), ("secret-id-accessor/destroy", .delete):
            return try await destroy(vr, name, String(sub.prefix { $0 != "/" }))
        case (let field, _) where Self.fieldEndpoints[field] != nil:
            return try await fieldEndpoint(vr, name, field)
        default:
            return try await unsupported(vr)
        }
    }

    // MARK: Per-field endpoints

    /// `role/<name>/<endpoint>`: the field it reads and writes, and the body keys it takes.
    static let fieldEndpoints: [String: (field: String, keys: [String], reset: JSON)] = [
        "policies": ("token_policies", ["token_policies", "policies"], .array([])),
        "secret-id-num-uses": ("secret_id_num_uses", ["secret_id_num_uses"], .int(0)),
        "secret-id-ttl": ("secret_id_ttl", ["secret_id_ttl"], .int(0)),
        "token-ttl": ("token_ttl", ["token_ttl"], .int(0)),
        "token-max-ttl": ("token_max_ttl", ["token_max_ttl"], .int(0)),
        "secret-id-bound-cidrs": ("secret_id_bound_cidrs", ["secret_id_bound_cidrs"], .array([])),
        "token-bound-cidrs": ("token_bound_cidrs", ["token_bound_cidrs"], .array([])),
        "period": ("token_period", ["token_period", "period"], .int(0)),
        "token-num-uses": ("token_num_uses", ["token_num_uses"], .int(0)),
        "local-secret-ids": ("local_secret_ids", [], .bool(false)),
    ]

    /// Reads, sets or resets one field of a role, authorized on the field's own path (as a
    /// Vault policy grants it). A write changes that field only, whatever else the body holds.
    func fieldEndpoint(_ vr: VaultRequest, _ name: String, _ endpoint: String) async throws -> Response {
        guard let spec = Self.fieldEndpoints[endpoint] else { return try await unsupported(vr) }
        let path = try rulePath(name, endpoint)
        switch vr.operation {
        case .read:
            let settings = try await tessera.run(vr.pipelineCall(action: "get_auth_method", auditPath: path.value,
                                                                 checks: [AccessCheck(.read, .authMethod, path)])) { _ in
                try await tessera.access.appRole(named: name, mount: mount)?.settings
            }
            guard let settings else { throw TesseraError.notFound("") }
            var value = settings.json[spec.field] ?? .null
            if spec.field.hasSuffix("_cidrs"), value == .array([]) { value = .null }
            return VaultResponses.envelope(data: .obj((spec.field, value)), requestId: vr.context.requestId)
        case .write, .delete:
            guard !spec.keys.isEmpty else { return VaultResponses.errors([], status: .methodNotAllowed) }
            var value = spec.reset
            if vr.operation == .write {
                let f = try vr.fields()
                guard let given = spec.keys.lazy.compactMap({ f.raw($0) }).first else { throw TesseraError.badRequest("missing \(spec.field)") }
                value = given
            }
            let only = try RequestFields(.obj((spec.field, value)), declared: nil)
            return try await writeRole(vr, name, fields: only, path: path, capability: vr.operation == .write ? .update : .delete, mustExist: true)
        default:
            return VaultResponses.errors([], status: .methodNotAllowed)
        }
    }

    func unsupported(_ vr: VaultRequest) async throws -> Response {
        try await tessera.run(vr.pipelineCall(action: "vault_request", auditPath: "/" + vr.path)) { _ in () }
        return VaultResponses.errors([VaultResponses.unsupported], status: .methodNotAllowed)
    }

    func rulePath(_ name: String, _ sub: String = "") throws -> ItemPath {
        try ItemPath(AccessEngine.appRoleMethodName(name, mount: mount) + (sub.isEmpty ? "" : "/" + sub))
    }

    func existing(_ name: String) async throws -> (method: AuthMethod, settings: AppRoleSettings) {
        guard let r = try await tessera.access.appRole(named: name, mount: mount) else { throw TesseraError.notFound("role \"\(name)\" does not exist") }
        return r
    }

    // MARK: Roles

    func listRoles(_ vr: VaultRequest) async throws -> Response {
        let names = try await tessera.run(vr.pipelineCall(action: "list_auth_methods", auditPath: "/\(mount)/role")) { caller -> [String] in
            let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
            return try await tessera.access.appRoles(mount: mount).filter { name in
                guard let p = try? rulePath(name) else { return false }
                return authorizer.listsAuthMethod(p)
            }
        }
        guard !names.isEmpty else { throw TesseraError.notFound("") }
        return VaultResponses.envelope(data: .obj(("keys", JSON.strings(names))), requestId: vr.context.requestId)
    }

    func readRole(_ vr: VaultRequest, _ name: String) async throws -> Response {
        let path = try rulePath(name)
        let settings = try await tessera.run(vr.pipelineCall(action: "get_auth_method", auditPath: path.value,
                                                             checks: [AccessCheck(.read, .authMethod, path)])) { _ in
            try await tessera.access.appRole(named: name, mount: mount)?.settings
        }
        guard let settings else { throw TesseraError.notFound("") }
        return VaultResponses.envelope(data: settings.json, requestId: vr.context.requestId)
    }

    /// A comma-separated string or a list, as Vault's CommaStringSlice fields take.
    static func commaList(_ f: RequestFields, _ keys: String...) throws -> [String]? {
        for key in keys {
            if let list = try f.stringList(key) {
                return list.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            }
        }
        return nil
    }

    func writeRole(_ vr: VaultRequest, _ name: String, fields: RequestFields? = nil, path fieldPath: ItemPath? = nil,
                   capability: Capability? = nil, mustExist: Bool = false) async throws -> Response {
        let f = try fields ?? vr.fields()
        let path = try fieldPath ?? rulePath(name)
        let existing = try await tessera.access.appRole(named: name, mount: mount)
        var s = existing?.settings ?? AppRoleSettings()
        if let v = try f.bool("bind_secret_id") { s.bindSecretID = v }
        if let v = try Self.commaList(f, "secret_id_bound_cidrs", "bound_cidr_list") { s.secretIDBoundCIDRs = v }
        if let v = try f.int("secret_id_num_uses", in: 0...Int(Int32.max)) { s.secretIDNumUses = v }
        if let v = try f.seconds("secret_id_ttl") { s.secretIDTTL = v }
        if let v = try f.seconds("token_ttl") { s.tokenTTL = v }
        if let v = try f.seconds("token_max_ttl") { s.tokenMaxTTL = v }
        if let v = try f.seconds("token_explicit_max_ttl") { s.tokenExplicitMaxTTL = v }
        if let v = try f.seconds("token_period") ?? f.seconds("period") { s.tokenPeriod = v }
        if let v = try Self.commaList(f, "token_policies", "policies") { s.tokenPolicies = Array(Set(v.map { $0.lowercased() })).sorted() }
        if let v = try Self.commaList(f, "token_bound_cidrs") { s.tokenBoundCIDRs = v }
        if let v = try f.bool("token_no_default_policy") { s.tokenNoDefaultPolicy = v }
        if let v = try f.int("token_num_uses", in: 0...Int(Int32.max)) { s.tokenNumUses = v }
        if let type = try f.string("token_type"), !["", "default", "service"].contains(type) {
            throw TesseraError.badRequest("token type \"\(type.prefix(16))\" is not supported; Tessera issues service tokens")
        }
        if s.tokenMaxTTL > 0 && s.tokenTTL > s.tokenMaxTTL {
            throw TesseraError.badRequest("\"token_ttl\" value must be less than \"token_max_ttl\" value")
        }
        guard s.bindSecretID || !s.secretIDBoundCIDRs.isEmpty || !s.tokenBoundCIDRs.isEmpty else {
            throw TesseraError.badRequest("at least one constraint should be enabled on the role")
        }
        let settings = s
        let cap: Capability = capability ?? (existing == nil ? .create : .update)
        try await tessera.run(vr.pipelineCall(action: existing == nil ? "create_auth_method" : "update_auth_method", auditPath: path.value,
                                              checks: [AccessCheck(cap, .authMethod, path)])) { caller in
            if mustExist && existing == nil { throw TesseraError.notFound("") }
            // The role's tokens carry these roles: only someone who may grant them names them.
            // A role that does not exist yet is refused unless the writer holds everything: once
            // created, its rules would reach these tokens without anyone's check.
            let admin = caller.principal?.authorizer.holdsEverything == true
            for policy in settings.tokenPolicies where policy != "default" {
                do {
                    try NativeVerbs.requireMayGrant(caller, try await tessera.access.role(named: policy))
                } catch TesseraError.notFound {
                    guard admin else { throw TesseraError.badRequest("policy \"\(policy.prefix(128))\" does not exist") }
                }
            }
            caller.notes.set("token_policies", settings.tokenPolicies.joined(separator: ","))
            _ = try await tessera.access.putAppRole(named: name, mount: mount, settings: settings)
        }
        return VaultResponses.noContent()
    }

    func deleteRole(_ vr: VaultRequest, _ name: String) async throws -> Response {
        let path = try rulePath(name)
        try await tessera.run(vr.pipelineCall(action: "delete_auth_method", auditPath: path.value, checks: [AccessCheck(.delete, .authMethod, path)])) { _ in
            // Like Vault, deleting a role that does not exist succeeds.
            if let (m, _) = try await tessera.access.appRole(named: name, mount: mount) { _ = try await tessera.access.deleteAuthMethod(named: m.name) }
        }
        return VaultResponses.noContent()
    }

    func roleId(_ vr: VaultRequest, _ name: String) async throws -> Response {
        let path = try rulePath(name, "role-id")
        let method = try await tessera.run(vr.pipelineCall(action: "get_auth_method", auditPath: path.value,
                                                           checks: [AccessCheck(.read, .authMethod, path)])) { _ in
            try await tessera.access.appRole(named: name, mount: mount)?.method
        }
        guard let method else { throw TesseraError.notFound("") }
        return VaultResponses.envelope(data: .obj(("role_id", .string(AccessEngine.roleID(method)))), requestId: vr.context.requestId)
    }

    /// A custom role_id (Vault's `role-id` write): unique on the mount, printable, and never the
    /// shape of an access id (which would name another role). The role's access id stays its
    /// identity in the trail.
    func setRoleID(_ vr: VaultRequest, _ name: String) async throws -> Response {
        let roleID = try vr.fields().requiredString("role_id")
        guard AccessEngine.isValidChosenID(roleID) else {
            throw TesseraError.badRequest("role_id must be 1 to 256 printable characters without spaces")
        }
        let path = try rulePath(name, "role-id")
        var call = vr.pipelineCall(action: "update_auth_method", auditPath: path.value, checks: [AccessCheck(.update, .authMethod, path)])
        call.sensitive = ["role_id": roleID]
        try await tessera.run(call) { _ in
            guard var (m, settings) = try await tessera.access.appRole(named: name, mount: mount) else {
                throw TesseraError.notFound("role \"\(name)\" does not exist")
            }
            if roleID == m.accessId {
                settings.customRoleID = nil
            } else {
                guard !AccessEngine.isValidAccessId(roleID) else { throw TesseraError.badRequest("role_id must not have the shape of an access id") }
                if let other = try await tessera.access.appRole(roleID: roleID, mount: mount), other.accessId != m.accessId {
                    throw TesseraError.badRequest("role_id already in use")
                }
                settings.customRoleID = roleID
            }
            m.config = settings.stored
            try await tessera.access.updateMethod(m)
        }
        return VaultResponses.noContent()
    }

    // MARK: Secret ids

    static func metadata(_ f: RequestFields) throws -> [String: String] {
        guard let raw = try f.string("metadata"), !raw.isEmpty else { return [:] }
        guard let json = try? JSON.parse(Array(raw.utf8)), case .object(let pairs) = json else {
            throw TesseraError.badRequest("failed to parse metadata: expected a JSON object of strings")
        }
        var out: [String: String] = [:]
        for (k, v) in pairs {
            guard case .string(let s) = v, k.utf8.count <= 128, s.utf8.count <= 512, out.count < 64 else {
                throw TesseraError.badRequest("failed to parse metadata: expected at most 64 string values")
            }
            out[k] = s
        }
        return out
    }

    func generate(_ vr: VaultRequest, _ name: String, custom: Bool = false) async throws -> Response {
        let f = try vr.fields()
        let chosen = custom ? try f.string("secret_id") : nil
        if custom && (chosen ?? "").isEmpty { throw TesseraError.badRequest("missing secret_id") }
        let meta = try Self.metadata(f)
        let cidrs = try Self.commaList(f, "cidr_list") ?? []
        if let bound = try Self.commaList(f, "token_bound_cidrs"), !bound.isEmpty {
            throw TesseraError.badRequest("token_bound_cidrs on a secret id is not supported: set token_bound_cidrs on the role")
        }
        let ttl = try f.seconds("ttl")
        let uses = try f.int("num_uses", in: 0...Int(Int32.max))
        let path = try rulePath(name, custom ? "custom-secret-id" : "secret-id")
        var call = vr.pipelineCall(action: "create_secret_id", auditPath: path.value, checks: [AccessCheck(.update, .authMethod, path)])
        if let chosen { call.sensitive = ["secret_id": chosen] }
        let generated = try await tessera.run(call) { caller -> IssuedSecretID? in
            guard let (m, s) = try await tessera.access.appRole(named: name, mount: mount) else {
                caller.notes.setStatus(404)
                return nil
            }
            let issued = try await tessera.access.generateSecretID(method: m, settings: s, metadata: meta, cidrs: cidrs, ttlSeconds: ttl,
                                                                   numUses: uses, custom: chosen)
            caller.notes.set("secret_id_accessor", issued.record.accessor)
            return issued
        }
        // Vault names the missing role (a plain 404 has no text).
        guard let issued = generated else { return VaultResponses.errors(["role \"\(name)\" does not exist"], status: .notFound) }
        let r = issued.record
        return VaultResponses.envelope(data: .obj(("secret_id", .string(issued.secretID)), ("secret_id_accessor", .string(r.accessor)),
                                                  ("secret_id_num_uses", .int(Int64(r.usesLeft ?? 0))),
                                                  ("secret_id_ttl", .int(Self.ttl(r)))), requestId: vr.context.requestId)
    }

    static func ttl(_ r: SecretIDRecord) -> Int64 {
        r.expiresAt.map { InputNumber.int64($0.timeIntervalSince(r.createdAt).rounded()) } ?? 0
    }

    func listSecretIDs(_ vr: VaultRequest, _ name: String) async throws -> Response {
        let path = try rulePath(name, "secret-id")
        let accessors = try await tessera.run(vr.pipelineCall(action: "list_secret_ids", auditPath: path.value,
                                                              checks: [AccessCheck(.list, .authMethod, path)])) { _ in
            let (m, _) = try await existing(name)
            return try await tessera.access.secretIDs(method: m).map(\.accessor)
        }
        guard !accessors.isEmpty else { throw TesseraError.notFound("") }
        return VaultResponses.envelope(data: .obj(("keys", JSON.strings(accessors))), requestId: vr.context.requestId)
    }

    /// The secret id a lookup or destroy names: by value (`secret_id`) or by accessor.
    func named(_ vr: VaultRequest, _ m: AuthMethod, byAccessor: Bool) async throws -> SecretIDRecord? {
        let f = try vr.fields()
        if byAccessor {
            return try await tessera.access.secretID(method: m, accessor: try f.requiredString("secret_id_accessor"))
        }
        return try await tessera.access.secretID(method: m, secret: try f.requiredString("secret_id"))
    }

    func lookup(_ vr: VaultRequest, _ name: String, _ sub: String) async throws -> Response {
        let byAccessor = sub.hasPrefix("secret-id-accessor")
        let path = try rulePath(name, sub)
        var call = vr.pipelineCall(action: "lookup_secret_id", auditPath: path.value, checks: [AccessCheck(.update, .authMethod, path)])
        if !byAccessor, let s = try vr.fields().string("secret_id") { call.sensitive = ["secret_id": s] }
        let found = try await tessera.run(call) { _ -> SecretIDRecord? in
            let (m, _) = try await existing(name)
            return try await named(vr, m, byAccessor: byAccessor)
        }
        guard let r = found else {
            if byAccessor { throw TesseraError.notFound("failed to find accessor entry for secret_id_accessor") }
            return VaultResponses.noContent()
        }
        let data = JSON.obj(("cidr_list", JSON.strings(r.cidrs)), ("creation_time", .date(r.createdAt)),
                            ("expiration_time", r.expiresAt.map(JSON.date) ?? .string("0001-01-01T00:00:00Z")),
                            ("last_updated_time", .date(r.createdAt)), ("metadata", JSON.stringMap(r.metadata)),
                            ("secret_id_accessor", .string(r.accessor)), ("secret_id_num_uses", .int(Int64(r.usesLeft ?? 0))),
                            ("secret_id_ttl", .int(Self.ttl(r))), ("token_bound_cidrs", JSON.strings([])))
        return VaultResponses.envelope(data: data, requestId: vr.context.requestId)
    }

    func destroy(_ vr: VaultRequest, _ name: String, _ family: String) async throws -> Response {
        let byAccessor = family == "secret-id-accessor"
        let path = try rulePath(name, family + "/destroy")
        var call = vr.pipelineCall(action: "delete_secret_id", auditPath: path.value, checks: [AccessCheck(.update, .authMethod, path)])
        if !byAccessor, let s = try vr.fields().string("secret_id") { call.sensitive = ["secret_id": s] }
        try await tessera.run(call) { caller in
            let (m, _) = try await existing(name)
            guard let r = try await named(vr, m, byAccessor: byAccessor) else {
                if byAccessor { throw TesseraError.badRequest("failed to find accessor entry for secret_id_accessor") }
                return
            }
            caller.notes.set("secret_id_accessor", r.accessor)
            _ = try await tessera.access.destroySecretID(method: m, accessor: r.accessor)
        }
        return VaultResponses.noContent()
    }

    // MARK: Login

    func login(_ vr: VaultRequest) async throws -> Response {
        let fields = try vr.fields()
        let roleId = try fields.requiredString("role_id")
        let secretId = try fields.string("secret_id")
        var call = vr.pipelineCall(action: "auth", auditPath: "", needsIdentity: false)
        // An access id names the role in the trail; a custom role_id is recorded HMAC'd.
        if AccessEngine.isValidAccessId(roleId) { call.claimedAccessId = roleId } else { call.sensitive["role_id"] = roleId }
        if let secretId { call.sensitive["secret_id"] = secretId }
        let (issued, principal) = try await tessera.run(call) { caller in
            let address = caller.request.clientAddress
            let issued: IssuedToken
            if let m = try await tessera.access.appRole(roleID: roleId, mount: mount) {
                caller.notes.set("role_name", AccessEngine.appRoleName(of: m))
                issued = try await tessera.access.appRoleLogin(method: m, secret: secretId, clientAddress: address)
            } else {
                // An API key: role_id is its access id, secret_id its access key (on approle/ only).
                guard mount == AccessEngine.builtInAppRoleMount else { try tessera.access.appRoleLoginMiss(roleID: roleId, clientAddress: address) }
                // Every failure reads as Vault's (a throttled login stays a 429).
                guard let secretId else { throw TesseraError.badRequest("invalid role or secret ID") }
                do {
                    issued = try await tessera.access.authenticate(accessId: roleId, accessKey: secretId, clientAddress: address)
                } catch TesseraError.unauthorized {
                    throw TesseraError.badRequest("invalid role or secret ID")
                }
            }
            return (issued, try await tessera.access.principal(token: issued.token, clientAddress: address, spendingUse: false))
        }
        return VaultResponses.envelope(data: nil, auth: VaultAuthAPI(tessera: tessera).authBlock(principal, token: issued.token),
                                       requestId: vr.context.requestId)
    }
}

extension Authorizer {
    /// Whether a listing of auth-method entries (AppRole roles, token roles) shows this one: list
    /// or read on it.
    func listsAuthMethod(_ path: ItemPath) -> Bool {
        check(.list, on: path, type: .authMethod).isAllowed || check(.read, on: path, type: .authMethod).isAllowed
    }
}
