// Vault token management, `auth/token/*` beyond the caller's own token: create and
// create-orphan, lookup, lookup-accessor, renew, renew-accessor, revoke, revoke-accessor and
// revoke-orphan. Each is authorized under the auth-method rule type on `/token/<operation>`,
// which a policy's `auth/token/<operation>` path translates to. A created token carries the
// roles its policies name, and a caller may only give what it holds or may grant (Vault's
// "child policies must be subset of parent"); audit records the parent's and child's accessors.
import Foundation
import Hummingbird
import TesseraCore
import TesseraEngines

struct VaultTokenAPI: Sendable {
    let tessera: Tessera

    static let operations: Set<String> = ["create", "create-orphan", "lookup", "lookup-accessor", "renew", "renew-accessor",
                                          "revoke", "revoke-accessor", "revoke-orphan"]

    func handle(_ vr: VaultRequest, operation: String) async throws -> Response? {
        if operation == "roles" || operation.hasPrefix("roles/") { return try await roles(vr, String(operation.dropFirst("roles/".count))) }
        if operation.hasPrefix("create/") {
            guard vr.operation == .write else { return VaultResponses.errors([], status: .methodNotAllowed) }
            let name = String(operation.dropFirst("create/".count))
            guard TokenRole.isValidName(name) else { return nil }
            return try await create(vr, orphanPath: false, roleName: name)
        }
        if operation == "accessors" {
            guard vr.operation == .list else { return VaultResponses.errors([VaultResponses.unsupported], status: .methodNotAllowed) }
            return try await accessors(vr)
        }
        guard Self.operations.contains(operation) else { return nil }
        guard vr.operation == .write || (vr.operation == .read && operation == "lookup") else {
            return VaultResponses.errors([], status: .methodNotAllowed)
        }
        let rulePath = try ItemPath("/token/" + operation)
        switch operation {
        case "create", "create-orphan": return try await create(vr, orphanPath: operation == "create-orphan")
        case "lookup", "lookup-accessor": return try await lookup(vr, operation, rulePath)
        case "renew", "renew-accessor": return try await renew(vr, operation, rulePath)
        default: return try await revoke(vr, operation, rulePath)
        }
    }

    // MARK: Create

    func create(_ vr: VaultRequest, orphanPath: Bool, roleName: String? = nil) async throws -> Response {
        let f = try vr.fields()
        var requested = try f.stringList("policies")?.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        // 0 or absent: the default (the CLI sends 0 when -ttl is not given).
        let period = try f.seconds("period").flatMap { $0 > 0 ? $0 : nil }
        let ttl = try period ?? f.seconds("ttl").flatMap { $0 > 0 ? $0 : nil }
        let explicitMax = try f.seconds("explicit_max_ttl") ?? 0
        let numUses = try f.int("num_uses", in: 0...Int(Int32.max)) ?? 0
        let noParent = try f.bool("no_parent") ?? false
        let noDefault = try f.bool("no_default_policy") ?? false
        let renewable = try f.bool("renewable") ?? true
        let displayName = try f.string("display_name") ?? ""
        let meta = try metadata(f)
        if try f.string("id").map({ !$0.isEmpty }) == true { throw TesseraError.badRequest("custom token ids are not supported") }
        if let type = try f.string("type"), !["", "service", "default"].contains(type) {
            throw TesseraError.badRequest("token type \"\(type.prefix(16))\" is not supported; Tessera issues service tokens")
        }
        let orphan = orphanPath || noParent
        let rulePath = try ItemPath(roleName.map { "/token/create/" + $0 } ?? (orphanPath ? "/token/create-orphan" : "/token/create"))
        let call = vr.pipelineCall(action: "create_token", auditPath: rulePath.value, checks: [AccessCheck(anyOf: [.create, .update], .authMethod, rulePath)])
        let (issued, warnings) = try await tessera.run(call) { caller -> (IssuedToken, [String]) in
            guard let parent = caller.principal else { throw TesseraError.unauthorized("") }
            if let roleName {
                guard let role = try await tessera.access.tokenRole(named: roleName) else { throw TesseraError.badRequest("unknown role \(roleName)") }
                caller.notes.set("token_role", roleName)
                return try await createFromRole(role, parent: parent, caller: caller, requested: requested ?? [], noDefault: noDefault,
                                                ttl: ttl, period: period, explicitMax: explicitMax, renewable: renewable, displayName: displayName, meta: meta,
                                                numUses: numUses)
            }
            // `no_parent` on `create` needs the orphan right as well (Vault: root or sudo).
            if noParent && !orphanPath {
                let orphanRulePath = try ItemPath("/token/create-orphan")
                let orphanRight = parent.authorizer.check(.update, on: orphanRulePath, type: .authMethod).isAllowed
                    || parent.authorizer.check(.create, on: orphanRulePath, type: .authMethod).isAllowed
                guard orphanRight else { throw TesseraError.badRequest("root or sudo privileges required to create orphan token") }
            }
            var warnings: [String] = []
            var roleNames: [String]
            if requested == nil || requested?.isEmpty == true {
                // Vault: a child without policies gets its parent's.
                roleNames = parent.identity.roleNames.filter { $0 != "default" }
                requested = nil
            } else {
                roleNames = []
                for name in requested ?? [] where name != "default" {
                    let roleName = name == "root" ? AccessEngine.adminRoleName : name
                    // Vault's rule, by name: a child's policies are a subset of its parent's.
                    // (Judging by a role's current rules would let the child gain what the role
                    // gains later.)
                    guard parent.authorizer.holdsEverything || parent.identity.roleNames.contains(roleName) else {
                        throw TesseraError.badRequest("child policies must be subset of parent")
                    }
                    if (try? await tessera.access.role(named: roleName)) == nil { warnings.append("Policy \"\(name.prefix(128))\" does not exist") }
                    if !roleNames.contains(roleName) { roleNames.append(roleName) }
                }
            }
            // `default` is given only when that role exists and the parent holds it (or is root).
            if !noDefault && !roleNames.contains("default") && (parent.authorizer.holdsEverything || parent.identity.roleNames.contains("default")),
               (try? await tessera.access.role(named: "default")) != nil {
                roleNames.append("default")
            }
            roleNames += await retainedDenyRoles(parent, besides: roleNames)
            var shown = requested.map { Set($0) } ?? Set(parent.identity.roleNames)
            if noDefault { shown.remove("default") } else { shown.insert("default") }
            let request = TokenRequest(roleNames: roleNames, policies: shown.sorted(), ttlSeconds: ttl.map { max($0, 1) },
                                       explicitMaxTTLSeconds: explicitMax, displayName: "token" + (displayName.isEmpty ? "" : "-" + displayName),
                                       metadata: meta, orphan: orphan, renewable: renewable, path: orphanPath ? "auth/token/create-orphan" : "auth/token/create",
                                       periodSeconds: period, numUses: numUses)
            let issued = try await tessera.access.createToken(parent: parent, request: request, clientAddress: caller.request.clientAddress)
            caller.notes.set("child_accessor", issued.record.accessor)
            caller.notes.set("parent_accessor", issued.record.parentHash.isEmpty ? "" : String(issued.record.parentHash.prefix(24)))
            caller.notes.set("policies", shown.sorted().joined(separator: ","))
            return (issued, warnings)
        }
        let record = issued.record
        let ttlLeft = InputNumber.int64(max(0, record.expiresAt.timeIntervalSince(record.issuedAt)).rounded())
        let policies = JSON.strings(record.grant?.policies ?? [])
        let auth = JSON.obj(("client_token", .string(issued.token)), ("accessor", .string(record.accessor)),
                            ("policies", policies), ("token_policies", policies),
                            ("metadata", meta.isEmpty ? .null : JSON.stringMap(meta)), ("lease_duration", .int(ttlLeft)),
                            ("renewable", .bool(record.grant?.renewable ?? renewable)), ("entity_id", .string("")), ("token_type", .string("service")),
                            ("orphan", .bool(record.parentHash.isEmpty)), ("mfa_requirement", .null), ("num_uses", .int(Int64(record.usesLeft ?? 0))))
        return VaultResponses.envelope(data: nil, warnings: warnings.isEmpty ? nil : warnings, auth: auth, requestId: vr.context.requestId)
    }

    /// A child never sheds a deny its parent could not remove: the parent's roles with such
    /// denies go with it.
    func retainedDenyRoles(_ parent: Principal, besides roleNames: [String]) async -> [String] {
        guard !parent.authorizer.holdsEverything else { return [] }
        var out: [String] = []
        for name in parent.identity.roleNames where !roleNames.contains(name) {
            guard let role = try? await tessera.access.role(named: name) else { continue }
            if role.rules.contains(where: { $0.capabilities.contains(.deny) && !parent.authorizer.mayRemove($0) }) { out.append(name) }
        }
        return out
    }

    func metadata(_ f: RequestFields) throws -> [String: String] {
        guard let raw = f.raw("meta") ?? f.raw("metadata"), raw != .null else { return [:] }
        guard case .object(let pairs) = raw else { throw TesseraError.badRequest("meta must be a map of strings") }
        var out: [String: String] = [:]
        for (k, v) in pairs {
            guard case .string(let s) = v else { throw TesseraError.badRequest("meta must be a map of strings") }
            guard k.utf8.count <= 128, s.utf8.count <= 512, out.count < 64 else { throw TesseraError.badRequest("meta is too large") }
            out[k] = s
        }
        return out
    }

    // MARK: Accessors

    /// `LIST auth/token/accessors` (`bao list auth/token/accessors`): the accessors of every live
    /// token, a sudo path in Vault (list on the auth-method rule `/token/accessors`).
    func accessors(_ vr: VaultRequest) async throws -> Response {
        let path = try ItemPath("/token/accessors")
        let limit = 100_000
        let keys = try await tessera.run(vr.pipelineCall(action: "list_token_accessors", auditPath: path.value,
                                                         checks: [AccessCheck(.list, .authMethod, path)])) { caller in
            let keys = try await tessera.access.liveTokenAccessors(limit: limit + 1)
            caller.notes.set("count", String(min(keys.count, limit)))
            return keys
        }
        let warnings = keys.count > limit ? ["only the first \(limit) accessors are listed"] : nil
        return VaultResponses.envelope(data: .obj(("keys", .strings(Array(keys.prefix(limit))))), warnings: warnings, requestId: vr.context.requestId)
    }

    // MARK: Lookup, renew, revoke

    /// The token a request names, by text or by accessor.
    func target(_ vr: VaultRequest, byAccessor: Bool) async throws -> TokenRecord? {
        let f = try vr.fields()
        if byAccessor { return try await tessera.access.token(accessor: try f.string("accessor") ?? "") }
        return try await tessera.access.token(text: try f.string("token") ?? "")
    }

    func lookup(_ vr: VaultRequest, _ operation: String, _ rulePath: ItemPath) async throws -> Response {
        let byAccessor = operation == "lookup-accessor"
        var call = vr.pipelineCall(action: "lookup_token", auditPath: rulePath.value, checks: [AccessCheck(anyOf: [.update, .read], .authMethod, rulePath)])
        if let text = try vr.fields().string("token"), !text.isEmpty { call.sensitive = ["token": text] }
        let principal = try await tessera.run(call) { caller -> Principal in
            guard let record = try await target(vr, byAccessor: byAccessor), let p = try await tessera.access.principal(record: record) else {
                throw byAccessor ? TesseraError.badRequest("invalid accessor") : TesseraError.forbidden(path: "", capability: "")
            }
            caller.notes.set("target_accessor", record.accessor)
            return p
        }
        let id = byAccessor ? "" : ((try? vr.fields().string("token")) ?? nil) ?? ""
        return VaultResponses.envelope(data: VaultAuthAPI(tessera: tessera).lookupData(principal, id: id), requestId: vr.context.requestId)
    }

    func renew(_ vr: VaultRequest, _ operation: String, _ rulePath: ItemPath) async throws -> Response {
        let byAccessor = operation == "renew-accessor"
        var call = vr.pipelineCall(action: "renew_token", auditPath: rulePath.value, checks: [AccessCheck(.update, .authMethod, rulePath)])
        if let text = try vr.fields().string("token"), !text.isEmpty { call.sensitive = ["token": text] }
        let renewed = try await tessera.run(call) { caller -> Principal in
            guard let record = try await target(vr, byAccessor: byAccessor) else {
                throw TesseraError.badRequest(byAccessor ? "invalid accessor" : "token not found")
            }
            caller.notes.set("target_accessor", record.accessor)
            let after = try await tessera.access.renew(record: record)
            guard let p = try await tessera.access.principal(record: after) else { throw TesseraError.badRequest("token not found") }
            return p
        }
        let api = VaultAuthAPI(tessera: tessera)
        return VaultResponses.envelope(data: nil, auth: api.authBlock(renewed, token: byAccessor ? "" : ((try? vr.fields().string("token")) ?? nil) ?? ""),
                                       requestId: vr.context.requestId)
    }

    func revoke(_ vr: VaultRequest, _ operation: String, _ rulePath: ItemPath) async throws -> Response {
        let byAccessor = operation == "revoke-accessor"
        var call = vr.pipelineCall(action: "revoke_token", auditPath: rulePath.value, checks: [AccessCheck(.update, .authMethod, rulePath)])
        if let text = try vr.fields().string("token"), !text.isEmpty { call.sensitive = ["token": text] }
        let found = try await tessera.run(call) { caller -> Bool in
            // Like Vault, revoking a token that does not exist succeeds.
            guard let record = try await target(vr, byAccessor: byAccessor) else { return false }
            let n = try await tessera.access.revokeTree(hash: record.tokenHash, orphanChildren: operation == "revoke-orphan")
            caller.notes.set("target_accessor", record.accessor)
            caller.notes.set("revoked", String(n))
            return true
        }
        if byAccessor && !found {
            return VaultResponses.envelope(data: nil, warnings: ["No token found with this accessor"], requestId: vr.context.requestId)
        }
        return VaultResponses.noContent()
    }
}
