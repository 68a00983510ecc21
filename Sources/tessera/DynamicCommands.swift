// Dynamic-secret commands: dynamic-secret-create-postgresql, get-dynamic-secret-value,
// dynamic-secret-tmp-creds-get|update|delete, and `leases` (with a force revoke for operators).
import ArgumentParser
import Foundation

struct DynamicSecretCreatePostgreSQLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dynamic-secret-create-postgresql",
        abstract: CLIHelp.verb("dynamic-secret-create-postgresql", "Create a PostgreSQL dynamic secret (producer)."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("dynamic-secret-create-postgresql", "name")) var name: String
    @Option(name: .customLong("target-name"), help: .field("dynamic-secret-create-postgresql", "target-name")) var targetName: String
    @Option(name: .customLong("creation-statements"),
            help: .field("dynamic-secret-create-postgresql", "creation-statements",
                         note: "Default: CREATE ROLE {{name}} WITH LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}};"))
    var creationStatements: String?
    @Option(name: .customLong("revocation-statement"), help: .field("dynamic-secret-create-postgresql", "revocation-statement")) var revocationStatement: String?
    @Option(name: .customLong("user-ttl"), help: .field("dynamic-secret-create-postgresql", "user-ttl")) var userTTL: String = "60m"
    @Option(name: .customLong("max-ttl"), help: .field("dynamic-secret-create-postgresql", "max-ttl")) var maxTTL: String?
    @Option(name: .customLong("password-length"), help: .field("dynamic-secret-create-postgresql", "password-length")) var passwordLength: Int?
    @Option(name: .customLong("username-template"), help: .field("dynamic-secret-create-postgresql", "username-template")) var usernameTemplate: String?
    @Option(name: .customLong("max-leases"), help: .field("dynamic-secret-create-postgresql", "max-leases")) var maxLeases: Int?

    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("dynamic-secret-create-postgresql", [
                "name": name, "target-name": targetName, "creation-statements": creationStatements,
                "revocation-statement": revocationStatement, "user-ttl": userTTL, "max-ttl": maxTTL,
                "password-length": passwordLength, "username-template": usernameTemplate, "max-leases": maxLeases,
            ], options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Created dynamic secret \(name)") }
        }
    }
}

struct GetDynamicSecretValueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get-dynamic-secret-value",
                                                    abstract: CLIHelp.verb("get-dynamic-secret-value", "Issue short-lived credentials."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("get-dynamic-secret-value", "name")) var name: String
    func run() async throws {
        try await runCLI { APIClient.print(try await APIClient.call("get-dynamic-secret-value", ["name": name], options: api), options: api) }
    }
}

struct DynamicSecretTmpCredsGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dynamic-secret-tmp-creds-get",
        abstract: CLIHelp.verb("dynamic-secret-tmp-creds-get", "List a dynamic secret's live credentials."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("dynamic-secret-tmp-creds-get", "name")) var name: String
    func run() async throws {
        try await runCLI { APIClient.print(try await APIClient.call("dynamic-secret-tmp-creds-get", ["name": name], options: api), options: api) }
    }
}

struct DynamicSecretTmpCredsUpdateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dynamic-secret-tmp-creds-update",
        abstract: CLIHelp.verb("dynamic-secret-tmp-creds-update", "Renew credentials (capped at the max TTL)."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("dynamic-secret-tmp-creds-update", "name")) var name: String
    @Option(name: .customLong("tmp-creds-id"), help: .field("dynamic-secret-tmp-creds-update", "tmp-creds-id")) var tmpCredsId: String
    @Option(name: .customLong("new-ttl-min"), help: .field("dynamic-secret-tmp-creds-update", "new-ttl-min")) var newTTLMinutes: Int?
    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("dynamic-secret-tmp-creds-update", ["name": name, "tmp-creds-id": tmpCredsId,
                                                                                 "new-ttl-min": newTTLMinutes], options: api)
            if api.json { APIClient.print(a, options: api); return }
            let o = a as? [String: Any] ?? [:]
            print("Renewed until \(o["expiration_date"] as? String ?? "?")")
            if let w = o["warning"] as? String { FileHandle.standardError.write(Data("Warning: \(w)\n".utf8)) }
        }
    }
}

struct DynamicSecretTmpCredsDeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dynamic-secret-tmp-creds-delete",
        abstract: CLIHelp.verb("dynamic-secret-tmp-creds-delete", "Revoke credentials now (one, or all with --revoke-all)."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("dynamic-secret-tmp-creds-delete", "name")) var name: String
    @Option(name: .customLong("tmp-creds-id"), help: .field("dynamic-secret-tmp-creds-delete", "tmp-creds-id")) var tmpCredsId: String?
    @Flag(name: .customLong("revoke-all"), help: .field("dynamic-secret-tmp-creds-delete", "revoke-all")) var revokeAll = false
    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("dynamic-secret-tmp-creds-delete", ["name": name, "tmp-creds-id": tmpCredsId,
                                                                                 "revoke-all": revokeAll ? true : nil], options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Revoked \((a as? [String: Any])?["revoked"] ?? 0) credential(s)") }
        }
    }
}

struct LeasesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "leases", abstract: "List leases by state and prefix; force-revoke an irrevocable one.",
                                                    subcommands: [List.self, Revoke.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: CLIHelp.verb("lease-list", "List leases."))
        @OptionGroup var api: APIOptions
        @Option(help: .field("lease-list", "state")) var state: String?
        @Option(help: .field("lease-list", "prefix")) var prefix: String?
        func run() async throws {
            try await runCLI {
                let a = try await APIClient.call("lease-list", ["state": state, "prefix": prefix], options: api)
                if api.json { APIClient.print(a, options: api); return }
                for l in (a as? [String: Any])?["leases"] as? [[String: Any]] ?? [] {
                    print([l["lease_id"], l["state"], l["username"], l["expire_time"], l["last_error"]].map { "\($0 ?? "")" }.joined(separator: "\t"))
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke",
            abstract: CLIHelp.verb("lease-revoke", "Revoke a lease; --force marks it revoked even if the target cannot be reached."))
        @OptionGroup var api: APIOptions
        @Option(name: .customLong("lease-id"), help: .field("lease-revoke", "lease-id")) var leaseId: String
        @Flag(help: .field("lease-revoke", "force")) var force = false
        func run() async throws {
            try await runCLI {
                let a = try await APIClient.call("lease-revoke", ["lease-id": leaseId, "force": force], options: api)
                if api.json { APIClient.print(a, options: api) } else { print("Revoked \(leaseId)") }
            }
        }
    }
}
