// PostgresTarget: connections to a PostgreSQL target as its admin user, for verifying a target
// and for producers and rotators (through the connector engine's pool). Errors name the cause
// (unreachable, authentication, missing database) without echoing the password.
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import TesseraCore

public struct PostgresTarget: Sendable {
    public var host: String
    public var port: Int
    public var database: String
    public var username: String
    let password: String
    /// How the connection is encrypted (`ssl-mode`).
    public var tls: PostgresTLS
    /// Where connections are reused; nil opens a new connection every time (used to prove a login).
    var pool: PostgresConnectionPool?

    public init(host: String, port: Int, database: String, username: String, password: String, tls: PostgresTLS,
                pool: PostgresConnectionPool? = nil) {
        self.tls = tls
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.pool = pool
    }

    static let logger: Logger = {
        var l = Logger(label: "tessera.postgres")
        l.logLevel = .error
        return l
    }()

    /// Runs `body` on a connection: a pooled one when this target has a pool, else a new one
    /// that is closed afterwards.
    public func withConnection<T: Sendable>(timeout: Duration = .seconds(10), _ body: (PostgresConnection) async throws -> T) async throws -> T {
        guard let pool else {
            let connection = try await connect(timeout: timeout, id: 1)
            do {
                let result = try await body(connection)
                try? await connection.close()
                return result
            } catch {
                try? await connection.close()
                throw Self.describe(error, target: self)
            }
        }
        let key = PostgresConnectionPool.Key(host: host, port: port, database: database, username: username, password: password, tls: tls)
        var retried = false
        while true {
            let connection: PostgresConnection
            var reused = false
            switch await pool.acquire(key, timeout: timeout) {
            case nil:
                throw TesseraError.gatewayTimeout("no connection to the database target became free within \(timeout.components.seconds) s")
            case .reuse(let idle)?:
                connection = idle
                reused = true
            case .connect?:
                do {
                    connection = try await connect(timeout: timeout, id: await pool.connectionId())
                } catch {
                    await pool.release(key)
                    throw error
                }
            }
            do {
                let result = try await body(connection)
                await pool.checkin(connection, key: key)
                return result
            } catch {
                try? await connection.close()
                await pool.release(key)
                // A connection the server closed while it sat idle fails on its first message:
                // run the body once more. Any other failure is the caller's.
                if reused, !retried, Self.isConnectionFailure(error) {
                    retried = true
                    continue
                }
                throw Self.describe(error, target: self)
            }
        }
    }

    private func connect(timeout: Duration, id: Int) async throws -> PostgresConnection {
        let driverTLS: PostgresConnection.Configuration.TLS
        do {
            driverTLS = try tls.driverTLS(host: host)
        } catch {
            throw TesseraError.badRequest("the TLS settings of the database target are not usable (ssl-certificate must hold PEM CA certificates)")
        }
        // Under verify-full with a DNS name to check, Tessera opens the TCP connection itself so
        // that it can read the certificate after the handshake (`PostgresTLS.certificate`).
        let expectedName = tls.expectedDNSName(host: host)
        var channel: (any Channel)?
        var configuration: PostgresConnection.Configuration
        do {
            if expectedName != nil {
                let opened = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.seconds(timeout.components.seconds))
                    .connect(host: host, port: port).get()
                channel = opened
                configuration = PostgresConnection.Configuration(establishedChannel: opened, tls: driverTLS, username: username,
                                                                 password: password, database: database)
            } else {
                configuration = PostgresConnection.Configuration(host: host, port: port, username: username, password: password,
                                                                 database: database, tls: driverTLS)
                configuration.options.connectTimeout = .seconds(timeout.components.seconds)
            }
        } catch {
            throw TesseraError.badGateway("cannot reach PostgreSQL at \(host):\(port) (connection failed)")
        }
        configuration.options.tlsServerName = expectedName
        // No statement Tessera runs on a target may hold a connection (and its caller) forever.
        configuration.options.additionalStartupParameters = [("statement_timeout", String(Self.statementTimeoutMillis))]
        let connection: PostgresConnection
        do {
            // A connection on a channel Tessera opened must run on that channel's event loop.
            if let channel {
                connection = try await PostgresConnection.connect(on: channel.eventLoop, configuration: configuration, id: id, logger: Self.logger)
            } else {
                connection = try await PostgresConnection.connect(configuration: configuration, id: id, logger: Self.logger)
            }
        } catch {
            if let channel { try? await channel.close() }
            throw Self.describe(error, target: self)
        }
        if let expectedName, let channel {
            let certificate = try? await channel.nioSSL_peerCertificate().get()
            guard let certificate, PostgresTLS.certificate(certificate, holdsDNSName: expectedName) else {
                try? await connection.close()
                throw TesseraError.badRequest("the TLS certificate of PostgreSQL at \(host):\(port) does not name \(expectedName) (ssl-mode verify-full)")
            }
        }
        return connection
    }

    /// The longest any statement on a target may run.
    public static let statementTimeoutMillis = 30_000

    /// True for errors of the connection itself (closed, reset), not of a statement.
    static func isConnectionFailure(_ error: any Error) -> Bool {
        guard let p = error as? PSQLError else { return false }
        return p.serverInfo == nil
    }

    /// Checks that the credentials log in, always on a new connection (a pooled one proves nothing).
    public func verify() async throws {
        var fresh = self
        fresh.pool = nil
        try await fresh.withConnection { connection in
            _ = try await connection.query("SELECT 1", logger: Self.logger).collect()
        }
    }

    /// Maps driver errors to messages that say what went wrong and never include the password.
    static func describe(_ error: any Error, target: PostgresTarget) -> TesseraError {
        if let e = error as? TesseraError { return e }
        if let p = error as? PSQLError {
            if let tlsError = target.tls.describe(p, host: target.host, port: target.port) { return tlsError }
            if let code = p.serverInfo?[.sqlState] {
                let message = p.serverInfo?[.message] ?? "error"
                switch code {
                case "28P01", "28000": return .badRequest("authentication failed for user \(target.username) on \(target.host):\(target.port)")
                case "3D000": return .badRequest("database \(target.database) does not exist on \(target.host):\(target.port)")
                default: return .badRequest("PostgreSQL error \(code): \(message)")
                }
            }
            return .badGateway("cannot reach PostgreSQL at \(target.host):\(target.port) (connection failed)")
        }
        return .badGateway("cannot reach PostgreSQL at \(target.host):\(target.port) (connection failed)")
    }
}

extension ConnectorEngine {
    /// Creates a database target after checking that its admin credentials log in.
    public func createDatabaseTarget(name raw: String, dbType: String, host: String, port: Int, database: String,
                                     username: String, password: String, tls: PostgresTLS) async throws -> Target {
        let keyring = try seal.keyring()
        let name = try Target.validateName(raw)
        guard ["postgres", "postgresql"].contains(dbType.lowercased()) else {
            throw TesseraError.badRequest("unsupported db-type '\(dbType)': this server supports postgres")
        }
        guard !host.isEmpty, (1...65535).contains(port), !username.isEmpty else {
            throw TesseraError.badRequest("host, a port between 1 and 65535, and user-name are required")
        }
        if let ca = tls.caPEM { try PostgresTLS.validateCA(ca) }
        let pg = PostgresTarget(host: host, port: port, database: database.isEmpty ? "postgres" : database, username: username,
                                password: password, tls: tls)
        do {
            try await pg.verify()
        } catch let e as TesseraError {
            throw TesseraError.badRequest("cannot create the target: \(e.message)")
        }
        let sealed = try keyring.seal(Array(password.utf8), aad: Self.targetAAD(name))
        var settings = ["db_type": "postgres", "host": host, "port": String(port), "db_name": pg.database, "user_name": username,
                        "ssl_mode": tls.mode.rawValue]
        if let ca = tls.caPEM { settings["ssl_ca"] = ca }
        if let serverName = tls.serverName { settings["ssl_server_name"] = serverName }
        let target = Target(name: name, kind: .database, settings: settings, credentialCiphertext: sealed.ciphertext,
                            keyTerm: sealed.term, createdAt: now())
        try await store.createTarget(target)
        return target
    }

    /// The PostgreSQL connection settings of a database target, with its password decrypted.
    public func postgres(_ target: Target) throws -> PostgresTarget {
        guard target.kind == .database else { throw TesseraError.badRequest("target \(target.name) is not a database target") }
        let keyring = try seal.keyring()
        let password = String(decoding: try keyring.open(target.credentialCiphertext, term: target.keyTerm, aad: Self.targetAAD(target.name)), as: UTF8.self)
        return PostgresTarget(host: target.settings["host"] ?? "", port: Int(target.settings["port"] ?? "") ?? 5432,
                              database: target.settings["db_name"] ?? "postgres", username: target.settings["user_name"] ?? "",
                              password: password, tls: Self.postgresTLS(target), pool: postgresPool)
    }

    /// A database target's TLS settings; targets stored before `ssl_mode` existed connect in plain.
    static func postgresTLS(_ target: Target) -> PostgresTLS {
        guard let raw = target.settings["ssl_mode"], let mode = PostgresTLS.Mode(rawValue: raw) else { return .legacy }
        return PostgresTLS(mode: mode, caPEM: target.settings["ssl_ca"], serverName: target.settings["ssl_server_name"])
    }
}
