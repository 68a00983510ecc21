// VaultUpstream: the HTTP client Tessera uses to reach a governed Vault/OpenBao. Every call has
// a bounded deadline; transport failures become 502 and time-outs 504, so a down or slow
// upstream never hangs a request or blocks others. An https upstream is verified against the
// target's CA bundle (or the system's CAs).
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization
import TesseraCore

public struct UpstreamResponse: Sendable {
    public var status: Int
    public var body: [UInt8]
    public var contentType: String?

    public init(status: Int, body: [UInt8], contentType: String?) {
        self.status = status
        self.body = body
        self.contentType = contentType
    }

    /// The `errors` texts of a Vault error body, joined.
    public var errorText: String {
        guard let o = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let errors = o["errors"] as? [String], !errors.isEmpty else { return "" }
        return errors.joined(separator: "; ").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
    }
}

public final class VaultUpstream: Sendable {
    let client: HTTPClient
    public let timeout: Duration
    /// TLS configurations per CA bundle, so a bundle is parsed once.
    private let tlsByCA = Mutex<[String: TLSConfiguration]>([:])

    public init(timeout: Duration = .seconds(10)) {
        self.timeout = timeout
        var configuration = HTTPClient.Configuration()
        let seconds = Int64(timeout.components.seconds)
        configuration.timeout = .init(connect: .seconds(max(1, min(2, seconds))), read: .seconds(max(1, seconds)))
        configuration.redirectConfiguration = .disallow
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        configuration.tlsConfiguration = tls
        // A refused connection fails at once instead of being retried until the connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Checks that a CA bundle holds at least one PEM certificate.
    public static func validateCA(_ pem: String) throws {
        guard let c = try? NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)), !c.isEmpty else {
            throw TesseraError.badRequest("ca-certificate must hold PEM CA certificates")
        }
    }

    private func tlsConfiguration(_ caPEM: String) throws -> TLSConfiguration {
        if let known = tlsByCA.withLock({ $0[caPEM] }) { return known }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        tlsByCA.withLock { cache in
            if cache.count > 64 { cache.removeAll() }
            cache[caPEM] = configuration
        }
        return configuration
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    /// Sends one request to `baseURL + path` with the target's token (and namespace).
    public func send(method: HTTPMethod, baseURL: String, path: String, token: String, namespace: String?, caPEM: String? = nil,
                     body: [UInt8]? = nil, contentType: String? = nil) async throws -> UpstreamResponse {
        var request = HTTPClientRequest(url: baseURL + path)
        if let caPEM { request.tlsConfiguration = try tlsConfiguration(caPEM) }
        request.method = method
        request.headers.add(name: "X-Vault-Token", value: token)
        request.headers.add(name: "X-Vault-Request", value: "true")
        if let namespace, !namespace.isEmpty { request.headers.add(name: "X-Vault-Namespace", value: namespace) }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType ?? "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let seconds = timeout.components.seconds
        do {
            let response = try await client.execute(request, deadline: .now() + .seconds(seconds))
            let buffer = try await response.body.collect(upTo: 16 << 20)
            return UpstreamResponse(status: Int(response.status.code), body: Array(buffer.readableBytesView),
                                    contentType: response.headers.first(name: "Content-Type"))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw TesseraError.gatewayTimeout("the upstream Vault did not answer within \(seconds) s")
        } catch let error as HTTPClientError where error == .connectTimeout {
            throw TesseraError.gatewayTimeout("the upstream Vault did not accept a connection within the time limit")
        } catch {
            let text = String(describing: error)
            if error is NIOSSLError || error is NIOSSLExtraError || text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("handshakeFailed") {
                throw TesseraError.badGateway("the upstream Vault's TLS certificate was not accepted (it must chain to the target's CA and name its host)")
            }
            if text.contains("Timeout") || text.contains("deadline") {
                throw TesseraError.gatewayTimeout("the upstream Vault did not answer within \(seconds) s")
            }
            throw TesseraError.badGateway("the upstream Vault is unreachable (\(text.contains("refused") ? "connection refused" : "connection failed"))")
        }
    }
}
