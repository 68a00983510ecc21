// The hardest-to-see checks of issue 13, as unit tests: the DNS-name check of verify-full (an IP
// entry never satisfies a name), the `--dev-tls` certificate's names, an API file device that
// reaches the data directory through a symlinked folder, and webhook URLs shown without their
// credentials.
import Foundation
import NIOSSL
import Testing
@testable import TesseraCore
@testable import TesseraEngines
@testable import TesseraServer

@Suite struct TLSNamesAndDeviceTests {
    let dir: String = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("tlsnames-" + UUID().uuidString).path
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    @Test func devCertificateNamesLocalhostButNotOtherNames() throws {
        let files = try DevTLS.write(to: dir, host: "127.0.0.1")
        let leaf = try #require(try NIOSSLCertificate.fromPEMFile(files.certFile).first)
        #expect(PostgresTLS.certificate(leaf, holdsDNSName: "localhost"))
        #expect(PostgresTLS.certificate(leaf, holdsDNSName: "LOCALHOST"))
        // The certificate also has IP entries for 127.0.0.1: they never stand in for a name.
        #expect(!PostgresTLS.certificate(leaf, holdsDNSName: "wrong.example.com"))
        #expect(!PostgresTLS.certificate(leaf, holdsDNSName: "127.0.0.1"))
        let key = try String(contentsOfFile: files.keyFile, encoding: .utf8)
        #expect(key.contains("PRIVATE KEY"))
        let mode = try FileManager.default.attributesOfItem(atPath: files.keyFile)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
    }

    @Test func verifyFullExpectsTheHostOnlyWhenItIsAName() {
        let tls = PostgresTLS(mode: .verifyFull)
        #expect(tls.expectedDNSName(host: "db.example.com") == "db.example.com")
        #expect(tls.expectedDNSName(host: "127.0.0.1") == nil)
        #expect(tls.expectedDNSName(host: "::1") == nil)
        #expect(PostgresTLS(mode: .verifyFull, serverName: "db.internal").expectedDNSName(host: "10.0.0.5") == "db.internal")
        #expect(PostgresTLS(mode: .verifyCA).expectedDNSName(host: "db.example.com") == nil)
    }

    @Test func apiFileDeviceCannotReachTheDataDirectoryThroughASymlink() throws {
        let data = dir + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: data)
        var device = AuditDeviceConfig(name: "api", type: .file)
        device.path = dir + "/link/evil.log"
        #expect(throws: TesseraError.self) { try device.validate(dataDirectory: data, fromAPI: true) }
        device.path = data + "/../data/evil.log"
        #expect(throws: TesseraError.self) { try device.validate(dataDirectory: data, fromAPI: true) }
        device.path = dir + "/outside.jsonl"
        try device.validate(dataDirectory: data, fromAPI: true)
        device.path = dir + "/outside.sh"
        #expect(throws: TesseraError.self) { try device.validate(dataDirectory: data, fromAPI: true) }
    }

    @Test func webhookURLsAreShownWithoutCredentials() {
        #expect(AuditDeviceConfig.redacted("https://user:secret@collector.example.com/ingest?token=abc") ==
                "https://redacted@collector.example.com/ingest?redacted")
        #expect(AuditDeviceConfig.redacted("https://collector.example.com/ingest") == "https://collector.example.com/ingest")
    }
}
