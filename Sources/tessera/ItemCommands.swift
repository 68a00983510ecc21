// Static secret commands: create-secret, get-secret-value, update-secret-val, list-items,
// describe-item, delete-item. Flags follow the Akeyless field names.
import ArgumentParser
import Foundation

struct CreateSecretCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create-secret", abstract: "Create a static secret.")
    @OptionGroup var api: APIOptions
    @Option var name: String
    @Option var value: String
    @Option var description: String?
    @Option(name: .customLong("tag")) var tags: [String] = []
    @Option(name: .customLong("max-versions")) var maxVersions: Int?
    @Option var format: String?
    @Option(name: .customLong("delete-protection")) var deleteProtection: Bool?

    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("create-secret", ["name": name, "value": value, "description": description,
                                                                "tags": tags.isEmpty ? nil : tags, "max-versions": maxVersions,
                                                                "format": format, "delete_protection": deleteProtection],
                                             options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Created \((a as? [String: Any])?["name"] as? String ?? name)") }
        }
    }
}

struct GetSecretValueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get-secret-value", abstract: "Read one or more secret values.")
    @OptionGroup var api: APIOptions
    @Option(name: .customLong("name"), help: "Secret name; repeat for several.") var names: [String]
    @Option var version: Int?

    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("get-secret-value", ["names": names, "version": version], options: api)
            if !api.json, names.count == 1, let o = a as? [String: Any], let v = o[names[0]] as? String {
                print(v)
            } else {
                APIClient.print(a, options: api)
            }
        }
    }
}

struct UpdateSecretValCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "update-secret-val", abstract: "Store a new version of a secret.")
    @OptionGroup var api: APIOptions
    @Option var name: String
    @Option var value: String

    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("update-secret-val", ["name": name, "value": value], options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Updated \(name)") }
        }
    }
}

struct ListItemsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-items", abstract: "List the items of a folder and its sub-folders.")
    @OptionGroup var api: APIOptions
    @Option var path: String = "/"
    @Flag(name: .customLong("current-folder")) var currentFolder = false
    @Option var filter: String?

    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("list-items", ["path": path, "current-folder": currentFolder, "filter": filter], options: api)
            if api.json { APIClient.print(a, options: api); return }
            let o = a as? [String: Any] ?? [:]
            for f in o["folders"] as? [String] ?? [] { print(f + "/") }
            for i in o["items"] as? [[String: Any]] ?? [] { print(i["item_name"] as? String ?? "") }
        }
    }
}

struct DescribeItemCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "describe-item", abstract: "Show an item's metadata and versions (never its value).")
    @OptionGroup var api: APIOptions
    @Option var name: String

    func run() async throws {
        try await runCLI { APIClient.print(try await APIClient.call("describe-item", ["name": name], options: api), options: api) }
    }
}

struct DeleteItemCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete-item", abstract: "Delete an item, or one of its versions.")
    @OptionGroup var api: APIOptions
    @Option var name: String
    @Option(help: "-1 = the whole item (default), 0 = the latest version, N = version N.") var version: Int = -1

    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("delete-item", ["name": name, "version": version], options: api)
            if api.json { APIClient.print(a, options: api) } else { print(version < 0 ? "Deleted \(name)" : "Deleted a version of \(name)") }
        }
    }
}
