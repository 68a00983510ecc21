// Native verbs for rotated secrets: rotated-secret-create|update-postgresql|ssh,
// rotated-secret-list, rotated-secret-get, get-rotated-secret-value (also rotated-secret-get-value),
// and manual rotation gateway-rotate-secret (also rotate-secret). Field names follow Akeyless.
import Foundation
import TesseraCore
import TesseraEngines

extension NativeVerbs {
    static let rotatedSecrets: [NativeVerb] = [
        createRotated("rotated-secret-create-postgresql", .postgres),
        createRotated("rotated-secret-create-ssh", .ssh),
        updateRotated("rotated-secret-update-postgresql", .postgres),
        updateRotated("rotated-secret-update-ssh", .ssh),
        NativeVerb("rotated-secret-list", action: "list_rotated_secrets", access: .listing(.item),
                   help: "List the rotated secrets under a folder that the caller may list, with their rotation status.",
                   fields: declare([.string("path", "The folder (default /).")])) { f in
            let folder = try ItemPath(folder: try f.string("path") ?? "/")
            return PreparedVerb(folder: folder) { t, caller in
                let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
                let visible = try await t.rotation.list().filter { folder.contains($0.path) && authorizer.check(.list, on: $0.path).isAllowed }
                return .obj(("rotated_secrets", .array(visible.map(rotatorJSON))))
            }
        },
        NativeVerb("rotated-secret-get", action: "get_rotated_secret", access: .capability([.read, .list], .item),
                   help: "Show a rotated secret's settings and status (never its value).",
                   fields: declare([.string("name", required: true, "The rotated secret's path.")])) { f in
            let path = try ItemPath(try f.requiredString("name"))
            return PreparedVerb(paths: [path]) { t, _ in rotatorJSON(try await t.rotation.get(path).1) }
        },
        getRotatedValue("get-rotated-secret-value", nameField: "names"),
        getRotatedValue("rotated-secret-get-value", nameField: "name"),
        rotateNow("gateway-rotate-secret"),
        rotateNow("rotate-secret"),
    ]

    static func getRotatedValue(_ verb: String, nameField: String) -> NativeVerb {
        // `nameField` may be a string or a list of one; the other name is accepted as a string.
        let other = nameField == "names" ? "name" : "names"
        return NativeVerb(verb, action: "get_rotated_secret_value", access: .capability([.read], .item),
                          help: "Read a rotated secret's username and password.",
                          fields: declare([.list(nameField, "The rotated secret's path (one)."),
                                           .string(other, "The rotated secret's path, when \(nameField) is absent."),
                                           .int("version", 0...Int(Int32.max), "A version (0 or absent: the current one).")],
                                          sdk: ["host", "ignore-cache"])) { f in
            let name: String
            if let list = try? f.stringList(nameField), let first = list.first, list.count == 1 {
                name = first
            } else {
                name = try f.string(nameField) ?? f.requiredString(other)
            }
            let path = try ItemPath(name)
            let version = try f.int("version", in: 0...Int(Int32.max))
            if let version, version < 0 { throw TesseraError.badRequest("version must be 0 (current) or a positive version number") }
            return PreparedVerb(paths: [path], parameters: version.map { ["version": String($0)] } ?? [:]) { t, _ in
                let v = try await t.rotation.read(path, version: version)
                return .obj(("value", .obj(("username", .string(v.username)), ("password", .string(v.password)))),
                            ("version", .int(Int64(v.version))))
            }
        }
    }

    static func rotateNow(_ verb: String) -> NativeVerb {
        NativeVerb(verb, action: "rotate_secret", access: .capability([.update], .item),
                   help: "Rotate a secret's password now.",
                   fields: declare([.string("name", required: true, "The rotated secret's path.")],
                                   sdk: ["RotateAllServicesBoolean", "rotate-all-services"])) { f in
            let path = try ItemPath(try f.requiredString("name"))
            return PreparedVerb(paths: [path]) { t, caller in
                let version = try await t.rotation.rotate(path, actor: caller.principal?.identity.accessId ?? "")
                caller.notes.set("version", String(version))
                return .obj(("name", .string(path.value)), ("version", .int(Int64(version))))
            }
        }
    }

    /// The settings fields that `rotatorSettings` reads, for create and update.
    static func rotatorFields(_ kind: Rotator.Kind) -> [FieldSpec] {
        var fields: [FieldSpec] = [
            .string("rotated-password", sensitive: true, "The account's current password."),
            .string("authentication-credentials", "use-target-creds (the target's login sets the password) or use-user-creds."),
            .bool("auto-rotate", "Rotate on a schedule."),
            .int("rotation-interval", 0...36_500, "Days between rotations."),
            .int("rotation-interval-minutes", 0...52_560_000, aliases: ["rotation-interval-min"],
                 "Minutes between rotations (instead of days)."),
            .int("rotation-hour", 0...23, "Hour of day (UTC) of rotations at day intervals."),
            .int("password-length", 8...128, "Length of generated passwords (default 24)."),
            .bool("use-lower-letters", "Generated passwords have lower-case letters (default true)."),
            .bool("use-capital-letters", "Generated passwords have capital letters (default true)."),
            .bool("use-numbers", "Generated passwords have digits (default true)."),
            .bool("use-special-characters", "Generated passwords have special characters (default true)."),
            .int("verify-port", 0...65535, "Verify new passwords on this port instead of the target's (0: the target's)."),
            .string("description", "A description."),
            .list("tags", "Tags."),
            .int("max-versions", 0...Item.maximumMaxVersions, "Versions kept (0: the default)."),
            .bool("delete-protection", aliases: ["delete_protection"], "Refuse deletion until turned off."),
            .bool("skip-dry-run", "Save without first checking that the credentials work."),
            FieldSpec("rotator-creds-password", .any, sensitive: true, help: "Accepted and ignored (Akeyless field)."),
        ]
        if kind == .ssh {
            fields.append(.string("rotator-custom-cmd", "Instead of chpasswd, a command run as the target's user (admins only)."))
        }
        return fields
    }

    /// Rotated-secret fields that the Akeyless SDK sends and Tessera does not use.
    static func rotatorSDKFields(_ kind: Rotator.Kind, update: Bool) -> [String] {
        var names = ["ara-enabled", "enable-agentic-runtime-authority", "enable-ai-quorum", "input-rule", "item-custom-fields", "key",
                     "lock-during-sra-session", "lock-on-read", "lock-ttl", "output-rule", "rotate-after-disconnect",
                     "rotate-on-unlock", "rotation-event-in", "secure-access-bastion-issuer", "secure-access-certificate-issuer",
                     "secure-access-enable", "secure-access-host", "secure-access-web"]
        if update { names += ["add-tag", "keep-prev-version", "new-name", "rm-tag"] }
        switch kind {
        case .postgres:
            names += ["secure-access-db-name", "secure-access-db-schema"]
        case .ssh:
            names += ["ProviderType", "host-provider", "key-algorithm", "public-key-remote-path", "same-password",
                      "secure-access-allow-external-user", "secure-access-enforce-hosts-restriction", "secure-access-rdp-domain",
                      "secure-access-rdp-user", "secure-access-ssh-user", "secure-access-target-type", "secure-access-url",
                      "secure-access-web-browsing", "secure-access-web-proxy", "target"]
            if update { names.append("rotator-type") }
        }
        return names
    }

    /// SDK fields that carry a secret (kept out of the audit).
    static func rotatorSDKSecrets(_ kind: Rotator.Kind) -> [String] {
        kind == .ssh ? ["key-data-base64", "secure-access-ssh-creds"] : []
    }

    static func createRotated(_ verb: String, _ kind: Rotator.Kind) -> NativeVerb {
        NativeVerb(verb, action: "create_rotated_secret", access: .capability([.create], .item),
                   help: kind == .postgres ? "Create a rotated secret: Tessera changes a PostgreSQL role's password."
                       : "Create a rotated secret: Tessera changes a Linux user's password over SSH.",
                   fields: declare([.string("name", required: true, "The rotated secret's path."),
                                    .string("target-name", required: true, "The target whose account it rotates (needs use on it)."),
                                    .string("rotated-username", required: true, "The account whose password is rotated."),
                                    .string("rotator-type", "password: the account changes its own password (use-user-creds).")]
                                       + rotatorFields(kind),
                                   sdk: rotatorSDKFields(kind, update: false), sdkSecrets: rotatorSDKSecrets(kind))) { f in
            let path = try ItemPath(try f.requiredString("name"))
            let target = try f.requiredString("target-name")
            var settings = try rotatorSettings(f, kind)
            if settings.username == nil { throw TesseraError.badRequest("missing required field 'rotated-username'") }
            if settings.credentials == nil, try f.string("rotator-type") == "password" { settings.credentials = .user }
            let requested = settings
            var checks = [AccessCheck(.use, .target, try ItemPath(target))]
            if settings.customCommand.map({ !$0.isEmpty }) ?? false {
                checks.append(AccessCheck(.update, .system, SystemPath.rotatorCustomCommand))
            }
            return PreparedVerb(paths: [path], extraChecks: checks) { t, caller in
                let r = try await t.rotation.create(path: path, kind: kind, targetName: target, settings: requested,
                                                    actor: caller.principal?.identity.accessId ?? "")
                return .obj(("name", .string(r.path.value)))
            }
        }
    }

    static func updateRotated(_ verb: String, _ kind: Rotator.Kind) -> NativeVerb {
        NativeVerb(verb, action: "update_rotated_secret", access: .capability([.update], .item),
                   help: "Change a rotated secret's settings (changing the account needs the rights to create it).",
                   fields: declare([.string("name", required: true, "The rotated secret's path."),
                                    .string("rotated-username", "The account whose password is rotated.")] + rotatorFields(kind),
                                   sdk: rotatorSDKFields(kind, update: true), sdkSecrets: rotatorSDKSecrets(kind))) { f in
            let path = try ItemPath(try f.requiredString("name"))
            let settings = try rotatorSettings(f, kind)
            return PreparedVerb(paths: [path]) { t, caller in
                let rotator = try await t.rotation.get(path).1
                guard rotator.kind == kind else {
                    throw TesseraError.badRequest("\(path) is not a \(kind == .postgres ? "PostgreSQL" : "SSH") rotated secret")
                }
                // Changing what the rotated secret acts on is creating it anew: the same rights.
                if settings.changesWhatRotates(rotator) {
                    try caller.require(.create, on: path, type: .item)
                    try caller.require(.use, on: try ItemPath(rotator.targetName), type: .target)
                }
                // Turning delete protection off exposes every version to pruning: a delete right.
                if settings.deleteProtection == false, try await t.secrets.item(path).deleteProtection {
                    try caller.require(.delete, on: path, type: .item)
                }
                if let command = settings.customCommand, command != rotator.customCommand, !command.isEmpty {
                    try caller.require(.update, on: SystemPath.rotatorCustomCommand, type: .system)
                }
                let r = try await t.rotation.update(path: path, settings: settings, actor: caller.principal?.identity.accessId ?? "")
                return .obj(("name", .string(r.path.value)))
            }
        }
    }

    static func rotatorSettings(_ f: RequestFields, _ kind: Rotator.Kind) throws -> RotatorSettings {
        var s = RotatorSettings()
        s.username = try f.string("rotated-username")
        s.password = try f.string("rotated-password")
        s.credentials = try f.string("authentication-credentials").map { try Rotator.Credentials(wire: $0) }
        s.autoRotate = try f.bool("auto-rotate")
        s.intervalDays = try f.int("rotation-interval", in: 0...36_500)
        s.intervalMinutes = try f.int("rotation-interval-minutes", in: 0...52_560_000) ?? f.int("rotation-interval-min", in: 0...52_560_000)
        s.rotationHour = try f.int("rotation-hour", in: 0...23)
        let flags = (try f.bool("use-lower-letters"), try f.bool("use-capital-letters"), try f.bool("use-numbers"),
                     try f.bool("use-special-characters"))
        let length = try f.int("password-length", in: 8...128)
        if length != nil || flags.0 != nil || flags.1 != nil || flags.2 != nil || flags.3 != nil {
            s.policy = PasswordPolicy(length: length ?? 24, lower: flags.0 ?? true, upper: flags.1 ?? true, numbers: flags.2 ?? true,
                                      special: flags.3 ?? true)
        }
        if kind == .ssh { s.customCommand = try f.string("rotator-custom-cmd") }
        if let port = try f.int("verify-port", in: 0...65535) { s.verifyPort = port }
        s.description = try f.string("description")
        s.tags = try f.stringList("tags")
        s.maxVersions = try f.int("max-versions", in: 0...Item.maximumMaxVersions)
        s.deleteProtection = try f.bool("delete-protection") ?? f.bool("delete_protection")
        s.skipDryRun = try f.bool("skip-dry-run") ?? false
        return s
    }

    /// A rotated secret's settings and state, never its value.
    static func rotatorJSON(_ r: Rotator) -> JSON {
        .obj(("name", .string(r.path.value)), ("type", .string(r.kind == .postgres ? "postgresql" : "ssh")),
             ("target_name", .string(r.targetName)), ("rotated_username", .string(r.username)),
             ("authentication_credentials", .string(r.credentials.rawValue)), ("auto_rotate", .bool(r.autoRotate)),
             ("rotation_interval", .int(Int64(r.intervalMinutes / 1440))), ("rotation_interval_min", .int(Int64(r.intervalMinutes))),
             ("rotation_hour", r.rotationHour.map { .int(Int64($0)) } ?? .null), ("next_rotation_date", .date(r.nextRotationAt)),
             ("rotator_status", .string(r.status.rawValue)), ("last_rotation_date", .date(r.lastRotationAt)),
             ("last_rotation_error", .string(r.lastError)), ("failures", .int(Int64(r.failures))),
             ("pending", .bool(r.pending != nil)), ("password_length", .int(Int64(r.policy.length))),
             ("rotator_custom_cmd", .string(r.customCommand)), ("verify_port", .int(Int64(r.verifyPort))))
    }

    /// The rotation fields that `describe-item` adds for a rotated secret, as Akeyless names them.
    static func rotatedItemFields(_ r: Rotator) -> [(String, JSON)] {
        [("auto_rotate", .bool(r.autoRotate)), ("rotation_interval", .int(Int64(r.intervalMinutes / 1440))),
         ("next_rotation_date", .date(r.nextRotationAt)), ("rotator_status", .string(r.status.rawValue)),
         ("last_rotation_error", .string(r.lastError)),
         ("item_targets_assoc", .array([.obj(("target_name", .string(r.targetName)))])),
         ("rotated_secret_details", rotatorJSON(r))]
    }
}
