// Rotated-secret commands: target-create-ssh, rotated-secret-create|update-postgresql|ssh,
// rotated-secret-list|get, get-rotated-secret-value, rotate-secret, and `rotations` (status).
import ArgumentParser
import Foundation

struct TargetCreateSSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "target-create-ssh",
                                                    abstract: "Create an SSH target; the login is checked and the host key pinned.")
    @OptionGroup var api: APIOptions
    @Option var name: String
    @Option var host: String
    @Option var port: Int = 22
    @Option(name: .customLong("ssh-username")) var sshUsername: String
    @Option(name: .customLong("ssh-password"), help: "The user's password (stored encrypted).") var sshPassword: String?
    @Option(name: .customLong("private-key-file"), help: "An unencrypted OpenSSH private key file (ed25519 or ecdsa).") var privateKeyFile: String?
    @Option(name: .customLong("host-key"), help: "The expected host key ('ssh-ed25519 AAAA…'); default: pin the key seen now.") var hostKey: String?

    func run() async throws {
        try await runCLI {
            var key: String?
            if let privateKeyFile {
                guard let data = FileManager.default.contents(atPath: privateKeyFile) else {
                    throw CLIError(description: "cannot read \(privateKeyFile)")
                }
                key = String(decoding: data, as: UTF8.self)
            }
            let a = try await APIClient.call("target-create-ssh", ["name": name, "host": host, "port": port, "ssh-username": sshUsername,
                                                                   "ssh-password": sshPassword, "private-key": key, "host-key": hostKey], options: api)
            if api.json { APIClient.print(a, options: api) } else {
                print("Created target \(name) (host key \((a as? [String: Any])?["host_key"] as? String ?? "?"))")
            }
        }
    }
}

/// The settings shared by the create and update commands.
struct RotatorOptions: ParsableArguments {
    @Option(name: .customLong("rotated-username")) var rotatedUsername: String?
    @Option(name: .customLong("rotated-password"), help: "The account's current password.") var rotatedPassword: String?
    @Option(name: .customLong("authentication-credentials"), help: "use-target-creds (default) or use-user-creds.") var credentials: String?
    @Option(name: .customLong("auto-rotate"), help: "true or false.") var autoRotate: String?
    @Option(name: .customLong("rotation-interval"), help: "Days between rotations (1-365).") var rotationInterval: Int?
    @Option(name: .customLong("rotation-interval-minutes"), help: "Minutes between rotations (instead of days).") var rotationIntervalMinutes: Int?
    @Option(name: .customLong("rotation-hour"), help: "Hour of day (UTC) for day intervals.") var rotationHour: Int?
    @Option(name: .customLong("password-length")) var passwordLength: Int?
    @Option(name: .customLong("use-lower-letters")) var lower: String?
    @Option(name: .customLong("use-capital-letters")) var upper: String?
    @Option(name: .customLong("use-numbers")) var numbers: String?
    @Option(name: .customLong("use-special-characters")) var special: String?
    @Option(name: .customLong("verify-port"), help: "Verify new passwords on this port instead of the target's.") var verifyPort: Int?
    @Option var description: String?
    @Option(name: .customLong("max-versions")) var maxVersions: Int?

    var fields: [String: Any?] {
        ["rotated-username": rotatedUsername, "rotated-password": rotatedPassword, "authentication-credentials": credentials,
         "auto-rotate": autoRotate, "rotation-interval": rotationInterval, "rotation-interval-minutes": rotationIntervalMinutes,
         "rotation-hour": rotationHour, "password-length": passwordLength, "use-lower-letters": lower, "use-capital-letters": upper,
         "use-numbers": numbers, "use-special-characters": special, "verify-port": verifyPort, "description": description,
         "max-versions": maxVersions]
    }
}

struct RotatedSecretCreatePostgreSQLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotated-secret-create-postgresql", abstract: "Rotate a PostgreSQL role's password.")
    @OptionGroup var api: APIOptions
    @Option var name: String
    @Option(name: .customLong("target-name")) var targetName: String
    @OptionGroup var settings: RotatorOptions
    @Flag(name: .customLong("skip-dry-run")) var skipDryRun = false
    func run() async throws {
        try await runCLI {
            var f = settings.fields
            f["name"] = name; f["target-name"] = targetName; f["skip-dry-run"] = skipDryRun ? true : nil
            let a = try await APIClient.call("rotated-secret-create-postgresql", f, options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Created rotated secret \(name)") }
        }
    }
}

struct RotatedSecretCreateSSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotated-secret-create-ssh", abstract: "Rotate a Linux user's password over SSH.")
    @OptionGroup var api: APIOptions
    @Option var name: String
    @Option(name: .customLong("target-name")) var targetName: String
    @OptionGroup var settings: RotatorOptions
    @Option(name: .customLong("rotator-custom-cmd"), help: "Instead of chpasswd; 'user:password' is on stdin, {{username}}/{{password}} are substituted.")
    var customCommand: String?
    @Flag(name: .customLong("skip-dry-run")) var skipDryRun = false
    func run() async throws {
        try await runCLI {
            var f = settings.fields
            f["name"] = name; f["target-name"] = targetName; f["rotator-custom-cmd"] = customCommand; f["skip-dry-run"] = skipDryRun ? true : nil
            let a = try await APIClient.call("rotated-secret-create-ssh", f, options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Created rotated secret \(name)") }
        }
    }
}

struct RotatedSecretUpdatePostgreSQLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotated-secret-update-postgresql", abstract: "Change a PostgreSQL rotated secret's settings.")
    @OptionGroup var api: APIOptions
    @Option var name: String
    @OptionGroup var settings: RotatorOptions
    func run() async throws {
        try await runCLI {
            var f = settings.fields
            f["name"] = name
            let a = try await APIClient.call("rotated-secret-update-postgresql", f, options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Updated rotated secret \(name)") }
        }
    }
}

struct RotatedSecretUpdateSSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotated-secret-update-ssh", abstract: "Change an SSH rotated secret's settings.")
    @OptionGroup var api: APIOptions
    @Option var name: String
    @OptionGroup var settings: RotatorOptions
    @Option(name: .customLong("rotator-custom-cmd")) var customCommand: String?
    func run() async throws {
        try await runCLI {
            var f = settings.fields
            f["name"] = name; f["rotator-custom-cmd"] = customCommand
            let a = try await APIClient.call("rotated-secret-update-ssh", f, options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Updated rotated secret \(name)") }
        }
    }
}

struct RotatedSecretListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotated-secret-list", abstract: "List rotated secrets.")
    @OptionGroup var api: APIOptions
    @Option var path: String?
    func run() async throws {
        try await runCLI { APIClient.print(try await APIClient.call("rotated-secret-list", ["path": path], options: api), options: api) }
    }
}

struct RotatedSecretGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotated-secret-get", abstract: "Show a rotated secret's settings and status (not its value).")
    @OptionGroup var api: APIOptions
    @Option var name: String
    func run() async throws {
        try await runCLI { APIClient.print(try await APIClient.call("rotated-secret-get", ["name": name], options: api), options: api) }
    }
}

struct GetRotatedSecretValueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get-rotated-secret-value", abstract: "Read a rotated secret's username and password.")
    @OptionGroup var api: APIOptions
    @Option var name: String
    @Option var version: Int?
    func run() async throws {
        try await runCLI {
            APIClient.print(try await APIClient.call("get-rotated-secret-value", ["names": name, "version": version], options: api), options: api)
        }
    }
}

struct RotateSecretCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotate-secret", abstract: "Rotate a secret's password now.")
    @OptionGroup var api: APIOptions
    @Option var name: String
    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("gateway-rotate-secret", ["name": name], options: api)
            if api.json { APIClient.print(a, options: api) } else {
                print("Rotated \(name) (version \((a as? [String: Any])?["version"] ?? "?"))")
            }
        }
    }
}

struct RotationsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotations", abstract: "Rotation status of every rotated secret: last outcome, error, next run.")
    @OptionGroup var api: APIOptions
    @Option(help: "RotationSucceeded, RotationFailed, RotationInProgress or NotRotated.") var status: String?
    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("rotated-secret-list", [:], options: api)
            var rows = (a as? [String: Any])?["rotated_secrets"] as? [[String: Any]] ?? []
            if let status { rows = rows.filter { ($0["rotator_status"] as? String) == status } }
            if api.json { APIClient.print(["rotations": rows], options: api); return }
            for r in rows {
                print([r["name"], r["rotator_status"], r["next_rotation_date"], r["last_rotation_date"], r["last_rotation_error"]]
                    .map { "\($0 ?? "")" }.joined(separator: "\t"))
            }
        }
    }
}
