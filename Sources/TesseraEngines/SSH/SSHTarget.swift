// SSH targets: a host, port and a privileged user with a password or a private key, and the
// host key pinned at creation (given, or learned on the first connection and checked on every
// later one). The credential is sealed at rest with AAD bound to the target's name.
import Foundation
import NIOSSH
import TesseraCore
import TesseraCrypto

extension ConnectorEngine {
    /// Logs in once (refusing a host key that differs from `hostKey`), then stores the target.
    public func createSSHTarget(name raw: String, host: String, port: Int, username: String, password: String?, privateKey: String?,
                                hostKey: String?) async throws -> Target {
        let keyring = try seal.keyring()
        let name = try Target.validateName(raw)
        guard !host.isEmpty, (1...65535).contains(port), !username.isEmpty else {
            throw TesseraError.badRequest("host, a port between 1 and 65535, and ssh-username are required")
        }
        let password = password.flatMap { $0.isEmpty ? nil : $0 }
        let privateKey = privateKey.flatMap { $0.isEmpty ? nil : $0 }
        guard (password == nil) != (privateKey == nil) else {
            throw TesseraError.badRequest("give exactly one of ssh-password and private-key")
        }
        let credential = SSHCredential(password: password, privateKey: privateKey)
        let endpoint = SSHEndpoint(host: host, port: port, username: username, authentication: try credential.authentication(),
                                   hostKey: hostKey.flatMap { $0.isEmpty ? nil : $0 })
        let presented: String
        do {
            presented = try await SSHClient.run(endpoint, command: "true").hostKey
        } catch let e as TesseraError {
            throw TesseraError.badRequest("cannot create the target: \(e.message)")
        }
        let sealed = try keyring.seal(Array(try JSONEncoder().encode(credential)), aad: Self.targetAAD(name))
        let settings = ["host": host, "port": String(port), "user_name": username, "host_key": presented,
                        "auth": password == nil ? "private-key" : "password"]
        let target = Target(name: name, kind: .ssh, settings: settings, credentialCiphertext: sealed.ciphertext, keyTerm: sealed.term,
                            createdAt: now())
        try await store.createTarget(target)
        return target
    }

    /// The endpoint of an SSH target as its privileged user, with the pinned host key.
    public func sshEndpoint(_ target: Target) throws -> SSHEndpoint {
        guard target.kind == .ssh else { throw TesseraError.badRequest("target \(target.name) is not an SSH target") }
        let keyring = try seal.keyring()
        let plain = try keyring.open(target.credentialCiphertext, term: target.keyTerm, aad: Self.targetAAD(target.name))
        guard let credential = try? JSONDecoder().decode(SSHCredential.self, from: Data(plain)) else {
            throw TesseraError.integrity("the credential of target \(target.name) is malformed")
        }
        return SSHEndpoint(host: target.settings["host"] ?? "", port: Int(target.settings["port"] ?? "") ?? 22,
                           username: target.settings["user_name"] ?? "", authentication: try credential.authentication(),
                           hostKey: target.settings["host_key"])
    }
}

/// The sealed credential of an SSH target.
struct SSHCredential: Codable {
    var password: String?
    var privateKey: String?

    func authentication() throws -> SSHAuthentication {
        if let privateKey { return .privateKey(try OpenSSHPrivateKey.parse(privateKey)) }
        return .password(password ?? "")
    }
}
