// Native verbs for access roles: create-role, get-role, list-roles, delete-role, set-role-rule,
// delete-role-rule, assoc-role-am, delete-assoc.
import Foundation
import TesseraCore
import TesseraEngines

extension NativeVerbs {
    static let roles: [NativeVerb] = [
        NativeVerb("create-role", action: "create_role", access: .capability([.create], .role),
                   help: "Create an access role (rules are added with set-role-rule).",
                   fields: declare([.string("name", required: true, "The role's name, e.g. /team/readers."),
                                    .string("description", aliases: ["comment"], "A description."),
                                    .string("audit-access", "Audit trail access: none (default), own or all.")],
                                   sdk: ["analytics-access", "approve-access-request", "ara-reports-access", "delete_protection",
                                         "event-center-access", "event-forwarders-access", "event-forwarders-name",
                                         "gw-analytics-access", "isi-access", "reverse-rbac-access", "sra-reports-access",
                                         "unlock-secrets", "usage-reports-access"])) { f in
            let name = try Role.validateName(try f.requiredString("name"))
            let description = try f.string("description") ?? f.string("comment") ?? ""
            let auditAccess = try AuditAccess(wire: try f.string("audit-access"))
            return PreparedVerb(paths: [try ItemPath(name)]) { t, caller in
                try requireMayEditProtected(caller, name)
                try requireMayGrant(caller, Role(name: name, auditAccess: auditAccess))
                let role = try await t.access.createRole(name: name, description: description, auditAccess: auditAccess)
                return .obj(("name", .string(role.name)))
            }
        },
        NativeVerb("get-role", action: "get_role", access: .capability([.read], .role),
                   help: "Show a role, its rules and its auth method associations.",
                   fields: declare([.string("name", required: true, "The role's name.")])) { f in
            let name = try Role.validateName(try f.requiredString("name"))
            return PreparedVerb(paths: [try ItemPath(name)]) { t, _ in
                let role = try await t.access.role(named: name)
                return roleJSON(role, associations: try await associationsJSON(t, role))
            }
        },
        NativeVerb("list-roles", action: "list_roles", access: .listing(.role),
                   help: "List the roles that the caller may list.",
                   fields: declare([.string("filter", "Only roles whose name contains this text (case-insensitive).")],
                                   sdk: ["pagination-token"])) { f in
            let filter = try f.string("filter")
            return PreparedVerb(folder: .root) { t, caller in
                let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
                var out: [JSON] = []
                for role in try await t.access.roles() {
                    guard let p = try? ItemPath(role.name), authorizer.check(.list, on: p, type: .role).isAllowed else { continue }
                    if let filter, !role.name.localizedCaseInsensitiveContains(filter) { continue }
                    out.append(roleJSON(role, associations: try await associationsJSON(t, role)))
                }
                return .obj(("roles", .array(out)), ("next_page", .string("")))
            }
        },
        NativeVerb("delete-role", action: "delete_role", access: .capability([.delete], .role),
                   help: "Delete a role, its rules and its associations.",
                   fields: declare([.string("name", required: true, "The role's name.")])) { f in
            let name = try Role.validateName(try f.requiredString("name"))
            return PreparedVerb(paths: [try ItemPath(name)]) { t, caller in
                try requireMayEditProtected(caller, name)
                guard name != AccessEngine.adminRoleName else { throw TesseraError.badRequest("the admin role cannot be deleted") }
                // Deleting a role removes its deny rules, which can give rights back.
                for rule in try await t.access.role(named: name).rules { try requireMayRemove(caller, rule) }
                _ = try await t.access.deleteRole(named: name)
                return .obj()
            }
        },
        NativeVerb("set-role-rule", action: "set_role_rule", access: .capability([.update], .role),
                   help: "Set a role's capabilities on a path pattern (replacing that rule's capabilities).",
                   fields: declare([.string("role-name", required: true, "The role's name."),
                                    .string("path", required: true, "The path pattern, e.g. /prod/db/* (* matches a subtree)."),
                                    .list("capability", required: true, "read, create, update, delete, list, use or deny."),
                                    .string("rule-type", ruleTypeHelp)], sdk: ["ttl"])) { f in
            let name = try Role.validateName(try f.requiredString("role-name"))
            let pattern = try PathPattern(try f.requiredString("path"))
            let capabilities = try parseCapabilities(try f.requiredStringList("capability"))
            let type = try RuleType(wire: try f.string("rule-type"))
            return PreparedVerb(paths: [try ItemPath(name)],
                                parameters: ["rule_path": pattern.description, "capability": capabilities.map(\.rawValue).sorted().joined(separator: ","),
                                             "rule_type": type.rawValue]) { t, caller in
                try requireMayEditProtected(caller, name)
                try requireMayGrant(caller, Role(name: name, rules: [Rule(pattern: pattern, capabilities: capabilities, type: type)]))
                // Replacing a deny with something else removes the deny.
                if !capabilities.contains(.deny),
                   let old = try await t.access.role(named: name).rules.first(where: { $0.pattern == pattern && $0.type == type }) {
                    try requireMayRemove(caller, old)
                }
                _ = try await t.access.setRule(roleName: name, pattern: pattern, capabilities: capabilities, type: type)
                return .obj()
            }
        },
        NativeVerb("delete-role-rule", action: "delete_role_rule", access: .capability([.update], .role),
                   help: "Remove a rule from a role.",
                   fields: declare([.string("role-name", required: true, "The role's name."),
                                    .string("path", required: true, "The rule's path pattern."),
                                    .string("rule-type", ruleTypeHelp)])) { f in
            let name = try Role.validateName(try f.requiredString("role-name"))
            let pattern = try PathPattern(try f.requiredString("path"))
            let type = try RuleType(wire: try f.string("rule-type"))
            return PreparedVerb(paths: [try ItemPath(name)], parameters: ["rule_path": pattern.description, "rule_type": type.rawValue]) { t, caller in
                try requireMayEditProtected(caller, name)
                if let old = try await t.access.role(named: name).rules.first(where: { $0.pattern == pattern && $0.type == type }) {
                    try requireMayRemove(caller, old)
                }
                _ = try await t.access.deleteRule(roleName: name, pattern: pattern, type: type)
                return .obj(("deleted", .bool(true)), ("result", .string("rule \(pattern) removed from role \(name)")))
            }
        },
        NativeVerb("assoc-role-am", action: "create_assoc_role_auth_method", access: .capability([.update], .role),
                   help: "Associate a role with an auth method: the method's tokens get the role's rights.",
                   fields: declare([.string("role-name", required: true, "The role's name."),
                                    .string("am-name", required: true, "The auth method's name."),
                                    .object("sub-claims", "Sub-claims a token must carry: name to values (a list or comma-separated)."),
                                    .bool("case-sensitive", "Accepted (sub-claims are compared as given).")])) { f in
            let roleName = try Role.validateName(try f.requiredString("role-name"))
            let amName = try AccessEngine.authMethodName(try f.requiredString("am-name"))
            let subClaims = try f.stringListMap("sub-claims") ?? [:]
            _ = try f.bool("case-sensitive")
            // Associating gives the auth method the role's rights: only a manager of that method may
            // do it, and only with a role whose rights the manager holds.
            return PreparedVerb(paths: [try ItemPath(roleName)], extraChecks: [AccessCheck(.update, .authMethod, try ItemPath(amName))],
                                auditPath: roleName, parameters: ["auth_method": amName]) { t, caller in
                try requireMayGrant(caller, try await t.access.role(named: roleName))
                let a = try await t.access.associate(roleName: roleName, authMethodName: amName, subClaims: subClaims)
                return .obj(("assoc_id", .string(a.id)))
            }
        },
    ]

    static let ruleTypeHelp = "item-rule (default), role-rule, auth-method-rule, target-rule or sys-rule."

    /// Delegated administration cannot grant more than the granter holds.
    static func requireMayGrant(_ caller: CallerContext, _ role: Role) throws {
        guard let authorizer = caller.principal?.authorizer, authorizer.mayGrant(role) else {
            if let rule = role.rules.first(where: { !(caller.principal?.authorizer.mayGrant($0) ?? false) }) {
                throw TesseraError.forbidden(path: rule.pattern.description,
                                             capability: rule.capabilities.subtracting([.deny]).map(\.rawValue).sorted().joined(separator: ","))
            }
            throw TesseraError.forbidden(path: "/audit", capability: "audit-access " + role.auditAccess.rawValue)
        }
    }

    /// Changing what a method trusts (keys, JWKS, API server, CA) lets the writer log in through
    /// it: that needs the right to grant every role its logins can reach (login roles and
    /// associations).
    static func requireMayGrantReachable(_ t: Tessera, _ caller: CallerContext, _ method: AuthMethod) async throws {
        var names = Set<String>()
        for r in try await t.access.loginRoles(accessId: method.accessId) { names.formUnion(WorkloadIdentityEngine.grantedRoles(r)) }
        for a in try await t.access.associations(accessId: method.accessId) { names.insert(a.roleName) }
        for name in names.sorted() {
            if let role = try? await t.access.role(named: name) { try requireMayGrant(caller, role) }
        }
    }

    /// Removing a deny rule needs the rights of granting all it took away.
    /// `default` reaches every token that names Vault's default policy, and `admin` is the
    /// administrator's role: only someone who holds everything changes them.
    static func requireMayEditProtected(_ caller: CallerContext, _ name: String) throws {
        let protected = ["default", AccessEngine.adminRoleName]
        guard protected.contains(name.lowercased()) else { return }
        guard caller.principal?.authorizer.holdsEverything == true else {
            throw TesseraError.forbidden(path: "/" + name, capability: "administrator")
        }
    }

    static func requireMayRemove(_ caller: CallerContext, _ rule: Rule) throws {
        guard caller.principal?.authorizer.mayRemove(rule) ?? false else {
            throw TesseraError.forbidden(path: rule.pattern.description, capability: "remove deny")
        }
    }

    static func parseCapabilities(_ raw: [String]) throws -> Set<Capability> {
        var out = Set<Capability>()
        for c in raw {
            guard let cap = Capability(rawValue: c.lowercased()) else {
                throw TesseraError.badRequest("invalid capability '\(c)': expected read, create, update, delete, list, use or deny")
            }
            out.insert(cap)
        }
        return out
    }

    static func associationsJSON(_ t: Tessera, _ role: Role) async throws -> [JSON] {
        var out: [JSON] = []
        for a in try await t.access.associations(roleName: role.name) {
            let name = try await t.store.authMethod(accessId: a.accessId)?.name ?? ""
            out.append(.obj(("assoc_id", .string(a.id)), ("auth_method_access_id", .string(a.accessId)),
                            ("auth_method_name", .string(name)), ("auth_method_sub_claims", subClaimsJSON(a.subClaims))))
        }
        return out
    }

    /// The Akeyless `Role` shape.
    static func roleJSON(_ role: Role, associations: [JSON]) -> JSON {
        .obj(("role_name", .string(role.name)),
             ("comment", .string(role.description)),
             ("creation_date", .date(role.createdAt)),
             ("rules", .obj(("admin", .bool(role.name == AccessEngine.adminRoleName)),
                            ("path_rules", .array(role.rules.map { rule in
                                .obj(("path", .string(rule.pattern.description)),
                                     ("capabilities", .strings(Capability.allCases.filter { rule.capabilities.contains($0) }.map(\.rawValue))),
                                     ("type", .string(rule.type.rawValue)), ("ttl", .int(0)))
                            })))),
             ("audit_access", .string(role.auditAccess.rawValue)),
             ("role_auth_methods_assoc", .array(associations)))
    }
}
