// `tessera operator init|unseal|seal|status`: seal management through the server's sys endpoints.
import ArgumentParser
import Foundation

struct OperatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "operator", abstract: "Initialize, unseal, seal and inspect the server.",
                                                    subcommands: [Init.self, Unseal.self, Seal.self, Status.self])

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Initialize: split the root key and create the first admin.")
        @OptionGroup var api: APIOptions
        @Option(help: "Number of key shares.") var shares = 5
        @Option(help: "Shares needed to unseal.") var threshold = 3

        func run() async throws {
            try await runCLI {
                let (status, json) = try await APIClient.send(method: .PUT, url: api.resolvedAddress + "/v1/sys/init",
                                                              body: ["secret_shares": shares, "secret_threshold": threshold])
                guard status == 200, let o = json as? [String: Any] else { throw CLIError(description: APIClient.errorText(status, json)) }
                if api.json { APIClient.print(o, options: api); return }
                let keys = o["keys_base64"] as? [String] ?? []
                for (i, k) in keys.enumerated() { print("Unseal Key \(i + 1): \(k)") }
                print("")
                print("Admin Access ID:  \(o["admin_access_id"] as? String ?? "")")
                print("Admin Access Key: \(o["admin_access_key"] as? String ?? "")")
                print("")
                print("Tessera is initialized with \(keys.count) key shares and a threshold of \(threshold).")
                print("These shares and the access key are shown once. Store them safely; Tessera keeps no copy.")
            }
        }
    }

    struct Unseal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Submit one unseal key share (or several).")
        @OptionGroup var api: APIOptions
        @Argument(help: "Key shares (base64 or hex). Read from stdin when none is given.") var keys: [String] = []
        @Flag(help: "Forget the shares given so far.") var reset = false

        func run() async throws {
            try await runCLI {
                var shares = keys
                if shares.isEmpty && !reset {
                    guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw CLIError(description: "no key share given") }
                    shares = [line]
                }
                var last: Any?
                if reset {
                    let (status, json) = try await APIClient.send(method: .PUT, url: api.resolvedAddress + "/v1/sys/unseal", body: ["reset": true])
                    guard status == 200 else { throw CLIError(description: APIClient.errorText(status, json)) }
                    last = json
                }
                for share in shares {
                    let (status, json) = try await APIClient.send(method: .PUT, url: api.resolvedAddress + "/v1/sys/unseal", body: ["key": share])
                    guard status == 200 else { throw CLIError(description: APIClient.errorText(status, json)) }
                    last = json
                }
                printStatus(last, api: api)
            }
        }
    }

    struct Seal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Seal the server (needs an admin token).")
        @OptionGroup var api: APIOptions

        func run() async throws {
            try await runCLI {
                guard let token = api.resolvedToken else { throw CLIError(description: "not authenticated: run `tessera auth` first") }
                let (status, json) = try await APIClient.send(method: .PUT, url: api.resolvedAddress + "/v1/sys/seal", body: nil,
                                                              headers: [("X-Vault-Token", token)])
                guard (200..<300).contains(status) else { throw CLIError(description: APIClient.errorText(status, json)) }
                print("Tessera is sealed.")
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the seal status.")
        @OptionGroup var api: APIOptions

        func run() async throws {
            try await runCLI {
                let (status, json) = try await APIClient.send(method: .GET, url: api.resolvedAddress + "/v1/sys/seal-status", body: nil)
                guard status == 200 else { throw CLIError(description: APIClient.errorText(status, json)) }
                printStatus(json, api: api)
                if let o = json as? [String: Any], o["sealed"] as? Bool == true { throw ExitCode(2) }
            }
        }
    }

    static func describe(_ json: Any?) -> String {
        guard let o = json as? [String: Any] else { return "" }
        return """
        Initialized:  \(o["initialized"] as? Bool ?? false)
        Sealed:       \(o["sealed"] as? Bool ?? true)
        Shares:       \(o["n"] as? Int ?? 0)
        Threshold:    \(o["t"] as? Int ?? 0)
        Progress:     \(o["progress"] as? Int ?? 0)/\(o["t"] as? Int ?? 0)
        Storage:      \(o["storage_type"] as? String ?? "")
        Version:      \(o["version"] as? String ?? "")
        """
    }
}

private func printStatus(_ json: Any?, api: APIOptions) {
    if api.json { APIClient.print(json, options: api) } else { print(OperatorCommand.describe(json)) }
}
