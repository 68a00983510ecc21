// `tessera agent`: the edge cache near the workloads (see `TesseraEdge`). It logs in to the
// central server with its own identity, listens on loopback or a unix socket, and serves the
// Vault and native APIs to local clients, answering their reads from its sealed cache.
import ArgumentParser
import Foundation
import Logging
import TesseraEdge

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Run an edge cache that serves reads through an outage and audits every one centrally.",
        discussion: """
            The agent's own identity (--access-id with the login flags of `auth`, or a token from --token, \
            $TESSERA_TOKEN or the profile) needs `read` and `create` on `sys-rule /sys/edge`. Clients send \
            their own tokens; each cached read is authorized with the client's central rules and audited \
            centrally. See docs/runtime.md.
            """)
    @OptionGroup var api: APIOptions
    @Option(help: "Where to listen: HOST:PORT on loopback (default 127.0.0.1:8300) or unix:/path.") var listen = "127.0.0.1:8300"
    @Option(name: .customLong("cache-dir"), help: "The folder of the sealed cache and the audit queue.") var cacheDir: String
    @Option(name: .customLong("cache-key-file"),
            help: "A file with the cache key (64 hex digits), outside --cache-dir. Without it, each run has its own key.")
    var cacheKeyFile: String?
    @Option(name: .customLong("max-staleness"), help: "Seconds a cached read may be served after the central server was last heard from (default 86400).")
    var maxStaleness: Int = 86_400
    @Option(help: "Seconds after which a cached read is checked again while the change stream is down (default 60).")
    var revalidate: Int = 60
    @Option(name: .customLong("access-id"), help: "The agent's auth method, to log in (and again when its token is refused).")
    var accessId: String?
    @OptionGroup var login: LoginOptions

    func run() async throws {
        try await runCLI {
            guard (1...(365 * 86_400)).contains(maxStaleness), (1...86_400).contains(revalidate) else {
                throw CLIError(description: "--max-staleness must be 1 s to 1 year and --revalidate 1 s to 1 day")
            }
            let api = self.api
            let tokenSource: @Sendable () async throws -> String
            if let accessId {
                let body = try login.body(accessId: accessId)
                let sendable = try JSONSerialization.data(withJSONObject: body.compactMapValues { $0 })
                tokenSource = {
                    let fields = (try JSONSerialization.jsonObject(with: sendable) as? [String: Any]) ?? [:]
                    let answer = try await APIClient.call("auth", fields.mapValues { $0 as Any? }, options: api, withToken: false)
                    guard let token = (answer as? [String: Any])?["token"] as? String else {
                        throw CLIError(description: "the central server did not return a token")
                    }
                    return token
                }
            } else {
                guard let token = api.resolvedToken else {
                    throw CLIError(description: "the agent needs its own identity: --access-id, --token, $TESSERA_TOKEN or a profile")
                }
                tokenSource = { token }
            }
            let options = EdgeAgentOptions(central: api.resolvedAddress, caCert: api.resolvedCACert, listen: listen, cacheDirectory: cacheDir,
                                           keyFile: cacheKeyFile, maxStaleness: TimeInterval(maxStaleness),
                                           revalidate: TimeInterval(revalidate), agentToken: tokenSource)
            var logger = Logger(label: "tessera.agent")
            logger.logLevel = .info
            let agent = try EdgeAgent(options: options, logger: logger)
            try await agent.run { address in
                FileHandle.standardError.write(Data("tessera agent listening on \(address), central \(options.central)\n".utf8))
            }
        }
    }
}
