// Vault token and login endpoints: `auth/token/lookup-self|renew-self|revoke-self` for the
// caller's own token (a Tessera `t-…` token or `<access-id>..<access-key>`); the rest of
// `auth/token/` is VaultTokenAPI, `auth/approle/` VaultAppRoleAPI, other mounts VaultAuthMethods.
import Foundation
import Hummingbird
import TesseraCore
import TesseraCrypto
import TesseraEngines

struct VaultAuthAPI: Sendable {
    let tessera: Tessera

    func handle(_ vr: VaultRequest) async throws -> Response {
        switch (vr.path, vr.operation) {
        case ("auth/token/lookup-self", .read), ("auth/token/lookup-self", .write):
            let principal = try await tessera.run(vr.pipelineCall(action: "token_lookup_self", auditPath: "")) { c in c.principal }
            guard let principal else { throw TesseraError.unauthorized("") }
            return VaultResponses.envelope(data: lookupData(principal, id: currentToken(vr)), requestId: vr.context.requestId)
        case ("auth/token/renew-self", .write):
            let renewed = try await tessera.run(vr.pipelineCall(action: "token_renew_self", auditPath: "")) { c -> Principal? in
                guard var p = c.principal else { return nil }
                // A request that spent a token's last use revoked it: nothing is left to renew.
                if case .token(let t) = vr.credentials, p.token?.usesLeft != 0 {
                    p.token = try await tessera.access.renew(token: t, clientAddress: c.request.clientAddress)
                }
                return p
            }
            guard let renewed else { throw TesseraError.unauthorized("") }
            return VaultResponses.envelope(data: nil, auth: authBlock(renewed, token: currentToken(vr)), requestId: vr.context.requestId)
        case ("auth/token/revoke-self", .write):
            guard case .token(let t) = vr.credentials else {
                // An access key is not a token: it is revoked by deleting its auth method.
                try await tessera.run(vr.pipelineCall(action: "token_revoke_self", auditPath: "")) { _ in
                    throw TesseraError.badRequest("an access id and key cannot be revoked; delete the auth method instead")
                }
                return VaultResponses.noContent()
            }
            try await tessera.run(vr.pipelineCall(action: "token_revoke_self", auditPath: "")) { c in
                // Spending its last use on this request revoked it already.
                guard c.principal?.token?.usesLeft != 0 else { return }
                try await tessera.access.revoke(token: t)
            }
            return VaultResponses.noContent()
        case (let p, _) where p.hasPrefix("auth/token/"):
            if let response = try await VaultTokenAPI(tessera: tessera).handle(vr, operation: String(p.dropFirst("auth/token/".count))) {
                return response
            }
            try await tessera.run(vr.pipelineCall(action: "vault_request", auditPath: "/" + p)) { _ in () }
            return VaultResponses.errors([VaultResponses.unsupported], status: .methodNotAllowed)
        case (let p, _) where p.hasPrefix("auth/approle/"):
            return try await VaultAppRoleAPI(tessera: tessera).handle(vr)
        default:
            if let mount = try await appRoleMount(of: vr.path) {
                return try await VaultAppRoleAPI(tessera: tessera, mount: mount).handle(vr)
            }
            if let mount = try await userpassMount(of: vr.path) {
                return try await VaultUserpassAPI(tessera: tessera, mount: mount).handle(vr)
            }
            if let response = try await VaultAuthMethods(tessera: tessera).handleAuth(vr) { return response }
            try await tessera.run(vr.pipelineCall(action: "vault_request", auditPath: "/" + vr.path)) { _ in () }
            throw TesseraError.notFound("")
        }
    }

    /// The AppRole mount (other than `approle/`) that a path `auth/<mount>/…` is under, if any.
    func appRoleMount(of path: String) async throws -> String? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard segments.count >= 2 else { return nil }
        for k in 1...min(segments.count - 1, 8) {
            let candidate = segments.prefix(k).joined(separator: "/")
            if try await tessera.access.appRoleMountExists(candidate) { return candidate }
        }
        return nil
    }

    /// The userpass mount that a path `auth/<mount>/…` is under, if any.
    func userpassMount(of path: String) async throws -> String? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard segments.count >= 2 else { return nil }
        for k in 1...min(segments.count - 1, 8) {
            let candidate = segments.prefix(k).joined(separator: "/")
            if try await tessera.access.userpassMount(candidate) != nil { return candidate }
        }
        return nil
    }

    func currentToken(_ vr: VaultRequest) -> String {
        switch vr.credentials {
        case .token(let t): t
        case .accessKey(let id, let key): id + ".." + key
        case .none: ""
        }
    }

    func lookupData(_ p: Principal, id: String) -> JSON {
        let now = tessera.now()
        let policies = JSON.strings(p.identity.roleNames.sorted())
        if let t = p.token, let grant = t.grant {
            let ttl = InputNumber.int64(max(0, t.expiresAt.timeIntervalSince(now)))
            let shown = JSON.strings(grant.policies ?? (["default"] + grant.roleNames.filter { $0 != "default" }))
            var pairs: [(String, JSON)] = [
                ("accessor", .string(t.accessor)), ("creation_time", .int(InputNumber.int64(t.issuedAt.timeIntervalSince1970))),
                ("creation_ttl", .int(Int64(grant.ttlSeconds))), ("display_name", .string(grant.displayName)),
                ("entity_id", .string("")), ("expire_time", .date(t.expiresAt)), ("explicit_max_ttl", .int(Int64(grant.explicitMaxTTLSeconds ?? 0))),
                ("id", .string(id)), ("issue_time", .date(t.issuedAt)),
                ("meta", grant.metadata.isEmpty && grant.path != nil ? .null : JSON.stringMap(grant.metadata)), ("num_uses", .int(Int64(t.usesLeft ?? 0))),
                ("orphan", .bool(t.parentHash.isEmpty)),
                ("path", .string(grant.path ?? ("auth" + p.identity.authMethodName + "/login"))),
            ]
            if let period = grant.periodSeconds { pairs.append(("period", .int(Int64(period)))) }
            pairs += [
                ("policies", shown),
                ("renewable", .bool(grant.renewable ?? true)),
            ]
            // A token made from a token role names it, as Vault's lookup does.
            if grant.path?.hasPrefix("auth/token/create/") == true, !grant.loginRole.isEmpty { pairs.append(("role", .string(grant.loginRole))) }
            pairs += [("ttl", .int(ttl)), ("type", .string("service"))]
            return .object(pairs)
        }
        if let t = p.token {
            let ttl = InputNumber.int64(max(0, t.expiresAt.timeIntervalSince(now)))
            return .obj(("accessor", .string(t.accessor)), ("creation_time", .int(InputNumber.int64(t.issuedAt.timeIntervalSince1970))),
                        ("creation_ttl", .int(InputNumber.int64(t.expiresAt.timeIntervalSince(t.issuedAt)))), ("display_name", .string(p.identity.authMethodName)),
                        ("entity_id", .string("")), ("expire_time", .date(t.expiresAt)), ("explicit_max_ttl", .int(0)),
                        ("id", .string(id)), ("issue_time", .date(t.issuedAt)),
                        ("meta", .obj(("access_id", .string(p.identity.accessId)))), ("num_uses", .int(0)), ("orphan", .bool(true)),
                        ("path", .string("auth/approle/login")), ("policies", policies), ("renewable", .bool(true)),
                        ("ttl", .int(ttl)), ("type", .string("service")))
        }
        let created = p.createdAt ?? now
        return .obj(("accessor", .string("")), ("creation_time", .int(InputNumber.int64(created.timeIntervalSince1970))), ("creation_ttl", .int(0)),
                    ("display_name", .string(p.identity.authMethodName)), ("entity_id", .string("")), ("expire_time", .null),
                    ("explicit_max_ttl", .int(0)), ("id", .string(id)), ("issue_time", .date(created)),
                    ("meta", .obj(("access_id", .string(p.identity.accessId)))), ("num_uses", .int(0)), ("orphan", .bool(true)),
                    ("path", .string("auth/token/create")), ("policies", policies), ("renewable", .bool(false)),
                    ("ttl", .int(0)), ("type", .string("service")))
    }

    func authBlock(_ p: Principal, token: String) -> JSON {
        let policies = JSON.strings(p.token?.grant?.policies ?? p.identity.roleNames.sorted())
        let ttl = p.token.map { InputNumber.int64(max(0, $0.expiresAt.timeIntervalSince(tessera.now())).rounded()) } ?? 0
        // A created token shows its own metadata; a login's shows the access id.
        let metadata: JSON = if let grant = p.token?.grant, grant.path != nil {
            grant.metadata.isEmpty ? .null : JSON.stringMap(grant.metadata)
        } else {
            .obj(("access_id", .string(p.identity.accessId)))
        }
        return .obj(("client_token", .string(token)), ("accessor", .string(p.token.map(\.accessor) ?? "")),
                    ("policies", policies), ("token_policies", policies),
                    ("metadata", metadata), ("lease_duration", .int(ttl)),
                    ("renewable", .bool(p.token != nil)), ("entity_id", .string("")), ("token_type", .string("service")),
                    ("orphan", .bool(p.token?.parentHash.isEmpty ?? true)), ("mfa_requirement", .null), ("num_uses", .int(Int64(p.token?.usesLeft ?? 0))))
    }
}
