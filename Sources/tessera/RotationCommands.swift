// Rotated-secret commands: target-create-ssh, rotated-secret-create|update-postgresql|ssh,
// rotated-secret-list|get, get-rotated-secret-value, rotate-secret, and `rotations` (status).
import ArgumentParser
import Foundation

struct TargetCreateSSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "target-create-ssh",
        abstract: CLIHelp.verb("target-create-ssh", "Create an SSH target; the login is checked and the host key pinned."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("target-create-ssh", "name")) var name: String
    @Option(help: .field("target-create-ssh", "host")) var host: String
    @Option(help: .field("target-create-ssh", "port")) var port: Int = 22
    @Option(name: .customLong("ssh-username"), help: .field("target-create-ssh", "ssh-username")) var sshUsername: String
    @Option(name: .customLong("ssh-password"), help: .field("target-create-ssh", "ssh-password")) var sshPassword: String?
    @Option(name: .customLong("private-key"), help: .field("target-create-ssh", "private-key")) var privateKey: String?
    @Option(name: .customLong("private-key-file"), help: "A file with the private key (the same as --private-key @FILE).")
    var privateKeyFile: String?
    @Option(name: .customLong("host-key"), help: .field("target-create-ssh", "host-key")) var hostKey: String?

    func run() async throws {
        try await runCLI {
            let sshPassword = try SecretInput.resolve(sshPassword, flag: "--ssh-password")
            var key = try SecretInput.resolve(privateKey, flag: "--private-key")
            if let privateKeyFile {
                guard key == nil else { throw CLIError(description: "give --private-key or --private-key-file, not both") }
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

/// The settings shared by the create and update commands (the same fields on every rotated-secret verb).
struct RotatorOptions: ParsableArguments {
    @Option(name: .customLong("rotated-username"), help: .field(rotatorVerb, "rotated-username")) var rotatedUsername: String?
    @Option(name: .customLong("rotated-password"), help: .field(rotatorVerb, "rotated-password")) var rotatedPassword: String?
    @Option(name: .customLong("authentication-credentials"), help: .field(rotatorVerb, "authentication-credentials"))
    var credentials: String?
    @Option(name: .customLong("auto-rotate"), help: .field(rotatorVerb, "auto-rotate", valueName: "true|false")) var autoRotate: String?
    @Option(name: .customLong("rotation-interval"), help: .field(rotatorVerb, "rotation-interval")) var rotationInterval: Int?
    @Option(name: .customLong("rotation-interval-minutes"), help: .field(rotatorVerb, "rotation-interval-minutes"))
    var rotationIntervalMinutes: Int?
    @Option(name: .customLong("rotation-hour"), help: .field(rotatorVerb, "rotation-hour")) var rotationHour: Int?
    @Option(name: .customLong("password-length"), help: .field(rotatorVerb, "password-length")) var passwordLength: Int?
    @Option(name: .customLong("use-lower-letters"), help: .field(rotatorVerb, "use-lower-letters", valueName: "true|false"))
    var lower: String?
    @Option(name: .customLong("use-capital-letters"), help: .field(rotatorVerb, "use-capital-letters", valueName: "true|false"))
    var upper: String?
    @Option(name: .customLong("use-numbers"), help: .field(rotatorVerb, "use-numbers", valueName: "true|false")) var numbers: String?
    @Option(name: .customLong("use-special-characters"), help: .field(rotatorVerb, "use-special-characters", valueName: "true|false"))
    var special: String?
    @Option(name: .customLong("verify-port"), help: .field(rotatorVerb, "verify-port")) var verifyPort: Int?
    @Option(help: .field(rotatorVerb, "description")) var description: String?
    @Option(name: .customLong("max-versions"), help: .field(rotatorVerb, "max-versions")) var maxVersions: Int?

    /// The request fields, with --rotated-password read from where it points (stdin, @FILE, env:NAME).
    func resolvedFields() throws -> [String: Any?] {
        let rotatedPassword = try SecretInput.resolve(rotatedPassword, flag: "--rotated-password")
        return ["rotated-username": rotatedUsername, "rotated-password": rotatedPassword, "authentication-credentials": credentials,
         "auto-rotate": autoRotate, "rotation-interval": rotationInterval, "rotation-interval-minutes": rotationIntervalMinutes,
         "rotation-hour": rotationHour, "password-length": passwordLength, "use-lower-letters": lower, "use-capital-letters": upper,
         "use-numbers": numbers, "use-special-characters": special, "verify-port": verifyPort, "description": description,
         "max-versions": maxVersions]
    }
}

/// The verb whose declaration describes the shared rotated-secret flags.
private let rotatorVerb = "rotated-secret-update-postgresql"

struct RotatedSecretCreatePostgreSQLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotated-secret-create-postgresql",
        abstract: CLIHelp.verb("rotated-secret-create-postgresql", "Rotate a PostgreSQL role's password."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("rotated-secret-create-postgresql", "name")) var name: String
    @Option(name: .customLong("target-name"), help: .field("rotated-secret-create-postgresql", "target-name")) var targetName: String
    @OptionGroup var settings: RotatorOptions
    @Flag(name: .customLong("skip-dry-run"), help: .field("rotated-secret-create-postgresql", "skip-dry-run")) var skipDryRun = false
    func run() async throws {
        try await runCLI {
            var f = try settings.resolvedFields()
            f["name"] = name; f["target-name"] = targetName; f["skip-dry-run"] = skipDryRun ? true : nil
            let a = try await APIClient.call("rotated-secret-create-postgresql", f, options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Created rotated secret \(name)") }
        }
    }
}

struct RotatedSecretCreateSSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotated-secret-create-ssh",
        abstract: CLIHelp.verb("rotated-secret-create-ssh", "Rotate a Linux user's password over SSH."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("rotated-secret-create-ssh", "name")) var name: String
    @Option(name: .customLong("target-name"), help: .field("rotated-secret-create-ssh", "target-name")) var targetName: String
    @OptionGroup var settings: RotatorOptions
    @Option(name: .customLong("rotator-custom-cmd"),
            help: .field("rotated-secret-create-ssh", "rotator-custom-cmd",
                         note: "'user:password' is on its stdin; {{username}} and {{password}} are substituted."))
    var customCommand: String?
    @Flag(name: .customLong("skip-dry-run"), help: .field("rotated-secret-create-ssh", "skip-dry-run")) var skipDryRun = false
    func run() async throws {
        try await runCLI {
            var f = try settings.resolvedFields()
            f["name"] = name; f["target-name"] = targetName; f["rotator-custom-cmd"] = customCommand; f["skip-dry-run"] = skipDryRun ? true : nil
            let a = try await APIClient.call("rotated-secret-create-ssh", f, options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Created rotated secret \(name)") }
        }
    }
}

struct RotatedSecretUpdatePostgreSQLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotated-secret-update-postgresql",
        abstract: CLIHelp.verb("rotated-secret-update-postgresql", "Change a PostgreSQL rotated secret's settings."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("rotated-secret-update-postgresql", "name")) var name: String
    @OptionGroup var settings: RotatorOptions
    func run() async throws {
        try await runCLI {
            var f = try settings.resolvedFields()
            f["name"] = name
            let a = try await APIClient.call("rotated-secret-update-postgresql", f, options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Updated rotated secret \(name)") }
        }
    }
}

struct RotatedSecretUpdateSSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotated-secret-update-ssh",
        abstract: CLIHelp.verb("rotated-secret-update-ssh", "Change an SSH rotated secret's settings."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("rotated-secret-update-ssh", "name")) var name: String
    @OptionGroup var settings: RotatorOptions
    @Option(name: .customLong("rotator-custom-cmd"), help: .field("rotated-secret-update-ssh", "rotator-custom-cmd")) var customCommand: String?
    func run() async throws {
        try await runCLI {
            var f = try settings.resolvedFields()
            f["name"] = name; f["rotator-custom-cmd"] = customCommand
            let a = try await APIClient.call("rotated-secret-update-ssh", f, options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Updated rotated secret \(name)") }
        }
    }
}

struct RotatedSecretListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotated-secret-list",
                                                    abstract: CLIHelp.verb("rotated-secret-list", "List rotated secrets."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("rotated-secret-list", "path")) var path: String?
    func run() async throws {
        try await runCLI { APIClient.print(try await APIClient.call("rotated-secret-list", ["path": path], options: api), options: api) }
    }
}

struct RotatedSecretGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotated-secret-get",
        abstract: CLIHelp.verb("rotated-secret-get", "Show a rotated secret's settings and status (not its value)."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("rotated-secret-get", "name")) var name: String
    func run() async throws {
        try await runCLI { APIClient.print(try await APIClient.call("rotated-secret-get", ["name": name], options: api), options: api) }
    }
}

struct GetRotatedSecretValueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get-rotated-secret-value",
        abstract: CLIHelp.verb("get-rotated-secret-value", "Read a rotated secret's username and password."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("get-rotated-secret-value", "names")) var name: String
    @Option(help: .field("get-rotated-secret-value", "version")) var version: Int?
    func run() async throws {
        try await runCLI {
            APIClient.print(try await APIClient.call("get-rotated-secret-value", ["names": name, "version": version], options: api), options: api)
        }
    }
}

struct RotateSecretCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotate-secret",
                                                    abstract: CLIHelp.verb("gateway-rotate-secret", "Rotate a secret's password now."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("gateway-rotate-secret", "name")) var name: String
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
