// Vault auth-method administration and workload-identity logins: `sys/auth` (list, enable,
// disable, read, tune), and for a JWT/OIDC, Kubernetes or certificate mount `auth/<path>/config`,
// `auth/<path>/role[/<name>]` (`certs[/<name>]` for certificates) and `auth/<path>/login`. Administration is authorized under the
// auth-method rule type on the method's path (`/<path>`); writing a login role that names access
// roles in `token_policies` also needs the right to grant those roles. Logins are anonymous and
// audited with the method, the login role and the identifying claims, never the credential.
import Foundation
import Hummingbird
import NIOCore
import NIOSSL
import TesseraCore
import TesseraEngines

struct VaultAuthMethods: Sendable {
    let tessera: Tessera

    // MARK: sys/auth

    /// `path` overrides the request's: `sys/mounts/auth/<path>/tune` (what `bao auth tune` calls)
    /// is the auth mount's tune.
    func handleSys(_ vr: VaultRequest, path override: String? = nil) async throws -> Response? {
        let path = override ?? vr.path
        if path == "sys/auth" {
            guard vr.operation == .read || vr.operation == .list else { return VaultResponses.errors([], status: .methodNotAllowed) }
            return try await list(vr)
        }
        guard path.hasPrefix("sys/auth/") else { return nil }
        var rest = String(path.dropFirst("sys/auth/".count))
        var tune = false
        if rest.hasSuffix("/tune") {
            tune = true
            rest = String(rest.dropLast("/tune".count))
        }
        if rest == "approle" || rest == "token" { return try await builtIn(vr, rest, tune: tune) }
        let mount = try WorkloadIdentityEngine.validateMountPath(rest)
        let methodPath = try ItemPath("/" + mount)
        if let marker = try? await tessera.access.authMethod(named: methodPath.value),
           marker.type == AccessEngine.appRoleMountType || marker.type == AccessEngine.userpassMountType {
            return try await appRoleMount(vr, mount, marker, tune: tune)
        }
        switch (vr.operation, tune) {
        case (.write, false):
            let fields = try vr.fields()
            let type = try fields.string("type") ?? ""
            let description = try fields.string("description") ?? ""
            try await tessera.run(vr.pipelineCall(action: "create_auth_method", auditPath: methodPath.value,
                                                  checks: [AccessCheck(.create, .authMethod, methodPath)])) { caller in
                caller.notes.set("type", String(type.prefix(32)))
                if type == "approle" {
                    try await tessera.access.enableAppRoleMount(mount, description: description)
                } else if type == "userpass" {
                    try await tessera.access.enableUserpassMount(mount, description: description)
                } else {
                    _ = try await tessera.identity.enable(path: mount, vaultType: type, description: description)
                }
            }
            return VaultResponses.noContent()
        case (.delete, false):
            try await tessera.run(vr.pipelineCall(action: "delete_auth_method", auditPath: methodPath.value,
                                                  checks: [AccessCheck(.delete, .authMethod, methodPath)])) { _ in
                // Like Vault, disabling a path that is not enabled succeeds.
                if let m = try? await tessera.access.authMethod(named: methodPath.value), WorkloadIdentityEngine.isWorkloadType(m.type) {
                    _ = try await tessera.access.deleteAuthMethod(named: m.name)
                }
            }
            return VaultResponses.noContent()
        case (.read, _):
            let m = try await tessera.run(vr.pipelineCall(action: "get_auth_method", auditPath: methodPath.value,
                                                          checks: [AccessCheck(.read, .authMethod, methodPath)])) { _ in
                try await workloadMethod(mount)
            }
            guard let m else { throw TesseraError.badRequest("No auth engine at \(mount)/") }
            if tune { return VaultResponses.doubled(tuneJSON(m), requestId: vr.context.requestId) }
            return VaultResponses.doubled(entryJSON(m), requestId: vr.context.requestId)
        case (.write, true):
            let tune = try AuthMountTune(vr.fields(), mount: mount)
            try await tessera.run(vr.pipelineCall(action: "update_auth_method", auditPath: methodPath.value,
                                                  checks: [AccessCheck(.update, .authMethod, methodPath)])) { _ in
                guard var m = try await workloadMethod(mount) else { throw TesseraError.badRequest("No auth engine at \(mount)/") }
                try tune.apply(to: &m, defaultTTL: m.tokenTTLMinutes * 60)
                if let ttl = tune.defaultTTL, ttl > 0 { m.tokenTTLMinutes = min(max(1, ttl / 60), AuthMethod.maxTokenTTLMinutes) }
                try await tessera.access.updateMethod(m)
            }
            return VaultResponses.noContent()
        default:
            return VaultResponses.errors([], status: .methodNotAllowed)
        }
    }

    /// `token/` and `approle/` are always there: enabling AppRole at `approle/` succeeds (as it
    /// would on a fresh Vault), and neither can be disabled.
    func builtIn(_ vr: VaultRequest, _ mount: String, tune: Bool) async throws -> Response {
        let path = try ItemPath("/" + mount)
        switch vr.operation {
        case .read:
            try await tessera.run(vr.pipelineCall(action: "get_auth_method", auditPath: path.value, checks: [AccessCheck(.read, .authMethod, path)])) { _ in () }
            let entry = mount == "token" ? tokenEntry : approleEntry
            if tune, case .object(let pairs) = entry, let config = pairs.first(where: { $0.0 == "config" })?.1 {
                return VaultResponses.doubled(config, requestId: vr.context.requestId)
            }
            return VaultResponses.doubled(entry, requestId: vr.context.requestId)
        case .write where !tune:
            let type = try vr.fields().string("type") ?? ""
            try await tessera.run(vr.pipelineCall(action: "create_auth_method", auditPath: path.value, checks: [AccessCheck(.create, .authMethod, path)])) { _ in
                guard mount == "approle", type == "approle" else { throw TesseraError.badRequest("path is already in use at \(mount)/") }
            }
            return VaultResponses.noContent()
        case .write:
            try await tessera.run(vr.pipelineCall(action: "update_auth_method", auditPath: path.value, checks: [AccessCheck(.update, .authMethod, path)])) { _ in () }
            return VaultResponses.noContent()
        case .delete:
            try await tessera.run(vr.pipelineCall(action: "delete_auth_method", auditPath: path.value, checks: [AccessCheck(.delete, .authMethod, path)])) { caller in
                // `approle/` is built in: disabling it removes its roles, as in Vault, and it stays
                // enabled (an API key still logs in there). `token/` cannot be disabled.
                guard mount == "approle" else { throw TesseraError.badRequest("\(mount)/ is built into Tessera and cannot be disabled") }
                try await requireMayDisableAppRoles(mount, caller)
                try await tessera.access.disableAppRoleMount(mount)
            }
            return VaultResponses.noContent()
        default:
            return VaultResponses.errors([], status: .methodNotAllowed)
        }
    }

    /// `sys/auth/<path>` for an AppRole mount enabled at a path other than `approle/`, or a
    /// userpass mount.
    func appRoleMount(_ vr: VaultRequest, _ mount: String, _ marker: AuthMethod, tune: Bool) async throws -> Response {
        let path = try ItemPath("/" + mount)
        switch (vr.operation, tune) {
        case (.read, _):
            try await tessera.run(vr.pipelineCall(action: "get_auth_method", auditPath: path.value, checks: [AccessCheck(.read, .authMethod, path)])) { _ in () }
            let entry = appRoleEntry(marker)
            if tune { return VaultResponses.doubled(tuneJSON(marker, defaultTTL: 0), requestId: vr.context.requestId) }
            return VaultResponses.doubled(entry, requestId: vr.context.requestId)
        case (.write, false):
            try await tessera.run(vr.pipelineCall(action: "create_auth_method", auditPath: path.value, checks: [AccessCheck(.create, .authMethod, path)])) { _ in
                throw TesseraError.badRequest("path is already in use at \(mount)/")
            }
            return VaultResponses.noContent()
        case (.write, true):
            let tune = try AuthMountTune(vr.fields(), mount: mount)
            try await tessera.run(vr.pipelineCall(action: "update_auth_method", auditPath: path.value, checks: [AccessCheck(.update, .authMethod, path)])) { _ in
                var m = try await tessera.access.authMethod(named: marker.name)
                guard m.type == marker.type else { throw TesseraError.badRequest("No auth engine at \(mount)/") }
                try tune.apply(to: &m, defaultTTL: 0)
                try await tessera.access.updateMethod(m)
            }
            return VaultResponses.noContent()
        case (.delete, _):
            try await tessera.run(vr.pipelineCall(action: "delete_auth_method", auditPath: path.value, checks: [AccessCheck(.delete, .authMethod, path)])) { caller in
                if marker.type == AccessEngine.userpassMountType {
                    try await requireMayDisableUsers(mount, caller)
                    try await tessera.access.disableUserpassMount(mount)
                } else {
                    try await requireMayDisableAppRoles(mount, caller)
                    try await tessera.access.disableAppRoleMount(mount)
                }
            }
            return VaultResponses.noContent()
        default:
            return VaultResponses.errors([], status: .methodNotAllowed)
        }
    }

    /// Disabling a userpass mount deletes its users: that needs delete on each of them too.
    func requireMayDisableUsers(_ mount: String, _ caller: CallerContext) async throws {
        try requireMayDelete(try await tessera.access.userpassUsers(mount: mount).map { AccessEngine.userpassMethodName($0, mount: mount) }, caller)
    }

    /// Disabling an AppRole mount deletes its roles: that needs delete on each of them too.
    func requireMayDisableAppRoles(_ mount: String, _ caller: CallerContext) async throws {
        try requireMayDelete(try await tessera.access.appRoles(mount: mount).map { AccessEngine.appRoleMethodName($0, mount: mount) }, caller)
    }

    func requireMayDelete(_ methodNames: [String], _ caller: CallerContext) throws {
        let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
        for name in methodNames {
            let p = try ItemPath(name)
            guard authorizer.check(.delete, on: p, type: .authMethod).isAllowed else {
                throw TesseraError.forbidden(path: p.value, capability: "delete")
            }
        }
    }

    func appRoleEntry(_ marker: AuthMethod) -> JSON {
        let type = marker.type == AccessEngine.userpassMountType ? "userpass" : "approle"
        return .obj(("accessor", .string("auth_\(type)_" + marker.accessId.dropFirst(2).lowercased())), ("config", mountConfig(marker, ttl: 0)),
             ("deprecation_status", .string("supported")),
             ("description", .string(marker.config["description"]?.stringValue ?? "")), ("external_entropy_access", .bool(false)),
             ("local", .bool(false)), ("options", .null), ("plugin_version", .string("")),
             ("running_plugin_version", .string("v\(SystemAPI.version)+builtin.tessera")), ("running_sha256", .string("")),
             ("seal_wrap", .bool(false)), ("type", .string(type)), ("uuid", .string(marker.accessId)))
    }

    var approleEntry: JSON {
        .obj(("accessor", .string("auth_approle_tessera")), ("config", mountConfig(ttl: 0)),
             ("deprecation_status", .string("supported")), ("description", .string("")), ("external_entropy_access", .bool(false)), ("local", .bool(false)),
             ("options", .null), ("plugin_version", .string("")), ("running_plugin_version", .string("v\(SystemAPI.version)+builtin.tessera")),
             ("running_sha256", .string("")), ("seal_wrap", .bool(false)), ("type", .string("approle")), ("uuid", .string("tessera-approle")))
    }

    func workloadMethod(_ mount: String) async throws -> AuthMethod? {
        guard let m = try? await tessera.access.authMethod(named: "/" + mount), WorkloadIdentityEngine.isWorkloadType(m.type) else { return nil }
        return m
    }

    func list(_ vr: VaultRequest) async throws -> Response {
        let entries = try await tessera.run(vr.pipelineCall(action: "list_auth_methods", auditPath: "/")) { caller -> [(String, JSON)] in
            let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
            var out: [(String, JSON)] = [("approle/", approleEntry), ("token/", tokenEntry)]
            for m in try await tessera.access.authMethods() where WorkloadIdentityEngine.isWorkloadType(m.type) || m.type == AccessEngine.appRoleMountType
                    || m.type == AccessEngine.userpassMountType {
                guard let p = try? ItemPath(m.name), authorizer.check(.list, on: p, type: .authMethod).isAllowed
                        || authorizer.check(.read, on: p, type: .authMethod).isAllowed else { continue }
                let marker = m.type == AccessEngine.appRoleMountType || m.type == AccessEngine.userpassMountType
                out.append((WorkloadIdentityEngine.mountPath(m) + "/", marker ? appRoleEntry(m) : entryJSON(m)))
            }
            return out
        }
        return VaultResponses.doubled(.object(entries), requestId: vr.context.requestId)
    }

    var tokenEntry: JSON {
        .obj(("accessor", .string("auth_token_tessera")), ("config", mountConfig(ttl: 0)),
             ("description", .string("token based credentials")), ("external_entropy_access", .bool(false)), ("local", .bool(false)),
             ("options", .null), ("plugin_version", .string("")), ("running_plugin_version", .string("v\(SystemAPI.version)+builtin.tessera")),
             ("running_sha256", .string("")), ("seal_wrap", .bool(false)), ("type", .string("token")), ("uuid", .string("tessera-token")))
    }

    func mountConfig(ttl: Int) -> JSON {
        .obj(("default_lease_ttl", .int(Int64(ttl))), ("force_no_cache", .bool(false)), ("max_lease_ttl", .int(Int64(AuthMethod.maxTokenTTLMinutes * 60))),
             ("token_type", .string("default-service")))
    }

    /// The `config` of a mount entry, with the TTLs tuned on the mount's record.
    func mountConfig(_ m: AuthMethod, ttl: Int) -> JSON {
        let (defaultTTL, maxTTL) = AuthMountTune.ttls(m, defaultTTL: ttl)
        return .obj(("default_lease_ttl", .int(Int64(defaultTTL))), ("force_no_cache", .bool(false)), ("max_lease_ttl", .int(Int64(maxTTL))),
                    ("token_type", .string("default-service")))
    }

    func entryJSON(_ m: AuthMethod) -> JSON {
        let type = WorkloadIdentityEngine.vaultType(m)
        return .obj(("accessor", .string("auth_\(type)_" + m.accessId.dropFirst(2).lowercased())),
                    ("config", mountConfig(m, ttl: m.tokenTTLMinutes * 60)),
                    ("deprecation_status", .string("supported")),
                    ("description", .string(m.config["description"]?.stringValue ?? "")), ("external_entropy_access", .bool(false)),
                    ("local", .bool(false)), ("options", .null), ("plugin_version", .string("")),
                    ("running_plugin_version", .string("v\(SystemAPI.version)+builtin.tessera")), ("running_sha256", .string("")),
                    ("seal_wrap", .bool(false)), ("type", .string(type)), ("uuid", .string(m.accessId)))
    }

    func tuneJSON(_ m: AuthMethod, defaultTTL fallback: Int? = nil) -> JSON {
        let (defaultTTL, maxTTL) = AuthMountTune.ttls(m, defaultTTL: fallback ?? m.tokenTTLMinutes * 60)
        return .obj(("default_lease_ttl", .int(Int64(defaultTTL))), ("description", .string(m.config["description"]?.stringValue ?? "")),
                    ("force_no_cache", .bool(false)), ("max_lease_ttl", .int(Int64(maxTTL))),
                    ("token_type", .string("default-service")))
    }

    // MARK: auth/<path>/…

    enum Endpoint {
        case login, config, roles, role(String)
    }

    /// Splits `auth/<mount>/<endpoint>`; nil when the path is none of these.
    static func endpoint(_ path: String) -> (mount: String, endpoint: Endpoint)? {
        let segments = path.dropFirst("auth/".count).split(separator: "/").map(String.init)
        let n = segments.count
        guard n >= 2 else { return nil }
        // Login roles are `role/<name>` (JWT, Kubernetes) or `certs/<name>` (certificates).
        if n >= 3, segments[n - 2] == "role" || segments[n - 2] == "certs" {
            return (segments[0..<(n - 2)].joined(separator: "/"), .role(segments[n - 1]))
        }
        let mount = segments[0..<(n - 1)].joined(separator: "/")
        switch segments[n - 1] {
        case "login": return (mount, .login)
        case "config": return (mount, .config)
        case "role", "certs": return (mount, .roles)
        default: return nil
        }
    }

    func handleAuth(_ vr: VaultRequest) async throws -> Response? {
        for step in ["/oidc/auth_url", "/oidc/callback", "/oidc/poll"] where vr.path.hasSuffix(step) {
            let mount = String(vr.path.dropFirst("auth/".count).dropLast(step.count))
            guard let method = try await workloadMethod(mount), method.type == WorkloadIdentityEngine.jwtType else { return nil }
            try await tessera.run(vr.pipelineCall(action: "auth", auditPath: method.name, needsIdentity: false)) { _ in
                throw TesseraError.badRequest("the OIDC browser flow is not supported yet: log in with role_type=jwt roles and an ID token at auth/\(mount)/login")
            }
        }
        guard let (mount, endpoint) = Self.endpoint(vr.path), let method = try await workloadMethod(mount) else { return nil }
        let methodPath = try ItemPath(method.name)
        let requestId = vr.context.requestId
        switch (endpoint, vr.operation) {
        case (.login, .write):
            return try await login(vr, method)
        case (.config, .write):
            let body = try vr.fields().body
            try await tessera.run(vr.pipelineCall(action: "update_auth_method", auditPath: methodPath.value,
                                                  checks: [AccessCheck(.update, .authMethod, methodPath)])) { caller in
                // Whoever decides which credentials are trusted can log in as the method.
                try await NativeVerbs.requireMayGrantReachable(tessera, caller, method)
                try await tessera.identity.writeVaultConfig(method, body: body)
            }
            return VaultResponses.noContent()
        case (.config, .read):
            let view = try await tessera.run(vr.pipelineCall(action: "get_auth_method", auditPath: methodPath.value,
                                                             checks: [AccessCheck(.read, .authMethod, methodPath)])) { _ in
                tessera.identity.vaultConfigView(try await tessera.access.authMethod(named: method.name))
            }
            guard let view else { throw TesseraError.notFound("") }
            return VaultResponses.envelope(data: view, requestId: requestId)
        case (.roles, .list):
            let names = try await tessera.run(vr.pipelineCall(action: "list_auth_method_roles", auditPath: methodPath.value,
                                                              checks: [AccessCheck(.list, .authMethod, methodPath)])) { _ in
                try await tessera.access.loginRoles(accessId: method.accessId).map(\.name)
            }
            guard !names.isEmpty else { throw TesseraError.notFound("") }
            return VaultResponses.envelope(data: .obj(("keys", .strings(names))), requestId: requestId)
        case (.role(let raw), .write):
            let name = try WorkloadIdentityEngine.roleName(raw)
            let body = try vr.fields().body
            try await tessera.run(vr.pipelineCall(action: "update_auth_method_role", auditPath: methodPath.value,
                                                  checks: [AccessCheck(.update, .authMethod, methodPath)])) { caller in
                caller.notes.set("login_role", name)
                // A login role gives its token the roles it names: only existing roles, and only
                // with rights the writer holds (a role created later under a pre-named name
                // would otherwise flow to the login unchecked).
                let old = try await tessera.access.loginRole(accessId: method.accessId, name: name)
                for roleName in try WorkloadIdentityEngine.grantedRoles(afterWriting: body, over: old) where roleName != "default" {
                    guard let role = try? await tessera.access.role(named: roleName) else {
                        throw TesseraError.badRequest("token_policies names \"\(roleName.prefix(128))\", which is not a Tessera access role")
                    }
                    try NativeVerbs.requireMayGrant(caller, role)
                }
                _ = try await tessera.identity.writeVaultRole(method, name: name, body: body)
            }
            return VaultResponses.noContent()
        case (.role(let raw), .read):
            let name = try WorkloadIdentityEngine.roleName(raw)
            let role = try await tessera.run(vr.pipelineCall(action: "get_auth_method_role", auditPath: methodPath.value,
                                                             checks: [AccessCheck(.read, .authMethod, methodPath)])) { _ in
                try await tessera.access.loginRole(accessId: method.accessId, name: name)
            }
            guard let role else { throw TesseraError.notFound("") }
            return VaultResponses.envelope(data: role.config, requestId: requestId)
        case (.role(let raw), .delete):
            let name = try WorkloadIdentityEngine.roleName(raw)
            try await tessera.run(vr.pipelineCall(action: "delete_auth_method_role", auditPath: methodPath.value,
                                                  checks: [AccessCheck(.delete, .authMethod, methodPath)])) { caller in
                caller.notes.set("login_role", name)
                _ = try await tessera.access.deleteLoginRole(accessId: method.accessId, name: name)
            }
            return VaultResponses.noContent()
        default:
            return VaultResponses.errors([VaultResponses.unsupported], status: .methodNotAllowed)
        }
    }

    func login(_ vr: VaultRequest, _ method: AuthMethod) async throws -> Response {
        let fields = try vr.fields()
        let role = try fields.string("role") ?? fields.string("name")
        let jwt = try fields.string("jwt") ?? ""
        var certificate: [UInt8]?
        if method.type == WorkloadIdentityEngine.certType, let channel = vr.connection, let c = await peerCertificate(of: channel) {
            certificate = try? c.toDERBytes()
        }
        var call = vr.pipelineCall(action: "auth", auditPath: method.name, needsIdentity: false)
        call.claimedAccessId = method.accessId
        call.claimedMethodType = method.type
        // Recorded only as an HMAC under the audit key, as Vault's audit devices do.
        if !jwt.isEmpty { call.sensitive = ["jwt": jwt] }
        let login: WorkloadLogin
        do {
            login = try await tessera.run(call) { caller in
                let note: LoginNote = { [notes = caller.notes, logger = tessera.logger, name = method.name, requestId = caller.request.requestId] k, v in
                    notes.set(k, v)
                    // The operator learns which bound failed; the client only what Vault would say.
                    if k == "refusal_reason" {
                        logger.notice("login refused", metadata: ["auth_method": "\(name)", "reason": "\(v)", "request_id": "\(requestId)"])
                    }
                }
                let address = caller.request.clientAddress
                // Not throttled: a signed credential cannot be guessed, and a limit per method would
                // let anyone lock every workload of a shared CI method out with bad tokens.
                return try await workloadLogin(method, role: role, jwt: jwt, certificate: certificate, address: address, note: note)
            }
        } catch TesseraError.unauthorized(let text) {
            return VaultResponses.errors([text], status: .forbidden)
        }
        return VaultResponses.envelope(data: nil, auth: Self.authBlock(login, now: tessera.now()), requestId: vr.context.requestId)
    }

    func workloadLogin(_ method: AuthMethod, role: String?, jwt: String, certificate: [UInt8]?, address: String,
                       note: @escaping LoginNote) async throws -> WorkloadLogin {
        switch method.type {
        case WorkloadIdentityEngine.jwtType:
            return try await tessera.identity.vaultJWTLogin(method: method, roleName: role, jwt: jwt, clientAddress: address, note: note)
        case WorkloadIdentityEngine.kubernetesType:
            return try await tessera.identity.vaultKubernetesLogin(method: method, roleName: role, jwt: jwt, clientAddress: address, note: note)
        case WorkloadIdentityEngine.certType:
            return try await tessera.identity.vaultCertLogin(method: method, roleName: role, clientCertificate: certificate,
                                                             clientAddress: address, note: note)
        default:
            throw TesseraError.badRequest("unsupported operation")
        }
    }

    static func authBlock(_ login: WorkloadLogin, now: Date) -> JSON {
        let record = login.issued.record
        let ttl = InputNumber.int64(max(0, record.expiresAt.timeIntervalSince(now)))
        return .obj(("client_token", .string(login.issued.token)), ("accessor", .string(String(record.tokenHash.prefix(24)))),
                    ("policies", .strings(login.policies)), ("token_policies", .strings(login.policies)),
                    ("metadata", JSON.stringMap(login.metadata)), ("lease_duration", .int(ttl)), ("renewable", .bool(true)),
                    ("entity_id", .string("")), ("token_type", .string("service")), ("orphan", .bool(true)),
                    ("mfa_requirement", .null), ("num_uses", .int(Int64(record.usesLeft ?? 0))))
    }
}
