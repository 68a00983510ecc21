// Where the PostgreSQL engine connects: a libpq-style URL (postgres://user@host:port/db?sslmode=…),
// the password from the URL, PGPASSWORD or a file (never a command-line argument), the pool size
// and the time-out that bounds every storage call.
import Foundation
import NIOSSL
import PostgresNIO
import TesseraCore

public struct PostgresSettings: Sendable {
    public enum SSLMode: String, Sendable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var sslMode: SSLMode
    /// PEM file of the CA that signs the server's certificate (verify-ca, verify-full).
    public var sslRootCert: String?
    /// How many connections this node keeps open at most.
    public var poolSize: Int
    /// How long one storage call may take, waiting for a connection included, before it fails
    /// with 503 (also PostgreSQL's statement_timeout).
    public var timeout: Duration

    public init(host: String, port: Int = 5432, user: String, password: String? = nil, database: String,
                sslMode: SSLMode = .prefer, sslRootCert: String? = nil, poolSize: Int = 16, timeout: Duration = .seconds(10)) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.sslMode = sslMode
        self.sslRootCert = sslRootCert
        self.poolSize = poolSize
        self.timeout = timeout
    }

    /// Parses `postgres://user[:password]@host[:port]/database[?sslmode=…&sslrootcert=…]`.
    /// Without a password in the URL, `PGPASSWORD` is used, then `passwordFile`.
    public static func parse(_ url: String, passwordFile: String? = nil,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PostgresSettings {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
              scheme == "postgres" || scheme == "postgresql" else {
            throw TesseraError.badRequest("postgresql_url must be a postgres:// URL")
        }
        guard let host = components.host, !host.isEmpty else { throw TesseraError.badRequest("postgresql_url names no host") }
        let user = components.user ?? environment["PGUSER"] ?? "postgres"
        var database = components.path
        if database.hasPrefix("/") { database.removeFirst() }
        if database.isEmpty { database = environment["PGDATABASE"] ?? user }
        var settings = PostgresSettings(host: host, port: components.port ?? 5432, user: user, database: database)
        if let port = components.port, !(1...65535).contains(port) { throw TesseraError.badRequest("postgresql_url has a bad port") }
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw TesseraError.badRequest("sslmode must be disable, prefer, require, verify-ca or verify-full")
                }
                settings.sslMode = mode
            case "sslrootcert":
                settings.sslRootCert = value
            case "pool_size", "pool_max_conns":
                guard let n = Int(value), (1...1000).contains(n) else { throw TesseraError.badRequest("pool_size must be 1 to 1000") }
                settings.poolSize = n
            case "connect_timeout", "timeout":
                guard let n = Int(value), (1...3600).contains(n) else { throw TesseraError.badRequest("\(item.name) must be 1 to 3600 seconds") }
                settings.timeout = .seconds(n)
            case "application_name":
                break
            default:
                throw TesseraError.badRequest("postgresql_url has an unknown parameter \(item.name)")
            }
        }
        if let password = components.password, !password.isEmpty {
            settings.password = password.removingPercentEncoding ?? password
        } else if let password = environment["PGPASSWORD"], !password.isEmpty {
            settings.password = password
        } else if let passwordFile {
            guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw TesseraError.badRequest("cannot read postgresql_password_file")
            }
            settings.password = text.trimmingCharacters(in: .newlines)
        }
        return settings
    }

    /// True if a URL carries a password (which a command-line argument must not: `ps` shows it).
    public static func hasPassword(_ url: String) -> Bool {
        URLComponents(string: url)?.password.map { !$0.isEmpty } ?? false
    }

    /// The URL with its password removed, for logs and status output.
    public var redacted: String {
        "postgres://\(user)@\(host):\(port)/\(database)?sslmode=\(sslMode.rawValue)"
    }

    func clientConfiguration() throws -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(host: host, port: port, username: user, password: password,
                                                         database: database, tls: try driverTLS())
        configuration.options.maximumConnections = poolSize
        configuration.options.minimumConnections = min(2, poolSize)
        configuration.options.connectTimeout = timeout
        let millis = timeout.components.seconds * 1000
        configuration.options.additionalStartupParameters = [
            ("statement_timeout", String(millis)),
            ("lock_timeout", String(millis)),
            ("idle_in_transaction_session_timeout", String(millis * 6)),
            ("application_name", "tessera"),
        ]
        return configuration
    }

    func driverTLS() throws -> PostgresClient.Configuration.TLS {
        guard let tls = try tlsConfiguration() else { return .disable }
        return sslMode == .prefer ? .prefer(tls) : .require(tls)
    }

    /// The same setting for a single connection (the change feed's).
    func connectionTLS() throws -> PostgresConnection.Configuration.TLS {
        guard let tls = try tlsConfiguration() else { return .disable }
        let context = try NIOSSLContext(configuration: tls)
        return sslMode == .prefer ? .prefer(context) : .require(context)
    }

    /// nil for sslmode=disable.
    func tlsConfiguration() throws -> TLSConfiguration? {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        switch sslMode {
        case .disable:
            return nil
        case .prefer, .require:
            tls.certificateVerification = .none
        case .verifyCA, .verifyFull:
            tls.certificateVerification = sslMode == .verifyCA ? .noHostnameVerification : .fullVerification
            if let sslRootCert {
                guard let certificates = try? NIOSSLCertificate.fromPEMFile(sslRootCert), !certificates.isEmpty else {
                    throw TesseraError.badRequest("sslrootcert must name a PEM file of CA certificates")
                }
                tls.trustRoots = .certificates(certificates)
            }
        }
        return tls
    }
}
