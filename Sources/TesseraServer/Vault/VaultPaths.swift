// VaultPaths: the declaration of every Vault-compatible path Tessera serves — its pattern, the
// operations on it, their fields and help. The table drives the validation of request bodies
// (types and ranges, before the handler reads them; unknown fields are warned about, as Vault
// does), and the OpenAPI document. Patterns are relative to `/v1/`; `{mount}` is a mount of
// the path's engine and `{path}` is the rest of the path (one or more segments).
import TesseraCore

struct VaultPathSpec: Sendable {
    enum Engine: String, Sendable {
        case system, auth, kvV2 = "kv-v2", kvV1 = "kv-v1", database
    }

    struct Operation: Sendable {
        let method: String
        let summary: String
        let fields: FieldSet
        /// Needs a token (everything except seal status, health, init and unseal).
        let authenticated: Bool
        /// Arbitrary keys are the data itself (KV v1 writes): no unknown-field warnings.
        let freeForm: Bool

        init(_ method: String, _ summary: String, fields: [FieldSpec] = [], authenticated: Bool = true, freeForm: Bool = false) {
            self.method = method
            self.summary = summary
            self.fields = FieldSet(fields)
            self.authenticated = authenticated
            self.freeForm = freeForm
        }
    }

    let engine: Engine
    /// Relative to the mount for KV and database engines, else to `/v1/`.
    let pattern: String
    let operations: [Operation]
    private let segments: [Substring]

    init(engine: Engine, pattern: String, operations: [Operation]) {
        self.engine = engine
        self.pattern = pattern
        self.operations = operations
        self.segments = pattern.split(separator: "/")
    }

    /// The operation for a request: matched by method name (`GET`, `LIST`, `POST`, …).
    func operation(_ method: String) -> Operation? {
        operations.first { $0.method == method || ($0.method == "POST" && method == "PUT") }
    }

    /// Whether a path (relative as `pattern` is) matches: literal segments equal, `{x}` one
    /// segment, a final `{path}` or `{prefix}` one or more.
    func matches(_ path: String) -> Bool {
        let want = segments
        let have = path.split(separator: "/")
        for (i, w) in want.enumerated() {
            if w == "{path}" || w == "{prefix}" { return have.count > i }
            guard i < have.count else { return false }
            if !(w.hasPrefix("{") && w.hasSuffix("}")) && w != have[i] { return false }
        }
        return have.count == want.count
    }
}

enum VaultPaths {
    static let versions = FieldSpec.any("versions", required: true, "Version numbers: a list of integers or a comma-separated string.")

    static let tokenCreateFields: [FieldSpec] = [
        .list("policies", "Policies (Tessera roles) the token carries; the caller's own when empty."),
        .duration("ttl", "Lifetime (at most 30 days)."), .duration("explicit_max_ttl", "No renewal goes beyond this."),
        .duration("period", "Taken as the TTL."), .int("num_uses", 0...Int(Int32.max), "Requests the token may make (0: unlimited); such a token cannot create tokens."),
        .bool("no_parent", "An orphan (needs the right on auth/token/create-orphan)."),
        .bool("no_default_policy", "Leave out the default policy."), .object("meta", "Metadata shown in lookups."),
        .string("display_name", "Shown as token-<name>."), .bool("renewable", "Whether it may be renewed (default true)."),
        .string("type", "service (the only type)."), .string("id", "Not supported."), .string("entity_alias", "Ignored."),
    ]

    static let all: [VaultPathSpec] = [
        // System
        VaultPathSpec(engine: .system, pattern: "sys/seal-status", operations: [.init("GET", "Seal status.", authenticated: false)]),
        VaultPathSpec(engine: .system, pattern: "sys/health", operations: [.init("GET", "Health, as Vault answers it.", authenticated: false)]),
        VaultPathSpec(engine: .system, pattern: "sys/init", operations: [
            .init("GET", "Whether the server is initialized.", authenticated: false),
            .init("POST", "Initialize: create the root key and its shares, and the first admin.", fields: [
                .int("secret_shares", 1...255, "Number of key shares."), .int("secret_threshold", 1...255, "Shares needed to unseal."),
                .int("shares", 1...255, "Alias of secret_shares."), .int("threshold", 1...255, "Alias of secret_threshold."),
                .string("admin_access_id", "The first admin's access id (p-…)."),
                .string("admin_access_key", sensitive: true, "The first admin's access key."),
            ], authenticated: false),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/unseal", operations: [
            .init("POST", "Submit one unseal key share.", fields: [
                .string("key", sensitive: true, "A key share."), .bool("reset", "Forget the shares given so far."),
                .bool("migrate", "Ignored."),
            ], authenticated: false),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/seal", operations: [.init("POST", "Seal the server (sys-rule update on /sys/seal).")]),
        VaultPathSpec(engine: .system, pattern: "sys/leader", operations: [.init("GET", "HA leader: on a shared store every node is active and answers as its own leader.", authenticated: false)]),
        VaultPathSpec(engine: .system, pattern: "sys/ha-status", operations: [.init("GET", "The nodes sharing the store, with their last heartbeat.")]),
        VaultPathSpec(engine: .system, pattern: "sys/metrics", operations: [.init("GET", "Prometheus metrics (sys-rule read on /sys/metrics).", fields: [
            .string("format", "prometheus (the only format)."),
        ])]),
        VaultPathSpec(engine: .system, pattern: "sys/storage/raft/snapshot", operations: [
            .init("GET", "An online snapshot of all data and the audit trail, values still encrypted (sys-rule read on /sys/backup)."),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/audit", operations: [
            .init("GET", "The audit devices with their delivery cursor, lag and failures (sys-rule read on /sys/audit)."),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/audit/{name}", operations: [
            .init("POST", "Enable an audit device; refused unless the config sets unsafe_allow_api_audit_creation.", fields: [
                .string("type", required: true, "file, syslog or http."), .string("description", "A description."),
                .object("options", "file_path; address, protocol (udp|tcp), facility, tag; or url."),
                .bool("local", "Ignored."),
            ]),
            .init("DELETE", "Disable an audit device created over the API."),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/audit-hash/{name}", operations: [
            .init("POST", "The HMAC the audit trail records for a value (sys-rule update on /sys/audit-hash/<name>).", fields: [
                .string("input", sensitive: true, "The value to hash."),
            ]),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/rekey/backup", operations: [
            .init("GET", "Always 400: Tessera keeps no PGP-encrypted backups of the shares."),
            .init("DELETE", "Always 400: there is nothing to delete."),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/rotate", operations: [
            .init("POST", "Add a keyring term for new writes; a background rewrap moves stored values to it (sys-rule update on /sys/rotate)."),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/rotate/keyring", operations: [
            .init("GET", "OpenBao 2's key status: the active term and the rewrap's progress (sys-rule read on /sys/key-status)."),
            .init("POST", "OpenBao 2's name of sys/rotate (sys-rule update on /sys/rotate)."),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/key-status", operations: [
            .init("GET", "The active key term and the rewrap's progress (sys-rule read on /sys/key-status)."),
        ]),
        // The rekey, under Vault's name and OpenBao 2's (`bao operator rotate-keys`).
    ] + ["sys/rekey", "sys/rotate/root"].flatMap { base in [
        VaultPathSpec(engine: .system, pattern: base + "/init", operations: [
            .init("GET", "The rekey in progress (sys-rule read on /sys/rekey)."),
            .init("POST", "Start a rekey: new shares and threshold from a quorum of the old shares (sys-rule update on /sys/rekey).", fields: [
                .int("secret_shares", 1...255, required: true, "How many new shares."),
                .int("secret_threshold", 1...255, required: true, "How many new shares unseal."),
                .list("pgp_keys", "Not supported: refused when given."),
                .bool("backup", "Ignored."), .bool("require_verification", "Not supported: refused when true."),
            ]),
            .init("DELETE", "Cancel the rekey in progress (sys-rule update on /sys/rekey)."),
        ]),
        VaultPathSpec(engine: .system, pattern: base + "/update", operations: [
            .init("POST", "Submit one old share; at the threshold the new shares are returned once.", fields: [
                .string("key", required: true, sensitive: true, "An old key share."),
                .string("nonce", required: true, "The nonce of the rekey in progress."),
            ], authenticated: false),
        ]),
    ] } + [
        VaultPathSpec(engine: .system, pattern: "sys/openapi", operations: [.init("GET", "This OpenAPI document.", authenticated: false)]),
        VaultPathSpec(engine: .system, pattern: "sys/mounts", operations: [.init("GET", "The mount table (sys-rule read on /sys/mounts).")]),
        VaultPathSpec(engine: .system, pattern: "sys/mounts/{name}/tune", operations: [
            .init("GET", "A mount's effective settings (sys-rule read on /sys/mounts/<path>/tune)."),
            .init("POST", "Tune a mount: description and lease TTLs; the KV version cannot change (sys-rule update on /sys/mounts/<path>/tune).", fields: [
                .string("description", "A description."), .duration("default_lease_ttl", "Shown to clients."),
                .duration("max_lease_ttl", "Shown to clients."), .object("options", "{\"version\": …}: only the mount's own."),
                .any("audit_non_hmac_request_keys", "Ignored."), .any("audit_non_hmac_response_keys", "Ignored."),
                .string("listing_visibility", "Ignored."), .any("passthrough_request_headers", "Ignored."),
                .any("allowed_response_headers", "Ignored."), .string("token_type", "Ignored."), .string("plugin_version", "Ignored."),
            ]),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/mounts/{path}", operations: [
            .init("GET", "A mount's entry (sys-rule read on /sys/mounts/<path>)."),
            .init("POST", "Enable a secrets engine (sys-rule create on /sys/mounts/<path>).", fields: [
                .string("type", required: true, "kv, kv-v2, kv-v1 or generic (KV version 1)."), .string("description", "A description."),
                .object("options", "Engine options, e.g. {\"version\":\"2\"}."), .object("config", "Ignored."),
                .bool("local", "Ignored."), .bool("seal_wrap", "Ignored."), .bool("external_entropy_access", "Ignored."),
                .string("plugin_name", "Ignored."), .string("plugin_version", "Ignored."),
            ]),
            .init("DELETE", "Disable a secrets engine (sys-rule delete on /sys/mounts/<path>)."),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/remount", operations: [
            .init("POST", "Move a mount (bao secrets move): sys-rule update on /sys/remount, delete on the old mount, create on the new one, and for a mount that owns its items delete on each and create at its new path. Done before the answer.", fields: [
                .string("from", required: true, "The mount's path."), .string("to", required: true, "Its new path."),
            ]),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/remount/status/{name}", operations: [
            .init("GET", "The status of a move made by this node (always a success once known)."),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/internal/ui/mounts/{path}", operations: [.init("GET", "The KV preflight of the CLI.")]),
        VaultPathSpec(engine: .system, pattern: "sys/leases/lookup", operations: [
            .init("POST", "Look up a lease.", fields: [.string("lease_id", required: true, "The lease id.")]),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/leases/lookup/{prefix}", operations: [.init("LIST", "List lease ids under a prefix.")]),
        VaultPathSpec(engine: .system, pattern: "sys/leases/renew", operations: [
            .init("POST", "Renew a lease.", fields: [.string("lease_id", "The lease id."),
                                                      .duration("increment", "Requested extension (seconds or Go duration).")]),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/leases/revoke", operations: [
            .init("POST", "Revoke a lease.", fields: [.string("lease_id", "The lease id."), .bool("sync", "Wait for the revocation.")]),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/leases/revoke-prefix/{prefix}", operations: [
            .init("POST", "Revoke every lease under a prefix of whole segments (sys-rule update on /sys/leases/revoke-prefix/<prefix>).",
                  fields: [.bool("sync", "Wait for the revocations."), .string("prefix", "The prefix (when not in the path).")]),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/leases/revoke-force/{prefix}", operations: [
            .init("POST", "Mark every lease under a prefix revoked even where the target cannot remove the credential (sys-rule update on /sys/leases/revoke-force, and delete on each producer)."),
        ]),
        // ACL policies (Tessera roles) and capabilities
        VaultPathSpec(engine: .system, pattern: "sys/policy", operations: [
            .init("GET", "The policies the caller may list."), .init("LIST", "The policies the caller may list."),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/policy/{name}", operations: [
            .init("GET", "A policy's text (role-rule read on /<name>)."),
            .init("POST", "Write a policy: the role's rules become its translation (role-rule create or update on /<name>).", fields: [
                .string("policy", "The HCL or JSON document."), .string("rules", "Alias of policy."),
            ]),
            .init("DELETE", "Delete a policy and its role (role-rule delete on /<name>)."),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/policies/acl", operations: [.init("LIST", "The policies the caller may list.")]),
        VaultPathSpec(engine: .system, pattern: "sys/policies/acl/{name}", operations: [
            .init("GET", "A policy's text (role-rule read on /<name>)."),
            .init("POST", "Write a policy: the role's rules become its translation (role-rule create or update on /<name>).", fields: [
                .string("policy", "The HCL or JSON document."),
            ]),
            .init("DELETE", "Delete a policy and its role (role-rule delete on /<name>)."),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/capabilities-self", operations: [
            .init("POST", "The caller's capabilities on paths.", fields: [.string("path", "A path."), .list("paths", "Paths.")]),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/capabilities", operations: [
            .init("POST", "A token's capabilities on paths (auth-method-rule on /token/lookup).", fields: [
                .string("token", required: true, sensitive: true, "The token."), .string("path", "A path."), .list("paths", "Paths."),
            ]),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/capabilities-accessor", operations: [
            .init("POST", "A token's capabilities on paths, by accessor (auth-method-rule on /token/lookup-accessor).", fields: [
                .string("accessor", required: true, "The accessor."), .string("path", "A path."), .list("paths", "Paths."),
            ]),
        ]),
        // Response wrapping
        VaultPathSpec(engine: .system, pattern: "sys/wrapping/wrap", operations: [
            .init("POST", "Wrap the body (any JSON object) under a new single-use token; needs X-Vault-Wrap-TTL.", freeForm: true),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/wrapping/unwrap", operations: [
            .init("POST", "Unwrap a wrapped answer, once: the wrapping token as X-Vault-Token, or in the body with any valid token.", fields: [
                .string("token", sensitive: true, "The wrapping token (when X-Vault-Token is another token)."),
            ]),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/wrapping/lookup", operations: [
            .init("POST", "A wrapping token's creation path, time and TTL (no token needed).", fields: [
                .string("token", sensitive: true, "The wrapping token (else X-Vault-Token)."),
            ], authenticated: false),
            .init("GET", "As POST, with the wrapping token as X-Vault-Token.", authenticated: false),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/wrapping/rewrap", operations: [
            .init("POST", "Move a wrapped answer to a new wrapping token with the same TTL; the old one is spent.", fields: [
                .string("token", required: true, sensitive: true, "The wrapping token."),
            ]),
        ]),
        // Tokens and logins
        VaultPathSpec(engine: .auth, pattern: "auth/token/lookup-self", operations: [
            .init("GET", "The caller's token."), .init("POST", "The caller's token."),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/token/renew-self", operations: [
            .init("POST", "Renew the caller's token, at most to its maximum lifetime.", fields: [
                .duration("increment", "Requested extension (ignored: the auth method's TTL applies)."),
            ]),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/token/revoke-self", operations: [.init("POST", "Revoke the caller's token.")]),
        VaultPathSpec(engine: .auth, pattern: "auth/token/create", operations: [
            .init("POST", "Create a child token (auth-method-rule on /token/create); it is revoked with its parent.", fields: tokenCreateFields),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/token/create-orphan", operations: [
            .init("POST", "Create an orphan token (auth-method-rule on /token/create-orphan).", fields: tokenCreateFields),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/token/create/{name}", operations: [
            .init("POST", "Create a token from a token role (auth-method-rule on /token/create/<name>).", fields: tokenCreateFields),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/token/roles", operations: [.init("LIST", "The token roles the caller may see.")]),
        VaultPathSpec(engine: .auth, pattern: "auth/token/roles/{name}", operations: [
            .init("GET", "A token role (auth-method-rule read on /token/roles/<name>)."),
            .init("POST", "Create or update a token role (auth-method-rule create or update on /token/roles/<name>); naming allowed policies needs the right to grant them.", fields: [
                .any("allowed_policies", "Policies its tokens may carry, whatever their creator holds (a list or comma-separated)."),
                .any("disallowed_policies", "Policies its tokens may never carry."),
                .any("allowed_policies_glob", "Globs of allowed policies (administrators only)."),
                .any("disallowed_policies_glob", "Globs of disallowed policies."),
                .bool("orphan", "Its tokens are orphans (needs the right on /token/create-orphan)."),
                .bool("renewable", "Whether its tokens may be renewed (default true)."),
                .string("path_suffix", "Appended to the tokens' path."),
                .duration("token_explicit_max_ttl", "No token outlives this."), .duration("explicit_max_ttl", "Alias of token_explicit_max_ttl."),
                .duration("token_period", "Taken as the tokens' TTL."), .duration("period", "Alias of token_period."),
                .bool("token_no_default_policy", "Leave out default."), .string("token_type", "service or default-service."),
                .int("token_num_uses", 0...Int(Int32.max), "Requests each token may make (0: unlimited)."), .any("token_bound_cidrs", "Not supported (refused when set)."),
                .any("allowed_entity_aliases", "Not supported (refused when set)."),
            ]),
            .init("DELETE", "Delete a token role (auth-method-rule delete on /token/roles/<name>); its tokens live on."),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/token/lookup", operations: [
            .init("POST", "Look up a token (auth-method-rule on /token/lookup).", fields: [.string("token", required: true, sensitive: true, "The token.")]),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/token/lookup-accessor", operations: [
            .init("POST", "Look up a token by accessor (auth-method-rule on /token/lookup-accessor).", fields: [.string("accessor", required: true, "The accessor.")]),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/token/renew", operations: [
            .init("POST", "Renew a token (auth-method-rule on /token/renew).", fields: [
                .string("token", required: true, sensitive: true, "The token."), .duration("increment", "Ignored: the token's TTL applies."),
            ]),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/token/renew-accessor", operations: [
            .init("POST", "Renew a token by accessor (auth-method-rule on /token/renew-accessor).", fields: [
                .string("accessor", required: true, "The accessor."), .duration("increment", "Ignored: the token's TTL applies."),
            ]),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/token/revoke", operations: [
            .init("POST", "Revoke a token and its children (auth-method-rule on /token/revoke).", fields: [.string("token", required: true, sensitive: true, "The token.")]),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/token/revoke-accessor", operations: [
            .init("POST", "Revoke a token and its children by accessor (auth-method-rule on /token/revoke-accessor).", fields: [.string("accessor", required: true, "The accessor.")]),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/token/revoke-orphan", operations: [
            .init("POST", "Revoke a token, leaving its children (auth-method-rule on /token/revoke-orphan).", fields: [.string("token", required: true, sensitive: true, "The token.")]),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/approle/login", operations: [
            .init("POST", "Log in with an AppRole role's role_id and secret_id (or an API key's access id and access key).", fields: [
                .string("role_id", required: true, "The role_id (or an access id, p-…)."),
                .string("secret_id", sensitive: true, "A secret id (or the access key); not needed when the role does not bind one."),
            ], authenticated: false),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/approle/role", operations: [.init("LIST", "The AppRole roles the caller may see.")]),
        VaultPathSpec(engine: .auth, pattern: "auth/approle/role/{name}", operations: [
            .init("GET", "An AppRole role (auth-method-rule read on /approle/role/<name>)."),
            .init("POST", "Create or update an AppRole role (auth-method-rule create or update on /approle/role/<name>).", fields: [
                .bool("bind_secret_id", "Whether a login needs a secret id (default true)."),
                .any("secret_id_bound_cidrs", "Addresses secret ids may log in from."), .any("bound_cidr_list", "Alias of secret_id_bound_cidrs."),
                .int("secret_id_num_uses", 0...Int(Int32.max), "Logins per secret id (0: unlimited)."),
                .duration("secret_id_ttl", "Lifetime of a secret id (0: none)."),
                .duration("token_ttl", "Lifetime of a login's token."), .duration("token_max_ttl", "No renewal goes beyond this."),
                .duration("token_explicit_max_ttl", "No renewal goes beyond this."), .duration("token_period", "Taken as the token TTL."),
                .duration("period", "Alias of token_period."),
                .any("token_policies", "Tessera roles the tokens carry (a list or comma-separated)."), .any("policies", "Alias of token_policies."),
                .any("token_bound_cidrs", "Addresses the tokens may be used from."), .bool("token_no_default_policy", "Leave out default."),
                .int("token_num_uses", 0...Int(Int32.max), "Requests each token may make (0: unlimited)."), .string("token_type", "service or default."),
                .bool("local_secret_ids", "Ignored."), .bool("token_strictly_bind_ip", "Ignored."),
            ]),
            .init("DELETE", "Delete an AppRole role with its secret ids and tokens."),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/approle/role/{name}/role-id", operations: [
            .init("GET", "The role's role_id (auth-method-rule read on /approle/role/<name>/role-id)."),
            .init("POST", "Not supported: Tessera assigns the role_id.", fields: [.string("role_id", "Refused.")]),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/approle/role/{name}/custom-secret-id", operations: [
            .init("POST", "Register a secret id of the caller's choice (auth-method-rule update on /approle/role/<name>/custom-secret-id).", fields: [
                .string("secret_id", required: true, sensitive: true, "The secret id (1 to 256 printable characters)."),
                .string("metadata", "A JSON object of strings, copied into the login's token metadata."),
                .any("cidr_list", "Addresses it may log in from."), .any("token_bound_cidrs", "Refused when set."),
                .duration("ttl", "At most the role's secret_id_ttl."), .int("num_uses", 0...Int(Int32.max), "At most the role's secret_id_num_uses."),
            ]),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/approle/role/{name}/secret-id", operations: [
            .init("POST", "Generate a secret id (auth-method-rule update on /approle/role/<name>/secret-id).", fields: [
                .string("metadata", "A JSON object of strings, copied into the login's token metadata."),
                .any("cidr_list", "Addresses it may log in from."), .any("token_bound_cidrs", "Ignored."),
                .duration("ttl", "At most the role's secret_id_ttl."), .int("num_uses", 0...Int(Int32.max), "At most the role's secret_id_num_uses."),
            ]),
            .init("LIST", "The accessors of the role's secret ids (auth-method-rule list on /approle/role/<name>/secret-id)."),
        ]),
    ] + ["secret-id/lookup", "secret-id/destroy"].map { sub in
        VaultPathSpec(engine: .auth, pattern: "auth/approle/role/{name}/" + sub, operations: [
            .init("POST", "A secret id's \(sub.dropFirst(10)) by value (auth-method-rule update on /approle/role/<name>/\(sub)).",
                  fields: [.string("secret_id", required: true, sensitive: true, "The secret id.")]),
        ])
    } + VaultAppRoleAPI.fieldEndpoints.keys.sorted().map { endpoint in
        let spec = VaultAppRoleAPI.fieldEndpoints[endpoint]
        let keys = spec?.keys ?? []
        return VaultPathSpec(engine: .auth, pattern: "auth/approle/role/{name}/" + endpoint, operations: [
            .init("GET", "One field of an AppRole role (auth-method-rule read on /approle/role/<name>/\(endpoint))."),
        ] + (keys.isEmpty ? [] : [
            .init("POST", "Set that field only (auth-method-rule update on /approle/role/<name>/\(endpoint)).",
                  fields: keys.map { FieldSpec.any($0, "The new value.") }),
            .init("DELETE", "Reset that field (auth-method-rule delete on /approle/role/<name>/\(endpoint))."),
        ]))
    } + ["secret-id-accessor/lookup", "secret-id-accessor/destroy"].map { sub in
        VaultPathSpec(engine: .auth, pattern: "auth/approle/role/{name}/" + sub, operations: [
            .init("POST", "A secret id's \(sub.dropFirst(19)) by accessor (auth-method-rule update on /approle/role/<name>/\(sub)).",
                  fields: [.string("secret_id_accessor", required: true, "The accessor.")]),
        ])
    } + [

        // Auth methods (JWT/OIDC, Kubernetes, certificates): settings are read by the method
        VaultPathSpec(engine: .system, pattern: "sys/auth", operations: [.init("GET", "The enabled auth methods.")]),
        VaultPathSpec(engine: .system, pattern: "sys/auth/{path}", operations: [
            .init("GET", "An auth method's mount entry."),
            .init("POST", "Enable an auth method (type jwt, oidc, kubernetes or cert) at the path.", fields: [
                .string("type", required: true, "jwt, oidc, kubernetes or cert."), .string("description", "A description."),
                .object("config", "Mount settings (accepted)."), .bool("local", "Accepted."), .bool("seal_wrap", "Accepted."),
                .bool("external_entropy_access", "Accepted."), .object("options", "Accepted."), .string("plugin_name", "Accepted."),
            ]),
            .init("DELETE", "Disable an auth method; its roles and tokens go with it."),
        ]),
        VaultPathSpec(engine: .system, pattern: "sys/auth/{path}/tune", operations: [
            .init("GET", "An auth mount's tuned settings (also at sys/mounts/auth/<path>/tune)."),
            .init("POST", "Tune an AppRole, JWT/OIDC, Kubernetes or certificate mount: description and lease TTLs, kept and shown (also at sys/mounts/auth/<path>/tune).", fields: [
                .string("description", "A description."), .string("default_lease_ttl", "A duration."), .string("max_lease_ttl", "A duration."),
            ]),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/{mount}/config", operations: [
            .init("GET", "The method's settings (never a reviewer JWT or client secret)."),
            .init("POST", "Replace the method's settings: JWKS, discovery or keys (jwt); API server and reviewer (kubernetes).",
                  freeForm: true),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/{mount}/role", operations: [.init("LIST", "The login roles.")]),
        VaultPathSpec(engine: .auth, pattern: "auth/{mount}/role/{name}", operations: [
            .init("GET", "A login role."), .init("DELETE", "Delete a login role."),
            .init("POST", "Create or update a login role: bounds, and token_policies naming Tessera access roles.", freeForm: true),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/{mount}/certs", operations: [.init("LIST", "The trusted certificates (cert).")]),
        VaultPathSpec(engine: .auth, pattern: "auth/{mount}/certs/{name}", operations: [
            .init("GET", "A trusted certificate role."), .init("DELETE", "Delete a trusted certificate role."),
            .init("POST", "Create or update a trusted certificate role: the CA, name constraints, token_policies.", freeForm: true),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/{mount}/login", operations: [
            .init("POST", "Log in: role and jwt (jwt, kubernetes), or the TLS client certificate with an optional name (cert).",
                  fields: [.string("role", "The login role."), .string("jwt", sensitive: true, "The JWT or service-account token."),
                           .string("name", "The certificate role (cert).")], authenticated: false),
        ]),
        // userpass
        VaultPathSpec(engine: .auth, pattern: "auth/{mount}/users", operations: [.init("LIST", "The users of a userpass mount.")]),
        VaultPathSpec(engine: .auth, pattern: "auth/{mount}/users/{name}", operations: [
            .init("GET", "A user's token settings (never its password)."), .init("DELETE", "Delete a user."),
            .init("POST", "Create or update a user: password (needed to create), token_policies naming Tessera access roles, and the other token_* fields.",
                  fields: [.string("password", sensitive: true, "The password (at most 1024 bytes).")], freeForm: true),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/{mount}/users/{name}/password", operations: [
            .init("POST", "Change a user's password; its tokens live on.", fields: [.string("password", required: true, sensitive: true, "The new password.")]),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/{mount}/users/{name}/policies", operations: [
            .init("POST", "Replace a user's policies (a grant of them).", fields: [.any("policies", "A list or comma-separated names."),
                                                                                .any("token_policies", "A list or comma-separated names.")]),
        ]),
        VaultPathSpec(engine: .auth, pattern: "auth/{mount}/login/{name}", operations: [
            .init("POST", "Log in as a userpass user.", fields: [.string("password", required: true, sensitive: true, "The user's password.")],
                  authenticated: false),
        ]),
        // KV version 2
        VaultPathSpec(engine: .kvV2, pattern: "data/{path}", operations: [
            .init("GET", "Read a secret version.", fields: [.int("version", 0...Int(Int32.max), "A version (0 or absent: the newest).")]),
            .init("POST", "Write a new version.", fields: [
                .object("data", required: true, "The secret's data."),
                .object("options", "Options: {\"cas\": N} for check-and-set."),
            ]),
            .init("PATCH", "Merge-patch the newest version (application/merge-patch+json).", fields: [
                .object("data", required: true, "The fields to change."), .object("options", "Options: {\"cas\": N}."),
            ]),
            .init("DELETE", "Soft-delete the newest version."),
        ]),
        VaultPathSpec(engine: .kvV2, pattern: "metadata/{path}", operations: [
            .init("GET", "A secret's metadata and versions."),
            .init("LIST", "List keys under a folder."),
            .init("POST", "Set a secret's metadata.", fields: [
                .int("max_versions", 0...Item.maximumMaxVersions, "Versions kept (0: the default)."),
                .bool("cas_required", "Require check-and-set on writes."),
                .duration("delete_version_after", "Automatic soft deletion of versions (stored, not enforced)."),
                .any("custom_metadata", "A map of string keys and values (numbers and booleans are taken as text, as Vault does)."),
            ]),
            .init("PATCH", "Merge-patch a secret's metadata.", fields: [
                .int("max_versions", 0...Item.maximumMaxVersions, "Versions kept (0: the default)."),
                .bool("cas_required", "Require check-and-set on writes."),
                .duration("delete_version_after", "Automatic soft deletion of versions."),
                .any("custom_metadata", "A map of string keys and values; null removes a key."),
            ]),
            .init("DELETE", "Delete a secret with every version (refused under delete protection)."),
        ]),
        VaultPathSpec(engine: .kvV2, pattern: "subkeys/{path}", operations: [
            .init("GET", "A version's keys, every value null (query version, and depth: 0 for all levels); needs read on the item.")]),
        VaultPathSpec(engine: .kvV2, pattern: "delete/{path}", operations: [.init("POST", "Soft-delete versions.", fields: [versions])]),
        VaultPathSpec(engine: .kvV2, pattern: "undelete/{path}", operations: [.init("POST", "Undelete versions.", fields: [versions])]),
        VaultPathSpec(engine: .kvV2, pattern: "destroy/{path}", operations: [.init("POST", "Destroy versions for good.", fields: [versions])]),
        VaultPathSpec(engine: .kvV2, pattern: "config", operations: [
            .init("GET", "The mount's KV settings."),
            .init("POST", "Change the mount's KV settings.", fields: [
                .int("max_versions", 0...Item.maximumMaxVersions, "Versions kept by default."),
                .bool("cas_required", "Require check-and-set on writes."),
                .duration("delete_version_after", "Automatic soft deletion of versions."),
            ]),
        ]),
        // KV version 1
        VaultPathSpec(engine: .kvV1, pattern: "{path}", operations: [
            .init("GET", "Read a secret."), .init("LIST", "List keys under a folder."),
            .init("POST", "Write a secret: the body is its data.", freeForm: true),
            .init("DELETE", "Delete a secret (refused under delete protection)."),
        ]),
        // Database credentials
        VaultPathSpec(engine: .database, pattern: "creds/{name}", operations: [.init("GET", "Issue a credential under a lease.")]),
    ]

    /// The declaration that covers a request, if any (looked up only when a body is read).
    static func spec(engine: VaultPathSpec.Engine, path: String, method: String) -> VaultPathSpec.Operation? {
        for spec in all where spec.engine == engine && spec.matches(path) {
            if let op = spec.operation(method) { return op }
        }
        return nil
    }
}

extension VaultRequest.Operation {
    /// The HTTP method name of the declaration (`LIST` for lists).
    var declaredMethod: String {
        switch self {
        case .read: "GET"
        case .write: "POST"
        case .delete: "DELETE"
        case .list: "LIST"
        case .patch: "PATCH"
        case .head: "HEAD"
        }
    }
}
