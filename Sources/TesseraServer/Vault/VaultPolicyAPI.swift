// Vault ACL policies as Tessera roles: `sys/policy[/<name>]` and `sys/policies/acl[/<name>]`
// (read, write, list, delete; HCL or JSON, the `bao policy` commands), and
// `sys/capabilities-self`, `sys/capabilities` and `sys/capabilities-accessor`. A policy write
// replaces the role's rules with the translation (`VaultPolicyTranslator`) and is authorized as
// a role change: role-rule create/update on `/<name>`, and the writer must hold what it grants
// and may remove the denies it drops. Names are lower-cased, as Vault does (CVE-2025-5999).
import Foundation
import Hummingbird
import TesseraCore
import TesseraEngines

struct VaultPolicyAPI: Sendable {
    let tessera: Tessera

    static let defaultPolicyText = """
        # Tessera's default policy. Every token may, without a rule:
        # look up, renew and revoke itself, ask for its own capabilities,
        # and renew, look up and revoke the leases issued to it.
        path "auth/token/lookup-self" { capabilities = ["read"] }
        path "auth/token/renew-self" { capabilities = ["update"] }
        path "auth/token/revoke-self" { capabilities = ["update"] }
        path "sys/capabilities-self" { capabilities = ["update"] }

        """

    var translator: VaultPolicyTranslator { VaultPolicyTranslator(mounts: tessera.mounts.all) }

    /// Whether this request is one of ours.
    static func handles(_ path: String) -> Bool {
        path == "sys/policy" || path.hasPrefix("sys/policy/") || path == "sys/policies/acl" || path.hasPrefix("sys/policies/acl/")
            || path == "sys/capabilities-self" || path == "sys/capabilities" || path == "sys/capabilities-accessor"
    }

    func handle(_ vr: VaultRequest) async throws -> Response {
        let path = vr.path
        switch path {
        case "sys/capabilities-self", "sys/capabilities", "sys/capabilities-accessor":
            guard vr.operation == .write else { return VaultResponses.errors([], status: .methodNotAllowed) }
            return try await capabilities(vr)
        case "sys/policy", "sys/policies/acl":
            guard vr.operation == .list || (vr.operation == .read && path == "sys/policy") else {
                return VaultResponses.errors([], status: .methodNotAllowed)
            }
            return try await list(vr, legacy: path == "sys/policy")
        default:
            let legacy = path.hasPrefix("sys/policy/")
            let raw = String(path.dropFirst(legacy ? "sys/policy/".count : "sys/policies/acl/".count))
            // Normalized before any comparison, so ` admin` is `admin`.
            let name = try Role.validateName((raw.removingPercentEncoding ?? raw).lowercased())
            switch vr.operation {
            case .read: return try await read(vr, name: name, legacy: legacy)
            case .write: return try await write(vr, name: name)
            case .delete: return try await delete(vr, name: name)
            default: return VaultResponses.errors([], status: .methodNotAllowed)
            }
        }
    }

    func rolePath(_ name: String) throws -> ItemPath { try ItemPath(try Role.validateName(name)) }

    // MARK: Read and list

    func list(_ vr: VaultRequest, legacy: Bool) async throws -> Response {
        let names = try await tessera.run(vr.pipelineCall(action: "list_roles", auditPath: "/")) { caller -> [String] in
            let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
            var out: Set<String> = ["default", "root"]
            for role in try await tessera.access.roles() {
                guard let p = try? ItemPath(role.name), authorizer.check(.list, on: p, type: .role).isAllowed
                        || authorizer.check(.read, on: p, type: .role).isAllowed else { continue }
                out.insert(role.name)
            }
            return out.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        }
        let keys = JSON.strings(names)
        if legacy { return VaultResponses.doubled(.obj(("keys", keys), ("policies", keys)), requestId: vr.context.requestId) }
        return VaultResponses.envelope(data: .obj(("keys", keys)), requestId: vr.context.requestId)
    }

    func read(_ vr: VaultRequest, name: String, legacy: Bool) async throws -> Response {
        var text: String
        var version = 0
        var modified: Date?
        if name == "root" {
            try await tessera.run(vr.pipelineCall(action: "get_role", auditPath: "/root")) { _ in () }
            text = ""
        } else {
            let path = try rolePath(name)
            let role = try await tessera.run(vr.pipelineCall(action: "get_role", auditPath: path.value,
                                                             checks: [AccessCheck(.read, .role, path)])) { _ in
                try? await tessera.access.role(named: name)
            }
            if let role {
                text = role.policyText.isEmpty ? translator.hcl(role) : role.policyText
                version = max(role.policyVersion, 1)
                modified = role.createdAt
            } else if name == "default" {
                text = Self.defaultPolicyText
            } else {
                throw TesseraError.notFound("")
            }
        }
        var fields: [(String, JSON)] = [("allow_slashes_in_identity_templates", .bool(false)), ("allow_wildcards_in_identity_templates", .bool(false)),
                                        ("cas_required", .bool(false))]
        if let modified { fields.append(("modified", .date(modified))) }
        fields.append(("name", .string(name)))
        fields.append((legacy ? "rules" : "policy", .string(text)))
        fields.append(("version", .int(Int64(version))))
        if legacy { return VaultResponses.doubled(.object(fields), requestId: vr.context.requestId) }
        return VaultResponses.envelope(data: .object(fields), requestId: vr.context.requestId)
    }

    // MARK: Write and delete

    func write(_ vr: VaultRequest, name: String) async throws -> Response {
        if name == "root" {
            try await tessera.run(vr.pipelineCall(action: "set_policy", auditPath: "/root")) { _ in
                throw TesseraError.badRequest("cannot update \"root\" policy")
            }
        }
        if name == AccessEngine.adminRoleName {
            try await tessera.run(vr.pipelineCall(action: "set_policy", auditPath: "/" + name)) { _ in
                throw TesseraError.badRequest("cannot update \"\(name)\" policy: it is Tessera's administrator role")
            }
        }
        let path = try rolePath(name)
        let fields = try vr.fields()
        guard var text = try fields.string("policy") ?? fields.string("rules"), !text.isEmpty else {
            try await tessera.run(vr.pipelineCall(action: "set_policy", auditPath: path.value, checks: [AccessCheck(anyOf: [.create, .update], .role, path)])) { _ in
                throw TesseraError.badRequest("'policy' parameter not supplied or empty")
            }
            return VaultResponses.noContent()
        }
        // Vault also takes the document base64-encoded.
        if let decoded = Data(base64Encoded: text), let s = String(data: decoded, encoding: .utf8), !text.contains("\""), !text.contains("{") {
            text = s
        }
        let policyText = text
        let warnings = try await tessera.run(vr.pipelineCall(action: "set_policy", auditPath: path.value,
                                                             checks: [AccessCheck(anyOf: [.create, .update], .role, path)])) { caller -> [String] in
            // Every token may carry `default`: only an administrator changes it.
            if name == "default", caller.principal?.authorizer.holdsEverything != true {
                throw TesseraError.forbidden(path: path.value, capability: "administrator")
            }
            let translation = try translator.translate(try VaultPolicy.parse(policyText))
            // What a pending path grants is checked only when its mount appears, against whoever
            // enables it; so only an administrator may leave grants pending.
            if let first = translation.pending.first, caller.principal?.authorizer.holdsEverything != true {
                throw TesseraError.forbidden(path: "/" + name, capability: "administrator (path \"\(first)\" is on a mount that does not exist yet)")
            }
            caller.notes.set("rules", String(translation.rules.count))
            let existing = try? await tessera.access.role(named: name)
            try NativeVerbs.requireMayGrant(caller, Role(name: name, rules: translation.rules))
            for old in existing?.rules ?? [] where !translation.rules.contains(old) { try NativeVerbs.requireMayRemove(caller, old) }
            _ = try await tessera.access.putPolicy(name: name, rules: translation.rules, text: policyText)
            return translation.warnings
        }
        if warnings.isEmpty { return VaultResponses.noContent() }
        return VaultResponses.envelope(data: nil, warnings: warnings, requestId: vr.context.requestId)
    }

    /// Translates every stored policy again after the mount table changed (a mount enabled), so
    /// that a policy written before its mount existed now applies, as in Vault. The change is a
    /// grant by the one who changed the mounts: a policy whose new rules that caller could not
    /// grant (or whose dropped denies it could not remove), or `default` for a non-administrator,
    /// keeps its old rules, and a warning says so. Returns the warnings.
    func retranslate(_ caller: CallerContext) async throws -> [String] {
        let translator = self.translator
        var warnings: [String] = []
        for role in try await tessera.access.roles() where !role.policyText.isEmpty && role.name != AccessEngine.adminRoleName {
            guard let translation = try? translator.translate(try VaultPolicy.parse(role.policyText)),
                  Set(translation.rules) != Set(role.rules) else { continue }
            do {
                if role.name == "default", caller.principal?.authorizer.holdsEverything != true {
                    throw TesseraError.forbidden(path: "/default", capability: "administrator")
                }
                try NativeVerbs.requireMayGrant(caller, Role(name: role.name, rules: translation.rules))
                for old in role.rules where !translation.rules.contains(old) { try NativeVerbs.requireMayRemove(caller, old) }
            } catch {
                warnings.append("policy \"\(role.name.prefix(128))\" was not translated again for the new mount: the caller may not grant what it would now give; write it again")
                continue
            }
            _ = try await tessera.access.putPolicy(name: role.name, rules: translation.rules, text: role.policyText)
        }
        return warnings
    }

    func delete(_ vr: VaultRequest, name: String) async throws -> Response {
        if name == "root" || name == "default" || name == AccessEngine.adminRoleName {
            try await tessera.run(vr.pipelineCall(action: "delete_role", auditPath: "/" + name)) { _ in
                throw TesseraError.badRequest(name == "default" ? "cannot delete default policy" : "cannot delete \"\(name)\" policy")
            }
        }
        let path = try rolePath(name)
        try await tessera.run(vr.pipelineCall(action: "delete_role", auditPath: path.value, checks: [AccessCheck(.delete, .role, path)])) { caller in
            // Like Vault, deleting a policy that does not exist succeeds.
            guard let role = try? await tessera.access.role(named: name) else { return }
            for rule in role.rules { try NativeVerbs.requireMayRemove(caller, rule) }
            _ = try await tessera.access.deleteRole(named: name)
        }
        return VaultResponses.noContent()
    }

    // MARK: Capabilities

    func capabilities(_ vr: VaultRequest) async throws -> Response {
        let fields = try vr.fields()
        var paths = try fields.stringList("paths") ?? []
        if let one = try fields.string("path"), !one.isEmpty { paths.append(one) }
        guard !paths.isEmpty, paths.count <= 256 else { throw TesseraError.badRequest("missing paths") }
        let selfCall = vr.path == "sys/capabilities-self"
        let accessor = try fields.string("accessor")
        let token = try fields.string("token")
        let checks = selfCall ? [] : [AccessCheck(anyOf: [.update, .read], .authMethod, try ItemPath(vr.path == "sys/capabilities" ? "/token/lookup" : "/token/lookup-accessor"))]
        let answer = try await tessera.run(vr.pipelineCall(action: "capabilities", auditPath: "/" + vr.path, checks: checks)) { caller -> [(String, JSON)] in
            var subject = caller.principal
            if !selfCall {
                let record = if vr.path == "sys/capabilities" { try await tessera.access.token(text: token ?? "") }
                             else { try await tessera.access.token(accessor: accessor ?? "") }
                guard let record, let p = try await tessera.access.principal(record: record) else {
                    throw TesseraError.badRequest(vr.path == "sys/capabilities" ? "invalid token" : "invalid accessor")
                }
                subject = p
            }
            guard let authorizer = subject?.authorizer else { return [] }
            var out: [(String, JSON)] = []
            for p in paths { out.append((p, JSON.strings(try capabilities(of: p, authorizer)))) }
            return out
        }
        var data = answer
        if answer.count == 1, let only = answer.first { data.insert(("capabilities", only.1), at: 0) }
        return VaultResponses.doubled(.object(data), requestId: vr.context.requestId)
    }

    /// What the rules allow on a Vault path, in Vault's capability names.
    func capabilities(of path: String, _ authorizer: Authorizer) throws -> [String] {
        if authorizer.isRoot { return ["root"] }
        var out: [String] = []
        // `patch` is shown only by Vault when granted by name; Tessera's update covers it.
        for cap in ["create", "delete", "list", "read", "update"] {
            let rules = try translator.translate(VaultPolicy(paths: [.init(path: path, capabilities: [cap])])).rules
            guard !rules.isEmpty else { continue }
            let granted = rules.allSatisfy { rule in
                guard let c = rule.capabilities.first else { return false }
                if rule.pattern.hasWildcard {
                    // A folder form answers for listing only.
                    guard cap == "list" else { return false }
                    let folder = rule.pattern.prefix == "/" ? ItemPath.root : (try? ItemPath(String(rule.pattern.prefix.dropLast())))
                    return c == .list && folder.map { authorizer.mayList(folder: $0, type: rule.type) } == true
                }
                guard let p = try? ItemPath(rule.pattern.prefix) else { return false }
                return authorizer.check(c, on: p, type: rule.type).isAllowed
            }
            if granted { out.append(cap) }
        }
        return out.isEmpty ? ["deny"] : out
    }
}
