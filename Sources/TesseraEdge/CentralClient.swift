// CentralClient: the edge agent's connection to the central Tessera — forwarding a client's
// request, resolving a client's token into its identity and rules, reporting cached reads, and
// following the change stream. A failure to reach the server (refused, timed out, or a 502/503/504
// from it) is `Unreachable`, which is what switches the agent to serving from its cache.
import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOSSL
import TesseraCore

/// The central server could not be reached, or answered that it cannot serve.
struct Unreachable: Error {
    let reason: String
}

/// The central server answered that it is sealed: an operator stopped it on purpose, so the
/// agent stops answering from its cache too.
struct CentralSealed: Error {}

/// A response from the central server.
struct CentralResponse: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: ByteBuffer

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// One change from the central stream.
struct CentralChange: Sendable {
    var sequence: Int64
    var path: String
    var kind: String
}

final class CentralClient: Sendable {
    let base: String
    let client: HTTPClient
    let requestTimeout: TimeAmount

    init(base: String, caCert: String?, requestTimeout: TimeAmount = .seconds(10)) throws {
        var s = base
        while s.hasSuffix("/") { s.removeLast() }
        self.base = s
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(2), read: .seconds(30))
        configuration.redirectConfiguration = .disallow
        if let caCert {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caCert))
            configuration.tlsConfiguration = tls
        }
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.requestTimeout = requestTimeout
    }

    func shutdown() async { try? await client.shutdown() }

    static let hopByHop: Set<String> = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host",
                                        "content-length", "te", "trailer"]

    /// Sends a request on and returns the answer; throws `Unreachable` when the server cannot be
    /// reached or answers 502, 503 or 504.
    func send(method: String, pathAndQuery: String, headers: [(String, String)], body: ByteBuffer?) async throws -> CentralResponse {
        var request = HTTPClientRequest(url: base + pathAndQuery)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers where !Self.hopByHop.contains(name.lowercased()) {
            request.headers.add(name: name, value: value)
        }
        if let body, body.readableBytes > 0 { request.body = .bytes(body) }
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await client.execute(request, timeout: requestTimeout)
            bytes = try await response.body.collect(upTo: 16 << 20)
        } catch {
            throw Unreachable(reason: "\(type(of: error))")
        }
        if response.status.code == 503, String(buffer: bytes).contains("is sealed") { throw CentralSealed() }
        if [502, 503, 504].contains(Int(response.status.code)) {
            throw Unreachable(reason: "the central server answered \(response.status.code)")
        }
        let out = response.headers.filter { !Self.hopByHop.contains($0.name.lowercased()) }.map { ($0.name, $0.value) }
        return CentralResponse(status: Int(response.status.code), headers: out, body: bytes)
    }

    /// The identity and rules behind a client's token, or nil when the server refuses the token.
    func resolve(token: String) async throws -> ResolvedIdentity? {
        let r = try await send(method: "GET", pathAndQuery: "/v1/sys/edge/self", headers: [("X-Vault-Token", token)], body: nil)
        guard r.status == 200 else { return nil }
        return try ResolvedIdentity(json: Data(r.body.readableBytesView))
    }

    /// Reports cached reads; returns once the server has recorded them. Throws on any refusal.
    func report(_ events: [EdgeReadEvent], token: String) async throws {
        let body = try JSONEncoder().encode(["events": events])
        let r = try await send(method: "POST", pathAndQuery: "/v1/sys/edge/audit",
                               headers: [("X-Vault-Token", token), ("Content-Type", "application/json")], body: ByteBuffer(bytes: body))
        guard r.status == 200 else {
            throw AgentFailure(status: r.status, message: "the central server refused the audit report (\(r.status))")
        }
    }

    /// Follows the change stream after `cursor`; `onHead` gets the trail's head when it connects
    /// (and may throw to reconnect), `onChange` each change, `onAlive` each ping, which the server
    /// sends once it has replayed everything up to now, then every 5 s. Returns when the stream
    /// ends or goes quiet for 30 s (the read timeout); throws when it cannot connect.
    func follow(after cursor: Int64?, token: String, onHead: @Sendable (Int64) async throws -> Void,
                onChange: @Sendable (CentralChange) async -> Void, onAlive: @Sendable () async -> Void) async throws {
        var request = HTTPClientRequest(url: base + "/v1/sys/edge/changes" + (cursor.map { "?after=\($0)" } ?? ""))
        request.headers.add(name: "X-Vault-Token", value: token)
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, deadline: .now() + .hours(24))
        } catch {
            throw Unreachable(reason: "\(type(of: error))")
        }
        guard response.status == .ok else {
            throw AgentFailure(status: Int(response.status.code), message: "the change stream was refused (\(response.status.code))")
        }
        var pending = ""
        var event = ""
        var data = ""
        // The read timeout (30 s) ends a stream whose pings stopped.
        for try await chunk in response.body {
            pending += String(buffer: chunk)
            while let newline = pending.firstIndex(of: "\n") {
                let line = String(pending[..<newline])
                pending = String(pending[pending.index(after: newline)...])
                if line.isEmpty {
                    if let json = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any] {
                        if event == "hello", let head = (json["head"] as? NSNumber)?.int64Value { try await onHead(head) }
                        if event == "change", let seq = (json["seq"] as? NSNumber)?.int64Value {
                            await onChange(CentralChange(sequence: seq, path: json["path"] as? String ?? "", kind: json["kind"] as? String ?? "item"))
                        }
                    }
                    event = ""
                    data = ""
                } else if line.hasPrefix("event: ") {
                    event = String(line.dropFirst(7))
                } else if line.hasPrefix("data: ") {
                    data += String(line.dropFirst(6))
                } else if line.hasPrefix(":") {
                    await onAlive()
                }
            }
        }
    }
}

/// A refusal by the central server that is not an outage, or a bad agent setting.
struct AgentFailure: Error, CustomStringConvertible {
    let status: Int
    let message: String
    var description: String { message }
}
