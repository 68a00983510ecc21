// KV v1 and v2 over Tessera items. A Vault path `<mount>/<p>` is the item `<folder>/<p>`; a KV
// secret's data object is stored as the item's JSON value, so both APIs see the same values and
// the same versions. Capabilities follow Vault: read, create (new) or update (existing), delete, list.
import Foundation
import Hummingbird
import TesseraCore
import TesseraEngines

struct VaultKV: Sendable {
    let tessera: Tessera
    let mount: VaultMount

    static let defaultLeaseSeconds: Int64 = 2_764_800

    // MARK: KV v2

    func handleV2(_ vr: VaultRequest, rest: String) async throws -> Response {
        let (section, sub) = split(rest)
        switch (section, vr.operation) {
        case ("data", .read): return try await readData(vr, try mount.itemPath(sub))
        case ("subkeys", .read): return try await readData(vr, try mount.itemPath(sub), subkeys: true)
        case ("data", .write): return try await writeData(vr, try mount.itemPath(sub))
        case ("data", .patch): return try await patchData(vr, try mount.itemPath(sub))
        case ("data", .delete): return try await versionsChange(vr, try mount.itemPath(sub), action: "delete_item", capability: .delete) { p, _ in
                try await tessera.secrets.deleteKV(path: p, versions: nil)
            }
        case ("delete", .write): return try await versionsChange(vr, try mount.itemPath(sub), action: "delete_item", capability: .delete) { p, v in
                try await tessera.secrets.deleteKV(path: p, versions: v)
            }
        case ("undelete", .write): return try await versionsChange(vr, try mount.itemPath(sub), action: "undelete_item", capability: .update) { p, v in
                try await tessera.secrets.undeleteKV(path: p, versions: v ?? [])
            }
        case ("destroy", .write): return try await versionsChange(vr, try mount.itemPath(sub), action: "destroy_item", capability: .delete) { p, v in
                try await tessera.secrets.destroyKV(path: p, versions: v ?? [])
            }
        case ("metadata", .list), ("data", .list): return try await list(vr, sub)
        case ("metadata", .read): return try await readMetadata(vr, try mount.itemPath(sub))
        case ("metadata", .write), ("metadata", .patch): return try await writeMetadata(vr, try mount.itemPath(sub), patch: vr.operation == .patch)
        case ("metadata", .delete): return try await deleteAll(vr, try mount.itemPath(sub))
        case ("config", .read), ("config", .write): return try await config(vr)
        case (_, .head):
            return VaultResponses.errors([], status: .methodNotAllowed)
        case ("data", _), ("metadata", _), ("delete", _), ("undelete", _), ("destroy", _), ("config", _), ("subkeys", _):
            _ = try await authenticateOnly(vr)
            return VaultResponses.errors([VaultResponses.unsupported], status: .methodNotAllowed)
        default:
            // A v1-style path on a v2 mount, as old clients send after a failed preflight.
            _ = try await authenticateOnly(vr)
            return VaultResponses.envelope(data: nil, warnings: ["Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation."],
                                           requestId: vr.context.requestId, status: .notFound)
        }
    }

    func split(_ rest: String) -> (String, String) {
        guard let slash = rest.firstIndex(of: "/") else { return (rest, "") }
        return (String(rest[..<slash]), String(rest[rest.index(after: slash)...]))
    }

    func authenticateOnly(_ vr: VaultRequest) async throws {
        try await tessera.run(vr.pipelineCall(action: "vault_request", auditPath: "/" + vr.path)) { _ in () }
    }

    /// A version's data, or with `subkeys` (`<mount>/subkeys/<path>`) only its keys, every value
    /// null, down to `depth` levels (0: all). Vault grants subkeys on a path of its own; Tessera
    /// needs read on the item, the same right as the data.
    func readData(_ vr: VaultRequest, _ path: ItemPath, subkeys: Bool = false) async throws -> Response {
        let version = try vr.query["version"].map { v -> Int in
            try InputNumber.int(text: v, field: "version", in: 0...Int(Int32.max))
        }
        let depth = try subkeys ? vr.query["depth"].map { try InputNumber.int(text: $0, field: "depth", in: 0...Int(Int32.max)) } ?? 0 : 0
        var call = vr.pipelineCall(action: subkeys ? "get_secret_subkeys" : "get_secret_value", auditPath: path.value,
                                   checks: [AccessCheck(.read, .item, path)])
        call.edgeCacheable = !subkeys
        let result = try await tessera.run(call) { caller in
            let r = try await tessera.secrets.readKV(path: path, version: version)
            caller.notes.set("version", String(r.version.record.version))
            return r
        }
        let meta = versionMetadata(result.version.record, item: result.item)
        let key = subkeys ? "subkeys" : "data"
        guard let value = result.version.value, !isExpired(result.version.record, item: result.item) else {
            let body: JSON = subkeys ? .obj(("metadata", meta), (key, .null)) : .obj((key, .null), ("metadata", meta))
            return VaultResponses.envelope(data: body, requestId: vr.context.requestId, status: .notFound)
        }
        if subkeys {
            return VaultResponses.envelope(data: .obj(("metadata", meta), (key, Self.subkeys(Self.dataJSON(value), depth: depth))),
                                           requestId: vr.context.requestId)
        }
        return VaultResponses.envelope(data: .obj(("data", Self.dataJSON(value)), ("metadata", meta)), requestId: vr.context.requestId)
    }

    func writeData(_ vr: VaultRequest, _ path: ItemPath) async throws -> Response {
        let fields = try vr.fields()
        guard let data = fields.raw("data"), data != .null else { throw TesseraError.badRequest("no data provided") }
        guard case .object = data else { throw TesseraError.badRequest("data must be a JSON object") }
        let cas = try casOption(fields)
        return try await store(vr, path, value: data.serialized, cas: cas, action: "write")
    }

    func casOption(_ fields: RequestFields) throws -> Int? {
        guard let options = fields.raw("options"), case .object = options else { return nil }
        // A negative cas never matches a version (Vault's answer is the mismatch, not a range error).
        return try RequestFields(options).int("cas", in: -Int(Int32.max)...Int(Int32.max))
    }

    func store(_ vr: VaultRequest, _ path: ItemPath, value: String, cas: Int?, action: String) async throws -> Response {
        guard value.utf8.count <= NativeVerbs.maxValueBytes else { throw TesseraError.badRequest("value is too large") }
        let existing = try await tessera.secrets.find(path)
        let exists = existing != nil
        let call = vr.pipelineCall(action: exists ? "update_item" : "create_item", auditPath: path.value,
                                   checks: [AccessCheck(exists ? .update : .create, .item, path)])
        let (item, version) = try await tessera.run(call) { caller in
            // Authorized to create: if another writer creates the item first, this write may not
            // become an update of it unless the caller may also update.
            let mayUpdate = exists || (caller.principal?.authorizer.check(.update, on: path).isAllowed ?? false)
            let r = try await tessera.secrets.writeKV(path: path, value: value, cas: cas, mountCASRequired: mount.casRequired,
                                                      mountMaxVersions: mount.maxVersions, actor: caller.principal?.identity.accessId ?? "",
                                                      lookedUp: .some(existing), mayUpdate: mayUpdate)
            caller.notes.set("version", String(r.version.version))
            return r
        }
        return VaultResponses.envelope(data: versionMetadata(version, item: item), requestId: vr.context.requestId)
    }

    func patchData(_ vr: VaultRequest, _ path: ItemPath) async throws -> Response {
        guard let type = vr.contentType, !type.isEmpty else { throw TesseraError.badRequest("mime: no media type") }
        guard type.lowercased().hasPrefix("application/merge-patch+json") else {
            throw TesseraError.badRequest("unsupported content type: \(type)")
        }
        let fields = try vr.fields()
        guard let patch = fields.raw("data"), case .object = patch else { throw TesseraError.badRequest("no data provided") }
        let cas = try casOption(fields)
        let call = vr.pipelineCall(action: "update_item", auditPath: path.value, checks: [AccessCheck(.update, .item, path)])
        // A missing secret is a 404 (OpenBao's has an empty body; every Tessera error is JSON).
        let (item, version, patched) = try await tessera.run(call) { caller in
            try await applyPatch(path, patch, cas: cas, mount: mount, caller: caller)
        }
        // A deleted (or expired) current version: 404 with its metadata, as OpenBao answers.
        return VaultResponses.envelope(data: versionMetadata(version, item: item), requestId: vr.context.requestId, status: patched ? .ok : .notFound)
    }

    func applyPatch(_ path: ItemPath, _ patch: JSON, cas: Int?, mount: VaultMount, caller: CallerContext) async throws -> (Item, ItemVersion, Bool) {
        let current = try await tessera.secrets.readKV(path: path, version: nil)
        guard let value = current.version.value, !isExpired(current.version.record, item: current.item) else {
            caller.notes.setStatus(404)
            return (current.item, current.version.record, false)
        }
        let merged = Self.mergePatch(Self.dataJSON(value), patch)
        let r = try await tessera.secrets.writeKV(path: path, value: merged.serialized, cas: cas ?? current.item.lastVersion,
                                                  mountCASRequired: false, mountMaxVersions: mount.maxVersions,
                                                  actor: caller.principal?.identity.accessId ?? "")
        caller.notes.set("version", String(r.version.version))
        return (r.item, r.version, true)
    }

    func versionsChange(_ vr: VaultRequest, _ path: ItemPath, action: String, capability: Capability,
                        _ change: @escaping @Sendable (ItemPath, [Int]?) async throws -> Void) async throws -> Response {
        let versions: [Int]? = vr.operation == .delete ? nil : try vr.versions(try vr.fields())
        let call = vr.pipelineCall(action: action, auditPath: path.value, checks: [AccessCheck(capability, .item, path)])
        try await tessera.run(call) { caller in
            if let versions { caller.notes.set("versions", versions.map(String.init).joined(separator: ",")) }
            try await change(path, versions)
        }
        return VaultResponses.noContent()
    }

    func readMetadata(_ vr: VaultRequest, _ path: ItemPath) async throws -> Response {
        let call = vr.pipelineCall(action: "get_item", auditPath: path.value, checks: [AccessCheck(anyOf: [.read, .list], .item, path)])
        let (item, versions) = try await tessera.run(call) { _ in try await tessera.secrets.metadataKV(path: path) }
        var map: [(String, JSON)] = []
        for v in versions {
            map.append((String(v.version), .obj(("created_time", .date(v.createdAt)),
                                               ("deletion_time", deletionTime(v, item: item).map { .date($0) } ?? .string("")),
                                               ("destroyed", .bool(v.destroyed)))))
        }
        let data = JSON.obj(("cas_required", .bool(item.casRequired)),
                            ("created_time", .date(item.createdAt)),
                            ("current_metadata_version", .int(Int64(item.metadataVersion))),
                            ("current_version", .int(Int64(item.lastVersion))),
                            ("custom_metadata", customMetadata(item)),
                            ("delete_version_after", .string(Self.shown(item.deleteVersionAfter))),
                            ("max_versions", .int(Int64(item.vaultMaxVersions))),
                            ("metadata_cas_required", .bool(false)),
                            // Vault names the oldest version kept only once older ones were pruned.
                            ("oldest_version", .int(Int64((versions.first?.version ?? 0) > 1 ? versions.first?.version ?? 0 : 0))),
                            ("updated_time", .date(item.updatedAt)),
                            ("versions", .object(map)))
        return VaultResponses.envelope(data: data, requestId: vr.context.requestId)
    }

    func writeMetadata(_ vr: VaultRequest, _ path: ItemPath, patch: Bool) async throws -> Response {
        if patch, !(vr.contentType?.lowercased().hasPrefix("application/merge-patch+json") ?? false) {
            throw TesseraError.badRequest(vr.contentType == nil ? "mime: no media type" : "unsupported content type")
        }
        let fields = try vr.fields()
        let maxVersions = try fields.int("max_versions", in: 0...Item.maximumMaxVersions)
        let casRequired = try fields.bool("cas_required")
        let deleteAfter = try fields.raw("delete_version_after").map { try Self.duration($0, field: "delete_version_after") }
        var custom: [String: String?]?
        if let raw = fields.raw("custom_metadata"), raw != .null {
            custom = try VaultCustomMetadata.parse(raw, patch: patch)
        }
        let exists = try await tessera.secrets.find(path) != nil
        let call = vr.pipelineCall(action: "update_item_metadata", auditPath: path.value,
                                   checks: [AccessCheck(exists ? .update : .create, .item, path)])
        try await tessera.run(call) { _ in
            try await tessera.secrets.updateMetadataKV(path: path, mountMaxVersions: mount.maxVersions) { item in
                if let maxVersions {
                    item.vaultMaxVersions = maxVersions
                    item.maxVersions = maxVersions == 0 ? (mount.maxVersions > 0 ? mount.maxVersions : Item.defaultMaxVersions) : maxVersions
                }
                if let casRequired { item.casRequired = casRequired }
                if let deleteAfter { item.deleteVersionAfter = deleteAfter }
                if let custom {
                    if !patch { item.customMetadata = [:] }
                    for (k, v) in custom {
                        if let v { item.customMetadata[k] = v } else { item.customMetadata.removeValue(forKey: k) }
                    }
                }
            }
        }
        if casRequired == false && mount.casRequired {
            return VaultResponses.envelope(data: nil, warnings: ["\"cas_required\" set to false, but is mandated by backend config. This value will be ignored."],
                                           requestId: vr.context.requestId)
        }
        return VaultResponses.noContent()
    }

    func deleteAll(_ vr: VaultRequest, _ path: ItemPath) async throws -> Response {
        let call = vr.pipelineCall(action: "delete_item", auditPath: path.value, checks: [AccessCheck(.delete, .item, path)])
        try await tessera.run(call) { _ in try await tessera.secrets.deleteAllKV(path: path) }
        return VaultResponses.noContent()
    }

    func config(_ vr: VaultRequest) async throws -> Response {
        let write = vr.operation == .write
        let fields = write ? try vr.fields() : .empty
        let call = vr.pipelineCall(action: write ? "update_mount_config" : "read_mount_config", auditPath: mount.folder.value,
                                   checks: [AccessCheck(write ? .update : .read, .item, mount.folder)])
        let current = try await tessera.run(call) { _ in
            var m = mount
            if write {
                if let v = try fields.int("max_versions", in: 0...Item.maximumMaxVersions) { m.maxVersions = v }
                if let v = try fields.bool("cas_required") { m.casRequired = v }
                if let v = fields.raw("delete_version_after") { m.deleteVersionAfter = try Self.duration(v, field: "delete_version_after") }
                try await tessera.mounts.update(m)
            }
            return m
        }
        if write { return VaultResponses.noContent() }
        return VaultResponses.envelope(data: .obj(("cas_required", .bool(current.casRequired)),
                                                  ("delete_version_after", .string(Self.shown(current.deleteVersionAfter))),
                                                  ("max_versions", .int(Int64(current.maxVersions))),
                                                  ("metadata_cas_required", .bool(false))), requestId: vr.context.requestId)
    }

    // MARK: KV v1

    func handleV1(_ vr: VaultRequest, rest: String) async throws -> Response {
        switch vr.operation {
        case .list: return try await list(vr, rest)
        case .head: return VaultResponses.errors([], status: .methodNotAllowed)
        case .patch:
            _ = try await authenticateOnly(vr)
            return VaultResponses.errors([VaultResponses.unsupported], status: .methodNotAllowed)
        case .read:
            let path = try mount.itemPath(rest)
            var call = vr.pipelineCall(action: "get_secret_value", auditPath: path.value, checks: [AccessCheck(.read, .item, path)])
            call.edgeCacheable = true
            let value = try await tessera.run(call) { _ in
                try await tessera.secrets.readKV(path: path, version: nil).version.value
            }
            guard let value else { throw TesseraError.notFound("") }
            let data = Self.dataJSON(value)
            var lease = Self.defaultLeaseSeconds
            // A stored value is client data: a `ttl` that is not a sane duration is ignored, never trusted.
            if let ttl = data["ttl"], let seconds = try? RequestFields.seconds(ttl, field: "ttl") { lease = Int64(seconds) }
            return VaultResponses.envelope(data: data, leaseDuration: lease, requestId: vr.context.requestId)
        case .write:
            let path = try mount.itemPath(rest)
            let fields = try vr.fields()
            guard case .object(let pairs) = fields.body, !pairs.isEmpty else { throw TesseraError.badRequest("missing data fields") }
            _ = try await store(vr, path, value: fields.body.serialized, cas: nil, action: "write")
            return VaultResponses.noContent()
        case .delete:
            let path = try mount.itemPath(rest)
            return try await deleteAll(vr, path)
        }
    }

    // MARK: Listing

    func list(_ vr: VaultRequest, _ rest: String) async throws -> Response {
        let folder = try mount.folderPath(rest)
        let call = vr.pipelineCall(action: "list_items", auditPath: folder.value, listing: folder)
        let keys = try await tessera.run(call) { caller in
            let listing = try await tessera.secrets.list(folder: folder)
            let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
            var keys = Set<String>()
            let depth = folder.components.count
            for item in listing.items where authorizer.check(.list, on: item.path).isAllowed {
                let comps = item.path.components
                guard comps.count > depth else { continue }
                keys.insert(comps.count > depth + 1 ? String(comps[depth]) + "/" : String(comps[depth]))
            }
            return keys.sorted()
        }
        guard !keys.isEmpty else { throw TesseraError.notFound("") }
        return VaultResponses.envelope(data: .obj(("keys", .strings(keys))), requestId: vr.context.requestId)
    }

    // MARK: Shapes and helpers

    func versionMetadata(_ v: ItemVersion, item: Item) -> JSON {
        .obj(("created_time", .date(v.createdAt)),
             ("custom_metadata", customMetadata(item)),
             ("deletion_time", deletionTime(v, item: item).map { .date($0) } ?? .string("")),
             ("destroyed", .bool(v.destroyed)),
             ("version", .int(Int64(v.version))))
    }

    /// When a version counts as deleted: its soft delete, else its creation plus the effective
    /// `delete_version_after` (the shorter of the secret's and the mount's; 0 is never).
    func deletionTime(_ v: ItemVersion, item: Item) -> Date? {
        if let d = v.deletedAt { return d }
        // The common case (no automatic deletion) parses nothing: this runs on every KV read.
        let unset = { (text: String) in text == "0s" || text.isEmpty }
        if unset(item.deleteVersionAfter) && unset(mount.deleteVersionAfter) { return nil }
        let after = [item.deleteVersionAfter, mount.deleteVersionAfter]
            .map { (try? GoDuration.seconds(text: $0, field: "delete_version_after")) ?? 0 }.filter { $0 > 0 }.min() ?? 0
        return after > 0 && !v.destroyed ? v.createdAt.addingTimeInterval(InputNumber.interval(seconds: after)) : nil
    }

    /// A version past its `delete_version_after` reads as deleted, as in Vault.
    func isExpired(_ v: ItemVersion, item: Item) -> Bool {
        guard v.deletedAt == nil, let d = deletionTime(v, item: item) else { return false }
        return d <= tessera.now()
    }

    func customMetadata(_ item: Item) -> JSON {
        item.customMetadata.isEmpty ? .null : .object(item.customMetadata.keys.sorted().map { ($0, .string(item.customMetadata[$0] ?? "")) })
    }

    /// A stored value as a KV data object: JSON objects as they are, any other text as `{"value": text}`.
    /// The keys of an object, every leaf (and every level past `depth`, when it is not 0) null.
    static func subkeys(_ value: JSON, depth: Int, level: Int = 1) -> JSON {
        guard case .object(let pairs) = value else { return .null }
        return .object(pairs.map { k, v in
            if case .object = v, depth == 0 || level < depth { return (k, subkeys(v, depth: depth, level: level + 1)) }
            return (k, .null)
        })
    }

    static func dataJSON(_ value: String) -> JSON {
        if let parsed = try? JSON.parse(Array(value.utf8)), case .object = parsed { return parsed }
        return .obj(("value", .string(value)))
    }

    /// RFC 7396 JSON merge patch.
    static func mergePatch(_ target: JSON, _ patch: JSON) -> JSON {
        guard case .object(let patchPairs) = patch else { return patch }
        var result: [(String, JSON)] = []
        if case .object(let t) = target { result = t }
        for (key, value) in patchPairs {
            let index = result.firstIndex { $0.0 == key }
            if value == .null {
                if let index { result.remove(at: index) }
            } else if let index {
                result[index].1 = mergePatch(result[index].1, value)
            } else {
                result.append((key, mergePatch(.null, value)))
            }
        }
        return .object(result)
    }

    /// A duration as Vault accepts it: integer seconds or Go-style text (`1h30m`, `45s`), returned as Go text.
    static func duration(_ value: JSON, field: String) throws -> String {
        goDurationText(try RequestFields.seconds(value, field: field) ?? 0)
    }

    /// A stored duration (`1800s`, or Go text) as Vault shows it (`30m0s`).
    static func shown(_ stored: String) -> String {
        (try? GoDuration.seconds(text: stored, field: "duration")).map(goDurationText) ?? stored
    }

    /// Whole seconds as Go's `Duration.String` prints them, as Vault shows durations: `0s`, `45s`,
    /// `30m0s`, `1h0m0s`.
    static func goDurationText(_ seconds: Int) -> String {
        let h = seconds / 3600, m = (seconds % 3600) / 60, s = seconds % 60
        if h > 0 { return "\(h)h\(m)m\(s)s" }
        if m > 0 { return "\(m)m\(s)s" }
        return "\(s)s"
    }
}
