// `tessera vault-mount create|list|delete`: the mounts through which Vault clients reach items.
import ArgumentParser
import Foundation

struct VaultMountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "vault-mount", abstract: "Manage the Vault-compatible mounts.",
                                                    subcommands: [Create.self, List.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: CLIHelp.verb("vault-mount-create", "Mount a folder of items for Vault clients, e.g. --path secret/ --type kv-v2."))
        @OptionGroup var api: APIOptions
        @Option(help: .field("vault-mount-create", "path")) var path: String
        @Option(help: .field("vault-mount-create", "type")) var type: String = "kv-v2"
        @Option(help: .field("vault-mount-create", "folder")) var folder: String?
        @Option(help: .field("vault-mount-create", "description")) var description: String?
        @Option(name: .customLong("usc-name"), help: .field("vault-mount-create", "usc-name")) var uscName: String?

        func run() async throws {
            try await runCLI {
                let a = try await APIClient.call("vault-mount-create", ["path": path, "type": type, "folder": folder,
                                                                        "description": description, "usc-name": uscName], options: api)
                if api.json { APIClient.print(a, options: api); return }
                let o = a as? [String: Any] ?? [:]
                print("Mounted \(o["path"] as? String ?? path) (\(o["type"] as? String ?? type)) over \(o["folder"] as? String ?? "")")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: CLIHelp.verb("vault-mount-list", "List mounts."))
        @OptionGroup var api: APIOptions

        func run() async throws {
            try await runCLI {
                let a = try await APIClient.call("vault-mount-list", [:], options: api)
                if api.json { APIClient.print(a, options: api); return }
                for m in (a as? [String: Any])?["mounts"] as? [[String: Any]] ?? [] {
                    print([m["path"], m["type"], m["folder"]].map { "\($0 ?? "")" }.joined(separator: "\t"))
                }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: CLIHelp.verb("vault-mount-delete", "Remove a mount (its items stay)."))
        @OptionGroup var api: APIOptions
        @Option(help: .field("vault-mount-delete", "path")) var path: String

        func run() async throws {
            try await runCLI {
                let a = try await APIClient.call("vault-mount-delete", ["path": path], options: api)
                if api.json { APIClient.print(a, options: api) } else { print("Unmounted \(path)") }
            }
        }
    }
}
