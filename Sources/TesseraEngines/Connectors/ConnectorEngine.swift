// The connector engine: Vault/OpenBao targets (connection checked on create, token sealed at
// rest) and the Universal Secret Connector, which reads and writes the upstream KV v2 in place
// on every request — no copy, no sync, no cache.
import Foundation
import NIOHTTP1
import TesseraCore
import TesseraCrypto
import TesseraStore

/// A secret as the connector shows it.
public struct ConnectorSecret: Sendable {
    public var secretId: String
    public var version: Int
    public var createdTime: String
    public var updatedTime: String
    /// The upstream's JSON data map as compact text.
    public var dataText: String
}

/// A resolved connector: its target, settings and decrypted token, for one request only.
public struct ConnectorBinding: Sendable {
    public var connector: SecretConnector
    public var target: Target
    public var url: String
    public var namespace: String?
    /// The upstream KV v2 mount with a trailing slash, e.g. `secret/`.
    public var kvMount: String
    let token: String
    /// The CA the upstream's certificate must chain to (nil: the system's CAs).
    let caPEM: String?

    /// The upstream path of a secret id (`<prefix><id>`).
    /// The upstream path of a secret id. The id is percent-encoded byte by byte (all but
    /// unreserved characters and `/`), so the upstream reaches exactly the secret that was
    /// authorized: `%61dmin`, `admin?` and `admin#` stay those names instead of becoming `admin`.
    public func upstreamPath(_ secretId: String) -> String { connector.prefix + Self.encode(secretId) }

    public static func encode(_ path: String) -> String {
        var out = [UInt8]()
        out.reserveCapacity(path.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for b in path.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
                out.append(b)
            default:
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

public struct ConnectorEngine: Sendable {
    let store: any Store
    let seal: SealManager
    public let upstream: VaultUpstream
    /// Reused PostgreSQL connections of database targets (producers, renewals, revocations, rotations).
    public let postgresPool = PostgresConnectionPool()
    let now: @Sendable () -> Date

    public init(store: any Store, seal: SealManager, upstream: VaultUpstream, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.seal = seal
        self.upstream = upstream
        self.now = now
    }

    public static func targetAAD(_ name: String) -> [UInt8] { Array("tessera/target/v1/".utf8) + Array(name.utf8) }

    // MARK: Targets

    /// Checks the connection and stores the target with its token sealed.
    public func createVaultTarget(name raw: String, url rawURL: String, token: String, namespace: String?, kvMount rawMount: String?,
                                  caPEM: String? = nil) async throws -> Target {
        let keyring = try seal.keyring()
        let name = try Target.validateName(raw)
        let url = try Self.validateURL(rawURL)
        guard !token.isEmpty, token.utf8.count <= 1024 else { throw TesseraError.badRequest("vault-token is required") }
        let mount = try Self.normalizeMount(rawMount ?? "secret/")
        if let caPEM {
            guard url.hasPrefix("https://") else { throw TesseraError.badRequest("ca-certificate needs an https hashi-url") }
            try VaultUpstream.validateCA(caPEM)
        }
        try await check(url: url, token: token, namespace: namespace, mount: mount, caPEM: caPEM)
        let sealed = try keyring.seal(Array(token.utf8), aad: Self.targetAAD(name))
        var settings = ["url": url, "kv_mount": mount]
        if let caPEM { settings["ca_cert"] = caPEM }
        if let namespace, !namespace.isEmpty { settings["namespace"] = namespace }
        let target = Target(name: name, kind: .hashiVault, settings: settings, credentialCiphertext: sealed.ciphertext,
                            keyTerm: sealed.term, createdAt: now())
        try await store.createTarget(target)
        return target
    }

    static func validateURL(_ raw: String) throws -> String {
        var url = raw.trimmingCharacters(in: .whitespaces)
        while url.hasSuffix("/") { url.removeLast() }
        guard let parsed = URL(string: url), let scheme = parsed.scheme, ["http", "https"].contains(scheme), parsed.host != nil,
              parsed.query == nil, parsed.user == nil else {
            throw TesseraError.badRequest("hashi-url must be an http(s) address such as https://vault.example.com:8200")
        }
        return url
    }

    static func normalizeMount(_ raw: String) throws -> String {
        var m = raw.trimmingCharacters(in: .whitespaces)
        while m.hasPrefix("/") { m.removeFirst() }
        while m.hasSuffix("/") { m.removeLast() }
        guard !m.isEmpty else { throw TesseraError.badRequest("kv-mount is required") }
        _ = try ItemPath(m)
        return m + "/"
    }

    /// Says which of these fails: reaching the address, the token, or the mount being KV v2.
    func check(url: String, token: String, namespace: String?, mount: String, caPEM: String?) async throws {
        let lookup: UpstreamResponse
        do {
            lookup = try await upstream.send(method: .GET, baseURL: url, path: "/v1/auth/token/lookup-self", token: token, namespace: namespace,
                                             caPEM: caPEM)
        } catch TesseraError.gatewayTimeout {
            throw TesseraError.badRequest("cannot create the target: the Vault at \(url) is unreachable (timed out)")
        } catch let e as TesseraError where e.message.contains("TLS") {
            throw TesseraError.badRequest("cannot create the target: \(e.message)")
        } catch {
            throw TesseraError.badRequest("cannot create the target: the Vault at \(url) is unreachable (connection refused or failed)")
        }
        if lookup.status == 403 || lookup.status == 401 {
            throw TesseraError.badRequest("cannot create the target: the Vault token was rejected (permission denied)")
        }
        guard lookup.status == 200 else {
            throw TesseraError.badRequest("cannot create the target: the Vault at \(url) answered HTTP \(lookup.status) to a token lookup")
        }
        let preflight = try await upstream.send(method: .GET, baseURL: url, path: "/v1/sys/internal/ui/mounts/" + String(mount.dropLast()),
                                                token: token, namespace: namespace, caPEM: caPEM)
        guard preflight.status == 200, let data = preflight.json?["data"] as? [String: Any] else {
            throw TesseraError.badRequest("cannot create the target: the mount \(mount) does not exist or the token cannot use it (HTTP \(preflight.status))")
        }
        let version = (data["options"] as? [String: Any])?["version"] as? String
        guard (data["type"] as? String) == "kv", version == "2" else {
            throw TesseraError.badRequest("cannot create the target: the mount \(mount) is not a KV v2 engine (type \(data["type"] as? String ?? "?"), version \(version ?? "1"))")
        }
    }

    public func target(named raw: String) async throws -> Target {
        let name = try Target.validateName(raw)
        guard let t = try await store.target(named: name) else { throw TesseraError.notFound("target \(name) not found") }
        return t
    }

    public func targets() async throws -> [Target] { try await store.targets() }

    public func deleteTarget(named raw: String) async throws -> Target {
        let t = try await target(named: raw)
        _ = try await store.deleteTarget(named: t.name)
        return t
    }

    // MARK: Connectors

    public func createConnector(name raw: String, targetName: String, prefix rawPrefix: String?, description: String) async throws -> SecretConnector {
        let name = try Target.validateName(raw)
        let target = try await target(named: targetName)
        var prefix = (rawPrefix ?? "").trimmingCharacters(in: .whitespaces)
        while prefix.hasPrefix("/") { prefix.removeFirst() }
        if !prefix.isEmpty {
            _ = try ItemPath(folder: prefix)
            if !prefix.hasSuffix("/") { prefix += "/" }
        }
        let usc = SecretConnector(name: name, targetName: target.name, prefix: prefix, description: description, createdAt: now())
        try await store.createConnector(usc)
        return usc
    }

    public func connector(named raw: String) async throws -> SecretConnector {
        let name = try Target.validateName(raw)
        guard let u = try await store.connector(named: name) else { throw TesseraError.notFound("connector \(name) not found") }
        return u
    }

    public func connectors() async throws -> [SecretConnector] { try await store.connectors() }

    public func deleteConnector(named raw: String) async throws {
        let u = try await connector(named: raw)
        _ = try await store.deleteConnector(named: u.name)
    }

    /// Resolves a connector to its target and decrypted token, for the duration of one request.
    public func bind(_ connector: SecretConnector) async throws -> ConnectorBinding {
        _ = try seal.keyring()
        guard let target = try await store.target(named: connector.targetName) else {
            throw TesseraError.notFound("target \(connector.targetName) of connector \(connector.name) not found")
        }
        let keyring = try await seal.keyring(holding: target.keyTerm)
        let token = String(decoding: try keyring.open(target.credentialCiphertext, term: target.keyTerm, aad: Self.targetAAD(target.name)), as: UTF8.self)
        return ConnectorBinding(connector: connector, target: target, url: target.settings["url"] ?? "", namespace: target.settings["namespace"],
                                kvMount: target.settings["kv_mount"] ?? "secret/", token: token, caPEM: target.settings["ca_cert"])
    }

    /// Sends a request for the binding's upstream with its token.
    public func send(_ b: ConnectorBinding, method: HTTPMethod, path: String, body: [UInt8]? = nil, contentType: String? = nil) async throws -> UpstreamResponse {
        try await upstream.send(method: method, baseURL: b.url, path: path, token: b.token, namespace: b.namespace, caPEM: b.caPEM,
                                body: body, contentType: contentType)
    }

    /// Maps an upstream error status for connector operations: 404 stays 404; a rejected token or a
    /// server error is a 502 that says which.
    static func check(_ r: UpstreamResponse, allowNotFound: Bool = false) throws {
        switch r.status {
        case 200..<300: return
        case 404 where allowNotFound: return
        case 404: throw TesseraError.notFound("secret not found in the upstream Vault")
        case 401, 403: throw TesseraError.badGateway("the upstream Vault rejected the target's token (permission denied)")
        case 400: throw TesseraError.badRequest("the upstream Vault refused the request: \(r.errorText)")
        case 429: throw TesseraError.tooManyRequests("the upstream Vault is rate limiting")
        default: throw TesseraError.badGateway("the upstream Vault answered HTTP \(r.status)\(r.errorText.isEmpty ? "" : ": " + r.errorText)")
        }
    }

    // MARK: USC secret operations

    /// Every secret id under the connector's prefix (walks the upstream folders).
    public func listSecrets(_ b: ConnectorBinding, limit: Int = 10_000) async throws -> [String] {
        var result: [String] = []
        var pending = [""]
        while let folder = pending.popLast(), result.count < limit {
            let r = try await send(b, method: .GET, path: "/v1/\(b.kvMount)metadata/\(b.upstreamPath(folder))?list=true")
            if r.status == 404 { continue }
            try Self.check(r)
            let keys = ((r.json?["data"] as? [String: Any])?["keys"] as? [String]) ?? []
            for key in keys {
                if key.hasSuffix("/") { pending.append(folder + key) } else { result.append(folder + key) }
            }
        }
        return result.sorted()
    }

    public func getSecret(_ b: ConnectorBinding, secretId: String, version: Int? = nil) async throws -> ConnectorSecret {
        let query = version.map { "?version=\($0)" } ?? ""
        let r = try await send(b, method: .GET, path: "/v1/\(b.kvMount)data/\(b.upstreamPath(secretId))\(query)")
        try Self.check(r)
        guard let data = r.json?["data"] as? [String: Any], let map = data["data"] as? [String: Any] else {
            throw TesseraError.notFound("secret \(secretId) has no readable version")
        }
        let meta = data["metadata"] as? [String: Any] ?? [:]
        let text = String(decoding: (try? JSONSerialization.data(withJSONObject: map, options: [.sortedKeys])) ?? Data("{}".utf8), as: UTF8.self)
        return ConnectorSecret(secretId: secretId, version: meta["version"] as? Int ?? 0,
                               createdTime: meta["created_time"] as? String ?? "", updatedTime: meta["created_time"] as? String ?? "",
                               dataText: text)
    }

    /// Writes a new version. `mustNotExist` uses check-and-set 0 so that create never overwrites.
    public func putSecret(_ b: ConnectorBinding, secretId: String, value: String, mustNotExist: Bool, mustExist: Bool) async throws -> Int {
        if mustExist {
            let meta = try await send(b, method: .GET, path: "/v1/\(b.kvMount)metadata/\(b.upstreamPath(secretId))")
            try Self.check(meta)
        }
        var payload: [String: Any] = ["data": Self.dataMap(value)]
        if mustNotExist { payload["options"] = ["cas": 0] }
        let body = Array(try JSONSerialization.data(withJSONObject: payload))
        let r = try await send(b, method: .PUT, path: "/v1/\(b.kvMount)data/\(b.upstreamPath(secretId))", body: body)
        if r.status == 400, mustNotExist, r.errorText.contains("check-and-set") {
            throw TesseraError.conflict("secret \(secretId) already exists in the upstream Vault")
        }
        try Self.check(r)
        return ((r.json?["data"] as? [String: Any])?["version"] as? Int) ?? 0
    }

    /// Deletes the newest version (soft), or every version with `force`.
    public func deleteSecret(_ b: ConnectorBinding, secretId: String, force: Bool) async throws {
        let meta = try await send(b, method: .GET, path: "/v1/\(b.kvMount)metadata/\(b.upstreamPath(secretId))")
        try Self.check(meta)
        let path = force ? "/v1/\(b.kvMount)metadata/\(b.upstreamPath(secretId))" : "/v1/\(b.kvMount)data/\(b.upstreamPath(secretId))"
        try Self.check(try await send(b, method: .DELETE, path: path))
    }

    /// A value as a KV data map: JSON object text as is, anything else as `{"value": text}`.
    static func dataMap(_ value: String) -> [String: Any] {
        if let o = try? JSONSerialization.jsonObject(with: Data(value.utf8)) as? [String: Any] { return o }
        return ["value": value]
    }
}
