// `tessera explain`: whether an identity may use a capability on a path and which rules decide
// it, answered by the server without doing anything.
import ArgumentParser
import Foundation

struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "explain", abstract: CLIHelp.verb("explain"))
    @OptionGroup var api: APIOptions
    @Option(name: .customLong("access-id"), help: .field("explain", "access-id")) var accessId: String?
    @Option(help: .field("explain", "path")) var path: String
    @Option(help: .field("explain", "capability")) var capability: String
    @Option(name: .customLong("rule-type"), help: .field("explain", "rule-type")) var ruleType: String?

    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("explain", ["access-id": accessId, "path": path, "capability": capability,
                                                         "rule-type": ruleType], options: api)
            let o = a as? [String: Any] ?? [:]
            if api.json { APIClient.print(a, options: api); return }
            print("\(o["decision"] as? String ?? "?"): \(o["evidence"] as? String ?? "")")
            if o["allowed"] as? Bool != true { throw ExitCode(3) }
        }
    }
}
