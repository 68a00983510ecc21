// TLS to a PostgreSQL target: the `ssl-mode` of a database target (libpq's names) and the CA it
// trusts, turned into the driver's TLS setting, and TLS failures turned into clear errors.
import Foundation
import NIOSSL
import PostgresNIO
import TesseraCore

public struct PostgresTLS: Sendable, Equatable, Hashable {
    public enum Mode: String, Sendable, CaseIterable {
        /// Plain TCP: passwords cross the network in the clear. Only when asked for.
        case disable
        /// Encrypted, the server's certificate not checked (libpq's `require`).
        case require
        /// Encrypted, the certificate must chain to the CA.
        case verifyCA = "verify-ca"
        /// As verify-ca, and the certificate must name the host (or `serverName`).
        case verifyFull = "verify-full"
    }

    public var mode: Mode
    /// PEM CA certificates; without them verify-ca and verify-full use the system's CAs.
    public var caPEM: String?
    /// The name the certificate must hold under verify-full (default: the target's host).
    public var serverName: String?

    public init(mode: Mode, caPEM: String? = nil, serverName: String? = nil) {
        self.mode = mode
        self.caPEM = caPEM
        self.serverName = serverName
    }

    /// Targets stored before TLS existed connect as they always did.
    public static let legacy = PostgresTLS(mode: .disable)

    /// Parses a mode name; the error lists the four.
    public static func mode(_ text: String) throws -> Mode {
        guard let m = Mode(rawValue: text.lowercased()) else {
            throw TesseraError.badRequest("ssl-mode must be disable, require, verify-ca or verify-full")
        }
        return m
    }

    /// Checks that a CA PEM holds at least one certificate.
    public static func validateCA(_ pem: String) throws {
        guard let certificates = try? NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)), !certificates.isEmpty else {
            throw TesseraError.badRequest("ssl-certificate must hold PEM CA certificates")
        }
    }

    /// The driver's TLS setting for a connection to `host`.
    func driverTLS(host: String) throws -> PostgresConnection.Configuration.TLS {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        switch mode {
        case .disable:
            return .disable
        case .require:
            configuration.certificateVerification = .none
        case .verifyCA, .verifyFull:
            configuration.certificateVerification = mode == .verifyCA ? .noHostnameVerification : .fullVerification
            if let caPEM {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
            }
        }
        return .require(try NIOSSLContext(configuration: configuration))
    }

    /// The name given for SNI and verify-full.
    func serverName(host: String) -> String? {
        mode == .verifyFull ? (serverName ?? host) : nil
    }

    /// Under verify-full, the DNS name the certificate must hold: `serverName`, or the host when
    /// it is a name. nil when the host is an IP address and no name was given (then the
    /// address itself is checked during the handshake).
    func expectedDNSName(host: String) -> String? {
        guard mode == .verifyFull else { return nil }
        if let serverName { return serverName }
        return IPAddressText.isAddress(host) ? nil : host
    }

    /// Whether the certificate's subject alternative names hold `name` as a DNS name (case-
    /// insensitive; a `*.` wildcard covers exactly one label). An IP entry does not count:
    /// NIOSSL's own check accepts any IP entry equal to the connected address, whatever name
    /// was asked for.
    static func certificate(_ certificate: NIOSSLCertificate, holdsDNSName name: String) -> Bool {
        let wanted = name.lowercased().split(separator: ".", omittingEmptySubsequences: false)
        for entry in certificate._subjectAlternativeNames() where entry.nameType == .dnsName {
            let dns = String(decoding: Array(entry.contents), as: UTF8.self).lowercased()
            let labels = dns.split(separator: ".", omittingEmptySubsequences: false)
            guard labels.count == wanted.count, !labels.isEmpty else { continue }
            if labels.first == "*" {
                if labels.dropFirst().elementsEqual(wanted.dropFirst()) && !(wanted.first ?? "").isEmpty { return true }
            } else if labels.elementsEqual(wanted) {
                return true
            }
        }
        return false
    }

    /// A TLS failure said plainly, or nil when `error` is not about TLS.
    func describe(_ error: PSQLError, host: String, port: Int) -> TesseraError? {
        if error.code == .sslUnsupported {
            return .badRequest("PostgreSQL at \(host):\(port) does not accept TLS (ssl-mode \(mode.rawValue)); turn on ssl on the server, or create the target with ssl-mode disable")
        }
        guard let underlying = error.underlying else { return nil }
        let text = String(describing: underlying)
        if underlying is NIOSSLExtraError, text.contains("alidate") && text.contains("ostname") {
            return .badRequest("the TLS certificate of PostgreSQL at \(host):\(port) does not name \(serverName(host: host) ?? host) (ssl-mode verify-full)")
        }
        if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("certificate verify failed") {
            return .badRequest("the TLS certificate of PostgreSQL at \(host):\(port) is not signed by the trusted CA (ssl-mode \(mode.rawValue))")
        }
        if underlying is NIOSSLError || underlying is BoringSSLError || text.contains("handshakeFailed") {
            return .badRequest("the TLS handshake with PostgreSQL at \(host):\(port) failed (ssl-mode \(mode.rawValue))")
        }
        return nil
    }
}

/// Whether a host string is an IPv4 or IPv6 address.
enum IPAddressText {
    static func isAddress(_ text: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
