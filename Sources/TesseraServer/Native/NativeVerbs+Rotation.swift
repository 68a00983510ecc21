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
        NativeVerb("rotated-secret-list", action: "list_rotated_secrets", access: .listing(.item)) { f in
            let folder = try ItemPath(folder: try f.string("path") ?? "/")
            return PreparedVerb(folder: folder) { t, caller in
                let authorizer = caller.principal?.authorizer ?? Authorizer(rules: [])
                let visible = try await t.rotation.list().filter { folder.contains($0.path) && authorizer.check(.list, on: $0.path).isAllowed }
                return .obj(("rotated_secrets", .array(visible.map(rotatorJSON))))
            }
        },
        NativeVerb("rotated-secret-get", action: "get_rotated_secret", access: .capability([.read, .list], .item)) { f in
            let path = try ItemPath(try f.requiredString("name"))
            return PreparedVerb(paths: [path]) { t, _ in rotatorJSON(try await t.rotation.get(path).1) }
        },
        getRotatedValue("get-rotated-secret-value", nameField: "names"),
        getRotatedValue("rotated-secret-get-value", nameField: "name"),
        rotateNow("gateway-rotate-secret"),
        rotateNow("rotate-secret"),
    ]

    static func getRotatedValue(_ verb: String, nameField: String) -> NativeVerb {
        NativeVerb(verb, action: "get_rotated_secret_value", access: .capability([.read], .item)) { f in
            let name: String
            if let list = try? f.stringList(nameField), let first = list.first, list.count == 1 {
                name = first
            } else {
                name = try f.string(nameField) ?? f.requiredString(nameField == "names" ? "name" : "names")
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
        NativeVerb(verb, action: "rotate_secret", access: .capability([.update], .item)) { f in
            let path = try ItemPath(try f.requiredString("name"))
            return PreparedVerb(paths: [path]) { t, caller in
                let version = try await t.rotation.rotate(path, actor: caller.principal?.identity.accessId ?? "")
                caller.notes.set("version", String(version))
                return .obj(("name", .string(path.value)), ("version", .int(Int64(version))))
            }
        }
    }

    static let rotationSensitive = ["rotated-password", "rotator-creds-password"]

    static func createRotated(_ verb: String, _ kind: Rotator.Kind) -> NativeVerb {
        NativeVerb(verb, action: "create_rotated_secret", access: .capability([.create], .item), sensitive: rotationSensitive) { f in
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
        NativeVerb(verb, action: "update_rotated_secret", access: .capability([.update], .item), sensitive: rotationSensitive) { f in
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
