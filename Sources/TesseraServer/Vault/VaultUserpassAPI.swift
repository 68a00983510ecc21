// Vault's userpass auth method: `auth/<mount>/users` (LIST), `users/<name>` (read, write,
// delete), `users/<name>/password`, `users/<name>/policies`, and `login/<name>`. Users are
// administered under the auth-method rule type on `/<mount>/users/<name>` (what a policy's
// `auth/<mount>/users/<name>` translates to); naming policies in a user is a grant of them.
// A login is anonymous and audited with the user's name, never the password.
import Foundation
import Hummingbird
import TesseraCore
import TesseraEngines

struct VaultUserpassAPI: Sendable {
    let tessera: Tessera
    let mount: String

    func handle(_ vr: VaultRequest) async throws -> Response {
        let rest = String(vr.path.dropFirst("auth/\(mount)/".count))
        let segments = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        switch (segments.first, segments.count, vr.operation) {
        case ("login", 2, .write): return try await login(vr, segments[1])
        case ("users", 1, .list): return try await list(vr)
        case ("users", 2, .list) where segments[1].isEmpty: return try await list(vr)
        case ("users", 2, .read): return try await read(vr, try AccessEngine.userpassName(segments[1]))
        case ("users", 2, .write): return try await write(vr, try AccessEngine.userpassName(segments[1]), only: nil)
        case ("users", 2, .delete): return try await delete(vr, try AccessEngine.userpassName(segments[1]))
        case ("users", 3, .write) where segments[2] == "password" || segments[2] == "policies":
            return try await write(vr, try AccessEngine.userpassName(segments[1]), only: segments[2])
        default:
            try await tessera.run(vr.pipelineCall(action: "vault_request", auditPath: "/" + vr.path)) { _ in () }
            return VaultResponses.errors([VaultResponses.unsupported], status: .methodNotAllowed)
        }
    }

    func rulePath(_ name: String) throws -> ItemPath { try ItemPath(AccessEngine.userpassMethodName(name, mount: mount)) }

    func list(_ vr: VaultRequest) async throws -> Response {
        let path = try ItemPath("/\(mount)/users")
        let names = try await tessera.run(vr.pipelineCall(action: "list_auth_method_roles", auditPath: path.value,
                                                          checks: [AccessCheck(.list, .authMethod, path)])) { _ in
            try await tessera.access.userpassUsers(mount: mount)
        }
        guard !names.isEmpty else { throw TesseraError.notFound("") }
        return VaultResponses.envelope(data: .obj(("keys", .strings(names))), requestId: vr.context.requestId)
    }

    func read(_ vr: VaultRequest, _ name: String) async throws -> Response {
        let path = try rulePath(name)
        let user = try await tessera.run(vr.pipelineCall(action: "get_auth_method", auditPath: path.value,
                                                         checks: [AccessCheck(.read, .authMethod, path)])) { _ in
            try await tessera.access.userpassUser(named: name, mount: mount)
        }
        guard let user else { throw TesseraError.notFound("") }
        return VaultResponses.envelope(data: AccessEngine.userpassView(user), requestId: vr.context.requestId)
    }

    /// A user write; `only` is `password` or `policies` for the per-field endpoints, which change
    /// that field of an existing user and nothing else.
    func write(_ vr: VaultRequest, _ name: String, only: String?) async throws -> Response {
        let f = try vr.fields()
        let password = try f.string("password")
        if only == "password", password?.isEmpty ?? true { throw TesseraError.badRequest("missing password") }
        var body = f.body
        if only != nil {
            body = only == "policies" ? .obj(("token_policies", f.raw("token_policies") ?? f.raw("policies") ?? .array([]))) : .object([])
        }
        let path = try rulePath(name)
        let existing = try await tessera.access.userpassUser(named: name, mount: mount)
        let settings = try AccessEngine.userpassSettings(body, over: existing?.config)
        let call = vr.pipelineCall(action: existing == nil ? "create_auth_method" : "update_auth_method", auditPath: path.value,
                                   checks: [AccessCheck(existing == nil ? .create : .update, .authMethod, path)])
        try await tessera.run(call) { caller in
            if only != nil && existing == nil { throw TesseraError.badRequest("username does not exist") }
            // The user's tokens carry these roles: only someone who may grant them names them.
            let admin = caller.principal?.authorizer.holdsEverything == true
            let policies = AccessEngine.userpassPolicies(settings)
            for policy in policies where policy != "default" {
                do {
                    try NativeVerbs.requireMayGrant(caller, try await tessera.access.role(named: policy))
                } catch TesseraError.notFound {
                    guard admin else { throw TesseraError.badRequest("policy \"\(policy.prefix(128))\" does not exist") }
                }
            }
            caller.notes.set("token_policies", policies.joined(separator: ","))
            let newPassword = only == "policies" ? nil : password
            if newPassword != nil { caller.notes.set("password_set", "true") }
            // The password endpoint keeps the stored settings as they are now.
            let current = only == "password" ? try await tessera.access.userpassUser(named: name, mount: mount)?.config : nil
            try await tessera.access.putUserpassUser(named: name, mount: mount, password: newPassword, settings: current ?? settings,
                                                     create: existing == nil)
        }
        return VaultResponses.noContent()
    }

    func delete(_ vr: VaultRequest, _ name: String) async throws -> Response {
        let path = try rulePath(name)
        try await tessera.run(vr.pipelineCall(action: "delete_auth_method", auditPath: path.value, checks: [AccessCheck(.delete, .authMethod, path)])) { _ in
            // Like Vault, deleting a user that does not exist succeeds.
            if let user = try await tessera.access.userpassUser(named: name, mount: mount) {
                _ = try await tessera.access.deleteAuthMethod(named: user.name)
            }
        }
        return VaultResponses.noContent()
    }

    func login(_ vr: VaultRequest, _ rawName: String) async throws -> Response {
        let f = try vr.fields()
        let password = try f.string("password") ?? ""
        let address = vr.context.clientAddress
        var call = vr.pipelineCall(action: "auth", auditPath: "/\(mount)/users/\(rawName.prefix(128))", needsIdentity: false)
        call.claimedMethodType = AccessEngine.userpassType
        // The failures of a known user name that user.
        if let name = try? AccessEngine.userpassName(rawName), let user = try await tessera.access.userpassUser(named: name, mount: mount) {
            call.claimedAccessId = user.accessId
        }
        let (issued, policies, metadata) = try await tessera.run(call) { caller in
            let result = try await tessera.access.userpassLogin(mount: mount, name: rawName, password: password, clientAddress: address)
            caller.notes.set("username", String(rawName.prefix(128)))
            caller.notes.set("accessor", result.issued.record.accessor)
            return result
        }
        let record = issued.record
        let ttl = InputNumber.int64(max(0, record.expiresAt.timeIntervalSince(tessera.now())).rounded())
        let auth = JSON.obj(("client_token", .string(issued.token)), ("accessor", .string(record.accessor)),
                            ("policies", .strings(policies)), ("token_policies", .strings(policies)),
                            ("metadata", JSON.stringMap(metadata)), ("lease_duration", .int(ttl)), ("renewable", .bool(true)),
                            ("entity_id", .string("")), ("token_type", .string("service")), ("orphan", .bool(true)),
                            ("mfa_requirement", .null), ("num_uses", .int(Int64(record.usesLeft ?? 0))))
        return VaultResponses.envelope(data: nil, auth: auth, requestId: vr.context.requestId)
    }
}
