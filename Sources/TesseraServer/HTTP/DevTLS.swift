// `--dev-tls`: a throwaway CA and a server certificate signed by it, written to the dev folder,
// as `vault server -dev-tls` does. Clients trust the CA file; the server serves the chain.
import Crypto
import Foundation
import SwiftASN1
import TesseraCore
import X509

public enum DevTLS {
    /// The files written: the CA to give clients, and the server's chain and key.
    public struct Files: Sendable {
        public let caFile: String
        public let certFile: String
        public let keyFile: String
    }

    /// Writes `ca.pem`, `server.pem` (leaf then CA) and `server-key.pem` (mode 0600) into `directory`.
    /// The server certificate names localhost, 127.0.0.1, ::1 and `host` when it is another name or address.
    public static func write(to directory: String, host: String, now: Date = Date()) throws -> Files {
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("Tessera dev CA") }
        let ca = try Certificate(version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
                                 notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(30 * 86_400),
                                 issuer: caName, subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
                                 extensions: try Certificate.Extensions {
                                     Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                                     Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                                 },
                                 issuerPrivateKey: .init(caKey))
        let serverKey = P256.Signing.PrivateKey()
        var names: [GeneralName] = [.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                                    .ipAddress(ASN1OctetString(contentBytes: ArraySlice([UInt8](repeating: 0, count: 15) + [1])))]
        if !["localhost", "127.0.0.1", "::1", "0.0.0.0", "::"].contains(host) {
            if let bytes = IPAddressBytes.parse(host) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
            } else {
                names.append(.dnsName(host))
            }
        }
        let server = try Certificate(version: .v3, serialNumber: .init(), publicKey: .init(serverKey.publicKey),
                                     notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(30 * 86_400),
                                     issuer: caName, subject: try DistinguishedName { CommonName("localhost") },
                                     signatureAlgorithm: .ecdsaWithSHA256,
                                     extensions: try Certificate.Extensions {
                                         Critical(BasicConstraints.notCertificateAuthority)
                                         Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                                         try ExtendedKeyUsage([.serverAuth])
                                         SubjectAlternativeNames(names)
                                     },
                                     issuerPrivateKey: .init(caKey))
        let files = Files(caFile: directory + "/ca.pem", certFile: directory + "/server.pem", keyFile: directory + "/server-key.pem")
        let caPEM = try ca.serializeAsPEM().pemString + "\n"
        try write(caPEM, to: files.caFile, mode: 0o644)
        try write(try server.serializeAsPEM().pemString + "\n" + caPEM, to: files.certFile, mode: 0o644)
        try? FileManager.default.removeItem(atPath: files.keyFile)
        try SecretFile.create(files.keyFile, Array((serverKey.pemRepresentation + "\n").utf8))
        return files
    }

    private static func write(_ text: String, to path: String, mode: Int) throws {
        try? FileManager.default.removeItem(atPath: path)
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
            throw TesseraError.unavailable("cannot write \(path)")
        }
    }
}

/// The bytes of a textual IPv4 or IPv6 address, for a certificate's subject alternative names.
enum IPAddressBytes {
    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}
