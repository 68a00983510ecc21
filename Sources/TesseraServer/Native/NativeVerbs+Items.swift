// Native verbs for static secrets: create-secret, get-secret-value, update-secret-val,
// list-items, describe-item, delete-item.
import Foundation
import TesseraCore
import TesseraEngines

extension NativeVerbs {
    static let maxValueBytes = 512 * 1024

    static let items: [NativeVerb] = [
        NativeVerb("create-secret", action: "create_item", access: .capability([.create], .item),
                   help: "Create a static secret (version 1).",
                   fields: declare([.string("name", required: true, "The secret's path, e.g. /prod/db/password."),
                                    .string("value", required: true, sensitive: true, "The secret value (at most 512 KiB)."),
                                    .string("format", "text (default), json or key-value: how the value is validated."),
                                    .string("type", "generic (default) or password."),
                                    .string("description", aliases: ["metadata"], "A description."),
                                    .list("tags", "Tags."),
                                    .int("max-versions", 0...Item.maximumMaxVersions, "Versions kept (0: the default)."),
                                    .bool("delete-protection", aliases: ["delete_protection"], "Refuse deletion until turned off.")],
                                   sdk: ["multiline_value", "accessibility", "ProviderType", "ara-enabled", "change-event",
                                         "custom-field", "enable-agentic-runtime-authority", "enable-ai-quorum", "host-provider",
                                         "inject-url", "input-rule", "item-custom-fields", "lock-during-sra-session", "lock-on-read",
                                         "lock-ttl", "output-rule", "protection_key", "secure-access-bastion-issuer",
                                         "secure-access-certificate-issuer", "secure-access-enable",
                                         "secure-access-enforce-hosts-restriction", "secure-access-gateway", "secure-access-host",
                                         "secure-access-rdp-user", "secure-access-ssh-user", "secure-access-url",
                                         "secure-access-web-browsing", "secure-access-web-proxy", "target", "username"],
                                   sdkSecrets: ["password", "secure-access-ssh-creds"])) { f in
            let path = try ItemPath(try f.requiredString("name"))
            guard let value = try f.string("value") else { throw TesseraError.badRequest("missing required field 'value'") }
            try validateValue(value, format: try f.string("format"))
            let type = try f.string("type") ?? "generic"
            guard ["generic", "password"].contains(type) else {
                throw TesseraError.badRequest("invalid type '\(type)': expected generic or password")
            }
            let description = try f.string("description") ?? f.string("metadata") ?? ""
            let tags = try f.stringList("tags") ?? []
            let maxVersions = try f.int("max-versions", in: 0...Item.maximumMaxVersions)
            let protection = try f.bool("delete_protection") ?? f.bool("delete-protection") ?? false
            return PreparedVerb(paths: [path]) { t, caller in
                let item = try await t.secrets.create(path: path, value: value, description: description, tags: tags,
                                                      maxVersions: maxVersions, deleteProtection: protection,
                                                      actor: caller.principal?.identity.accessId ?? "")
                return .obj(("name", .string(item.path.value)))
            }
        },
        NativeVerb("get-secret-value", action: "get_secret_value", access: .capability([.read], .item),
                   help: "Read the value of one or more secrets.",
                   fields: declare([.list("names", required: true, "Secret paths (at most 100)."),
                                    .int("version", 0...Int(Int32.max), "A version number (0 or absent: the newest).")],
                                   sdk: ["ignore-cache", "accessibility", "pretty-print"])) { f in
            let names = try f.requiredStringList("names")
            guard names.count <= 100 else { throw TesseraError.badRequest("at most 100 names per request") }
            let paths = try names.map { try ItemPath($0) }
            let version = try f.int("version", in: 0...Int(Int32.max))
            if let version, version < 0 {
                throw TesseraError.badRequest("version must be 0 (latest) or a positive version number")
            }
            return PreparedVerb(paths: paths, parameters: version.map { ["version": String($0)] } ?? [:]) { t, caller in
                // A token limited by use count spends one use per request: it reads one secret at a time.
                if names.count > 1, caller.principal?.token?.usesLeft != nil {
                    throw TesseraError.badRequest("a token limited by use count reads one secret per request")
                }
                var out: [(String, JSON)] = []
                for (name, path) in zip(names, paths) {
                    let v = try await t.secrets.read(path: path, version: version)
                    out.append((name, .string(v.value)))
                }
                return .object(out)
            }
        },
        NativeVerb("update-secret-val", action: "update_item", access: .capability([.update], .item),
                   help: "Store a new version of a static secret.",
                   fields: declare([.string("name", required: true, "The secret's path."),
                                    .string("value", required: true, sensitive: true, "The new value (at most 512 KiB)."),
                                    .string("format", "text (default), json or key-value: how the value is validated.")],
                                   sdk: ["accessibility", "custom-field", "inject-url", "keep-prev-version", "key", "last-version",
                                         "multiline", "new-version", "username"],
                                   sdkSecrets: ["password"])) { f in
            let path = try ItemPath(try f.requiredString("name"))
            guard let value = try f.string("value") else { throw TesseraError.badRequest("missing required field 'value'") }
            try validateValue(value, format: try f.string("format"))
            return PreparedVerb(paths: [path]) { t, caller in
                let version = try await t.secrets.update(path: path, value: value, actor: caller.principal?.identity.accessId ?? "")
                caller.notes.set("version", String(version))
                return .obj(("name", .string(path.value)))
            }
        },
        NativeVerb("list-items", action: "list_items", access: .listing(.item),
                   help: "List the items of a folder and its sub-folders that the caller may list.",
                   fields: declare([.string("path", "The folder (default /)."),
                                    .bool("current-folder", "Only the folder's own items, not those of its sub-folders."),
                                    .string("filter", "Only items whose path contains this text (case-insensitive)."),
                                    .string("tag", "Only items with this tag."),
                                    .list("type", "Only these item types: static-secret, dynamic-secret, rotated-secret."),
                                    .bool("minimal-view", "Only names, ids, types and versions.")],
                                   sdk: ["accessibility", "advanced-filter", "ara-only", "auto-pagination", "modified-after",
                                         "pagination-token", "sra-only", "sub-types"])) { f in
            let folder = try ItemPath(folder: try f.string("path") ?? "/")
            let currentFolder = try f.bool("current-folder") ?? false
            let filter = try f.string("filter")
            let tag = try f.string("tag")
            let types = try f.stringList("type")
            let minimal = try f.bool("minimal-view") ?? false
            return PreparedVerb(folder: folder) { t, caller in
                let listing = try await t.secrets.list(folder: folder)
                let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
                let visible = listing.items.filter { authorizer.check(.list, on: $0.path).isAllowed }
                let folders = listing.folders.filter { folderPath in
                    visible.contains { ItemPath.bytes($0.path.value, haveprefix: folderPath + "/") }
                }
                let selected = visible.filter { item in
                    (!currentFolder || item.path.parent == folder)
                        && (filter.map { item.path.value.localizedCaseInsensitiveContains($0) } ?? true)
                        && (tag.map { item.tags.contains($0) } ?? true)
                        && (types.map { $0.isEmpty || $0.contains(itemTypeFilterName(item.type)) } ?? true)
                }
                return .obj(("items", .array(selected.map { itemJSON($0, versions: nil, minimal: minimal) })),
                            ("folders", .strings(folders)), ("next_page", .string("")))
            }
        },
        NativeVerb("describe-item", action: "get_item", access: .capability([.read, .list], .item),
                   help: "Show an item's metadata and versions (never its value).",
                   fields: declare([.string("name", required: true, "The item's path.")],
                                   sdk: ["accessibility", "bastion-details", "der-certificate-format", "display-id", "gateway-details",
                                         "item-custom-fields-details", "item-id", "services-details", "show-versions"])) { f in
            let path = try ItemPath(try f.requiredString("name"))
            return PreparedVerb(paths: [path]) { t, _ in
                let item = try await t.secrets.item(path)
                let versions = try await t.secrets.versions(of: item)
                let described = itemJSON(item, versions: versions, minimal: false)
                guard item.type == .rotatedSecret, case .object(let pairs) = described else { return described }
                return .object(pairs + rotatedItemFields(try await t.rotation.get(path).1))
            }
        },
        NativeVerb("delete-item", action: "delete_item", access: .capability([.delete], .item),
                   help: "Delete an item, or one of its versions.",
                   fields: declare([.string("name", required: true, "The item's path."),
                                    .int("version", -1...Int(Int32.max), "-1 (default): the whole item; 0: the newest; N: that one.")],
                                   sdk: ["accessibility", "delete-immediately", "delete-in-days"])) { f in
            let path = try ItemPath(try f.requiredString("name"))
            let version = try f.int("version", in: -1...Int(Int32.max)) ?? -1
            return PreparedVerb(paths: [path], parameters: ["version": String(version)]) { t, _ in
                let result = try await t.secrets.delete(path: path, version: version)
                return .obj(("item_id", .int(result.item.id)), ("item_name", .string(result.item.path.value)),
                            ("version_deleted", .int(Int64(result.deletedVersion))), ("deletion_date", .date(t.now())))
            }
        },
    ]

    /// A verb's declared fields, plus fields that clients such as the Akeyless SDK send and the verb
    /// does not use: those are accepted without a warning (`sdkSecrets` are also kept out of the audit).
    static func declare(_ fields: [FieldSpec], sdk: [String] = [], sdkSecrets: [String] = []) -> [FieldSpec] {
        fields + sdk.map { FieldSpec($0, .any, help: "Accepted and ignored (SDK field).") }
            + sdkSecrets.map { FieldSpec($0, .any, sensitive: true, help: "Accepted and ignored (SDK field).") }
    }

    static func validateValue(_ value: String, format: String?) throws {
        guard value.utf8.count <= maxValueBytes else {
            throw TesseraError.badRequest("value is larger than \(maxValueBytes) bytes")
        }
        switch format ?? "text" {
        case "text": break
        case "json", "key-value":
            guard (try? JSON.parse(Array(value.utf8))) != nil else {
                throw TesseraError.badRequest("value is not valid JSON, as format '\(format ?? "")' requires")
            }
        default:
            throw TesseraError.badRequest("invalid format: expected text, json or key-value")
        }
    }

    static func itemTypeFilterName(_ type: ItemType) -> String {
        switch type {
        case .staticSecret: "static-secret"
        case .dynamicSecret: "dynamic-secret"
        case .rotatedSecret: "rotated-secret"
        case .usc: "usc"
        }
    }

    /// The Akeyless `Item` shape: metadata and versions, never a value.
    static func itemJSON(_ item: Item, versions: [ItemVersion]?, minimal: Bool) -> JSON {
        var pairs: [(String, JSON)] = [
            ("item_name", .string(item.path.value)),
            ("item_id", .int(item.id)),
            ("item_type", .string(item.type.rawValue)),
            ("item_sub_type", .string("generic")),
            ("last_version", .int(Int64(item.lastVersion))),
        ]
        if !minimal {
            pairs += [
                ("item_metadata", .string(item.description)),
                ("item_tags", .strings(item.tags)),
                ("is_enabled", .bool(true)),
                ("delete_protection", .bool(item.deleteProtection)),
                ("with_customer_fragment", .bool(false)),
                ("creation_date", .date(item.createdAt)),
                ("modification_date", .date(item.updatedAt)),
                ("item_general_info", .obj(("max_versions", .int(Int64(item.maxVersions))))),
            ]
        }
        if let versions {
            pairs.append(("item_versions", .array(versions.reversed().map { v in
                .obj(("version", .int(Int64(v.version))),
                     ("item_version_state", .string(v.isLive ? "Enabled" : (v.destroyed ? "Destroyed" : "Deleted"))),
                     ("creation_date", .date(v.createdAt)),
                     ("deletion_date", .date(v.deletedAt)),
                     ("access_id", .string(v.createdBy)))
            })))
        }
        return .object(pairs)
    }
}
