// Target and Universal Secret Connector commands: `target create hashi-vault|get|list|delete`,
// `create-usc`, and `usc list|get|create|update|delete`. Flags follow the Akeyless names.
import TesseraCore
import ArgumentParser
import Foundation

struct TargetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "target", abstract: "Manage targets (connections to external systems).",
                                                    subcommands: [Create.self, Get.self, List.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a target.", subcommands: [HashiVault.self])
    }

    struct HashiVault: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hashi-vault",
            abstract: CLIHelp.verb("target-create-hashi-vault", "A HashiCorp Vault / OpenBao target; the connection is checked."))
        @OptionGroup var api: APIOptions
        @Option(help: .field("target-create-hashi-vault", "name")) var name: String
        @Option(name: .customLong("hashi-url"), help: .field("target-create-hashi-vault", "hashi-url")) var hashiURL: String
        @Option(name: .customLong("vault-token"), help: .field("target-create-hashi-vault", "vault-token")) var vaultToken: String
        @Option(help: .field("target-create-hashi-vault", "namespace")) var namespace: [String] = []
        @Option(name: .customLong("kv-mount"), help: .field("target-create-hashi-vault", "kv-mount")) var kvMount: String?
        @Option(name: .customLong("ca-certificate"), help: "A PEM CA file (@FILE or a path) for an https Vault.") var caCertificate: String?

        func run() async throws {
            try await runCLI {
                let vaultToken = try SecretInput.resolve(vaultToken, flag: "--vault-token")
                let a = try await APIClient.call("target-create-hashi-vault", ["name": name, "hashi-url": hashiURL, "vault-token": vaultToken,
                                                                               "namespace": namespace.first, "kv-mount": kvMount,
                                                                               "ca-certificate": try caCertificate.map(readPEMArgument)],
                                                 options: api)
                if api.json { APIClient.print(a, options: api) } else { print("Created target \(name)") }
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: CLIHelp.verb("target-get", "Show a target (never its credentials)."))
        @OptionGroup var api: APIOptions
        @Option(help: .field("target-get", "name")) var name: String
        func run() async throws {
            try await runCLI { APIClient.print(try await APIClient.call("target-get", ["name": name], options: api), options: api) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: CLIHelp.verb("target-list", "List targets."))
        @OptionGroup var api: APIOptions
        func run() async throws {
            try await runCLI { APIClient.print(try await APIClient.call("target-list", [:], options: api), options: api) }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: CLIHelp.verb("target-delete", "Delete a target (refused while a connector uses it)."))
        @OptionGroup var api: APIOptions
        @Option(help: .field("target-delete", "name")) var name: String
        func run() async throws {
            try await runCLI {
                let a = try await APIClient.call("target-delete", ["name": name], options: api)
                if api.json { APIClient.print(a, options: api) } else { print("Deleted target \(name)") }
            }
        }
    }
}

struct CreateUSCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create-usc",
                                                    abstract: CLIHelp.verb("create-usc", "Create a Universal Secret Connector over a target."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("create-usc", "name")) var name: String
    @Option(name: .customLong("target-to-associate"), help: .field("create-usc", "target-to-associate")) var target: String
    @Option(name: .customLong("usc-prefix"), help: .field("create-usc", "usc-prefix")) var prefix: String?
    @Option(help: .field("create-usc", "description")) var description: String?

    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("create-usc", ["name": name, "target-to-associate": target, "usc-prefix": prefix,
                                                            "description": description], options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Created connector \(name)") }
        }
    }
}

struct USCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "usc", abstract: "Read and write secrets through a connector, in place.",
                                                    subcommands: [List.self, Get.self, Create.self, Update.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: CLIHelp.verb("usc-list", "List the connector's secrets."))
        @OptionGroup var api: APIOptions
        @Option(name: .customLong("usc-name"), help: .field("usc-list", "usc-name")) var uscName: String
        func run() async throws {
            try await runCLI {
                let a = try await APIClient.call("usc-list", ["usc-name": uscName], options: api)
                if api.json { APIClient.print(a, options: api); return }
                for s in (a as? [String: Any])?["secrets_list"] as? [[String: Any]] ?? [] { print(s["secret_id"] as? String ?? "") }
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: CLIHelp.verb("usc-get", "Read a secret; prints its data as JSON."),
                                                        discussion: "Without --json, the data is printed decoded.")
        @OptionGroup var api: APIOptions
        @Option(name: .customLong("usc-name"), help: .field("usc-get", "usc-name")) var uscName: String
        @Option(name: .customLong("secret-id"), help: .field("usc-get", "secret-id")) var secretId: String
        @Option(name: .customLong("version-id"), help: .field("usc-get", "version-id")) var versionId: Int?
        func run() async throws {
            try await runCLI {
                let a = try await APIClient.call("usc-get", ["usc-name": uscName, "secret-id": secretId, "version-id": versionId], options: api)
                if api.json { APIClient.print(a, options: api); return }
                let encoded = (a as? [String: Any])?["value"] as? String ?? ""
                print(Data(base64Encoded: encoded).map { String(decoding: $0, as: UTF8.self) } ?? encoded)
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: CLIHelp.verb("usc-create", "Create a secret (a JSON object is stored as its keys, other text as {\"value\": …})."))
        @OptionGroup var api: APIOptions
        @Option(name: .customLong("usc-name"), help: .field("usc-create", "usc-name")) var uscName: String
        @Option(name: .customLong("secret-name"), help: .field("usc-create", "secret-name")) var secretName: String
        @Option(help: .field("usc-create", "value")) var value: String
        func run() async throws {
            try await runCLI {
                let value = try SecretInput.resolve(value, flag: "--value")
                let a = try await APIClient.call("usc-create", ["usc-name": uscName, "secret-name": secretName, "value": value], options: api)
                if api.json { APIClient.print(a, options: api) } else { print("Created \(secretName) in \(uscName)") }
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: CLIHelp.verb("usc-update", "Write a new version of an existing secret."))
        @OptionGroup var api: APIOptions
        @Option(name: .customLong("usc-name"), help: .field("usc-update", "usc-name")) var uscName: String
        @Option(name: .customLong("secret-id"), help: .field("usc-update", "secret-id")) var secretId: String
        @Option(help: .field("usc-update", "value")) var value: String
        func run() async throws {
            try await runCLI {
                let value = try SecretInput.resolve(value, flag: "--value")
                let a = try await APIClient.call("usc-update", ["usc-name": uscName, "secret-id": secretId, "value": value], options: api)
                if api.json { APIClient.print(a, options: api) } else { print("Updated \(secretId) in \(uscName)") }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: CLIHelp.verb("usc-delete", "Delete a secret (its newest version; all with --force-delete)."))
        @OptionGroup var api: APIOptions
        @Option(name: .customLong("usc-name"), help: .field("usc-delete", "usc-name")) var uscName: String
        @Option(name: .customLong("secret-id"), help: .field("usc-delete", "secret-id")) var secretId: String
        @Flag(name: .customLong("force-delete"), help: .field("usc-delete", "force-delete")) var force = false
        func run() async throws {
            try await runCLI {
                let a = try await APIClient.call("usc-delete", ["usc-name": uscName, "secret-id": secretId, "force-delete": force], options: api)
                if api.json { APIClient.print(a, options: api) } else { print("Deleted \(secretId) in \(uscName)") }
            }
        }
    }
}

struct TargetCreateDBCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "target-create-db",
        abstract: CLIHelp.verb("target-create-db", "Create a database target (PostgreSQL); the login is checked."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("target-create-db", "name")) var name: String
    @Option(name: .customLong("db-type"), help: .field("target-create-db", "db-type")) var dbType: String = "postgres"
    @Option(help: .field("target-create-db", "host")) var host: String = "127.0.0.1"
    @Option(help: .field("target-create-db", "port")) var port: Int = 5432
    @Option(name: .customLong("db-name"), help: .field("target-create-db", "db-name")) var dbName: String = "postgres"
    @Option(name: .customLong("user-name"), help: .field("target-create-db", "user-name")) var userName: String
    @Option(help: .field("target-create-db", "pwd")) var pwd: String
    @Option(name: .customLong("ssl-mode"), help: .field("target-create-db", "ssl-mode")) var sslMode: String?
    @Option(name: .customLong("ssl-certificate"), help: "A PEM CA file (@FILE or a path) for verify-ca or verify-full.") var sslCertificate: String?
    @Option(name: .customLong("db-server-name"), help: .field("target-create-db", "db-server-name")) var dbServerName: String?

    func run() async throws {
        try await runCLI {
            let pwd = try SecretInput.resolve(pwd, flag: "--pwd")
            let a = try await APIClient.call("target-create-db", ["name": name, "db-type": dbType, "host": host, "port": port,
                                                                  "db-name": dbName, "user-name": userName, "pwd": pwd,
                                                                  "ssl-mode": sslMode, "ssl-certificate": try sslCertificate.map(readPEMArgument),
                                                                  "db-server-name": dbServerName], options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Created target \(name)") }
        }
    }
}

/// A PEM argument: the file at `@PATH` or `PATH`, or the PEM text itself.
func readPEMArgument(_ argument: String) throws -> String {
    if argument.contains("-----BEGIN") { return argument }
    let path = argument.hasPrefix("@") ? String(argument.dropFirst()) : argument
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8), text.contains("-----BEGIN") else {
        throw CLIError(description: "cannot read a PEM certificate from \(path)")
    }
    return text
}
