// Native verbs for dynamic secrets: dynamic-secret-create-postgresql, dynamic-secret-get,
// dynamic-secret-list, dynamic-secret-delete, get-dynamic-secret-value, and the lease verbs
// dynamic-secret-tmp-creds-get|update|delete, plus lease-list and lease-revoke (force) for operators.
import Foundation
import TesseraCore
import TesseraEngines

extension NativeVerbs {
    static let dynamicSecrets: [NativeVerb] = [
        NativeVerb("dynamic-secret-create-postgresql", action: "create_dynamic_secret", access: .capability([.create], .item),
                   help: "Create a PostgreSQL dynamic secret, a producer of short-lived database users (needs use on the target).",
                   fields: declare([.string("name", required: true, "The dynamic secret's path."),
                                    .string("target-name", required: true, "The database target it creates users on."),
                                    .string("creation-statements", aliases: ["postgresql-statements"],
                                            "SQL that creates a user; {{name}}, {{password}}, {{expiration}} are substituted."),
                                    .string("revocation-statement", aliases: ["postgresql-revoke-statement"],
                                            "SQL run to remove a user; {{name}} is substituted."),
                                    .any("user-ttl", "Credential lifetime: minutes, or text such as 60m or 1h (default 60m)."),
                                    .any("max-ttl", "Longest lifetime with renewals (default 24h, or user-ttl if longer)."),
                                    .int("password-length", 8...128, "Generated password length (default 20)."),
                                    .string("username-template", aliases: ["custom-username-template"],
                                            "User-name prefix (letters, digits, _)."),
                                    .int("max-leases", 0...1_000_000, "Most active credentials at once (0: no limit).")],
                                   sdk: leaseSDKFields + ["delete_protection", "description", "item-custom-fields",
                                         "postgresql-db-name", "postgresql-host", "postgresql-port", "postgresql-username",
                                         "producer-encryption-key", "secure-access-bastion-issuer",
                                         "secure-access-certificate-issuer", "secure-access-db-name", "secure-access-db-schema",
                                         "secure-access-delay", "secure-access-enable", "secure-access-host", "secure-access-web",
                                         "ssl", "tags", "use-capital-letters", "use-lower-letters", "use-numbers",
                                         "use-special-characters"],
                                   sdkSecrets: ["postgresql-password"])) { f in
            let path = try ItemPath(try f.requiredString("name"))
            let target = try f.requiredString("target-name")
            let creation = try f.string("creation-statements") ?? f.string("postgresql-statements")
            let revocation = try f.string("revocation-statement") ?? f.string("postgresql-revoke-statement")
            let userTTL = try duration(f, "user-ttl") ?? 3600
            let maxTTL = try duration(f, "max-ttl") ?? max(userTTL, 24 * 3600)
            let length = try f.int("password-length", in: 8...128) ?? 20
            let prefix = try f.string("username-template") ?? f.string("custom-username-template")
            let maxLeases = try f.int("max-leases", in: 0...1_000_000) ?? 0
            return PreparedVerb(paths: [path], extraChecks: [AccessCheck(.use, .target, try ItemPath(target))]) { t, _ in
                let p = try await t.dynamic.createProducer(path: path, targetName: target, creation: creation, revocation: revocation,
                                                           userTTL: userTTL, maxTTL: maxTTL, passwordLength: length,
                                                           usernamePrefix: prefix, maxLeases: maxLeases)
                return .obj(("name", .string(p.path.value)))
            }
        },
        NativeVerb("dynamic-secret-get", action: "get_dynamic_secret", access: .capability([.read, .list], .item),
                   help: "Show a dynamic secret's settings.",
                   fields: declare([.string("name", required: true, "The dynamic secret's path.")])) { f in
            let path = try ItemPath(try f.requiredString("name"))
            return PreparedVerb(paths: [path]) { t, _ in producerJSON(try await t.dynamic.producer(path)) }
        },
        NativeVerb("dynamic-secret-list", action: "list_dynamic_secrets", access: .listing(.item),
                   help: "List the dynamic secrets under a folder that the caller may list.",
                   fields: declare([.string("path", "The folder (default /).")])) { f in
            let folder = try ItemPath(folder: try f.string("path") ?? "/")
            return PreparedVerb(folder: folder) { t, caller in
                let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
                let visible = try await t.dynamic.producers().filter { folder.contains($0.path) && authorizer.check(.list, on: $0.path).isAllowed }
                return .obj(("dynamic_secrets", .array(visible.map(producerJSON))))
            }
        },
        NativeVerb("dynamic-secret-delete", action: "delete_dynamic_secret", access: .capability([.delete], .item),
                   help: "Delete a dynamic secret.",
                   fields: declare([.string("name", required: true, "The dynamic secret's path.")])) { f in
            let path = try ItemPath(try f.requiredString("name"))
            return PreparedVerb(paths: [path]) { t, _ in
                try await t.dynamic.deleteProducer(path)
                return .obj(("name", .string(path.value)))
            }
        },
        NativeVerb("get-dynamic-secret-value", action: "get_dynamic_secret_value", access: .capability([.read], .item),
                   help: "Issue short-lived credentials from a dynamic secret.",
                   fields: declare([.string("name", required: true, "The dynamic secret's path.")],
                                   sdk: ["args", "dbname", "host", "target", "timeout"])) { f in
            let path = try ItemPath(try f.requiredString("name"))
            return PreparedVerb(paths: [path]) { t, caller in
                let c = try await t.dynamic.issue(path, actor: caller.principal?.leaseOwner ?? "")
                caller.notes.set("lease_id", c.lease.id)
                let ttl = Int64(InputNumber.seconds(from: c.lease.issuedAt, to: c.lease.expiresAt))
                return .obj(("user", .string(c.username)), ("password", .string(c.password)), ("id", .string(c.lease.id)),
                            ("ttl_in_minutes", .string(String(ttl / 60))), ("lease_id", .string(c.lease.id)),
                            ("lease_duration", .int(ttl)))
            }
        },
        NativeVerb("dynamic-secret-tmp-creds-get", action: "list_leases", access: .capability([.read, .list], .item),
                   help: "List a dynamic secret's live credentials (never their passwords).",
                   fields: declare([.string("name", required: true, "The dynamic secret's path.")], sdk: leaseSDKFields)) { f in
            let path = try ItemPath(try f.requiredString("name"))
            return PreparedVerb(paths: [path]) { t, _ in
                let now = t.now()
                var out: [JSON] = []
                for state in [Lease.State.active, .revoking, .irrevocable] {
                    for l in try await t.dynamic.leases(prefix: String(path.value.dropFirst()) + "/", state: state) where l.producer == path.value {
                        out.append(.obj(("id", .string(l.id)), ("username", .string(l.username)), ("state", .string(l.state.rawValue)),
                                        ("creation_date", .date(l.issuedAt)), ("expiration_date", .date(l.expiresAt)),
                                        ("ttl_in_minutes", .int(Int64(max(0, InputNumber.seconds(from: now, to: l.expiresAt)) / 60)))))
                    }
                }
                return .array(out)
            }
        },
        NativeVerb("dynamic-secret-tmp-creds-update", action: "renew_lease", access: .capability([.read, .update], .item),
                   help: "Renew credentials (capped at the dynamic secret's max TTL).",
                   fields: declare([.string("name", required: true, "The dynamic secret's path."),
                                    .string("tmp-creds-id", required: true, "The credentials' lease id."),
                                    .int("new-ttl-min", 0...(InputNumber.maxSeconds / 60),
                                         "The new lifetime in minutes (default: the user TTL).")],
                                   sdk: ["host"] + leaseSDKFields)) { f in
            let path = try ItemPath(try f.requiredString("name"))
            let id = try f.requiredString("tmp-creds-id")
            let minutes = try f.int("new-ttl-min", in: 0...(InputNumber.maxSeconds / 60))
            return PreparedVerb(paths: [path], parameters: ["lease_id": id]) { t, caller in
                try await requireOwnLeaseOr(.update, t, caller, id, path)
                let r = try await t.dynamic.renew(id, increment: minutes.map { $0 * 60 })
                return .obj(("lease_id", .string(r.lease.id)), ("expiration_date", .date(r.lease.expiresAt)),
                            ("warning", r.warning.map(JSON.string) ?? .null))
            }
        },
        NativeVerb("dynamic-secret-tmp-creds-delete", action: "revoke_lease", access: .capability([.read, .delete], .item),
                   help: "Revoke credentials now: one by its id, or all with revoke-all.",
                   fields: declare([.string("name", required: true, "The dynamic secret's path."),
                                    .string("tmp-creds-id", "The credentials' lease id."),
                                    .bool("revoke-all", "Revoke all of the dynamic secret's credentials.")],
                                   sdk: ["host", "soft-delete"] + leaseSDKFields)) { f in
            let path = try ItemPath(try f.requiredString("name"))
            let id = try f.string("tmp-creds-id")
            let all = try f.bool("revoke-all") ?? false
            guard id != nil || all else { throw TesseraError.badRequest("tmp-creds-id or revoke-all is required") }
            return PreparedVerb(paths: [path], parameters: id.map { ["lease_id": $0] } ?? ["revoke_all": "true"]) { t, caller in
                if let id {
                    try await requireOwnLeaseOr(.delete, t, caller, id, path)
                    try await t.dynamic.revoke(id)
                    return .obj(("revoked", .int(1)))
                }
                try caller.require(.delete, on: path, type: .item)
                let leases = try await t.dynamic.revocable(prefix: String(path.value.dropFirst()) + "/").filter { $0.producer == path.value }
                return .obj(("revoked", .int(Int64(try await t.dynamic.revoke(leases: leases)))))
            }
        },
        NativeVerb("lease-list", action: "list_leases", access: .capability([.list], .item),
                   help: "List leases by id prefix and state (each shown only to whom may list its producer).",
                   fields: declare([.string("prefix", "Lease id prefix, e.g. db/readonly/."),
                                    .string("state", "active, revoking, revoked, irrevocable or pending.")])) { f in
            let prefix = try f.string("prefix") ?? ""
            let state = try f.string("state").map { s -> Lease.State in
                guard let st = Lease.State(rawValue: s) else { throw TesseraError.badRequest("invalid state '\(s)'") }
                return st
            }
            // Prefixes are whole segments: `db/` and `db/ro` list within /db and /db/ro.
            let path = try ItemPath(folder: "/" + prefix.split(separator: "/").joined(separator: "/"))
            return PreparedVerb(paths: [path]) { t, caller in
                let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
                // Each lease is shown only to whom may list its own producer; deny wins.
                let visible = try await t.dynamic.leases(prefix: prefix, state: state).filter { l in
                    guard let producer = try? ItemPath(l.producer) else { return false }
                    return authorizer.check(.list, on: producer).isAllowed
                }
                return .obj(("leases", .array(visible.map(leaseJSON))))
            }
        },
        NativeVerb("lease-revoke", action: "revoke_lease", access: .capability([.delete], .item),
                   help: "Revoke a lease; force marks it revoked even if the target cannot be reached (an operator action).",
                   fields: declare([.string("lease-id", required: true, "The lease id."),
                                    .bool("force", "Mark it revoked without removing the user (an operator action).")])) { f in
            let id = try f.requiredString("lease-id")
            let force = try f.bool("force") ?? false
            let producerPath = try ItemPath("/" + id.split(separator: "/").dropLast().joined(separator: "/"))
            // Forcing a lease out leaves its credential on the target: an operator action.
            return PreparedVerb(paths: [producerPath], extraChecks: force ? [AccessCheck(.update, .system, SystemPath.revokeForce)] : [],
                                parameters: ["lease_id": id, "force": String(force)]) { t, _ in
                guard try await t.dynamic.lease(id).producer == producerPath.value else { throw TesseraError.badRequest("invalid lease") }
                try await t.dynamic.revoke(id, force: force)
                return .obj(("lease_id", .string(id)))
            }
        },
    ]

    /// Fields of the Akeyless SDK's dynamic-secret models that Tessera does not use.
    static let leaseSDKFields = ["ara-enabled", "enable-agentic-runtime-authority", "enable-ai-quorum", "input-rule", "output-rule",
                                 "skip-dry-run"]

    /// Durations as Akeyless and Vault write them: `60m`, `1h`, `3600s`, or a bare number of minutes.
    static func duration(_ f: RequestFields, _ key: String) throws -> Int? {
        guard let raw = f.raw(key), raw != .null else { return nil }
        let maxMinutes = InputNumber.maxSeconds / 60
        let seconds: Int
        switch raw {
        case .int, .double:
            seconds = try InputNumber.product(try RequestFields.int(raw, field: key, in: 0...maxMinutes) ?? 0, 60, field: key)
        case .string(let s) where s.trimmingCharacters(in: .whitespaces).utf8.allSatisfy({ (0x30...0x39).contains($0) }):
            seconds = try InputNumber.product(try InputNumber.int(text: s, field: key, in: 0...maxMinutes), 60, field: key)
        default:
            seconds = try RequestFields.seconds(raw, field: key) ?? 0
        }
        guard seconds > 0 else { throw TesseraError.badRequest("\(key) must be positive") }
        return seconds
    }

    static func producerJSON(_ p: Producer) -> JSON {
        .obj(("name", .string(p.path.value)), ("type", .string("postgresql")), ("target_name", .string(p.targetName)),
             ("creation_statements", .string(p.creationStatements)), ("revocation_statement", .string(p.revocationStatements)),
             ("user_ttl", .string("\(p.userTTL / 60)m")), ("max_ttl", .string("\(p.maxTTL / 60)m")),
             ("password_length", .int(Int64(p.passwordLength))), ("username_template", .string(p.usernamePrefix)),
             ("max_leases", .int(Int64(p.maxLeases))), ("creation_date", .date(p.createdAt)))
    }

    static func leaseJSON(_ l: Lease) -> JSON {
        .obj(("lease_id", .string(l.id)), ("producer", .string(l.producer)), ("username", .string(l.username)),
             ("access_id", .string(l.accessId)), ("state", .string(l.state.rawValue)), ("issue_time", .date(l.issuedAt)),
             ("expire_time", .date(l.expiresAt)), ("max_expire_time", .date(l.maxExpiresAt)), ("attempts", .int(Int64(l.attempts))),
             ("last_error", .string(l.lastError)))
    }
}

extension NativeVerbs {
    /// Renewing or revoking one lease: the identity it was issued to may (it holds read on the
    /// producer, as the verb declares); anyone else needs `capability` too. A caller without it
    /// cannot tell an unknown lease from another identity's.
    static func requireOwnLeaseOr(_ capability: Capability, _ t: Tessera, _ caller: CallerContext, _ id: String, _ path: ItemPath) async throws {
        guard let lease = try? await t.dynamic.lease(id), lease.producer == path.value else {
            try caller.require(capability, on: path, type: .item)
            throw TesseraError.badRequest("lease \(id.prefix(200)) does not belong to \(path)")
        }
        if let me = caller.principal?.leaseOwner, !me.isEmpty, lease.accessId == me {
            caller.notes.set(AuditNotes.policyKey, "allowed: the lease was issued to this identity")
            return
        }
        try caller.require(capability, on: path, type: .item)
    }
}
