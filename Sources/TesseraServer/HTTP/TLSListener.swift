// The TLS listener: the server certificate, key and optional client CA read from PEM files, a
// context that SIGHUP swaps for new connections while open ones keep theirs, and the per-
// connection handler that puts TLS in front of HTTP.
import Foundation
import NIOCore
import NIOSSL
import Synchronization
import TesseraCore

/// What the TLS listener serves (config keys `tls_*`, flags `--tls-*`).
public struct TLSSettings: Sendable, Equatable {
    /// PEM: the server certificate, optionally followed by its intermediates.
    public var certFile: String
    /// PEM: the server's private key (RSA or EC).
    public var keyFile: String
    /// PEM: the CAs that client certificates must chain to; nil asks for a client certificate
    /// without requiring or verifying one at the TLS layer (certificate auth verifies it).
    public var clientCAFile: String?
    /// With a client CA: refuse connections without a certificate (the default), or let them in
    /// anonymously (they still need a token) and verify only the certificates that are presented.
    public var requireClientCert = true
    public var minimumVersion: MinimumVersion = .tls12

    public enum MinimumVersion: String, Sendable, CaseIterable {
        case tls12, tls13

        var nio: TLSVersion { self == .tls12 ? .tlsv12 : .tlsv13 }

        /// Accepts Vault's `tls12`/`tls13` and the spellings `1.2`/`1.3`.
        public init(config text: String) throws {
            switch text.lowercased() {
            case "tls12", "1.2", "tlsv1.2": self = .tls12
            case "tls13", "1.3", "tlsv1.3": self = .tls13
            default: throw TesseraError.badRequest("tls_min_version must be tls12 or tls13 (TLS 1.0 and 1.1 are not offered)")
            }
        }
    }

    public init(certFile: String, keyFile: String, clientCAFile: String? = nil) {
        self.certFile = certFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
    }

    /// Reads the files and builds a server context; errors name the file and never its content.
    func makeContext() throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certFile)
        } catch {
            throw TesseraError.badRequest("cannot read the TLS certificate file \(certFile): expected PEM certificates")
        }
        guard !chain.isEmpty else { throw TesseraError.badRequest("the TLS certificate file \(certFile) holds no certificate") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw TesseraError.badRequest("cannot read the TLS key file \(keyFile): expected a PEM private key without a passphrase")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                     privateKey: .privateKey(key))
        configuration.minimumTLSVersion = minimumVersion.nio
        configuration.applicationProtocols = ["http/1.1"]
        if let clientCAFile {
            let roots: [NIOSSLCertificate]
            do {
                roots = try NIOSSLCertificate.fromPEMFile(clientCAFile)
            } catch {
                throw TesseraError.badRequest("cannot read the TLS client CA file \(clientCAFile): expected PEM certificates")
            }
            guard !roots.isEmpty else { throw TesseraError.badRequest("the TLS client CA file \(clientCAFile) holds no certificate") }
            configuration.trustRoots = .certificates(roots)
            configuration.sendCANameList = true
            configuration.certificateVerification = requireClientCert ? .noHostnameVerification : .optionalVerification
        } else {
            // Requested, never required, and checked by the cert auth method (TesseraHTTPChannel).
            configuration.certificateVerification = .optionalVerification
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TesseraError.badRequest("the TLS certificate in \(certFile) and the key in \(keyFile) do not make a usable pair")
        }
    }
}

/// The context new connections get. `reload` swaps it; a connection keeps the context it began with.
public final class TLSContextHolder: Sendable {
    public let settings: TLSSettings
    private let current: Mutex<NIOSSLContext>

    public init(settings: TLSSettings) throws {
        self.settings = settings
        current = Mutex(try settings.makeContext())
    }

    var context: NIOSSLContext { current.withLock { $0 } }

    /// Reads the files again. On failure the old certificate stays in use and the error is thrown.
    public func reload() throws {
        let fresh = try settings.makeContext()
        current.withLock { $0 = fresh }
    }
}

/// The client's certificate on a TLS connection, for certificate authentication: verified
/// against the client CA during the handshake when one is configured, else only by the cert auth
/// method. Nil on plain HTTP or when the client presented none.
public func peerCertificate(of channel: any Channel) async -> NIOSSLCertificate? {
    guard let certificate = try? await channel.nioSSL_peerCertificate().get() else { return nil }
    return certificate
}

/// First on a TLS connection: a client that speaks plain HTTP to the HTTPS port gets Vault's
/// answer (400 "Client sent an HTTP request to an HTTPS server.") instead of a silent close;
/// a TLS handshake (first byte 0x16) passes and this handler steps aside.
final class PlainHTTPOnTLSPort: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else {
            context.fireChannelRead(data)
            return
        }
        if first == 0x16 {
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
            return
        }
        let body = "Client sent an HTTP request to an HTTPS server.\n"
        let answer = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
        let channel = context.channel
        context.writeAndFlush(NIOAny(ByteBuffer(string: answer))).whenComplete { _ in channel.close(promise: nil) }
    }
}
