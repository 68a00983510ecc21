// Client certificates for certificate auth: whether a presented certificate is trusted by a
// role's certificate, and the names in it that constraints match. A CA certificate is trusted
// through RFC 5280 path validation at the time of the login (expired, not yet valid and wrongly
// chained certificates fail). A non-CA certificate is trusted only when the presented one has
// the same public key and is itself valid now — never by serial number or subject alone, the
// lesson of CVE-2024-2048.
import Crypto
import Foundation
import SwiftASN1
import X509

public struct ClientCertificateNames: Sendable, Equatable {
    public var commonName: String
    public var dnsNames: [String]
    public var emailAddresses: [String]
    public var uris: [String]
    public var organizationalUnits: [String]
    /// The serial number in decimal, as Vault shows it.
    public var serialNumber: String
    public var subject: String
    public var subjectKeyId: String
    public var authorityKeyId: String
}

public enum ClientCertificates {
    /// Parses one PEM certificate or the first of several.
    public static func certificate(pem: String) throws -> Certificate {
        try Certificate(pemEncoded: pem.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public static func certificate(der: [UInt8]) throws -> Certificate {
        try Certificate(derEncoded: der)
    }

    /// Every certificate in a PEM bundle.
    public static func certificates(pemBundle: String) throws -> [Certificate] {
        try PEMDocument.parseMultiple(pemString: pemBundle).map { try Certificate(pemDocument: $0) }
    }

    public static func isCA(_ c: Certificate) -> Bool {
        if case .isCertificateAuthority? = try? c.extensions.basicConstraints { return true }
        return false
    }

    /// Whether a certificate may serve for TLS client authentication, as Go's verifier (and so
    /// Vault) decides: it lists no extended key usages, or lists client auth or any. A usage
    /// extension that does not parse allows nothing.
    public static func allowsClientAuth(_ c: Certificate) -> Bool {
        do {
            guard let eku = try c.extensions.extendedKeyUsage else { return true }
            return eku.contains(.clientAuth) || eku.contains(.any)
        } catch {
            return false
        }
    }

    /// Whether `leaf` (with the intermediates the client sent) is trusted by `trusted` at `now`.
    public static func isTrusted(leaf: Certificate, intermediates: [Certificate] = [], by trusted: Certificate, now: Date) async -> Bool {
        guard leaf.notValidBefore <= now, now <= leaf.notValidAfter else { return false }
        // As Go's verifier with ExtKeyUsageClientAuth: a leaf that lists usages must list client auth.
        guard allowsClientAuth(leaf) else { return false }
        if !isCA(trusted) {
            // A pinned leaf: the very key, and the certificate itself must be the trusted one.
            return leaf.publicKey == trusted.publicKey && leaf == trusted
        }
        var verifier = Verifier(rootCertificates: CertificateStore([trusted])) {
            RFC5280Policy()
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates))
        if case .validCertificate = result { return true }
        return false
    }

    /// Whether `privateKeyPEM` is the private key of `certificate` (proof of possession when a
    /// client sends both, as the Akeyless SDK's certificate login does).
    public static func keyMatches(_ privateKeyPEM: String, certificate: Certificate) -> Bool {
        guard let key = try? Certificate.PrivateKey(pemEncoded: privateKeyPEM.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            return false
        }
        return key.publicKey == certificate.publicKey
    }

    public static func names(_ c: Certificate) -> ClientCertificateNames {
        var cn = "", ous: [String] = []
        for rdn in c.subject {
            for attribute in rdn {
                guard let value = String(attribute.value) else { continue }
                if attribute.type == .RDNAttributeType.commonName, cn.isEmpty { cn = value }
                if attribute.type == .RDNAttributeType.organizationalUnitName { ous.append(value) }
            }
        }
        var dns: [String] = [], emails: [String] = [], uris: [String] = []
        if let sans = try? c.extensions.subjectAlternativeNames {
            for name in sans {
                switch name {
                case .dnsName(let n): dns.append(n)
                case .rfc822Name(let n): emails.append(n)
                case .uniformResourceIdentifier(let n): uris.append(n)
                default: break
                }
            }
        }
        let ski = (try? c.extensions.subjectKeyIdentifier).flatMap { $0 }.map { colonHex(Array($0.keyIdentifier)) } ?? ""
        let aki = (try? c.extensions.authorityKeyIdentifier).flatMap { $0?.keyIdentifier }.map { colonHex(Array($0)) } ?? ""
        return ClientCertificateNames(commonName: cn, dnsNames: dns, emailAddresses: emails, uris: uris, organizationalUnits: ous,
                                      serialNumber: decimal(Array(c.serialNumber.bytes)), subject: String(describing: c.subject),
                                      subjectKeyId: ski, authorityKeyId: aki)
    }

    static func colonHex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined(separator: ":")
    }

    /// A big-endian unsigned integer in decimal.
    static func decimal(_ bytes: [UInt8]) -> String {
        var digits: [UInt8] = []
        var number = Array(bytes.drop { $0 == 0 })
        while !number.isEmpty {
            var remainder = 0
            var next: [UInt8] = []
            for byte in number {
                let value = remainder * 256 + Int(byte)
                let q = value / 10
                remainder = value % 10
                if !next.isEmpty || q != 0 { next.append(UInt8(q)) }
            }
            digits.append(UInt8(remainder))
            number = next
        }
        return digits.isEmpty ? "0" : String(digits.reversed().map { Character(String($0)) })
    }
}
