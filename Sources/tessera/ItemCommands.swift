// Static secret commands: create-secret, get-secret-value, update-secret-val, list-items,
// describe-item, delete-item. Flags follow the Akeyless field names.
import ArgumentParser
import Foundation

struct CreateSecretCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create-secret", abstract: CLIHelp.verb("create-secret"))
    @OptionGroup var api: APIOptions
    @Option(help: .field("create-secret", "name")) var name: String
    @Option(help: .field("create-secret", "value")) var value: String
    @Option(help: .field("create-secret", "description")) var description: String?
    @Option(name: .customLong("tag"), help: .field("create-secret", "tags")) var tags: [String] = []
    @Option(name: .customLong("max-versions"), help: .field("create-secret", "max-versions")) var maxVersions: Int?
    @Option(help: .field("create-secret", "format")) var format: String?
    @Option(name: .customLong("delete-protection"), help: .field("create-secret", "delete-protection")) var deleteProtection: Bool?

    func run() async throws {
        try await runCLI {
            let value = try SecretInput.resolve(value, flag: "--value")
            let a = try await APIClient.call("create-secret", ["name": name, "value": value, "description": description,
                                                                "tags": tags.isEmpty ? nil : tags, "max-versions": maxVersions,
                                                                "format": format, "delete_protection": deleteProtection],
                                             options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Created \((a as? [String: Any])?["name"] as? String ?? name)") }
        }
    }
}

struct GetSecretValueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get-secret-value",
                                                    abstract: CLIHelp.verb("get-secret-value", "Read one or more secret values."))
    @OptionGroup var api: APIOptions
    @Option(name: .customLong("name"), help: .field("get-secret-value", "names", note: "Repeat for several.")) var names: [String]
    @Option(help: .field("get-secret-value", "version")) var version: Int?

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
    static let configuration = CommandConfiguration(commandName: "update-secret-val",
                                                    abstract: CLIHelp.verb("update-secret-val", "Store a new version of a secret."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("update-secret-val", "name")) var name: String
    @Option(help: .field("update-secret-val", "value")) var value: String

    func run() async throws {
        try await runCLI {
            let value = try SecretInput.resolve(value, flag: "--value")
            let a = try await APIClient.call("update-secret-val", ["name": name, "value": value], options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Updated \(name)") }
        }
    }
}

struct ListItemsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-items",
                                                    abstract: CLIHelp.verb("list-items", "List the items of a folder and its sub-folders."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("list-items", "path")) var path: String = "/"
    @Flag(name: .customLong("current-folder"), help: .field("list-items", "current-folder")) var currentFolder = false
    @Option(help: .field("list-items", "filter")) var filter: String?

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
    static let configuration = CommandConfiguration(commandName: "describe-item",
                                                    abstract: CLIHelp.verb("describe-item", "Show an item's metadata and versions (never its value)."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("describe-item", "name")) var name: String

    func run() async throws {
        try await runCLI { APIClient.print(try await APIClient.call("describe-item", ["name": name], options: api), options: api) }
    }
}

struct DeleteItemCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete-item",
                                                    abstract: CLIHelp.verb("delete-item", "Delete an item, or one of its versions."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("delete-item", "name")) var name: String
    @Option(help: .field("delete-item", "version")) var version: Int = -1

    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("delete-item", ["name": name, "version": version], options: api)
            if api.json { APIClient.print(a, options: api) } else { print(version < 0 ? "Deleted \(name)" : "Deleted a version of \(name)") }
        }
    }
}

extension ArgumentHelp {
    /// A field's help with the CLI's own value syntax, e.g. `<key=value1,value2>`.
    static func field(_ verb: String, _ name: String, valueName: String) -> ArgumentHelp {
        var help = ArgumentHelp.field(verb, name)
        help.valueName = valueName
        return help
    }

    /// A field's help followed by a note about how the CLI flag differs from the API field.
    static func field(_ verb: String, _ name: String, note: String) -> ArgumentHelp {
        let text = ArgumentHelp.field(verb, name).abstract
        return ArgumentHelp(text.isEmpty ? note : text + " " + note)
    }
}
