// Vault `sys/` endpoints: seal status, health, init, unseal, seal, leader, the mount table
// (`sys/mounts`, enable and disable), auth methods (`sys/auth`, in VaultAuthMethods), and the KV preflight `sys/internal/ui/mounts/<path>`.
import Foundation
import Synchronization
import HTTPTypes
import Hummingbird
import NIOCore
import TesseraCore
import TesseraEngines

struct VaultSysAPI: Sendable {
    let tessera: Tessera
    let system: SystemAPI

    static let mountsPath = SystemPath.mounts

    func handle(_ vr: VaultRequest, _ request: Request) async throws -> Response {
        let path = vr.path
        switch (path, vr.operation) {
        case ("sys/seal-status", .read): return Responses.json(system.sealStatusJSON())
        case ("sys/health", .read), ("sys/health", .head): return system.health()
        case ("sys/init", .read): return Responses.json(.obj(("initialized", .bool(tessera.seal.status.initialized))))
        case ("sys/init", .write): return await system.initialize(request, context(vr))
        case ("sys/unseal", .write): return await system.unseal(request, context(vr))
        case ("sys/seal", .write): return await system.sealNow(request, context(vr))
        case ("sys/openapi", .read), ("sys/internal/specs/openapi", .read): return SystemAPI.openAPI()
        case ("sys/metrics", .read): return await system.authorizedMetrics(request, clientAddress: vr.context.clientAddress)
        case ("sys/storage/raft/snapshot", .read): return try await snapshot(vr)
        case ("sys/rotate", .write), ("sys/rotate/keyring", .write): return try await rotate(vr)
        case ("sys/rotate/keyring", .read): return try await keyStatus(vr)
        case ("sys/audit", .read), ("sys/audit", .list): return try await listAuditDevices(vr)
        case (let p, .write) where p.hasPrefix("sys/audit/") && !p.dropFirst(10).contains("/"):
            return try await enableAuditDevice(vr, name: String(p.dropFirst(10)))
        case (let p, .delete) where p.hasPrefix("sys/audit/") && !p.dropFirst(10).contains("/"):
            return try await disableAuditDevice(vr, name: String(p.dropFirst(10)))
        case (let p, .write) where p.hasPrefix("sys/audit-hash/") && !p.dropFirst(15).contains("/") && p.count > 15:
            return try await auditHash(vr, name: String(p.dropFirst(15)))
        case ("sys/rekey/backup", .read), ("sys/rekey/backup", .delete), ("sys/rekey/recovery-key-backup", .read):
            // Tessera never keeps PGP-encrypted backups of the shares.
            try await tessera.run(vr.pipelineCall(action: "rekey_backup", auditPath: SystemPath.rekey.value,
                                                  checks: [AccessCheck(.read, .system, SystemPath.rekey)])) { _ in
                throw TesseraError.badRequest("no backed-up keys found")
            }
            return VaultResponses.noContent()
        case ("sys/key-status", .read): return try await keyStatus(vr)
        // OpenBao 2 names the rekey `sys/rotate/root/*` (`bao operator rotate-keys`).
        case ("sys/rekey/init", .read), ("sys/rekey/init", .write), ("sys/rekey/init", .delete),
             ("sys/rotate/root/init", .read), ("sys/rotate/root/init", .write), ("sys/rotate/root/init", .delete):
            return try await rekeyInit(vr)
        case ("sys/rekey/update", .write), ("sys/rotate/root/update", .write): return try await rekeyUpdate(vr)
        case ("sys/leader", .read): return leader()
        case ("sys/ha-status", .read): return try await haStatus(vr)
        case ("sys/mounts", .read):
            try await tessera.run(vr.pipelineCall(action: "list_mounts", auditPath: Self.mountsPath.value,
                                                  checks: [AccessCheck(anyOf: [.read, .list], .system, Self.mountsPath)])) { _ in () }
            return VaultResponses.doubled(.object(tessera.mounts.all.map { ($0.path, $0.entryJSON) }), requestId: vr.context.requestId)
        case (let p, let op) where p.hasPrefix("sys/mounts/auth/") && p.hasSuffix("/tune") && p.count > "sys/mounts/auth//tune".count
                                   && (op == .read || op == .write):
            let authPath = "sys/auth/" + p.dropFirst("sys/mounts/auth/".count)
            if let response = try await VaultAuthMethods(tessera: tessera).handleSys(vr, path: authPath) { return response }
            throw TesseraError.notFound("")
        case (let p, .delete) where p.hasPrefix("sys/mounts/") && p.hasSuffix("/tune"):
            return VaultResponses.errors([], status: .methodNotAllowed)
        case (let p, .read) where p.hasPrefix("sys/mounts/") && p.hasSuffix("/tune"):
            return try await readTune(vr, String(p.dropFirst("sys/mounts/".count).dropLast("/tune".count)))
        case (let p, .write) where p.hasPrefix("sys/mounts/") && p.hasSuffix("/tune"):
            return try await tune(vr, String(p.dropFirst("sys/mounts/".count).dropLast("/tune".count)))
        case (let p, .read) where p.hasPrefix("sys/mounts/"):
            let mountPath = String(p.dropFirst("sys/mounts/".count))
            let m = try await tessera.run(vr.pipelineCall(action: "get_mount", auditPath: SystemPath.mount(mountPath).value,
                                                          checks: [AccessCheck(anyOf: [.read, .list], .system, SystemPath.mount(mountPath))])) { _ in
                tessera.mounts.all.first { $0.path == (try? VaultMount.normalizePath(mountPath)) }
            }
            guard let m else { throw TesseraError.badRequest("No secret engine mount at \(mountPath)/") }
            return VaultResponses.doubled(m.entryJSON, requestId: vr.context.requestId)
        case (let p, .write) where p.hasPrefix("sys/mounts/") && !p.hasSuffix("/tune"):
            return try await enable(vr, String(p.dropFirst("sys/mounts/".count)))
        case (let p, .delete) where p.hasPrefix("sys/mounts/"):
            let mountPath = String(p.dropFirst("sys/mounts/".count))
            try await tessera.run(vr.pipelineCall(action: "delete_mount", auditPath: SystemPath.mount(mountPath).value,
                                                  checks: [AccessCheck(.delete, .system, SystemPath.mount(mountPath))])) { caller in
                let normalized = try? VaultMount.normalizePath(mountPath)
                guard let mount = tessera.mounts.all.first(where: { $0.path == normalized }) else { return }
                if mount.ownsData && mount.kind != .database {
                    let removed = try await removeOwnedItems(mount, caller)
                    caller.notes.set("deleted_items", String(removed))
                }
                _ = try? await tessera.mounts.delete(path: mountPath)
            }
            return VaultResponses.noContent()
        case ("sys/remount", .write): return try await remount(vr)
        case (let p, .read) where p.hasPrefix("sys/remount/status/"):
            return try await remountStatus(vr, String(p.dropFirst("sys/remount/status/".count)))
        case (let p, _) where p == "sys/auth" || p.hasPrefix("sys/auth/"):
            if let response = try await VaultAuthMethods(tessera: tessera).handleSys(vr) { return response }
            throw TesseraError.notFound("")
        case (let p, _) where VaultWrapping.handles(p):
            return try await VaultWrapping(tessera: tessera).handle(vr)
        case (let p, _) where VaultPolicyAPI.handles(p):
            return try await VaultPolicyAPI(tessera: tessera).handle(vr)
        case (let p, _) where p.hasPrefix("sys/leases/"):
            return try await VaultLeases(tessera: tessera).handle(vr)
        case (let p, .read) where p == "sys/internal/ui/mounts" || p.hasPrefix("sys/internal/ui/mounts/"):
            return try await preflight(vr, p == "sys/internal/ui/mounts" ? "" : String(p.dropFirst("sys/internal/ui/mounts/".count)))
        case ("sys/seal-status", _), ("sys/health", _), ("sys/leader", _), ("sys/init", _):
            return VaultResponses.errors([], status: .methodNotAllowed)
        default:
            try await tessera.run(vr.pipelineCall(action: "vault_request", auditPath: "/" + path)) { _ in () }
            throw TesseraError.notFound("")
        }
    }

    /// The tune path of a mount: authorized as the system path `/sys/mounts/<path>/tune`.
    func tunePath(_ mountPath: String) -> ItemPath {
        (try? ItemPath(SystemPath.mount(mountPath).value + "/tune")) ?? SystemPath.mounts
    }

    func readTune(_ vr: VaultRequest, _ mountPath: String) async throws -> Response {
        let path = tunePath(mountPath)
        let m = try await tessera.run(vr.pipelineCall(action: "get_mount", auditPath: path.value, checks: [AccessCheck(.read, .system, path)])) { _ in
            tessera.mounts.all.first { $0.path == (try? VaultMount.normalizePath(mountPath)) }
        }
        guard let m else { throw TesseraError.badRequest("cannot fetch sysview for path \"\(mountPath)/\"") }
        return VaultResponses.doubled(m.tuneJSON, requestId: vr.context.requestId)
    }

    func tune(_ vr: VaultRequest, _ mountPath: String) async throws -> Response {
        let path = tunePath(mountPath)
        let f = try vr.fields()
        let description = try f.string("description")
        // The CLI sends an empty string for a TTL it leaves alone.
        let defaultTTL = f.raw("default_lease_ttl") == .string("") ? nil : try f.seconds("default_lease_ttl")
        let maxTTL = f.raw("max_lease_ttl") == .string("") ? nil : try f.seconds("max_lease_ttl")
        var version: String?
        if let options = f.raw("options"), case .object = options {
            let o = try RequestFields(options)
            version = try (try? o.string("version")) ?? o.int("version", in: 0...2).map(String.init)
        }
        let warnings = try await tessera.run(vr.pipelineCall(action: "update_mount_config", auditPath: path.value,
                                                             checks: [AccessCheck(.update, .system, path)])) { caller -> [String] in
            guard var m = tessera.mounts.all.first(where: { $0.path == (try? VaultMount.normalizePath(mountPath)) }) else {
                throw TesseraError.badRequest("tune of path \"\(mountPath.prefix(256))/\" failed: no mount entry found")
            }
            var upgraded = false
            if let version, m.kind != .database, m.uscName == nil {
                switch (m.kind, version) {
                case (.kvV2, "1"): throw TesseraError.badRequest("cannot downgrade mount from version 2")
                case (.kvV1, "2"):
                    // `bao kv enable-versioning`: Tessera's items are versioned already, so the
                    // upgrade is immediate; each secret keeps the versions it has.
                    m.kind = .kvV2
                    upgraded = true
                case (_, "1"), (_, "2"), (_, "0"), (_, ""): break
                default: throw TesseraError.badRequest("invalid KV version \"\(version.prefix(16))\"")
                }
            }
            if let description { m.description = description }
            if let defaultTTL { m.defaultLeaseTTL = defaultTTL }
            if let maxTTL { m.maxLeaseTTL = maxTTL }
            if m.maxLeaseTTL > 0 && m.defaultLeaseTTL > m.maxLeaseTTL {
                throw TesseraError.badRequest("tune of path \"\(mountPath)/\" failed: default lease TTL exceeds max lease TTL")
            }
            try await tessera.mounts.update(m)
            guard upgraded else { return [] }
            caller.notes.set("upgraded_to", "kv-v2")
            // Policy paths translate through a version 2 mount now (`<mount>/data/…`).
            let retranslated = try await VaultPolicyAPI(tessera: tessera).retranslate(caller)
            return ["Upgrading mount from version 1 to version 2. This mount will be unavailable for a brief period and will resume service shortly."] + retranslated
        }
        if warnings.isEmpty { return VaultResponses.noContent() }
        return VaultResponses.envelope(data: nil, warnings: warnings, requestId: vr.context.requestId)
    }

    /// Disabling a mount that owns its items removes them, as Vault does — all or nothing: the
    /// caller must be able to delete every one of them, and none may be delete-protected.
    func removeOwnedItems(_ mount: VaultMount, _ caller: CallerContext) async throws -> Int {
        let limit = 100_000
        var items = try await tessera.secrets.items(withPrefix: mount.folder.folderPrefix, limit: limit + 1)
        if let own = try await tessera.secrets.find(mount.folder) { items.append(own) }
        guard items.count <= limit else { throw TesseraError.badRequest("the mount holds more than \(limit) items: delete them first") }
        let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
        for item in items {
            guard authorizer.check(.delete, on: item.path, type: .item).isAllowed else {
                throw TesseraError.forbidden(path: item.path.value, capability: "delete")
            }
            if item.deleteProtection { throw TesseraError.conflict("item \(item.path.value) has delete protection enabled") }
        }
        for item in items { try await tessera.secrets.deleteAllKV(path: item.path) }
        return items.count
    }

    /// `sys/remount` (`bao secrets move`): authorized as disabling the old mount and enabling the
    /// new one, and, for a mount that owns its items, as deleting each item and creating it at its
    /// new path. Done before the answer, which carries the migration id Vault's clients expect.
    func remount(_ vr: VaultRequest) async throws -> Response {
        let f = try vr.fields()
        guard let from = try? f.string("from"), let to = try? f.string("to") else {
            throw TesseraError.badRequest("both 'from' and 'to' path must be specified as a string")
        }
        for p in [from, to] where p.hasPrefix("auth/") || p.hasPrefix("/auth/") {
            throw TesseraError.badRequest("moving an auth method is not supported: enable it at the new path and copy its roles")
        }
        let trimmedTo = to.split(separator: "/").joined(separator: "/")
        if let first = trimmedTo.split(separator: "/").first, ["sys", "identity", "cubbyhole"].contains(String(first)) {
            throw TesseraError.badRequest("cannot remount to destination \(trimmedTo.prefix(256))/")
        }
        // The paths checked are the paths acted on: normalized first, as the move normalizes them.
        let fromPath = try VaultMount.normalizePath(from), toPath = try VaultMount.normalizePath(to)
        let auditPath = SystemPath.remount
        let (move, warnings) = try await tessera.run(vr.pipelineCall(action: "move_mount", auditPath: auditPath.value,
                                                                     checks: [AccessCheck(.update, .system, auditPath),
                                                                              AccessCheck(.delete, .system, SystemPath.mount(fromPath)),
                                                                              AccessCheck(.create, .system, SystemPath.mount(toPath))])) { caller in
            let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
            let move = try await tessera.mounts.move(from: fromPath, to: toPath) { items, oldFolder, newFolder in
                // Moving an item hands it to whoever the new path's rules reach: the mover must be
                // able to read it and delete it where it is, and create it where it goes.
                for item in items {
                    for capability in [Capability.read, .delete] where !authorizer.check(capability, on: item.path, type: .item).isAllowed {
                        throw TesseraError.forbidden(path: item.path.value, capability: capability.rawValue)
                    }
                    if item.deleteProtection { throw TesseraError.conflict("item \(item.path.value) has delete protection enabled") }
                    let moved = try ItemPath.bytes(item.path.value, droppingPrefix: oldFolder.folderPrefix).map(newFolder.appending) ?? newFolder
                    guard authorizer.check(.create, on: moved, type: .item).isAllowed else {
                        throw TesseraError.forbidden(path: moved.value, capability: "create")
                    }
                }
                caller.notes.set("moved_items", String(items.count))
            }
            caller.notes.set("from", move.from)
            caller.notes.set("to", move.to)
            // Policies naming either path translate through the moved mount now.
            return (move, try await VaultPolicyAPI(tessera: tessera).retranslate(caller))
        }
        // Vault also puts the id at the top level of this answer.
        return Responses.json(.obj(("migration_id", .string(move.id)), ("request_id", .string(vr.context.requestId)), ("lease_id", .string("")),
                                   ("renewable", .bool(false)), ("lease_duration", .int(0)), ("data", .obj(("migration_id", .string(move.id)))),
                                   ("wrap_info", .null),
                                   ("warnings", .strings(["Mount move has been queued. Progress will be reported in OpenBao's server log, tagged with the returned migration_id"] + warnings)),
                                   ("auth", .null)))
    }

    /// `sys/remount/status/<id>`: moves finish before `sys/remount` answers, so a known id is a success.
    func remountStatus(_ vr: VaultRequest, _ id: String) async throws -> Response {
        let auditPath = SystemPath.remount
        let move = try await tessera.run(vr.pipelineCall(action: "move_mount_status", auditPath: auditPath.value,
                                                         checks: [AccessCheck(anyOf: [.read, .update], .system, auditPath)])) { _ in
            tessera.mounts.move(id: id)
        }
        guard let move else { throw TesseraError.notFound("") }
        return VaultResponses.envelope(data: .obj(("migration_id", .string(move.id)),
                                                  ("migration_info", .obj(("source_mount", .string(move.from)), ("target_mount", .string(move.to)),
                                                                          ("status", .string("success"))))),
                                       requestId: vr.context.requestId)
    }

    /// `operator backup` (and `bao operator raft snapshot save`): an online snapshot, streamed
    /// from a file under the data directory that is removed when the stream ends.
    func snapshot(_ vr: VaultRequest) async throws -> Response {
        let taken = try await tessera.run(vr.pipelineCall(action: "backup", auditPath: SystemPath.backup.value,
                                                          checks: [AccessCheck(.read, .system, SystemPath.backup)])) { caller in
            let s = try await tessera.takeSnapshot()
            caller.notes.set("bytes", String(s.size))
            return s
        }
        guard let handle = FileHandle(forReadingAtPath: taken.path) else {
            tessera.endSnapshot(taken.path)
            throw TesseraError.unavailable("the snapshot file cannot be read")
        }
        let path = taken.path
        let t = tessera
        let connection = vr.connection
        var headers: HTTPFields = [.contentType: "application/octet-stream"]
        headers[.contentDisposition] = "attachment; filename=\"tessera.snap\""
        return Response(status: .ok, headers: headers, body: ResponseBody(contentLength: Int(taken.size)) { writer in
            // A reader that stops reading for a minute is cut off, so the archive is not held.
            let progress = Mutex(ContinuousClock.now)
            let watchdog = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(5))
                    if ContinuousClock.now - progress.withLock({ $0 }) > .seconds(60) {
                        connection?.close(promise: nil)
                        return
                    }
                }
            }
            defer {
                watchdog.cancel()
                try? handle.close()
                t.endSnapshot(path)
            }
            while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
                try await writer.write(ByteBuffer(bytes: data))
                progress.withLock { $0 = ContinuousClock.now }
            }
            try await writer.finish(nil)
        })
    }

    func context(_ vr: VaultRequest) -> TesseraRequestContextInfo {
        TesseraRequestContextInfo(clientAddress: vr.context.clientAddress)
    }

    /// `secrets enable`: `{"type":"kv","options":{"version":"2"}}` or `{"type":"kv-v2"}`.
    func enable(_ vr: VaultRequest, _ rawPath: String) async throws -> Response {
        let fields = try vr.fields()
        let type = try fields.string("type") ?? ""
        var version = "1"
        if let options = fields.raw("options"), case .object = options {
            let o = try RequestFields(options)
            if let v = try? o.string("version") { version = v } else if let v = try o.int("version", in: 0...2) { version = String(v) }
        }
        let kind: VaultMount.Kind
        switch (type, version) {
        case ("kv-v2", _), ("kv", "2"): kind = .kvV2
        // `generic` is Vault's old name for KV version 1.
        case ("kv", _), ("kv-v1", _), ("generic", _): kind = .kvV1
        default: throw TesseraError.badRequest("plugin not found in the catalog: \(type)")
        }
        let description = try fields.string("description") ?? ""
        let warnings = try await tessera.run(vr.pipelineCall(action: "create_mount", auditPath: SystemPath.mount(rawPath).value,
                                                             checks: [AccessCheck(.create, .system, SystemPath.mount(rawPath))])) { caller in
            _ = try await tessera.mounts.create(path: rawPath, kind: kind, folder: nil, description: description, ownsData: true)
            // Policies written before this mount existed apply to it now.
            return try await VaultPolicyAPI(tessera: tessera).retranslate(caller)
        }
        if warnings.isEmpty { return VaultResponses.noContent() }
        return VaultResponses.envelope(data: nil, warnings: warnings, requestId: vr.context.requestId)
    }

    /// The KV preflight: 200 with the mount entry and its `path` when the caller has some grant
    /// under the mount; 403 otherwise, and for unknown mounts.
    func preflight(_ vr: VaultRequest, _ target: String) async throws -> Response {
        if target.isEmpty, case .none = vr.credentials {
            return VaultResponses.envelope(data: .obj(("auth", .obj()), ("secret", .obj())), requestId: vr.context.requestId)
        }
        let resolved = tessera.mounts.resolve(target)
        var call = vr.pipelineCall(action: "mount_preflight", auditPath: resolved.map { $0.mount.folder.value } ?? "/" + target)
        call.spendsTokenUse = false
        let allowed = try await tessera.run(call) { caller -> Bool in
            guard let resolved, let authorizer = caller.principal?.authorizer else { return false }
            return authorizer.hasGrant(within: resolved.mount.folder)
        }
        guard allowed, let mount = resolved?.mount, case .object(let pairs) = mount.entryJSON else {
            return VaultResponses.errors(["preflight capability check returned 403, please ensure client's policies grant access to path \"\(target)/\""],
                                         status: .forbidden)
        }
        return VaultResponses.envelope(data: .object(pairs + [("path", .string(mount.path))]), requestId: vr.context.requestId)
    }
}
