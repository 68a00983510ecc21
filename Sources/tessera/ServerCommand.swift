// `tessera server`: runs the server from a config file and flags; `--dev` runs a throwaway,
// initialized and unsealed server, as `vault server -dev` does.
import ArgumentParser
import Foundation
import Logging
import TesseraCore
import TesseraCrypto
import TesseraEngines
import TesseraServer
import TesseraStore

struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "server", abstract: "Run the Tessera server.")

    @Option(help: "JSON config file with listen, data_dir, storage, log_level, unseal_key_file.")
    var config: String?

    @Option(help: "Listen address HOST:PORT (default 127.0.0.1:8200).")
    var listen: String?

    @Option(name: .customLong("data-dir"), help: "Data directory (default ./tessera-data).")
    var dataDir: String?

    @Option(help: "Storage engine: sqlite (embedded, the default) or postgresql (several nodes on one database).")
    var storage: String?

    @Option(name: .customLong("postgresql-url"),
            help: "With --storage postgresql: postgres://USER@HOST:PORT/DB?sslmode=verify-full&sslrootcert=CA.pem (no password here: use PGPASSWORD or postgresql_password_file).")
    var postgresqlURL: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: "standard (default) or json (one JSON object per line).")
    var logFormat: String?

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

    @Flag(name: .customLong("dev-tls"), help: "With --dev: serve HTTPS with a throwaway CA and certificate written to the dev folder.")
    var devTLS = false

    @Option(name: .customLong("tls-cert-file"), help: "PEM server certificate, optionally followed by its chain; enables HTTPS.")
    var tlsCertFile: String?

    @Option(name: .customLong("tls-key-file"), help: "PEM private key of the server certificate.")
    var tlsKeyFile: String?

    @Option(name: .customLong("tls-client-ca-file"), help: "PEM CAs that client certificates must chain to; clients are asked for one.")
    var tlsClientCAFile: String?

    @Option(name: .customLong("tls-min-version"), help: "tls12 (default) or tls13.")
    var tlsMinVersion: String?

    @Option(name: .customLong("tls-require-and-verify-client-cert"),
            help: "With a client CA: true (default) refuses clients without a certificate; false lets them in anonymously.")
    var tlsRequireClientCert: Bool?

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
            if let postgresqlURL {
                // An argument is visible to every user of the machine (ps, /proc).
                guard !PostgresSettings.hasPassword(postgresqlURL) else {
                    throw TesseraError.badRequest("--postgresql-url must not hold a password (ps shows arguments): set PGPASSWORD or postgresql_password_file")
                }
                options.postgresqlURL = postgresqlURL
            }
            if let logLevel { try options.setLogLevel(logLevel) }
            if let logFormat { try options.setLogFormat(logFormat) }
            if let unsealKeyFile { options.unsealKeyFile = unsealKeyFile }
            if let durability { try options.setDurability(durability) }
            if let tlsCertFile { options.tlsCertFile = tlsCertFile }
            if let tlsKeyFile { options.tlsKeyFile = tlsKeyFile }
            if let tlsClientCAFile { options.tlsClientCAFile = tlsClientCAFile }
            if let tlsMinVersion { options.tlsMinVersion = try TLSSettings.MinimumVersion(config: tlsMinVersion) }
            if let tlsRequireClientCert { options.tlsRequireClientCert = tlsRequireClientCert }
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
        // A PostgreSQL URL with the default storage would be ignored, and the node would serve an
        // empty SQLite store of its own: refuse that instead.
        if options.storage == "sqlite", options.postgresqlURL != nil {
            throw ValidationError("a PostgreSQL URL is set but the storage is sqlite: add --storage postgresql (or \"storage\": \"postgresql\")")
        }
        if (devAccessId != nil || devAccessKey != nil || devTLS) && !dev {
            throw ValidationError("--dev-access-id, --dev-access-key and --dev-tls need --dev")
        }
        if devTLS && (options.tlsCertFile != nil || options.tlsKeyFile != nil) {
            throw ValidationError("--dev-tls makes its own certificate: leave out --tls-cert-file and --tls-key-file")
        }
        options.dev = dev
        var devDirectory: String?
        var devCAFile: String?
        if dev {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-dev-" + UUID().uuidString.lowercased()).path
            options.dataDirectory = dir
            options.unsealKeyFile = nil
            devDirectory = dir
            if devTLS {
                do {
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                    let files = try DevTLS.write(to: dir, host: options.host)
                    options.tlsCertFile = files.certFile
                    options.tlsKeyFile = files.keyFile
                    devCAFile = files.caFile
                } catch {
                    try? FileManager.default.removeItem(atPath: dir)
                    throw ValidationError("cannot write the dev TLS certificate: \(error)")
                }
            }
        }
        let level = options.logLevel
        let json = options.logFormat == "json"
        LoggingSystem.bootstrap { label in
            if json { return JSONLogHandler(label: label, level: level) }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tessera")
        let tessera: Tessera
        do {
            tessera = try await Tessera.open(options: options, logger: logger)
        } catch let e as TesseraError {
            if let devDirectory { try? FileManager.default.removeItem(atPath: devDirectory) }
            FileHandle.standardError.write(Data("Error: \(e.message)\n".utf8))
            throw ExitCode(1)
        }
        defer { if let devDirectory { try? FileManager.default.removeItem(atPath: devDirectory) } }
        let scheme = tessera.tls == nil ? "http" : "https"
        let address = "\(scheme)://\(options.host.contains(":") ? "[\(options.host)]" : options.host):\(options.port)"
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

                Address:     \(address)
                Access ID:   \(result.admin.method.accessId)
                Access Key:  \(result.admin.accessKey)
                Unseal Key:  \(result.barrier.shares.first?.encoded ?? "")

            """
            if let devCAFile {
                banner += """
                The server speaks HTTPS with a throwaway certificate. Clients trust its CA with:
                    export TESSERA_CACERT='\(devCAFile)'
                    export VAULT_CACERT='\(devCAFile)'
                CA Certificate: \(devCAFile)

                """
            }
            banner += """
            Log in with:
                tessera auth --address \(address) --access-id \(result.admin.method.accessId) --access-key '<access key>'
            Vault clients can use VAULT_ADDR=\(address) VAULT_TOKEN='<access id>..<access key>'

            """
        } else if tessera.tls == nil {
            banner = """
            ==> WARNING: TLS is off. This server speaks plain HTTP, so tokens, access keys and secret
                values cross the network in the clear. Set tls_cert_file and tls_key_file (or
                --tls-cert-file and --tls-key-file) before serving anything but loopback tests.

            """
        }
        let host = options.host
        let port = options.port
        let finalBanner = banner
        let summary = "storage: \(options.storage), data: \(options.dataDirectory)"
        try await tessera.serve(onServerRunning: { channel in
            let actual = channel.localAddress?.port ?? port
            var text = finalBanner.isEmpty ? "" : finalBanner + "\n"
            text += "==> Tessera server listening on \(scheme)://\(host):\(actual) (\(summary))\n"
            FileHandle.standardOutput.write(Data(text.utf8))
        })
    }
}
