// Native verbs for the Vault-compatible mount table: vault-mount-create, vault-mount-list,
// vault-mount-delete. Managing mounts is a system operation: `sys-rule` on /sys/mounts/<path>;
// a mount over a connector also needs `use` on the connector's target.
import Foundation
import TesseraCore
import TesseraEngines

extension NativeVerbs {
    static let vaultMounts: [NativeVerb] = [
        NativeVerb("vault-mount-create", action: "create_mount", access: .capability([.create], .system),
                   help: "Mount a folder of items (or a connector's upstream Vault) for Vault clients.",
                   fields: declare([.string("path", required: true, "The Vault mount path, e.g. secret/."),
                                    .string("type", "kv-v2 (default), kv-v1 or database (dynamic secrets as <mount>/creds/<name>)."),
                                    .string("folder", "The folder of items it maps onto (default /<path>)."),
                                    .string("description", "A description."),
                                    .string("usc-name", "Serve this connector's upstream Vault (needs use on its target).")])
                   ) { f in
            let path = try VaultMount.normalizePath(try f.requiredString("path"))
            let kind = try VaultMount.Kind(wire: try f.string("type") ?? "kv-v2")
            let folder = try f.string("folder").map { try ItemPath(folder: $0).value }
            let description = try f.string("description") ?? ""
            let usc = try f.string("usc-name").map { try Target.validateName($0) }
            return PreparedVerb(paths: [SystemPath.mount(path)], auditPath: path) { t, caller in
                if let usc {
                    let connector = try await t.connectors.connector(named: usc)
                    try caller.require(.use, on: try ItemPath(connector.targetName), type: .target)
                }
                let m = try await t.mounts.create(path: path, kind: kind, folder: folder, description: description, uscName: usc)
                // Vault policies written before this mount existed apply to it now.
                let warnings = try await VaultPolicyAPI(tessera: t).retranslate(caller)
                guard !warnings.isEmpty, case .object(var pairs) = mountJSON(m) else { return mountJSON(m) }
                pairs.append(("warnings", .strings(warnings)))
                return .object(pairs)
            }
        },
        NativeVerb("vault-mount-list", action: "list_mounts", access: .capability([.read, .list], .system),
                   help: "List the Vault-compatible mounts.") { _ in
            PreparedVerb(paths: [VaultSysAPI.mountsPath]) { t, _ in
                .obj(("mounts", .array(t.mounts.all.map(mountJSON))))
            }
        },
        NativeVerb("vault-mount-delete", action: "delete_mount", access: .capability([.delete], .system),
                   help: "Remove a mount (its items stay).",
                   fields: declare([.string("path", required: true, "The Vault mount path.")])) { f in
            let path = try VaultMount.normalizePath(try f.requiredString("path"))
            return PreparedVerb(paths: [SystemPath.mount(path)], auditPath: path) { t, _ in
                let m = try await t.mounts.delete(path: path)
                return .obj(("path", .string(m.path)))
            }
        },
    ]

    static func mountJSON(_ m: VaultMount) -> JSON {
        .obj(("path", .string(m.path)), ("type", .string(m.kind.rawValue)), ("folder", .string(m.folder.value)),
             ("description", .string(m.description)), ("accessor", .string(m.accessor)), ("creation_date", .date(m.createdAt)),
             ("usc_name", m.uscName.map(JSON.string) ?? .null))
    }
}
