// ServerOptions: how a server is configured, from a JSON config file and flags (flags win).
import Foundation
import Logging
import TesseraCore
import TesseraStore
import TesseraEngines

public struct ServerOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 8200
    public var dataDirectory = "./tessera-data"
    /// `sqlite` (embedded, the default) or `postgresql` (several nodes sharing one database).
    public var storage = "sqlite"
    /// With `postgresql`: where to connect (`postgres://user@host:port/db?sslmode=…`). Without a
    /// password in it, the password comes from `PGPASSWORD` or `postgresqlPasswordFile`.
    public var postgresqlURL: String?
    public var postgresqlPasswordFile: String?
    /// With `postgresql`: connections per node, per pool (data and audit each have one).
    public var postgresqlPoolSize: Int?
    /// With `postgresql`: how long a storage call may take before the request fails with 503.
    public var postgresqlTimeoutSeconds: Int?
    /// The address clients reach this node at (Vault's `api_addr`), shown in `sys/leader` and
    /// `sys/ha-status`; default: the listen address with the listener's scheme.
    public var apiAddr: String?

    /// `api_addr`, or the listen address with the listener's scheme.
    public var apiAddress: String {
        if let apiAddr { return apiAddr }
        let h = host.contains(":") ? "[\(host)]" : host
        return (tlsCertFile != nil ? "https" : "http") + "://\(h):\(port)"
    }
    public var logLevel: Logger.Level = .info
    /// `standard` (text) or `json` (one JSON object per line, Vault's field names).
    public var logFormat = "standard"
    /// Logs one line per request at info (otherwise at debug), with its request id.
    public var logRequests = false
    /// A file holding the base64 root key for unattended unseal; must have mode 0600.
    public var unsealKeyFile: String?
    public var maxBodyBytes = 1 << 20
    public var auditWriteTimeout: Duration = .seconds(5)
    /// How long SQLite waits for a lock held by another connection before failing.
    public var busyTimeoutMillis = 2000
    public var dev = false
    /// Failed revocations are retried with backoff this many times before a lease is irrevocable.
    public var leaseRevokeAttempts = 6
    /// `process` (default): acknowledged writes survive the server being killed; `fsync`: they
    /// also survive an OS crash or power loss (one fsync per commit).
    public var durability: Durability = .process
    /// A pause between applying a rotated password and storing it: a test hook for crash tests
    /// (`TESSERA_TEST_ROTATION_PAUSE_MS`), never set in production.
    public var rotationPauseAfterApply: Duration?
    /// The longest wait for an upstream Vault (connectors, proxied mounts).
    public var upstreamTimeout: Duration = .seconds(10)
    /// Vault-compatible mounts to create at start-up if missing.
    public var mounts: [MountSpec] = []
    /// Failed-login throttling (`login_failures_per_access_id`, `login_failures_per_address`,
    /// `login_failure_window_seconds`).
    public var loginLimits = LoginThrottleLimits()
    /// HTTP resource limits (see `HTTPLimits`).
    public var httpLimits = HTTPLimits()
    /// `/metrics` answers without a token only when this is set, like Vault's
    /// `unauthenticated_metrics_access`.
    public var unauthenticatedMetricsAccess = false
    /// The TLS listener (`tls_cert_file`, `tls_key_file`, `tls_client_ca_file`, `tls_min_version`,
    /// `tls_require_and_verify_client_cert`); without a certificate the server speaks plain HTTP.
    public var tlsCertFile: String?
    public var tlsKeyFile: String?
    public var tlsClientCAFile: String?
    public var tlsMinVersion: TLSSettings.MinimumVersion = .tls12
    /// Audit devices declared in the config file (`audit_devices`).
    public var auditDeviceConfigs: [AuditDeviceConfig] = []
    /// Lets `sys/audit/<name>` create devices (Vault's `unsafe_allow_api_audit_creation`); off by default.
    public var unsafeAllowAPIAuditCreation = false
    /// The rewrap after a key rotation moves at most this many stored values per second.
    public var rewrapRowsPerSecond = 2000
    /// With a client CA: refuse clients without a certificate (default true, unlike Vault's false).
    public var tlsRequireClientCert = true

    /// The listener's TLS settings, nil for plain HTTP; a key without a certificate (or the
    /// reverse) is an error.
    public var tls: TLSSettings? {
        get throws {
            switch (tlsCertFile, tlsKeyFile) {
            case (nil, nil):
                if tlsClientCAFile != nil { throw TesseraError.badRequest("tls_client_ca_file needs tls_cert_file and tls_key_file") }
                return nil
            case (let cert?, let key?):
                var settings = TLSSettings(certFile: cert, keyFile: key, clientCAFile: tlsClientCAFile)
                settings.minimumVersion = tlsMinVersion
                settings.requireClientCert = tlsRequireClientCert
                return settings
            default:
                throw TesseraError.badRequest("TLS needs both tls_cert_file and tls_key_file")
            }
        }
    }

    public struct MountSpec: Sendable, Equatable {
        public var path: String
        public var kind: VaultMount.Kind
        public var folder: String?

        public init(path: String, kind: VaultMount.Kind, folder: String? = nil) {
            self.path = path
            self.kind = kind
            self.folder = folder
        }
    }

    public init() {}

    /// The keys a config file may hold.
    struct File: Decodable {
        var listen: String?
        var data_dir: String?
        var storage: String?
        var postgresql_url: String?
        var postgresql_password_file: String?
        var postgresql_pool_size: Int?
        var postgresql_timeout_seconds: Int?
        var api_addr: String?
        var log_level: String?
        var log_format: String?
        var log_requests: Bool?
        var unseal_key_file: String?
        var max_body_bytes: Int?
        var upstream_timeout: Int?
        var durability: String?
        var mounts: [Mount]?
        var login_failures_per_access_id: Int?
        var login_failures_per_address: Int?
        var login_failure_window_seconds: Int?
        var http_header_timeout_seconds: Int?
        var http_body_timeout_seconds: Int?
        var http_idle_timeout_seconds: Int?
        var http_max_connections: Int?
        var http_max_header_bytes: Int?
        var unauthenticated_metrics_access: Bool?
        var tls_cert_file: String?
        var tls_key_file: String?
        var tls_client_ca_file: String?
        var tls_min_version: String?
        var tls_require_and_verify_client_cert: Bool?
        var rewrap_rows_per_second: Int?
        var audit_devices: [AuditDeviceConfig]?
        var unsafe_allow_api_audit_creation: Bool?

        struct Mount: Decodable {
            var path: String
            var type: String
            var folder: String?
        }
    }

    /// Applies a JSON config file, e.g. `{"listen":"127.0.0.1:8200","data_dir":"/var/lib/tessera","log_level":"info"}`.
    public mutating func apply(configFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TesseraError.badRequest("cannot read config file \(path)")
        }
        let file: File
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TesseraError.badRequest("config file \(path) is not valid: expected a JSON object (see docs/operations.md)")
        }
        // A mistyped key would otherwise be ignored silently, e.g. a TLS setting that never applies.
        if let unknown = object.keys.sorted().first(where: { !Self.configKeys.contains($0) }) {
            throw TesseraError.badRequest("config file \(path): unknown key '\(unknown)' (the keys are listed in docs/operations.md)")
        }
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw TesseraError.badRequest("config file \(path) is not valid: \(Self.describe(error))")
        }
        if let l = file.listen { try setListen(l) }
        if let d = file.data_dir { dataDirectory = d }
        if let s = file.storage { try setStorage(s) }
        if let u = file.postgresql_url { postgresqlURL = u }
        if let f = file.postgresql_password_file { postgresqlPasswordFile = f }
        if let a = file.api_addr {
            guard let u = URLComponents(string: a), u.scheme == "http" || u.scheme == "https", u.host != nil else {
                throw TesseraError.badRequest("config api_addr must be an http:// or https:// address")
            }
            apiAddr = a
        }
        if let l = file.log_level { try setLogLevel(l) }
        if let f = file.log_format { try setLogFormat(f) }
        if let r = file.log_requests { logRequests = r }
        if let u = file.unseal_key_file { unsealKeyFile = u }
        if let d = file.durability { try setDurability(d) }
        func positive(_ v: Int?, _ key: String, max: Int) throws -> Int? {
            guard let v else { return nil }
            guard (1...max).contains(v) else { throw TesseraError.badRequest("config \(key) must be between 1 and \(max)") }
            return v
        }
        if let m = try positive(file.max_body_bytes, "max_body_bytes", max: 1 << 30) { maxBodyBytes = m }
        if let t = try positive(file.upstream_timeout, "upstream_timeout", max: 3_600) { upstreamTimeout = .seconds(t) }
        if let v = try positive(file.login_failures_per_access_id, "login_failures_per_access_id", max: 1_000_000) { loginLimits.perAccessId = v }
        if let v = try positive(file.login_failures_per_address, "login_failures_per_address", max: 1_000_000) { loginLimits.perAddress = v }
        if let v = try positive(file.login_failure_window_seconds, "login_failure_window_seconds", max: 86_400) { loginLimits.window = TimeInterval(v) }
        if let v = try positive(file.http_header_timeout_seconds, "http_header_timeout_seconds", max: 3_600) { httpLimits.headerTimeoutSeconds = v }
        if let v = try positive(file.http_body_timeout_seconds, "http_body_timeout_seconds", max: 3_600) { httpLimits.bodyTimeoutSeconds = v }
        if let v = try positive(file.http_idle_timeout_seconds, "http_idle_timeout_seconds", max: 86_400) { httpLimits.idleTimeoutSeconds = v }
        if let v = try positive(file.http_max_connections, "http_max_connections", max: 1_000_000) { httpLimits.maxConnections = v }
        if let v = try positive(file.http_max_header_bytes, "http_max_header_bytes", max: 1 << 24) { httpLimits.maxHeaderBytes = v }
        if let v = file.unauthenticated_metrics_access { unauthenticatedMetricsAccess = v }
        if let v = file.tls_cert_file { tlsCertFile = v }
        if let v = file.tls_key_file { tlsKeyFile = v }
        if let v = file.tls_client_ca_file { tlsClientCAFile = v }
        if let v = file.tls_min_version { tlsMinVersion = try TLSSettings.MinimumVersion(config: v) }
        if let v = file.tls_require_and_verify_client_cert { tlsRequireClientCert = v }
        if let v = file.audit_devices {
            guard Set(v.map(\.name)).count == v.count else { throw TesseraError.badRequest("config audit_devices: names must be unique") }
            auditDeviceConfigs = v
        }
        if let v = file.unsafe_allow_api_audit_creation { unsafeAllowAPIAuditCreation = v }
        if let v = try positive(file.postgresql_pool_size, "postgresql_pool_size", max: 1000) { postgresqlPoolSize = v }
        if let v = try positive(file.postgresql_timeout_seconds, "postgresql_timeout_seconds", max: 3600) { postgresqlTimeoutSeconds = v }
        if let v = try positive(file.rewrap_rows_per_second, "rewrap_rows_per_second", max: 1_000_000) { rewrapRowsPerSecond = v }
        for m in file.mounts ?? [] {
            mounts.append(MountSpec(path: try VaultMount.normalizePath(m.path), kind: try VaultMount.Kind(wire: m.type), folder: m.folder))
        }
    }

    /// Every key a config file may hold (docs/operations.md describes each).
    static let configKeys: Set<String> = [
        "listen", "data_dir", "storage", "log_level", "log_format", "log_requests", "unseal_key_file", "max_body_bytes",
        "upstream_timeout", "durability", "mounts", "login_failures_per_access_id", "login_failures_per_address",
        "login_failure_window_seconds", "http_header_timeout_seconds", "http_body_timeout_seconds", "http_idle_timeout_seconds",
        "http_max_connections", "http_max_header_bytes", "unauthenticated_metrics_access", "tls_cert_file", "tls_key_file",
        "tls_client_ca_file", "tls_min_version", "tls_require_and_verify_client_cert", "rewrap_rows_per_second", "audit_devices",
        "unsafe_allow_api_audit_creation", "postgresql_url", "postgresql_password_file", "postgresql_pool_size",
        "postgresql_timeout_seconds", "api_addr",
    ]

    /// A decoding error as one line: which key has the wrong type.
    static func describe(_ error: any Error) -> String {
        guard let e = error as? DecodingError else { return "expected a JSON object" }
        switch e {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c):
            let key = c.codingPath.map(\.stringValue).joined(separator: ".")
            return key.isEmpty ? "expected a JSON object" : "the value of \(key) has the wrong type or is missing a field"
        @unknown default:
            return "expected a JSON object"
        }
    }

    /// Parses `HOST:PORT`, `[v6]:PORT` or `:PORT`.
    public mutating func setListen(_ text: String) throws {
        guard let colon = text.lastIndex(of: ":"), let p = Int(text[text.index(after: colon)...]), (0...65535).contains(p) else {
            throw TesseraError.badRequest("invalid listen address '\(text)': expected HOST:PORT")
        }
        var h = String(text[..<colon])
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        host = h.isEmpty ? "127.0.0.1" : h
        port = p
    }

    public mutating func setStorage(_ text: String) throws {
        switch text.lowercased() {
        case "sqlite": storage = "sqlite"
        case "postgresql", "postgres": storage = "postgresql"
        default: throw TesseraError.badRequest("unsupported storage '\(text)': expected sqlite or postgresql")
        }
    }

    /// The PostgreSQL connection settings (storage `postgresql`); the URL is required.
    public func postgresSettings(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PostgresSettings {
        guard let url = postgresqlURL ?? environment["TESSERA_POSTGRESQL_URL"], !url.isEmpty else {
            throw TesseraError.badRequest("storage postgresql needs postgresql_url (or --postgresql-url, or TESSERA_POSTGRESQL_URL)")
        }
        var settings = try PostgresSettings.parse(url, passwordFile: postgresqlPasswordFile, environment: environment)
        if let n = postgresqlPoolSize { settings.poolSize = n }
        if let t = postgresqlTimeoutSeconds { settings.timeout = .seconds(t) }
        return settings
    }

    public mutating func setLogLevel(_ text: String) throws {
        guard let l = Logger.Level(rawValue: text.lowercased()) else {
            throw TesseraError.badRequest("invalid log level '\(text)': expected trace, debug, info, notice, warning, error or critical")
        }
        logLevel = l
    }

    public mutating func setLogFormat(_ text: String) throws {
        guard ["standard", "json"].contains(text.lowercased()) else { throw TesseraError.badRequest("log_format must be standard or json") }
        logFormat = text.lowercased()
    }

    public mutating func setDurability(_ raw: String) throws {
        guard let d = Durability(rawValue: raw.lowercased()) else {
            throw TesseraError.badRequest("durability must be process or fsync")
        }
        durability = d
    }
}
