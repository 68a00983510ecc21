// The settings of an audit device (config key `audit_devices`, or `sys/audit/<name>` when the
// config allows API creation): a JSON-lines file, RFC 5424 syslog over UDP or TCP, or an HTTP
// webhook that receives JSON batches. Checked once, before anything is started.
import Foundation
import TesseraCore

public struct AuditDeviceConfig: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable { case file, syslog, http }

    public var name: String
    public var type: Kind
    public var description: String?
    /// `now` (default): events from when the device is first seen; `beginning`: the whole trail.
    public var start_at: String?
    // file
    public var path: String?
    // syslog
    public var address: String?
    public var `protocol`: String?
    public var facility: String?
    public var app_name: String?
    // http
    public var url: String?
    public var headers: [String: String]?
    public var ca_cert_file: String?
    public var timeout_seconds: Int?
    public var batch_size: Int?

    public init(name: String, type: Kind) {
        self.name = name
        self.type = type
    }

    public var startsAtBeginning: Bool { start_at == "beginning" }
    public var timeout: Duration { .seconds(timeout_seconds ?? 5) }
    public var batchSize: Int { batch_size ?? 256 }

    /// Syslog facilities by name (RFC 5424 §6.2.1).
    static let facilities: [String: Int] = [
        "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8, "cron": 9,
        "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14, "clock": 15, "local0": 16, "local1": 17, "local2": 18,
        "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
    ]

    /// The syslog host and port, from `HOST:PORT` or `[v6]:PORT` (default port 514).
    var syslogEndpoint: (host: String, port: Int)? {
        guard let address else { return nil }
        var host = address, port = 514
        if let colon = address.lastIndex(of: ":"), !address.hasSuffix("]"), let p = Int(address[address.index(after: colon)...]) {
            host = String(address[..<colon])
            port = p
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        return (host, port)
    }

    /// Checks the settings; `fromAPI` adds the limits on devices created over the API (a file
    /// device may not write into the data directory, follow a symlink or escape with `..`).
    public func validate(dataDirectory: String, fromAPI: Bool) throws {
        guard !name.isEmpty, name.utf8.count <= 64, name.utf8.allSatisfy({ $0 == 0x2D || $0 == 0x5F || (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) }) else {
            throw TesseraError.badRequest("an audit device name is 1 to 64 lower-case letters, digits, - or _")
        }
        if let s = start_at, s != "now", s != "beginning" { throw TesseraError.badRequest("start_at must be now or beginning") }
        if let t = timeout_seconds, !(1...300).contains(t) { throw TesseraError.badRequest("timeout_seconds must be between 1 and 300") }
        if let b = batch_size, !(1...10_000).contains(b) { throw TesseraError.badRequest("batch_size must be between 1 and 10000") }
        switch type {
        case .file:
            guard let path, path.hasPrefix("/") else { throw TesseraError.badRequest("a file audit device needs an absolute path") }
            if fromAPI {
                guard !path.split(separator: "/").contains(".."), path.hasSuffix(".log") || path.hasSuffix(".jsonl") else {
                    throw TesseraError.badRequest("a file audit device created over the API needs a path ending in .log or .jsonl, without ..")
                }
                try Self.checkOutside(path, dataDirectory: dataDirectory)
            }
        case .syslog:
            guard syslogEndpoint != nil else { throw TesseraError.badRequest("a syslog audit device needs address HOST:PORT") }
            guard ["udp", "tcp", nil].contains(`protocol`) else { throw TesseraError.badRequest("protocol must be udp or tcp") }
            if let f = facility, Self.facilities[f.lowercased()] == nil { throw TesseraError.badRequest("unknown syslog facility \(f)") }
            if let a = app_name, a.isEmpty || a.utf8.count > 48 || a.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) {
                throw TesseraError.badRequest("app_name must be 1 to 48 printable ASCII characters")
            }
        case .http:
            guard let url, let u = URL(string: url), ["http", "https"].contains(u.scheme ?? ""), u.host != nil else {
                throw TesseraError.badRequest("an http audit device needs an http(s) url")
            }
            for (k, v) in headers ?? [:] where k.isEmpty || k.utf8.contains(where: { $0 <= 0x20 || $0 == 0x3A }) || v.contains("\r") || v.contains("\n") {
                throw TesseraError.badRequest("invalid header \(k)")
            }
        }
    }

    /// Refuses a file whose folder, with every symlink resolved, is the data directory or inside
    /// it. Checked when an API device is created and again each time its file is opened.
    static func checkOutside(_ path: String, dataDirectory: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        guard let realFolder = realPath(folder) else {
            throw TesseraError.badRequest("the folder of \(path) must exist")
        }
        let data = realPath(dataDirectory) ?? URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
        guard realFolder != data, !realFolder.hasPrefix(data + "/") else {
            throw TesseraError.badRequest("an audit file may not be written inside the data directory")
        }
    }

    /// A URL without the credentials it may carry (user:password, query string).
    static func redacted(_ url: String) -> String {
        guard var parts = URLComponents(string: url) else { return "<unparsable url>" }
        if parts.user != nil || parts.password != nil { parts.user = "redacted"; parts.password = nil }
        if parts.query != nil { parts.query = "redacted" }
        parts.fragment = nil
        return parts.string ?? "<unparsable url>"
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The settings as shown by `sys/audit` (header values hidden: they often hold credentials).
    var options: [(String, JSON)] {
        var o: [(String, JSON)] = []
        if let path { o.append(("file_path", .string(path))) }
        if let address { o.append(("address", .string(address))) }
        if let p = `protocol` { o.append(("protocol", .string(p))) }
        if let facility { o.append(("facility", .string(facility))) }
        if let app_name { o.append(("tag", .string(app_name))) }
        if let url { o.append(("url", .string(Self.redacted(url)))) }
        // Vault's options are strings; header values are hidden, only their names are shown.
        if let headers { o.append(("headers", .string(headers.keys.sorted().joined(separator: ",")))) }
        return o
    }
}
