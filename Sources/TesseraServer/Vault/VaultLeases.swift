// Dynamic credentials and leases in Vault's shape: `GET <database mount>/creds/<name>` issues
// from the producer `<folder>/<name>`, and `sys/leases/lookup|renew|revoke|revoke-prefix` plus
// LIST `sys/leases/lookup/<prefix>` manage leases. Vault lease ids (`db/creds/readonly/<id>`)
// map onto native ids (`db/readonly/<id>`) through the mount table. Each operation is checked
// on the producer's item path: issue and lookup need read, renew update, revoke delete — except
// that the identity a lease was issued to may always renew and revoke it, as Vault's default
// policy allows.
import Foundation
import Hummingbird
import TesseraCore
import TesseraEngines

struct VaultLeases: Sendable {
    let tessera: Tessera

    // MARK: Issuing

    func creds(_ vr: VaultRequest, mount: VaultMount, rest: String) async throws -> Response {
        guard rest.hasPrefix("creds/"), vr.operation == .read else {
            try await tessera.run(vr.pipelineCall(action: "vault_request", auditPath: "/" + vr.path)) { _ in () }
            return VaultResponses.errors([VaultResponses.unsupported], status: .methodNotAllowed)
        }
        let producer = try mount.itemPath(String(rest.dropFirst("creds/".count)))
        let call = vr.pipelineCall(action: "get_dynamic_secret_value", auditPath: producer.value, checks: [AccessCheck(.read, .item, producer)])
        let issued = try await tessera.run(call) { caller in
            let c = try await tessera.dynamic.issue(producer, actor: caller.principal?.leaseOwner ?? "")
            caller.notes.set("lease_id", c.lease.id)
            return c
        }
        let ttl = InputNumber.int64(issued.lease.expiresAt.timeIntervalSince(issued.lease.issuedAt))
        return Responses.json(.obj(("request_id", .string(vr.context.requestId)), ("lease_id", .string(vaultId(issued.lease.id))),
                                   ("renewable", .bool(true)), ("lease_duration", .int(ttl)),
                                   ("data", .obj(("password", .string(issued.password)), ("username", .string(issued.username)))),
                                   ("wrap_info", .null), ("warnings", .null), ("auth", .null)))
    }

    // MARK: sys/leases

    func handle(_ vr: VaultRequest) async throws -> Response {
        let rest = String(vr.path.dropFirst("sys/leases/".count))
        switch vr.operation {
        case .list where rest == "lookup" || rest.hasPrefix("lookup/"):
            return try await list(vr, prefix: rest == "lookup" ? "" : String(rest.dropFirst("lookup/".count)))
        case .write where rest == "lookup":
            return try await lookup(vr, try leaseId(vr, inPath: nil))
        case .write where rest == "renew" || rest.hasPrefix("renew/"):
            return try await renew(vr, try leaseId(vr, inPath: rest == "renew" ? nil : String(rest.dropFirst("renew/".count))))
        case .write where rest == "revoke" || rest.hasPrefix("revoke/"):
            let inPath = rest == "revoke" ? nil : String(rest.dropFirst("revoke/".count))
            return try await revoke(vr, try leaseId(vr, inPath: inPath), urlForm: inPath != nil)
        case .write where rest == "revoke-prefix" || rest.hasPrefix("revoke-prefix/"):
            let fields = try vr.fields()
            let inPath = rest == "revoke-prefix" ? nil : String(rest.dropFirst("revoke-prefix/".count))
            guard let prefix = try inPath ?? fields.string("prefix"), !prefix.isEmpty else { throw TesseraError.badRequest("prefix must be specified") }
            return try await revokePrefix(vr, prefix, urlForm: inPath != nil, fields: fields)
        case .write where rest.hasPrefix("revoke-force/") && rest.count > "revoke-force/".count:
            return try await revokeForce(vr, String(rest.dropFirst("revoke-force/".count)))
        default:
            try await tessera.run(vr.pipelineCall(action: "vault_request", auditPath: "/" + vr.path)) { _ in () }
            return VaultResponses.errors([VaultResponses.unsupported], status: .methodNotAllowed)
        }
    }

    /// `sys/leases/revoke-force/<prefix>`: every lease under the prefix is marked revoked even when
    /// its target cannot remove the credential (which then stays there). Vault's sudo path: the
    /// force right (sys-rule update on /sys/leases/revoke-force) and delete on each producer.
    func revokeForce(_ vr: VaultRequest, _ prefix: String) async throws -> Response {
        let native = nativePrefix(prefix)
        let path = try ItemPath(folder: "/" + native)
        let checks = [AccessCheck(.update, .system, SystemPath.revokeForce), AccessCheck(.delete, .item, path)]
        try await tessera.run(vr.pipelineCall(action: "revoke_lease_force", auditPath: path.value, checks: checks)) { caller in
            caller.notes.set("prefix", native)
            let leases = try await tessera.dynamic.revocable(prefix: native)
            for producer in Set(leases.map(\.producer)) {
                try caller.require(.delete, on: try ItemPath(producer), type: .item)
            }
            for lease in leases { try await tessera.dynamic.revoke(lease.id, force: true) }
            caller.notes.set("revoked", String(leases.count))
        }
        return VaultResponses.noContent()
    }

    func leaseId(_ vr: VaultRequest, inPath: String?) throws -> String {
        if let inPath, !inPath.isEmpty { return inPath }
        guard let id = try vr.fields().string("lease_id"), !id.isEmpty else { throw TesseraError.badRequest("lease_id must be specified") }
        return id
    }

    /// The producer path a (Vault or native) lease id belongs to, for authorization.
    func producerPath(_ native: String) throws -> ItemPath {
        let parts = native.split(separator: "/")
        guard parts.count >= 2 else { throw TesseraError.badRequest("invalid lease") }
        return try ItemPath("/" + parts.dropLast().joined(separator: "/"))
    }

    func lookup(_ vr: VaultRequest, _ id: String) async throws -> Response {
        let native = nativeId(id)
        let path = try producerPath(native)
        let lease = try await tessera.run(vr.pipelineCall(action: "lookup_lease", auditPath: path.value, checks: [AccessCheck(.read, .item, path)])) { caller in
            caller.notes.set("lease_id", native)
            let l = try await tessera.dynamic.lease(native)
            guard l.state == .active, l.producer == path.value else { throw TesseraError.badRequest("invalid lease") }
            return l
        }
        let ttl = InputNumber.int64(max(0, lease.expiresAt.timeIntervalSince(tessera.now())))
        return VaultResponses.envelope(data: .obj(("expire_time", .date(lease.expiresAt)), ("id", .string(vaultId(lease.id))),
                                                  ("issue_time", .date(lease.issuedAt)), ("last_renewal", .date(lease.lastRenewal)),
                                                  ("path", .string(vaultPath(lease.producer))), ("renewable", .bool(true)), ("ttl", .int(ttl))),
                                       requestId: vr.context.requestId)
    }

    func renew(_ vr: VaultRequest, _ id: String) async throws -> Response {
        let native = nativeId(id)
        let path = try producerPath(native)
        let fields = try vr.fields()
        let increment = try fields.seconds("increment")
        let result = try await tessera.run(vr.pipelineCall(action: "renew_lease", auditPath: path.value)) { caller in
            caller.notes.set("lease_id", native)
            try await authorizeOwnLease(caller, native, path, .update, missing: "lease not found")
            return try await tessera.dynamic.renew(native, increment: increment)
        }
        let ttl = InputNumber.int64(max(0, result.lease.expiresAt.timeIntervalSince(tessera.now())).rounded())
        return Responses.json(.obj(("request_id", .string(vr.context.requestId)), ("lease_id", .string(vaultId(result.lease.id))),
                                   ("renewable", .bool(true)), ("lease_duration", .int(ttl)), ("data", .null), ("wrap_info", .null),
                                   ("warnings", result.warning.map { .strings([$0]) } ?? .null), ("auth", .null)))
    }

    func revoke(_ vr: VaultRequest, _ id: String, urlForm: Bool) async throws -> Response {
        let native = nativeId(id)
        let path = try producerPath(native)
        let sync = try vr.fields().bool("sync") ?? !urlForm
        try await tessera.run(vr.pipelineCall(action: "revoke_lease", auditPath: path.value)) { caller in
            caller.notes.set("lease_id", native)
            try await authorizeOwnLease(caller, native, path, .delete, missing: "invalid lease")
            try await tessera.dynamic.revoke(native)
        }
        return sync ? VaultResponses.noContent() : Response(status: .accepted, headers: [.contentType: "application/json", .contentLength: "0", .cacheControl: "no-store"])
    }

    /// As Vault's default policy allows: the identity a lease was issued to may renew and revoke
    /// it (an agent renewing its database credentials); anyone else needs `capability` on the
    /// producer. A caller without the capability cannot tell an unknown lease from another's.
    func authorizeOwnLease(_ caller: CallerContext, _ native: String, _ path: ItemPath, _ capability: Capability,
                           missing: String) async throws {
        let lease: Lease
        do {
            lease = try await tessera.dynamic.lease(native)
        } catch let e as TesseraError where e.status == 404 || e.status == 400 {
            try caller.require(capability, on: path, type: .item)
            throw TesseraError.badRequest(missing)
        }
        guard lease.producer == path.value else {
            try caller.require(capability, on: path, type: .item)
            throw TesseraError.badRequest(missing)
        }
        if let me = caller.principal?.leaseOwner, !me.isEmpty, lease.accessId == me {
            caller.notes.set(AuditNotes.policyKey, "allowed: the lease was issued to this identity")
            return
        }
        try caller.require(capability, on: path, type: .item)
    }

    func revokePrefix(_ vr: VaultRequest, _ prefix: String, urlForm: Bool, fields: RequestFields) async throws -> Response {
        let native = nativePrefix(prefix)
        let path = try ItemPath(folder: "/" + native)
        // The CLI sends {"sync":false} (202); hvac sends {"prefix":…} and expects 204.
        let sync = try fields.bool("sync") ?? (fields.has("prefix") || !urlForm)
        // A system operation (Vault's sudo path), and every lease it would revoke is checked on its
        // own producer: a deny on one producer stops the whole revocation, so nothing changes.
        let checks = [AccessCheck(.update, .system, SystemPath.revokePrefix(native)), AccessCheck(.delete, .item, path)]
        try await tessera.run(vr.pipelineCall(action: "revoke_lease_prefix", auditPath: path.value, checks: checks)) { caller in
            caller.notes.set("prefix", native)
            let leases = try await tessera.dynamic.revocable(prefix: native)
            for producer in Set(leases.map(\.producer)) {
                try caller.require(.delete, on: try ItemPath(producer), type: .item)
            }
            _ = try await tessera.dynamic.revoke(leases: leases)
        }
        return sync ? VaultResponses.noContent() : Response(status: .accepted, headers: [.contentType: "application/json", .contentLength: "0", .cacheControl: "no-store"])
    }

    func list(_ vr: VaultRequest, prefix: String) async throws -> Response {
        var native = nativePrefix(prefix)
        if !native.isEmpty, !native.hasSuffix("/") { native += "/" }
        let folder = try ItemPath(folder: "/" + native)
        let keys = try await tessera.run(vr.pipelineCall(action: "list_leases", auditPath: folder.value, listing: folder)) { caller in
            var keys = Set<String>()
            let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
            for l in try await tessera.dynamic.leases(prefix: native, state: .active) {
                // Each lease is shown only to whom may list its own producer; deny wins.
                guard let producer = try? ItemPath(l.producer), authorizer.check(.list, on: producer).isAllowed else { continue }
                guard let rest = ItemPath.bytes(vaultId(l.id), droppingPrefix: vaultId(native)) else { continue }
                if let slash = rest.firstIndex(of: "/") { keys.insert(String(rest[..<slash]) + "/") } else { keys.insert(String(rest)) }
            }
            return keys.sorted()
        }
        guard !keys.isEmpty else { throw TesseraError.notFound("") }
        return VaultResponses.envelope(data: .obj(("keys", .strings(keys))), requestId: vr.context.requestId)
    }

    // MARK: Id mapping

    var databaseMounts: [VaultMount] { tessera.mounts.all.filter { $0.kind == .database } }

    /// `db/readonly/X` → `db/creds/readonly/X` when a database mount covers the producer.
    func vaultId(_ native: String) -> String {
        for m in databaseMounts {
            let folder = String(m.folder.folderPrefix.dropFirst())
            if let rest = ItemPath.bytes(native, droppingPrefix: folder) { return m.path + "creds/" + rest }
        }
        return native
    }

    func vaultPath(_ producer: String) -> String {
        vaultId(String(producer.dropFirst()) + "/").dropLast().description
    }

    /// `db/creds/readonly/X` → `db/readonly/X`; native ids pass through.
    func nativeId(_ vault: String) -> String {
        for m in databaseMounts {
            if let rest = ItemPath.bytes(vault, droppingPrefix: m.path + "creds/") { return String(m.folder.folderPrefix.dropFirst()) + rest }
        }
        return vault
    }

    func nativePrefix(_ vault: String) -> String {
        for m in databaseMounts {
            if ItemPath.bytes(vault, haveprefix: m.path + "creds/") { return nativeId(vault) }
            if (m.path + "creds/").hasPrefix(vault) || vault + "/" == m.path || vault == m.path {
                return String(m.folder.folderPrefix.dropFirst())
            }
        }
        return vault
    }
}
