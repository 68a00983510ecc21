// `tessera audit`: query the audit trail; `tessera audit verify`: check its hash chain.
import ArgumentParser
import Foundation

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Query the audit trail.",
                                                    subcommands: [Query.self, Verify.self], defaultSubcommand: Query.self)

    struct Query: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "query", abstract: CLIHelp.verb("audit-query", "Find events, e.g. who read /prod/db/* in the last 90 days."))
        @OptionGroup var api: APIOptions
        @Option(name: .customLong("path"), help: .field("audit-query", "path-prefix")) var path: String?
        @Option(name: .customLong("actor"), help: .field("audit-query", "access-id")) var actor: String?
        @Option(help: .field("audit-query", "action")) var action: String?
        @Option(help: .field("audit-query", "result")) var result: String?
        @Option(help: .field("audit-query", "since")) var since: String?
        @Option(help: .field("audit-query", "until")) var until: String?
        @Option(help: .field("audit-query", "limit")) var limit: Int = 1000

        func run() async throws {
            try await runCLI {
                let a = try await APIClient.call("audit-query", ["path-prefix": path, "access-id": actor, "action": action,
                                                                  "result": result, "since": since, "until": until, "limit": limit],
                                                 options: api)
                if api.json { APIClient.print(a, options: api); return }
                let events = (a as? [String: Any])?["events"] as? [[String: Any]] ?? []
                for e in events {
                    let fields = [e["seq_num"].map { "\($0)" } ?? "", e["timestamp"] as? String ?? "", e["access_id"] as? String ?? "-",
                                  e["action"] as? String ?? "", e["path"] as? String ?? "", e["result"] as? String ?? "",
                                  e["status"].map { "\($0)" } ?? "", e["remote_addr"] as? String ?? ""]
                    print(fields.joined(separator: "\t"))
                }
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify", abstract: CLIHelp.verb("audit-verify", "Verify the audit hash chain; names the first bad event."))
        @OptionGroup var api: APIOptions

        func run() async throws {
            try await runCLI {
                let a = try await APIClient.call("audit-verify", [:], options: api)
                let o = a as? [String: Any] ?? [:]
                if api.json { APIClient.print(a, options: api) } else if o["ok"] as? Bool == true {
                    print("OK: \(o["events_checked"] ?? 0) events verified; the chain is intact.")
                } else {
                    print("FAILED at event \(o["first_bad_sequence"] ?? "?"): \(o["reason"] as? String ?? "")")
                    print("The chain verifies up to event \(o["last_verified_sequence"] ?? 0).")
                }
                if o["ok"] as? Bool != true { throw ExitCode(2) }
            }
        }
    }
}
