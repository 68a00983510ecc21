// VaultPolicyTranslator: Vault ACL policy paths → Tessera rules, through the mount table, and
// back. A policy is a Tessera role: its rules are what this translation gives, so the one
// authorizer decides for both APIs.
//
// - KV v2 `secret/data/P` → item-rule `/secret/P` (create, read, update, patch→update, delete);
//   `secret/metadata/P` list or read → list, delete → delete, create/update → update;
//   `secret/delete|destroy/P` update → delete; `secret/undelete/P` update → update. A folder form
//   (`secret/metadata/app/`) gives list on `/secret/app/*`.
// - KV v1 `kv/P` → item-rule `/kv/P`; a database mount's `db/creds/R` read → item-rule read on
//   the producer `/db/R`.
// - `sys/policy/N`, `sys/policies/acl/N` → role-rule `/N`; `auth/P` → auth-method-rule `/P`
//   (`auth/token/create` with sudo also gives `auth/token/create-orphan`).
// - Other `sys/` paths → sys-rule `/sys/…`. Tessera's system rules are Vault's sudo paths, so
//   they are granted only with `sudo` (except the mount table, which Vault does not protect).
// - `*` and `+` keep their meaning; `deny` becomes a deny rule, which wins as in Vault.
// What cannot be translated is left out and named in the warnings.
import TesseraCore

struct VaultPolicyTranslator {
    let mounts: [VaultMount]

    struct Translation {
        var rules: [Rule] = []
        var warnings: [String] = []
        /// Paths that grant something on a mount that does not exist yet (they translate when it
        /// is enabled).
        var pending: [String] = []
    }

    struct RuleKey: Hashable {
        let type: RuleType
        let pattern: PathPattern
    }

    static let kvV2Sections = ["data", "metadata", "delete", "undelete", "destroy", "subkeys", "config"]

    /// System paths that Vault does not protect with sudo, and their Tessera names.
    static let unprotectedSystem = ["sys/mounts", "sys/metrics", "sys/ha-status", "sys/key-status", "sys/rotate/keyring"]
    static let systemAliases: [(vault: String, tessera: String)] = [
        ("sys/storage/raft/snapshot", "sys/backup"), ("sys/ha-status", "sys/cluster"), ("sys/rotate/keyring", "sys/key-status"),
        ("sys/rotate/root", "sys/rekey"),
    ]

    func translate(_ policy: VaultPolicy) throws -> Translation {
        var out = Translation()
        for rule in policy.paths {
            try add(path: rule.path, capabilities: rule.capabilities, into: &out)
        }
        out.rules = Self.merged(out.rules)
        guard out.rules.count <= Self.maxRules else {
            throw TesseraError.badRequest("the policy translates into \(out.rules.count) rules; at most \(Self.maxRules) are allowed")
        }
        try Self.refuseNarrowerInsideBroader(out.rules)
        return out
    }

    /// Every request evaluates every rule of its roles.
    static let maxRules = 8192

    /// Vault applies the most specific matching path; Tessera the union of every matching rule.
    /// Where the two would disagree (a narrower path granting less than a broader one around
    /// it), the policy is refused rather than granted more than it says; a deny says it exactly.
    static func refuseNarrowerInsideBroader(_ rules: [Rule]) throws {
        let grants = rules.filter { !$0.capabilities.contains(.deny) }
        guard grants.count <= 512 else { return }
        for narrow in grants {
            for broad in grants where broad.type == narrow.type && broad.pattern != narrow.pattern && broad.pattern.covers(narrow.pattern) {
                let extra = broad.capabilities.subtracting(narrow.capabilities)
                if !extra.isEmpty {
                    throw TesseraError.badRequest("path \(narrow.pattern) grants less than \(broad.pattern), which covers it: Tessera grants the union "
                        + "of matching rules, so it would also get " + extra.map(\.rawValue).sorted().joined(separator: ", ")
                        + "; give the narrower path the same capabilities or deny it")
                }
            }
        }
    }

    /// Rules with the same type and pattern become one; a deny takes every other capability away.
    static func merged(_ rules: [Rule]) -> [Rule] {
        var out: [Rule] = []
        var index: [RuleKey: Int] = [:]
        for r in rules where !r.capabilities.isEmpty {
            let key = RuleKey(type: r.type, pattern: r.pattern)
            if let i = index[key] {
                out[i].capabilities.formUnion(r.capabilities)
            } else {
                index[key] = out.count
                out.append(r)
            }
        }
        for i in out.indices where out[i].capabilities.contains(.deny) { out[i].capabilities = [.deny] }
        return out
    }

    /// Vault capabilities as item capabilities (without sudo, which has no item meaning).
    static func generic(_ caps: Set<String>) -> Set<Capability> {
        if caps.contains("deny") { return [.deny] }
        var out: Set<Capability> = []
        for c in caps {
            switch c {
            case "create": out.insert(.create)
            case "read": out.insert(.read)
            case "update", "patch": out.insert(.update)
            case "delete": out.insert(.delete)
            case "list": out.insert(.list)
            default: break
            }
        }
        return out
    }

    func add(path raw: String, capabilities: [String], into out: inout Translation) throws {
        let caps = Set(capabilities)
        let path = raw.hasPrefix("/") ? String(raw.dropFirst()) : raw
        let shown = String(path.prefix(128))
        guard !caps.isEmpty else { return }
        var matched = false

        if let rest = Self.rest(of: path, below: "sys/") {
            matched = true
            try system(rest, caps, shown, &out)
        }
        if let rest = Self.rest(of: path, below: "auth/") {
            matched = true
            let generic = Self.generic(caps)
            // Orphan tokens and the accessor list are Vault's sudo paths.
            let sudoOnly = ["token/create-orphan", "token/revoke-orphan", "token/accessors"].contains(rest)
            if !generic.isEmpty && !rest.isEmpty && !rest.hasSuffix("/") && (!sudoOnly || caps.contains("sudo") || caps.contains("deny")) {
                out.rules.append(Rule(pattern: try PathPattern("/" + rest), capabilities: generic, type: .authMethod))
                if caps.contains("sudo"), rest == "token/create" {
                    out.rules.append(Rule(pattern: try PathPattern("/token/create-orphan"), capabilities: generic, type: .authMethod))
                }
            }
        }
        for prefix in ["identity/", "cubbyhole/"] where Self.rest(of: path, below: prefix) != nil {
            matched = true
            if path.hasPrefix(prefix) { out.warnings.append("path \"\(shown)\": \(prefix) is not served by Tessera; not translated") }
        }
        for mount in mounts {
            guard let rest = Self.rest(of: path, below: mount.path) else { continue }
            matched = true
            switch mount.kind {
            case .kvV1: try kvV1(mount, rest, caps, &out)
            case .kvV2: try kvV2(mount, rest, caps, shown, &out)
            case .database: try database(mount, rest, caps, shown, &out)
            }
        }
        if !matched {
            out.warnings.append("path \"\(shown)\": no mount serves it yet; it applies once the mount is enabled")
            if !caps.subtracting(["deny"]).isEmpty && !caps.contains("deny") { out.pending.append(shown) }
        }
    }

    // MARK: Secret engines

    /// An item pattern below a mount's folder: a folder form (`""`, `app/`) lists its contents.
    func itemRule(_ mount: VaultMount, _ sub: String, _ caps: Set<Capability>, into out: inout Translation) throws {
        guard !caps.isEmpty else { return }
        if sub.isEmpty || sub.hasSuffix("/") {
            let listing = caps.intersection([.list, .deny])
            guard !listing.isEmpty else { return }
            out.rules.append(Rule(pattern: try PathPattern(mount.folder.folderPrefix + sub + "*"), capabilities: listing, type: .item))
            return
        }
        out.rules.append(Rule(pattern: try PathPattern(mount.folder.folderPrefix + sub), capabilities: caps, type: .item))
    }

    func kvV1(_ mount: VaultMount, _ rest: String, _ caps: Set<String>, _ out: inout Translation) throws {
        try itemRule(mount, rest, Self.generic(caps), into: &out)
    }

    func kvV2(_ mount: VaultMount, _ rest: String, _ caps: Set<String>, _ shown: String, _ out: inout Translation) throws {
        for (section, sub) in Self.sections(rest, Self.kvV2Sections) {
            let deny = caps.contains("deny")
            var mapped: Set<Capability> = []
            switch section {
            case "data":
                // KV v2 lists on metadata/ only.
                mapped = Self.generic(caps.subtracting(["list"]))
            case "metadata":
                if deny { mapped = [.deny]; break }
                if caps.contains("list") || caps.contains("read") { mapped.insert(.list) }
                if caps.contains("delete") { mapped.insert(.delete) }
                if caps.contains("create") || caps.contains("update") || caps.contains("patch") {
                    // Tessera's update also writes data: a metadata write is granted by data/.
                    out.warnings.append("path \"\(shown)\": metadata writes are granted by update on \(mount.path)data/; not translated")
                }
            case "delete", "destroy":
                mapped = deny ? [.deny] : (caps.contains("update") || caps.contains("create") ? [.delete] : [])
            case "undelete":
                if deny { mapped = [.deny]; break }
                if caps.contains("update") || caps.contains("create") {
                    out.warnings.append("path \"\(shown)\": undelete is granted by update on \(mount.path)data/; not translated")
                }
            default:
                if !deny { out.warnings.append("path \"\(shown)\": \(mount.path)\(section) is not translated") }
                continue
            }
            if mapped.contains(.delete) && !deny {
                out.warnings.append("path \"\(shown)\": Tessera's delete covers soft delete, destroy and metadata delete alike")
            }
            try itemRule(mount, sub, mapped, into: &out)
        }
    }

    func database(_ mount: VaultMount, _ rest: String, _ caps: Set<String>, _ shown: String, _ out: inout Translation) throws {
        for (section, sub) in Self.sections(rest, ["creds", "roles", "config", "static-creds", "static-roles", "rotate-role", "rotate-root"]) {
            guard section == "creds" else {
                if !caps.contains("deny") && rest.hasPrefix(section) {
                    out.warnings.append("path \"\(shown)\": \(mount.path)\(section) is managed natively; not translated")
                }
                continue
            }
            let mapped: Set<Capability> = caps.contains("deny") ? [.deny] : (caps.contains("read") || caps.contains("update") ? [.read] : [])
            try itemRule(mount, sub, mapped, into: &out)
        }
    }

    /// The engine sections a mount-relative pattern reaches, with the pattern below each: a
    /// final `*` in the first segment reaches every section it prefixes, `+` every section.
    static func sections(_ rest: String, _ names: [String]) -> [(String, String)] {
        let segments = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard let first = segments.first else { return [] }
        let below = segments.dropFirst().joined(separator: "/")
        if segments.count == 1 && first.hasSuffix("*") {
            let literal = first.dropLast()
            return names.filter { $0.hasPrefix(literal) }.map { ($0, "*") }
        }
        if first == "+" { return names.map { ($0, below) } }
        if names.contains(String(first)) { return [(String(first), below)] }
        return []
    }

    // MARK: System

    func system(_ rest: String, _ caps: Set<String>, _ shown: String, _ out: inout Translation) throws {
        let generic = Self.generic(caps)
        guard !generic.isEmpty || caps.contains("sudo") else { return }
        let full = "sys/" + rest
        for prefix in ["sys/policy", "sys/policies/acl"] {
            if let below = Self.rest(of: full, below: prefix + "/") {
                // The folder form (`sys/policy/`) lists; it does not manage every policy.
                let granted = below.isEmpty ? generic.intersection([.list, .deny]) : generic
                if !granted.isEmpty {
                    out.rules.append(Rule(pattern: try PathPattern(below.isEmpty ? "/*" : "/" + below), capabilities: granted, type: .role))
                }
            } else if full == prefix {
                // Listing the policies.
                let listing: Set<Capability> = generic.contains(.deny) ? [.deny] : (generic.isDisjoint(with: [.list, .read]) ? [] : [.list])
                if !listing.isEmpty { out.rules.append(Rule(pattern: try PathPattern("/*"), capabilities: listing, type: .role)) }
            }
        }
        // Enabling and disabling auth methods is a sudo path in Vault.
        if let below = Self.rest(of: full, below: "sys/auth/"), !below.isEmpty, caps.contains("sudo") || caps.contains("deny") {
            out.rules.append(Rule(pattern: try PathPattern("/" + below), capabilities: generic, type: .authMethod))
        }
        if Self.rest(of: full, below: "sys/leases/") != nil && !caps.contains("sudo") && !caps.contains("deny") {
            if full.hasPrefix("sys/leases/") {
                out.warnings.append("path \"\(shown)\": a token renews, looks up and revokes its own leases without a rule; other leases need rights on the producer")
            }
        }
        // The sys-rules: Vault's sudo paths.
        var tessera = full
        for alias in Self.systemAliases where tessera == alias.vault || tessera.hasPrefix(alias.vault + "/") {
            tessera = alias.tessera + tessera.dropFirst(alias.vault.count)
        }
        let unprotected = Self.unprotectedSystem.contains { full == $0 || full.hasPrefix($0 + "/") }
        // `sys` and `sys/` (and other folder forms) name no operation, in Vault as here: nothing
        // to translate, and nothing to warn about (Vault takes them silently).
        if tessera.hasSuffix("/") || tessera == "sys" { return }
        if caps.contains("deny") {
            out.rules.append(Rule(pattern: try PathPattern("/" + tessera), capabilities: [.deny], type: .system))
        } else if caps.contains("sudo") || unprotected {
            guard !generic.isEmpty else { return }
            let granted = generic
            out.rules.append(Rule(pattern: try PathPattern("/" + tessera), capabilities: granted, type: .system))
        }
    }

    // MARK: Paths

    /// The part of a policy path below `mountPath` (`secret/`), as a pattern relative to it:
    /// `*` when the path's glob covers the whole mount, `""` for the mount itself, nil when the
    /// path does not reach into it. `+` matches one segment of the mount path.
    static func rest(of path: String, below mountPath: String) -> String? {
        let pathSegments = path.split(separator: "/", omittingEmptySubsequences: false)
        let mountSegments = mountPath.split(separator: "/")
        for (k, m) in mountSegments.enumerated() {
            guard k < pathSegments.count else { return nil }
            let p = pathSegments[k]
            if k == pathSegments.count - 1 && p.hasSuffix("*") {
                let remaining = mountSegments[k...].joined(separator: "/")
                return remaining.hasPrefix(p.dropLast()) ? "*" : nil
            }
            if p == "+" || p == m { continue }
            return nil
        }
        guard pathSegments.count > mountSegments.count else { return "" }
        return pathSegments[mountSegments.count...].joined(separator: "/")
    }

    // MARK: Rules → HCL

    /// The rules of a role written as a policy, for a role whose rules were set natively.
    func hcl(_ role: Role) -> String {
        var lines = ["# Tessera role \"\(role.name)\": its rules, written as a Vault policy."]
        func block(_ path: String, _ caps: [String]) {
            lines.append("path \"\(path)\" {\n  capabilities = [\(caps.map { "\"\($0)\"" }.joined(separator: ", "))]\n}")
        }
        for rule in role.rules {
            let caps = rule.capabilities
            let names = caps.contains(.deny) ? ["deny"] : Capability.allCases.filter { caps.contains($0) && $0 != .use }.map(\.rawValue)
            let pattern = rule.pattern.description
            switch rule.type {
            case .item:
                let mount = mounts.filter { ItemPath.bytes(pattern, haveprefix: $0.folder.folderPrefix) }
                    .max { $0.folder.value.utf8.count < $1.folder.value.utf8.count }
                guard let mount else {
                    lines.append("# item-rule \(pattern) [\(names.joined(separator: ", "))]: no Vault mount serves it")
                    continue
                }
                let sub = String(pattern.dropFirst(mount.folder.folderPrefix.count))
                switch mount.kind {
                case .kvV1:
                    block(mount.path + sub, names)
                case .kvV2:
                    let data = names.filter { $0 != "list" }
                    if !data.isEmpty { block(mount.path + "data/" + sub, data) }
                    if caps.contains(.list) || caps.contains(.deny) { block(mount.path + "metadata/" + sub, caps.contains(.deny) ? ["deny"] : ["list"]) }
                case .database:
                    block(mount.path + "creds/" + sub, caps.contains(.deny) ? ["deny"] : ["read"])
                }
            case .role:
                block("sys/policies/acl" + pattern, names)
            case .authMethod:
                block("auth" + pattern, names)
            case .system:
                block(String(pattern.dropFirst()), caps.contains(.deny) ? ["deny"] : names + ["sudo"])
            case .target:
                lines.append("# target-rule \(pattern) [\(names.joined(separator: ", "))]: no Vault equivalent")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
