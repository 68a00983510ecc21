// Native verbs for API-key auth methods: create, list, get, delete (with the Akeyless aliases).
import Foundation
import TesseraCore
import TesseraEngines

extension NativeVerbs {
    static let authMethods: [NativeVerb] = {
        let create: @Sendable (RequestFields) throws -> PreparedVerb = { f in
            let name = try AccessEngine.authMethodName(try f.requiredString("name"))
            let path = try ItemPath(name)
            let ttl = try f.int("jwt-ttl", in: 0...AuthMethod.maxTokenTTLMinutes)
            let expiresEpoch = try f.int("access-expires", in: 0...InputNumber.maxEpochSeconds) ?? 0
            let boundIPs = try f.stringList("bound-ips") ?? []
            for cidr in boundIPs { _ = try CIDR(cidr) }
            return PreparedVerb(paths: [path]) { t, _ in
                let expires = expiresEpoch > 0 ? try InputNumber.date(epochSeconds: expiresEpoch, field: "access-expires") : nil
                let issued = try await t.access.createAPIKeyMethod(name: name, tokenTTLMinutes: ttl, boundCIDRs: boundIPs, accessExpires: expires)
                return .obj(("access_id", .string(issued.method.accessId)), ("access_key", .string(issued.accessKey)),
                            ("name", .string(issued.method.name)))
            }
        }
        let list: @Sendable (RequestFields) throws -> PreparedVerb = { f in
            let filter = try f.string("filter")
            return PreparedVerb(folder: .root) { t, caller in
                let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
                var out: [JSON] = []
                for m in try await t.access.authMethods() {
                    guard let p = try? ItemPath(m.name), authorizer.check(.list, on: p, type: .authMethod).isAllowed else { continue }
                    if let filter, !m.name.localizedCaseInsensitiveContains(filter) { continue }
                    out.append(authMethodJSON(m, associations: try await t.access.associations(accessId: m.accessId)))
                }
                return .obj(("auth_methods", .array(out)), ("next_page", .string("")))
            }
        }
        let get: @Sendable (RequestFields) throws -> PreparedVerb = { f in
            let name = try AccessEngine.authMethodName(try f.requiredString("name"))
            return PreparedVerb(paths: [try ItemPath(name)]) { t, _ in
                let m = try await t.access.authMethod(named: name)
                return authMethodJSON(m, associations: try await t.access.associations(accessId: m.accessId))
            }
        }
        let delete: @Sendable (RequestFields) throws -> PreparedVerb = { f in
            let name = try AccessEngine.authMethodName(try f.requiredString("name"))
            return PreparedVerb(paths: [try ItemPath(name)]) { t, _ in
                // An AppRole mount is disabled with its roles, through sys/auth: deleting only its
                // marker would leave the roles to come back when the path is enabled again.
                let type = (try? await t.access.authMethod(named: name))?.type
                if type == AccessEngine.appRoleMountType {
                    throw TesseraError.badRequest("\(name) is an AppRole mount: disable it with sys/auth/\(name.dropFirst()) (its roles go with it)")
                }
                if type == AccessEngine.userpassMountType {
                    throw TesseraError.badRequest("\(name) is a userpass mount: disable it with sys/auth/\(name.dropFirst()) (its users go with it)")
                }
                let m = try await t.access.deleteAuthMethod(named: name)
                return .obj(("name", .string(m.name)))
            }
        }
        let createFields = declare([.string("name", required: true, "The auth method's name, e.g. /ci/deployer."),
                                    .int("jwt-ttl", 0...AuthMethod.maxTokenTTLMinutes, "Token lifetime in minutes (0: default)."),
                                    .int("access-expires", 0...InputNumber.maxEpochSeconds, "Unix time when access ends (0: never)."),
                                    .list("bound-ips", "Client CIDRs allowed to log in and use its tokens.")],
                                   sdk: ["allowed-client-type", "audit-logs-claims", "delete_protection", "description",
                                         "expiration-event-in", "force-sub-claims", "gw-bound-ips", "product-type"])
        let listFields = declare([.string("filter", "Only methods whose name contains this text (case-insensitive).")],
                                 sdk: ["pagination-token", "type"])
        let nameField = declare([.string("name", required: true, "The auth method's name.")])
        let createHelp = "Create an API-key auth method; returns its access id and (once) its access key."
        let listHelp = "List the auth methods that the caller may list."
        let getHelp = "Show an auth method and its role associations (never its key)."
        let deleteHelp = "Delete an auth method; its tokens stop working."
        return [
            NativeVerb("create-auth-method", action: "create_auth_method", access: .capability([.create], .authMethod),
                       help: createHelp, fields: createFields, prepare: create),
            NativeVerb("auth-method-create-api-key", action: "create_auth_method", access: .capability([.create], .authMethod),
                       help: createHelp, fields: createFields, prepare: create),
            NativeVerb("list-auth-methods", action: "list_auth_methods", access: .listing(.authMethod),
                       help: listHelp, fields: listFields, prepare: list),
            NativeVerb("auth-method-list", action: "list_auth_methods", access: .listing(.authMethod),
                       help: listHelp, fields: listFields, prepare: list),
            NativeVerb("get-auth-method", action: "get_auth_method", access: .capability([.read], .authMethod),
                       help: getHelp, fields: nameField, prepare: get),
            NativeVerb("auth-method-get", action: "get_auth_method", access: .capability([.read], .authMethod),
                       help: getHelp, fields: nameField, prepare: get),
            NativeVerb("delete-auth-method", action: "delete_auth_method", access: .capability([.delete], .authMethod),
                       help: deleteHelp, fields: nameField, prepare: delete),
            NativeVerb("auth-method-delete", action: "delete_auth_method", access: .capability([.delete], .authMethod),
                       help: deleteHelp, fields: nameField, prepare: delete),
        ]
    }()

    /// The Akeyless `AuthMethod` shape; never includes the key or its hash.
    static func authMethodJSON(_ m: AuthMethod, associations: [RoleAssociation]) -> JSON {
        .obj(("auth_method_name", .string(m.name)),
             ("auth_method_access_id", .string(m.accessId)),
             ("creation_date", .date(m.createdAt)),
             ("access_info", .obj(("rules_type", .string(m.type)),
                                  ("access_expires", .int(InputNumber.int64(m.accessExpires?.timeIntervalSince1970 ?? 0))),
                                  ("jwt_ttl", .int(Int64(m.tokenTTLMinutes))),
                                  ("cidr_whitelist", .string(m.boundCIDRs.joined(separator: ","))),
                                  ("api_key_access_rules", .obj(("alg", .string("SHA256")))))),
             ("auth_method_roles_assoc", .array(associations.map {
                 .obj(("assoc_id", .string($0.id)), ("role_name", .string($0.roleName)),
                      ("auth_method_sub_claims", subClaimsJSON($0.subClaims)))
             })))
    }

    static func subClaimsJSON(_ claims: [String: [String]]) -> JSON {
        .object(claims.keys.sorted().map { ($0, .strings(claims[$0] ?? [])) })
    }
}
