// IdentityHTTP: the outbound HTTP client of the workload-identity methods — JWKS and OIDC
// discovery documents, and Kubernetes TokenReview calls. Every call has a short deadline and a
// body limit, never follows redirects, and verifies https against the method's CA when one is set.
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import TesseraCore

public struct IdentityHTTPResponse: Sendable {
    public var status: Int
    public var body: [UInt8]
}

public final class IdentityHTTP: Sendable {
    let client: HTTPClient
    let timeout: Duration
    static let maxBody = 1 << 20

    public init(timeout: Duration = .seconds(5)) {
        self.timeout = timeout
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(2), read: .seconds(max(1, timeout.components.seconds)))
        configuration.redirectConfiguration = .disallow
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        configuration.tlsConfiguration = tls
        configuration.connectionPool.retryConnectionEstablishment = false
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    /// Checks that a CA bundle holds at least one PEM certificate (`field` names it in the error).
    public static func validateCA(_ pem: String, field: String) throws {
        guard let c = try? NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)), !c.isEmpty else {
            throw TesseraError.badRequest("\(field) must hold PEM CA certificates")
        }
    }

    /// Only http and https URLs with a host.
    public static func validateURL(_ text: String, field: String) throws {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty else {
            throw TesseraError.badRequest("\(field) must be an http or https URL")
        }
    }

    public func send(_ method: HTTPMethod, url: String, caPEM: String?, headers: [(String, String)] = [],
                     body: [UInt8]? = nil) async throws -> IdentityHTTPResponse {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let caPEM, !caPEM.isEmpty {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            guard let roots = try? NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)), !roots.isEmpty else {
                throw TesseraError.badGateway("the CA certificate configured for \(Self.hostOf(url)) is not a valid PEM certificate")
            }
            tls.trustRoots = .certificates(roots)
            request.tlsConfiguration = tls
        }
        request.headers.add(name: "Accept", value: "application/json")
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await client.execute(request, deadline: .now() + .seconds(timeout.components.seconds))
            let buffer = try await response.body.collect(upTo: Self.maxBody)
            return IdentityHTTPResponse(status: Int(response.status.code), body: Array(buffer.readableBytesView))
        } catch {
            let text = String(describing: error)
            if error is NIOSSLError || error is NIOSSLExtraError || text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("handshake") {
                throw TesseraError.badGateway("the TLS certificate of \(Self.hostOf(url)) was not accepted")
            }
            throw TesseraError.badGateway("\(Self.hostOf(url)) could not be reached")
        }
    }

    static func hostOf(_ url: String) -> String {
        guard let u = URL(string: url), let host = u.host else { return "the server" }
        return u.port.map { "\(host):\($0)" } ?? host
    }
}
