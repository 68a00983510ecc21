// APIClient: how CLI commands reach a server — the address and token resolution (flags,
// environment, saved profile), the HTTP call, and printing results and errors.
import TesseraCore
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// Options every API command shares.
struct APIOptions: ParsableArguments {
    @Option(help: "Server address (default: $TESSERA_ADDR, the profile's address, or http://127.0.0.1:8200).")
    var address: String?

    @Option(help: "Profile in the user's config directory that holds the token from `tessera auth`.")
    var profile: String = "default"

    @Option(help: "Token to use instead of the profile's (default: $TESSERA_TOKEN).")
    var token: String?

    @Flag(help: "Print the server's JSON answer as is.")
    var json = false

    @Option(name: .customLong("ca-cert"), help: "PEM CA file to verify an HTTPS server with (default: $TESSERA_CACERT, the profile's, or the system's CAs).")
    var caCert: String?

    var resolvedAddress: String {
        let env = ProcessInfo.processInfo.environment
        var a = address ?? env["TESSERA_ADDR"] ?? Profile.load(profile)?.address ?? "http://127.0.0.1:8200"
        if !a.contains("://") { a = "http://" + a }
        while a.hasSuffix("/") { a.removeLast() }
        return a
    }

    var resolvedCACert: String? {
        caCert ?? ProcessInfo.processInfo.environment["TESSERA_CACERT"].flatMap { $0.isEmpty ? nil : $0 } ?? Profile.load(profile)?.caCert
    }

    var resolvedToken: String? {
        if let token { return (try? SecretInput.resolve(token as String, flag: "--token") as String) ?? token }
        return ProcessInfo.processInfo.environment["TESSERA_TOKEN"] ?? Profile.load(profile)?.token
    }
}

/// A failure the CLI reports as one line on stderr.
struct CLIError: Error, CustomStringConvertible {
    let description: String
}

enum APIClient {
    /// Sends one HTTP request and returns the status and parsed JSON body.
    static func send(method: HTTPMethod, url: String, body: [String: Any]?, headers: [(String, String)] = [],
                     caCert: String? = nil) async throws -> (Int, Any?) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Content-Type", value: "application/json")
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let body {
            let data = try JSONSerialization.data(withJSONObject: body)
            request.body = .bytes(ByteBuffer(bytes: data))
        }
        let client = try makeClient(caCert: caCert)
        let server = url.components(separatedBy: "/api/").first.flatMap { $0.components(separatedBy: "/v1/").first } ?? url
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            // A refused connection is retried by the client until the deadline; keep that short.
            response = try await client.execute(request, deadline: .now() + .seconds(10))
            bytes = try await response.body.collect(upTo: 64 << 20)
            try? await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw CLIError(description: "cannot reach the server at \(server): \(Self.reason(error))")
        }
        let data = Data(bytes.readableBytesView)
        let parsed = data.isEmpty ? nil : try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        return (Int(response.status.code), parsed)
    }

    /// A client with short time-outs that trusts `caCert` (PEM file) when given.
    static func makeClient(caCert: String?, readTimeout: TimeAmount = .seconds(60)) throws -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: readTimeout)
        configuration.connectionPool.retryConnectionEstablishment = false
        if let caCert {
            var tls = TLSConfiguration.makeClientConfiguration()
            do {
                let roots = try NIOSSLCertificate.fromPEMFile(caCert)
                guard !roots.isEmpty else { throw CLIError(description: "") }
                tls.trustRoots = .certificates(roots)
            } catch {
                throw CLIError(description: "cannot read the CA certificate file \(caCert): expected PEM certificates")
            }
            configuration.tlsConfiguration = tls
        }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Streams a GET answer into `path` (written as `path.partial`, then renamed), calling
    /// `progress(received, expected)` as bytes arrive. Returns the status; on an error status the
    /// file is not written and the body is returned as JSON.
    static func download(url: String, token: String, caCert: String?, to path: String,
                         progress: (Int64, Int64?) -> Void) async throws -> (Int, Any?) {
        // The server builds the whole snapshot before the first byte: allow for a large one.
        let client = try makeClient(caCert: caCert, readTimeout: .minutes(30))
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "X-Vault-Token", value: token)
        let partial = path + ".partial"
        do {
            let response = try await client.execute(request, deadline: .now() + .hours(6))
            guard response.status == .ok else {
                let bytes = try await response.body.collect(upTo: 1 << 20)
                try? await client.shutdown()
                let data = Data(bytes.readableBytesView)
                return (Int(response.status.code), try? JSONSerialization.jsonObject(with: data))
            }
            let expected = response.headers.first(name: "Content-Length").flatMap(Int64.init)
            guard FileManager.default.createFile(atPath: partial, contents: nil, attributes: [.posixPermissions: 0o600]),
                  let out = FileHandle(forWritingAtPath: partial) else {
                throw CLIError(description: "cannot write \(partial)")
            }
            var received: Int64 = 0
            do {
                for try await chunk in response.body {
                    try out.write(contentsOf: Data(chunk.readableBytesView))
                    received += Int64(chunk.readableBytes)
                    progress(received, expected)
                }
                try out.synchronize()
                try out.close()
            } catch {
                try? out.close()
                throw error
            }
            if let expected, expected != received { throw CLIError(description: "the snapshot stream ended early (\(received) of \(expected) bytes)") }
            try? FileManager.default.removeItem(atPath: path)
            try FileManager.default.moveItem(atPath: partial, toPath: path)
            try? await client.shutdown()
            return (200, nil)
        } catch let e as CLIError {
            try? FileManager.default.removeItem(atPath: partial)
            try? await client.shutdown()
            throw e
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            try? await client.shutdown()
            throw CLIError(description: "the snapshot download failed: \(Self.reason(error))")
        }
    }

    /// Calls a native verb with the token (when one is known) and returns the JSON answer.
    static func call(_ verb: String, _ fields: [String: Any?], options: APIOptions, withToken: Bool = true) async throws -> Any? {
        var body: [String: Any] = [:]
        for (k, v) in fields { if let v { body[k] = v } }
        if withToken {
            guard let token = options.resolvedToken else {
                throw CLIError(description: "not authenticated: run `tessera auth --access-id … --access-key …` first, or pass --token")
            }
            body["token"] = token
        }
        let (status, json) = try await send(method: .POST, url: options.resolvedAddress + "/api/v2/" + verb, body: body,
                                            caCert: options.resolvedCACert)
        guard (200..<300).contains(status) else { throw CLIError(description: errorText(status, json)) }
        return json
    }

    static func reason(_ error: any Error) -> String {
        let text = String(describing: error)
        if error is NIOSSLError || text.contains("handshakeFailed") || text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "the TLS handshake failed (is the server's CA given with --ca-cert or TESSERA_CACERT?)"
        }
        if text.contains("Connection refused") || text.contains("connectTimeout") { return "connection refused" }
        if text.contains("deadlineExceeded") || text.contains("Timeout") { return "timed out" }
        return "connection failed"
    }

    static func errorText(_ status: Int, _ json: Any?) -> String {
        if let o = json as? [String: Any] {
            if let m = o["message"] as? String { return "\(m) (HTTP \(status))" }
            if let e = o["errors"] as? [String], let first = e.first { return "\(first) (HTTP \(status))" }
        }
        return "the server answered HTTP \(status)"
    }

    static func render(_ json: Any?, compact: Bool) -> String {
        guard let json else { return "" }
        if let s = json as? String { return s }
        let opts: JSONSerialization.WritingOptions = compact ? [.sortedKeys, .withoutEscapingSlashes] : [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? JSONSerialization.data(withJSONObject: json, options: opts.union(.fragmentsAllowed)) else { return "\(json)" }
        return String(decoding: data, as: UTF8.self)
    }

    static func print(_ json: Any?, options: APIOptions) {
        let text = render(json, compact: options.json)
        if !text.isEmpty { Swift.print(text) }
    }
}

/// Runs a command body, turning any failure into one line on stderr and a non-zero exit.
func runCLI(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as CLIError {
        FileHandle.standardError.write(Data("Error: \(e.description)\n".utf8))
        throw ExitCode(1)
    }
}

/// A saved login: the server address and the token, in `<config dir>/tessera/profiles/<name>.json`, mode 0600.
struct Profile: Codable {
    var address: String
    var token: String
    var expiration: String?
    /// The CA file given at `tessera auth`, used while this profile is.
    var caCert: String?

    static var directory: String {
        let env = ProcessInfo.processInfo.environment
        let base = env["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (env["HOME"] ?? NSHomeDirectory()) + "/.config"
        return base + "/tessera/profiles"
    }

    static func path(_ name: String) -> String { directory + "/" + name + ".json" }

    static func load(_ name: String) -> Profile? {
        guard let data = FileManager.default.contents(atPath: path(name)) else { return nil }
        return try? JSONDecoder().decode(Profile.self, from: data)
    }

    func save(_ name: String) throws {
        guard !name.isEmpty, !name.contains("/"), !name.hasPrefix(".") else {
            throw CLIError(description: "invalid profile name '\(name)'")
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: Profile.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let file = Profile.path(name)
        let data = try JSONEncoder().encode(self)
        if fm.fileExists(atPath: file) { try fm.removeItem(atPath: file) }
        guard fm.createFile(atPath: file, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw CLIError(description: "cannot write the profile \(file)")
        }
    }
}
