// `tessera server`: runs the server from a config file and flags; `--dev` runs a throwaway,
// initialized and unsealed server, as `vault server -dev` does.
import ArgumentParser
import Foundation
import Logging
import TesseraCore
import TesseraCrypto
import TesseraEngines
import TesseraServer

struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "server", abstract: "Run the Tessera server.")

    @Option(help: "JSON config file with listen, data_dir, storage, log_level, unseal_key_file.")
    var config: String?

    @Option(help: "Listen address HOST:PORT (default 127.0.0.1:8200).")
    var listen: String?

    @Option(name: .customLong("data-dir"), help: "Data directory (default ./tessera-data).")
    var dataDir: String?

    @Option(help: "Storage engine: sqlite (embedded, the default).")
    var storage: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    @Option(name: .customLong("unseal-key-file"), help: "Auto-unseal key file (mode 0600 required).")
    var unsealKeyFile: String?

    @Option(name: .customLong("upstream-timeout"), help: "Seconds to wait for an upstream Vault before answering 504 (default 10).")
    var upstreamTimeout: Int?

    @Option(name: .customLong("lease-revoke-attempts"), help: "Revocation attempts before a lease becomes irrevocable (default 6).")
    var leaseRevokeAttempts: Int?

    @Option(help: "process (default: acknowledged writes survive the server being killed) or fsync (also an OS crash or power loss).")
    var durability: String?

    @Flag(help: "Development mode: temporary storage, initialized and unsealed, admin credentials printed.")
    var dev = false

    @Option(name: .customLong("dev-access-id"), help: "Admin access id in dev mode (p-…).")
    var devAccessId: String?

    @Option(name: .customLong("dev-access-key"), help: "Admin access key in dev mode.")
    var devAccessKey: String?

    func run() async throws {
        var options = ServerOptions()
        do {
            if let config { try options.apply(configFile: config) }
            if let listen { try options.setListen(listen) }
            if let dataDir { options.dataDirectory = dataDir }
            if let storage { try options.setStorage(storage) }
            if let logLevel { try options.setLogLevel(logLevel) }
            if let unsealKeyFile { options.unsealKeyFile = unsealKeyFile }
            if let durability { try options.setDurability(durability) }
            if let leaseRevokeAttempts {
                guard leaseRevokeAttempts > 0 else { throw TesseraError.badRequest("--lease-revoke-attempts must be positive") }
                options.leaseRevokeAttempts = leaseRevokeAttempts
            }
            if let pause = ProcessInfo.processInfo.environment["TESSERA_TEST_ROTATION_PAUSE_MS"].flatMap(Int.init), pause > 0 {
                options.rotationPauseAfterApply = .milliseconds(pause)
            }
            if let upstreamTimeout {
                guard upstreamTimeout > 0 else { throw TesseraError.badRequest("--upstream-timeout must be positive") }
                options.upstreamTimeout = .seconds(upstreamTimeout)
            }
        } catch let e as TesseraError {
            throw ValidationError(e.message)
        }
        if (devAccessId != nil || devAccessKey != nil) && !dev {
            throw ValidationError("--dev-access-id and --dev-access-key need --dev")
        }
        options.dev = dev
        var devDirectory: String?
        if dev {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-dev-" + UUID().uuidString.lowercased()).path
            options.dataDirectory = dir
            options.unsealKeyFile = nil
            devDirectory = dir
        }
        let level = options.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tessera")
        let tessera: Tessera
        do {
            tessera = try await Tessera.open(options: options, logger: logger)
        } catch let e as TesseraError {
            FileHandle.standardError.write(Data("Error: \(e.message)\n".utf8))
            throw ExitCode(1)
        }
        defer { if let devDirectory { try? FileManager.default.removeItem(atPath: devDirectory) } }
        var banner = ""
        if dev {
            let result: (barrier: Barrier.Initialization, admin: IssuedAuthMethod)
            do {
                result = try await tessera.initialize(shares: 1, threshold: 1, adminAccessId: devAccessId, adminAccessKey: devAccessKey)
            } catch let e as TesseraError {
                await tessera.shutdown()
                FileHandle.standardError.write(Data("Error: \(e.message)\n".utf8))
                throw ExitCode(1)
            }
            banner = """
            ==> Tessera server started in DEV MODE. Do not use it in production.

            Storage is TEMPORARY: \(options.dataDirectory)
            It is deleted when the server stops. The server is initialized and unsealed.

                Address:     http://\(options.host):\(options.port)
                Access ID:   \(result.admin.method.accessId)
                Access Key:  \(result.admin.accessKey)
                Unseal Key:  \(result.barrier.shares.first?.encoded ?? "")

            Log in with:
                tessera auth --address http://\(options.host):\(options.port) --access-id \(result.admin.method.accessId) --access-key '<access key>'
            Vault clients can use VAULT_ADDR=http://\(options.host):\(options.port) VAULT_TOKEN='<access id>..<access key>'

            """
        }
        let host = options.host
        let port = options.port
        let finalBanner = banner
        let summary = "storage: \(options.storage), data: \(options.dataDirectory)"
        try await tessera.serve(onServerRunning: { channel in
            let actual = channel.localAddress?.port ?? port
            var text = finalBanner.isEmpty ? "" : finalBanner + "\n"
            text += "==> Tessera server listening on http://\(host):\(actual) (\(summary))\n"
            FileHandle.standardOutput.write(Data(text.utf8))
        })
    }
}
