// Native verbs for targets and the Universal Secret Connector: target-create-hashi-vault,
// target-get, target-list, target-delete, create-usc, usc-list, usc-get, usc-create, usc-update,
// usc-delete. USC secrets are authorized on the item path `/<usc-name>/<secret-id>`; a denied
// request never reaches the upstream Vault.
import Foundation
import TesseraCore
import TesseraEngines

extension NativeVerbs {
    static let targets: [NativeVerb] = [
        NativeVerb("target-create-hashi-vault", action: "create_target", access: .capability([.create], .target),
                   help: "Create a HashiCorp Vault / OpenBao target; the connection is checked.",
                   fields: declare([.string("name", required: true, "The target's name."),
                                    .string("hashi-url", required: true, "The Vault address, e.g. https://vault:8200."),
                                    .string("vault-token", required: true, sensitive: true,
                                            "A Vault token (stored encrypted, never shown)."),
                                    .list("namespace", "The Vault namespace (the first one is used)."),
                                    .string("kv-mount", "The upstream KV v2 mount (default secret/)."),
                                    .string("ca-certificate", "PEM CA bundle that an https Vault's certificate must chain to (default: the system's CAs).")],
                                   sdk: targetSDKFields)) { f in
            let name = try Target.validateName(try f.requiredString("name"))
            let url = try f.requiredString("hashi-url")
            let token = try f.requiredString("vault-token")
            let namespace = try f.stringList("namespace")?.first
            let mount = try f.string("kv-mount")
            let ca = try f.string("ca-certificate").flatMap { $0.isEmpty ? nil : $0 }
            return PreparedVerb(paths: [try ItemPath(name)]) { t, _ in
                let target = try await t.connectors.createVaultTarget(name: name, url: url, token: token, namespace: namespace, kvMount: mount,
                                                                      caPEM: ca)
                return .obj(("target_name", .string(target.name)), ("target_id", .int(try await t.store.targetId(named: target.name) ?? 0)))
            }
        },
        NativeVerb("target-create-db", action: "create_target", access: .capability([.create], .target),
                   help: "Create a database target (PostgreSQL); the login is checked.",
                   fields: declare([.string("name", required: true, "The target's name."),
                                    .string("db-type", required: true, "The database type: postgres."),
                                    .string("host", "The database host (default 127.0.0.1)."),
                                    .int("port", 1...65535, "The database port (default 5432)."),
                                    .string("db-name", "The database (default postgres)."),
                                    .string("user-name", required: true, "The admin user."),
                                    .string("pwd", sensitive: true, "The admin password (stored encrypted, never shown)."),
                                    .string("ssl-mode", "TLS to the database: disable, require (default), verify-ca or verify-full."),
                                    .bool("ssl", "Akeyless's switch, accepted; TLS is on unless ssl-mode is disable."),
                                    .string("ssl-certificate", "PEM CA certificates that the database's certificate must chain to."),
                                    .string("db-server-name", "The name the database's certificate must hold (verify-full; default: host)."),
                                    .bool("skip-server-name-validation", "With ssl and ssl-certificate: verify-ca instead of verify-full.")],
                                   sdk: ["azure-client-id", "azure-tenant-id", "client-certificate", "cloud-service-provider",
                                         "cluster-mode", "comment", "connection-type", "db-server-certificates", "db-server-name",
                                         "delete_protection", "description", "enable-mtls", "key", "lock-on-read", "lock-ttl",
                                         "max-versions", "mongodb-atlas", "mongodb-atlas-api-public-key",
                                         "mongodb-atlas-project-id",
                                         "mongodb-default-auth-db", "mongodb-uri-options", "oracle-service-name",
                                         "oracle-wallet-login-type", "parent-target-name", "rotate-on-unlock",
                                         "snowflake-account"],
                                   sdkSecrets: ["azure-client-secret", "client-key-passphrase", "client-private-key",
                                                "mongodb-atlas-api-private-key", "oracle-wallet-p12-file-data",
                                                "oracle-wallet-sso-file-data", "snowflake-api-private-key",
                                                "snowflake-api-private-key-password"])) { f in
            let name = try Target.validateName(try f.requiredString("name"))
            let dbType = try f.requiredString("db-type")
            let host = try f.string("host") ?? "127.0.0.1"
            let port = try f.int("port", in: 1...65535) ?? 5432
            let database = try f.string("db-name") ?? "postgres"
            let user = try f.requiredString("user-name")
            let password = try f.string("pwd") ?? ""
            let tls = try databaseTLS(f)
            return PreparedVerb(paths: [try ItemPath(name)]) { t, _ in
                let target = try await t.connectors.createDatabaseTarget(name: name, dbType: dbType, host: host, port: port,
                                                                         database: database, username: user, password: password, tls: tls)
                return .obj(("target_name", .string(target.name)), ("target_id", .int(try await t.store.targetId(named: target.name) ?? 0)))
            }
        },
        NativeVerb("target-create-ssh", action: "create_target", access: .capability([.create], .target),
                   help: "Create an SSH target; the login is checked and the host key pinned.",
                   fields: declare([.string("name", required: true, "The target's name."),
                                    .string("host", required: true, "The SSH host."),
                                    .int("port", 1...65535, "The SSH port (default 22)."),
                                    .string("ssh-username", required: true, "The user to log in as."),
                                    .string("ssh-password", sensitive: true, "The user's password (stored encrypted)."),
                                    .string("private-key", sensitive: true,
                                            "An unencrypted OpenSSH private key, ed25519 or ecdsa (stored encrypted)."),
                                    .string("host-key", "The expected host key ('ssh-ed25519 AAAA…'; default: the key seen now).")],
                                   sdk: targetSDKFields,
                                   sdkSecrets: ["private-key-password"])) { f in
            let name = try Target.validateName(try f.requiredString("name"))
            let host = try f.requiredString("host")
            let port = try f.int("port", in: 1...65535) ?? 22
            let user = try f.requiredString("ssh-username")
            let password = try f.string("ssh-password")
            let key = try f.string("private-key")
            let hostKey = try f.string("host-key")
            return PreparedVerb(paths: [try ItemPath(name)]) { t, _ in
                let target = try await t.connectors.createSSHTarget(name: name, host: host, port: port, username: user, password: password,
                                                                    privateKey: key, hostKey: hostKey)
                return .obj(("target_name", .string(target.name)), ("target_id", .int(try await t.store.targetId(named: target.name) ?? 0)),
                            ("host_key", .string(target.settings["host_key"] ?? "")))
            }
        },
        NativeVerb("target-get", action: "get_target", access: .capability([.read, .list], .target),
                   help: "Show a target (never its credentials).",
                   fields: declare([.string("name", required: true, "The target's name.")], sdk: ["show-versions"])) { f in
            let name = try Target.validateName(try f.requiredString("name"))
            return PreparedVerb(paths: [try ItemPath(name)]) { t, _ in targetJSON(try await t.connectors.target(named: name)) }
        },
        NativeVerb("target-list", action: "list_targets", access: .listing(.target),
                   help: "List the targets that the caller may list.",
                   fields: declare([], sdk: ["filter", "pagination-token", "type"])) { _ in
            PreparedVerb(folder: .root) { t, caller in
                let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
                let visible = try await t.connectors.targets().filter {
                    (try? ItemPath($0.name)).map { authorizer.check(.list, on: $0, type: .target).isAllowed } ?? false
                }
                return .obj(("targets", .array(visible.map(targetJSON))))
            }
        },
        NativeVerb("target-delete", action: "delete_target", access: .capability([.delete], .target),
                   help: "Delete a target (refused while a connector uses it).",
                   fields: declare([.string("name", required: true, "The target's name.")],
                                   sdk: ["force-deletion", "target-version"])) { f in
            let name = try Target.validateName(try f.requiredString("name"))
            return PreparedVerb(paths: [try ItemPath(name)]) { t, _ in
                _ = try await t.connectors.deleteTarget(named: name)
                return .obj()
            }
        },
    ]

    /// Fields of the Akeyless SDK's target models that Tessera does not use.
    /// A database target's TLS: `ssl-mode` when given; else an `ssl-certificate` (Akeyless's way)
    /// means verify-full (verify-ca with `skip-server-name-validation`); else require. Plain TCP
    /// only with `ssl-mode` disable: Akeyless's `ssl` false does not turn TLS off.
    static func databaseTLS(_ f: RequestFields) throws -> PostgresTLS {
        let ca = try f.string("ssl-certificate").flatMap { $0.isEmpty ? nil : $0 }
        let serverName = try f.string("db-server-name").flatMap { $0.isEmpty ? nil : $0 }
        let mode: PostgresTLS.Mode
        if let raw = try f.string("ssl-mode") {
            mode = try PostgresTLS.mode(raw)
        } else if ca != nil {
            mode = try f.bool("skip-server-name-validation") == true ? .verifyCA : .verifyFull
        } else {
            mode = .require
        }
        if ca != nil, mode == .disable || mode == .require {
            throw TesseraError.badRequest("ssl-certificate is used only with ssl-mode verify-ca or verify-full")
        }
        return PostgresTLS(mode: mode, caPEM: ca, serverName: serverName)
    }

    static let targetSDKFields = ["delete_protection", "description", "key", "lock-on-read", "lock-ttl", "max-versions",
                                  "rotate-on-unlock"]

    /// A target without its credential.
    static func targetJSON(_ t: Target) -> JSON {
        switch t.kind {
        case .hashiVault:
            return .obj(("target_name", .string(t.name)), ("target_type", .string(t.kind.rawValue)),
                        ("hashi_url", .string(t.settings["url"] ?? "")), ("namespace", .string(t.settings["namespace"] ?? "")),
                        ("kv_mount", .string(t.settings["kv_mount"] ?? "")), ("ca_certificate", .string(t.settings["ca_cert"] ?? "")),
                        ("creation_date", .date(t.createdAt)))
        case .ssh:
            return .obj(("target_name", .string(t.name)), ("target_type", .string("ssh")), ("host", .string(t.settings["host"] ?? "")),
                        ("port", .string(t.settings["port"] ?? "")), ("ssh_username", .string(t.settings["user_name"] ?? "")),
                        ("auth", .string(t.settings["auth"] ?? "")), ("host_key", .string(t.settings["host_key"] ?? "")),
                        ("creation_date", .date(t.createdAt)))
        case .database:
            return .obj(("target_name", .string(t.name)), ("target_type", .string("db")), ("db_type", .string(t.settings["db_type"] ?? "")),
                        ("host", .string(t.settings["host"] ?? "")), ("port", .string(t.settings["port"] ?? "")),
                        ("db_name", .string(t.settings["db_name"] ?? "")), ("user_name", .string(t.settings["user_name"] ?? "")),
                        ("ssl_mode", .string(t.settings["ssl_mode"] ?? "disable")),
                        ("ssl_certificate", .string(t.settings["ssl_ca"] ?? "")),
                        ("creation_date", .date(t.createdAt)))
        }
    }

    static let connectors: [NativeVerb] = [
        NativeVerb("create-usc", action: "create_usc", access: .capability([.create], .item),
                   help: "Create a Universal Secret Connector over a target (needs use on the target).",
                   fields: declare([.string("name", required: true, "The connector's name."),
                                    .string("target-to-associate", required: true, "The target it reads and writes through."),
                                    .string("usc-prefix", "Only upstream secrets under this prefix."),
                                    .string("description", "A description.")],
                                   sdk: ["aws-organization-id", "azure-kv-name", "delete_protection", "environment-names",
                                         "gcp-folder-id", "gcp-organization-id", "gcp-project-id", "gcp-scope", "gcp-sm-regions",
                                         "github-scope", "item-custom-fields", "k8s-namespace", "organization-name",
                                         "repository-access", "repository-names", "tags", "usc-tags", "use-prefix-as-filter",
                                         "use-tags-as-filter"])) { f in
            let name = try Target.validateName(try f.requiredString("name"))
            let target = try f.requiredString("target-to-associate")
            let prefix = try f.string("usc-prefix")
            let description = try f.string("description") ?? ""
            return PreparedVerb(paths: [try ItemPath(name)], extraChecks: [AccessCheck(.use, .target, try ItemPath(target))]) { t, _ in
                let usc = try await t.connectors.createConnector(name: name, targetName: target, prefix: prefix, description: description)
                return .obj(("name", .string(usc.name)))
            }
        },
        NativeVerb("usc-list", action: "usc_list", access: .listing(.item),
                   help: "List the secrets that a connector reaches and the caller may list.",
                   fields: declare([.string("usc-name", required: true, "The connector's name.")],
                                   sdk: ["aws-account-id", "gcp-project-id", "object-type", "page-size", "page-token", "region",
                                         "search"])) { f in
            let name = try Target.validateName(try f.requiredString("usc-name"))
            let folder = try ItemPath(folder: "/" + name)
            return PreparedVerb(folder: folder) { t, caller in
                let binding = try await t.connectors.bind(try await t.connectors.connector(named: name))
                let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
                let ids = try await t.connectors.listSecrets(binding).filter {
                    (try? binding.connector.itemPath(secretId: $0)).map { authorizer.check(.list, on: $0).isAllowed } ?? false
                }
                return .obj(("secrets_list", .array(ids.map { .obj(("secret_id", .string($0)), ("name", .string($0)),
                                                                   ("type", .string("kv")), ("status", .string("active"))) })),
                            ("next_token", .string("")))
            }
        },
        NativeVerb("usc-get", action: "usc_get", access: .capability([.read], .item),
                   help: "Read a secret through a connector (its data, base64-encoded).",
                   fields: declare([.string("usc-name", required: true, "The connector's name."),
                                    .string("secret-id", required: true, "The upstream secret's path."),
                                    .int("version-id", 0...Int(Int32.max), "A version (0 or absent: the newest).")],
                                   sdk: ["aws-account-id", "gcp-project-id", "namespace", "object-type", "region",
                                         "selected-repositories"])) { f in
            let (name, id, path) = try uscPath(f, "secret-id")
            let version = try f.int("version-id", in: 0...Int(Int32.max))
            return PreparedVerb(paths: [path]) { t, _ in
                let binding = try await t.connectors.bind(try await t.connectors.connector(named: name))
                let s = try await t.connectors.getSecret(binding, secretId: id, version: version)
                return .obj(("value", .string(Data(s.dataText.utf8).base64EncodedString())), ("id", .string(s.secretId)),
                            ("name", .string(s.secretId)), ("version_id", .string(String(s.version))),
                            ("metadata", .obj(("created", .string(s.createdTime)), ("updated", .string(s.updatedTime)))))
            }
        },
        NativeVerb("usc-create", action: "usc_create", access: .capability([.create], .item),
                   help: "Create a secret through a connector (a JSON object is stored as its keys).",
                   fields: declare([.string("usc-name", required: true, "The connector's name."),
                                    .string("secret-name", required: true, "The upstream secret's path."),
                                    .string("value", required: true, sensitive: true, "The value (at most 512 KiB).")],
                                   sdk: ["aws-account-id", "binary-value", "description", "gcp-project-id", "namespace",
                                         "object-type", "region", "remote-secret-activation-date", "remote-secret-expires",
                                         "selected-repositories", "tags", "usc-encryption-key"],
                                   sdkSecrets: ["pfx-password"])) { f in
            let (name, id, path) = try uscPath(f, "secret-name")
            let value = try f.requiredString("value")
            try validateValue(value, format: nil)
            return PreparedVerb(paths: [path]) { t, _ in
                let binding = try await t.connectors.bind(try await t.connectors.connector(named: name))
                let version = try await t.connectors.putSecret(binding, secretId: id, value: value, mustNotExist: true, mustExist: false)
                return .obj(("secret_id", .string(id)), ("version_id", .string(String(version))))
            }
        },
        NativeVerb("usc-update", action: "usc_update", access: .capability([.update], .item),
                   help: "Write a new version of an existing secret through a connector.",
                   fields: declare([.string("usc-name", required: true, "The connector's name."),
                                    .string("secret-id", required: true, "The upstream secret's path."),
                                    .string("value", required: true, sensitive: true, "The value (at most 512 KiB).")],
                                   sdk: ["aws-account-id", "binary-value", "description", "namespace", "object-type", "region",
                                         "remote-secret-activation-date", "remote-secret-expires", "selected-repositories", "tags",
                                         "usc-encryption-key"],
                                   sdkSecrets: ["pfx-password"])) { f in
            let (name, id, path) = try uscPath(f, "secret-id")
            let value = try f.requiredString("value")
            try validateValue(value, format: nil)
            return PreparedVerb(paths: [path]) { t, _ in
                let binding = try await t.connectors.bind(try await t.connectors.connector(named: name))
                let version = try await t.connectors.putSecret(binding, secretId: id, value: value, mustNotExist: false, mustExist: true)
                return .obj(("secret_id", .string(id)), ("version_id", .string(String(version))))
            }
        },
        NativeVerb("usc-delete", action: "usc_delete", access: .capability([.delete], .item),
                   help: "Delete a secret through a connector (its newest version; every version with force-delete).",
                   fields: declare([.string("usc-name", required: true, "The connector's name."),
                                    .string("secret-id", required: true, "The upstream secret's path."),
                                    .bool("force-delete", "Delete every version, not only the newest.")],
                                   sdk: ["aws-account-id", "namespace", "object-type", "region", "selected-repositories"])) { f in
            let (name, id, path) = try uscPath(f, "secret-id")
            let force = try f.bool("force-delete") ?? false
            return PreparedVerb(paths: [path]) { t, _ in
                let binding = try await t.connectors.bind(try await t.connectors.connector(named: name))
                try await t.connectors.deleteSecret(binding, secretId: id, force: force)
                return .obj()
            }
        },
    ]

    /// The connector name, the secret id (validated as a relative path) and the authorization path.
    static func uscPath(_ f: RequestFields, _ idField: String) throws -> (String, String, ItemPath) {
        let name = try Target.validateName(try f.requiredString("usc-name"))
        var id = try f.requiredString(idField)
        while id.hasPrefix("/") { id.removeFirst() }
        let path = try ItemPath("/" + name + "/" + id)
        // Cut the id out of the canonical path by bytes: a grapheme count would let a character
        // that joins with the `/` (U+1F3FB, U+FF9E) vanish from the id after authorization.
        let folder = "/" + name + "/"
        guard ItemPath.bytes(path.value, haveprefix: folder) else { throw TesseraError.badRequest("invalid secret id") }
        let idBytes = path.value.utf8.dropFirst(folder.utf8.count)
        return (name, String(decoding: idBytes, as: UTF8.self), path)
    }
}
