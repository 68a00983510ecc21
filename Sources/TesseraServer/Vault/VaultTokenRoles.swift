// Vault token roles, `auth/token/roles/<name>` (read, write, delete, list) and
// `auth/token/create/<name>`. Administration is authorized under the auth-method rule type on
// `/token/roles/<name>`, creation on `/token/create/<name>`. A role that names policies bounds
// its tokens instead of the creating token, so writing one needs the right to grant each allowed
// policy (globs, root, and disallowed-only roles, which allow everything else: only an
// administrator), and an orphan role needs the orphan right too.
import Foundation
import Hummingbird
import TesseraCore
import TesseraEngines

extension VaultTokenAPI {
    /// The most policies a role's list may name.
    static let maxRolePolicies = 256

    func roles(_ vr: VaultRequest, _ name: String) async throws -> Response {
        if name.isEmpty {
            guard vr.operation == .list else { return VaultResponses.errors([], status: .methodNotAllowed) }
            return try await listRoles(vr)
        }
        guard TokenRole.isValidName(name) else { throw TesseraError.badRequest("invalid role name") }
        switch vr.operation {
        case .read: return try await readRole(vr, name)
        case .write: return try await writeRole(vr, name)
        case .delete: return try await deleteRole(vr, name)
        default: return VaultResponses.errors([], status: .methodNotAllowed)
        }
    }

    func roleRulePath(_ name: String) throws -> ItemPath { try ItemPath("/token/roles/" + name) }

    func listRoles(_ vr: VaultRequest) async throws -> Response {
        let names = try await tessera.run(vr.pipelineCall(action: "list_token_roles", auditPath: "/token/roles")) { caller -> [String] in
            let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
            return try await tessera.access.tokenRoles().map(\.name).filter { name in
                guard let p = try? roleRulePath(name) else { return false }
                return authorizer.listsAuthMethod(p)
            }
        }
        guard !names.isEmpty else { throw TesseraError.notFound("") }
        return VaultResponses.envelope(data: .obj(("keys", JSON.strings(names))), requestId: vr.context.requestId)
    }

    func readRole(_ vr: VaultRequest, _ name: String) async throws -> Response {
        let path = try roleRulePath(name)
        let role = try await tessera.run(vr.pipelineCall(action: "get_token_role", auditPath: path.value,
                                                         checks: [AccessCheck(.read, .authMethod, path)])) { _ in
            try await tessera.access.tokenRole(named: name)
        }
        guard let role else { throw TesseraError.notFound("") }
        return VaultResponses.envelope(data: role.shown, requestId: vr.context.requestId)
    }

    /// A policy list field: a list or a comma-separated string, lower-cased, bounded.
    static func policyList(_ f: RequestFields, _ key: String) throws -> [String]? {
        guard let list = try VaultAppRoleAPI.commaList(f, key) else { return nil }
        let names = Array(Set(list.map { $0.lowercased() })).sorted()
        guard names.count <= maxRolePolicies, names.allSatisfy({ $0.utf8.count <= 128 }) else {
            throw TesseraError.badRequest("\(key) names too many policies or too long a name")
        }
        return names
    }

    func writeRole(_ vr: VaultRequest, _ name: String) async throws -> Response {
        let f = try vr.fields()
        let path = try roleRulePath(name)
        let existing = try await tessera.access.tokenRole(named: name)
        var r = existing ?? TokenRole(name: name)
        if let v = try Self.policyList(f, "allowed_policies") { r.allowedPolicies = v }
        if let v = try Self.policyList(f, "disallowed_policies") { r.disallowedPolicies = v }
        if let v = try Self.policyList(f, "allowed_policies_glob") { r.allowedPoliciesGlob = v }
        if let v = try Self.policyList(f, "disallowed_policies_glob") { r.disallowedPoliciesGlob = v }
        if let v = try f.bool("orphan") { r.orphan = v }
        if let v = try f.bool("renewable") { r.renewable = v }
        if let v = try f.bool("token_no_default_policy") { r.noDefaultPolicy = v }
        if let v = try f.seconds("token_explicit_max_ttl") ?? f.seconds("explicit_max_ttl") { r.explicitMaxTTL = v }
        if let v = try f.seconds("token_period") ?? f.seconds("period") { r.period = v }
        if let v = try f.string("path_suffix") {
            guard v.isEmpty || TokenRole.isValidName(v, minimum: 3) else {
                throw TesseraError.badRequest("given role path suffix contains invalid characters; must match \\w[\\w-.]+\\w")
            }
            r.pathSuffix = v
        }
        if let type = try f.string("token_type"), !["", "default", "default-service", "service"].contains(type) {
            throw TesseraError.badRequest("token type \"\(type.prefix(16))\" is not supported; Tessera issues service tokens")
        }
        if let uses = try f.int("token_num_uses", in: 0...Int(Int32.max)) { r.numUses = uses }
        if let cidrs = try VaultAppRoleAPI.commaList(f, "token_bound_cidrs"), !cidrs.isEmpty {
            throw TesseraError.badRequest("token_bound_cidrs on a token role is not supported")
        }
        if let aliases = try VaultAppRoleAPI.commaList(f, "allowed_entity_aliases"), !aliases.isEmpty {
            throw TesseraError.badRequest("allowed_entity_aliases is not supported: Tessera has no identity entities")
        }
        let role = r
        let cap: Capability = existing == nil ? .create : .update
        try await tessera.run(vr.pipelineCall(action: existing == nil ? "create_token_role" : "update_token_role", auditPath: path.value,
                                              checks: [AccessCheck(cap, .authMethod, path)])) { caller in
            try await requireMayDelegate(role, caller)
            caller.notes.set("allowed_policies", (role.allowedPolicies + role.allowedPoliciesGlob).joined(separator: ","))
            caller.notes.set("disallowed_policies", (role.disallowedPolicies + role.disallowedPoliciesGlob).joined(separator: ","))
            caller.notes.set("orphan", String(role.orphan))
            // Authorized as a creation, it must stay one: a role written meanwhile is not replaced.
            guard try await tessera.access.putTokenRole(role, onlyIfAbsent: existing == nil) else {
                throw TesseraError.conflict("token role \"\(role.name)\" was created meanwhile; write it again")
            }
        }
        return VaultResponses.noContent()
    }

    /// A role's tokens carry its allowed policies whatever their creator holds: only someone who
    /// may grant each of them names them. A policy that does not exist yet, a glob, or root is
    /// for an administrator, since whatever those come to name later reaches the tokens
    /// unchecked. An orphan role hands out orphans, so it needs the orphan right as well.
    func requireMayDelegate(_ role: TokenRole, _ caller: CallerContext) async throws {
        let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
        let admin = authorizer.holdsEverything
        if !role.allowedPoliciesGlob.isEmpty && !admin {
            throw TesseraError.forbidden(path: "/token/roles/" + role.name, capability: "administrator (allowed_policies_glob)")
        }
        // Only disallowed policies: its tokens may carry any other policy (Vault's rule).
        if role.restrictsPolicies && role.allowedPolicies.isEmpty && role.allowedPoliciesGlob.isEmpty && !admin {
            throw TesseraError.forbidden(path: "/token/roles/" + role.name, capability: "administrator (disallowed_policies without allowed_policies)")
        }
        for policy in role.allowedPolicies where policy != "default" {
            if policy == "root" {
                guard admin else { throw TesseraError.forbidden(path: "/token/roles/" + role.name, capability: "administrator (root)") }
                continue
            }
            do {
                try NativeVerbs.requireMayGrant(caller, try await tessera.access.role(named: policy))
            } catch TesseraError.notFound {
                guard admin else { throw TesseraError.badRequest("policy \"\(policy.prefix(128))\" does not exist") }
            }
        }
        if role.orphan {
            let orphanPath = try ItemPath("/token/create-orphan")
            guard authorizer.check(.update, on: orphanPath, type: .authMethod).isAllowed
                || authorizer.check(.create, on: orphanPath, type: .authMethod).isAllowed else {
                throw TesseraError.forbidden(path: orphanPath.value, capability: "update")
            }
        }
    }

    func deleteRole(_ vr: VaultRequest, _ name: String) async throws -> Response {
        let path = try roleRulePath(name)
        try await tessera.run(vr.pipelineCall(action: "delete_token_role", auditPath: path.value,
                                              checks: [AccessCheck(.delete, .authMethod, path)])) { _ in
            // Like Vault, deleting a role that does not exist succeeds; its tokens live on.
            _ = try await tessera.access.deleteTokenRole(named: name)
        }
        return VaultResponses.noContent()
    }

    // MARK: Creating from a role

    /// A token from `role`, with the policies Vault's rules give it (`TokenRole.policies`): bounded
    /// by the role when it names any, else by the parent as an ordinary child is.
    func createFromRole(_ role: TokenRole, parent: Principal, caller: CallerContext, requested: [String], noDefault: Bool, ttl: Int?,
                        period: Int?, explicitMax: Int, renewable: Bool, displayName: String, meta: [String: String],
                        numUses: Int) async throws -> (IssuedToken, [String]) {
        guard requested.count <= Self.maxRolePolicies else { throw TesseraError.badRequest("too many policies requested") }
        let admin = AccessEngine.adminRoleName
        // The parent's roles by the lower-cased name Vault's rules compare (admin is root).
        var parentRoles: [String: String] = [:]
        for name in parent.identity.roleNames { parentRoles[name == admin ? "root" : name.lowercased()] = name }
        let (policies, boundByParent) = try role.policies(requested: requested, noDefault: noDefault, parent: Array(parentRoles.keys))
        var roleNames: [String] = []
        var seen = Set<String>()
        for name in policies where name != "default" {
            // Tessera's administrator role is Vault's root, whatever the role allows: only a
            // parent that holds everything passes it on.
            if (name == "root" || name == admin) && !parent.authorizer.holdsEverything {
                throw TesseraError.badRequest("root tokens may not be created without parent token being root")
            }
            let roleName = name == "root" ? admin : (parentRoles[name] ?? name)
            if boundByParent && !(parent.authorizer.holdsEverything || parentRoles[name] != nil) {
                throw TesseraError.badRequest("child policies must be subset of parent")
            }
            if seen.insert(roleName).inserted { roleNames.append(roleName) }
        }
        // `default` may carry rules an administrator added: like any child, a role's token gets
        // it only when its parent holds it.
        if policies.contains("default"), parent.authorizer.holdsEverything || parent.identity.roleNames.contains("default"),
           (try? await tessera.access.role(named: "default")) != nil {
            roleNames.append("default")
        }
        if boundByParent { roleNames += await retainedDenyRoles(parent, besides: roleNames) }
        var maxTTL = explicitMax
        if role.explicitMaxTTL > 0 { maxTTL = maxTTL > 0 ? min(maxTTL, role.explicitMaxTTL) : role.explicitMaxTTL }
        // The role's period is the TTL; OpenBao's lookup shows `period` only for one requested.
        let ttlSeconds = role.period > 0 ? role.period : (period ?? ttl.map { max($0, 1) })
        let periodSeconds = role.period > 0 ? nil : period
        var warnings: [String] = []
        let wanted = ttlSeconds ?? AccessEngine.maxCreatedTokenTTLSeconds
        if maxTTL > 0 && wanted > maxTTL {
            warnings.append("TTL of \"\(Self.goDuration(wanted))\" exceeded the effective max_ttl of \"\(Self.goDuration(maxTTL))\"; TTL value is capped accordingly")
        }
        let request = TokenRequest(roleNames: roleNames, policies: policies, ttlSeconds: ttlSeconds,
                                   explicitMaxTTLSeconds: maxTTL, displayName: "token" + (displayName.isEmpty ? "" : "-" + displayName),
                                   metadata: meta, orphan: role.orphan, renewable: renewable && role.renewable,
                                   path: "auth/token/create/" + role.name + (role.pathSuffix.isEmpty ? "" : "/" + role.pathSuffix),
                                   tokenRole: role.name, periodSeconds: periodSeconds,
                                   numUses: role.numUses > 0 && (numUses == 0 || role.numUses < numUses) ? role.numUses : numUses)
        let issued = try await tessera.access.createToken(parent: parent, request: request, clientAddress: caller.request.clientAddress)
        caller.notes.set("child_accessor", issued.record.accessor)
        caller.notes.set("parent_accessor", issued.record.parentHash.isEmpty ? "" : String(issued.record.parentHash.prefix(24)))
        caller.notes.set("policies", policies.joined(separator: ","))
        caller.notes.set("roles", roleNames.joined(separator: ","))
        return (issued, warnings)
    }

    /// A whole number of seconds as Go prints a duration in Vault's warnings (`768h`, `90m`, `5s`).
    static func goDuration(_ seconds: Int) -> String {
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
}
