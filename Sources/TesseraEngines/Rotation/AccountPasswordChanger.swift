// How a rotated secret's password is changed and proven on its target: PostgreSQL with
// `ALTER ROLE … PASSWORD` (as the target's admin or as the role itself), Linux over SSH with
// `chpasswd` (or a custom command) as the target's user. Verification always opens a new
// connection that logs in as the account with the password being checked.
import Foundation
import PostgresNIO
import TesseraCore

struct AccountPasswordChanger: Sendable {
    let rotator: Rotator
    let target: Target
    let connectors: ConnectorEngine

    /// Sets the account's password from `current` to `new`.
    func apply(current: String, new: String) async throws {
        switch rotator.kind {
        case .postgres:
            let admin = try connectors.postgres(target)
            let sql = "ALTER ROLE \(try SQLQuoting.identifier(rotator.username)) WITH PASSWORD \(try SQLQuoting.literal(new))"
            let session: PostgresTarget
            switch rotator.credentials {
            case .target: session = admin
            case .user: session = PostgresTarget(host: admin.host, port: admin.port, database: admin.database, username: rotator.username,
                                                 password: current, tls: admin.tls)
            }
            try await session.withConnection { c in
                _ = try await c.query(PostgresQuery(unsafeSQL: sql), logger: PostgresTarget.logger).collect()
            }
        case .ssh:
            var endpoint = try connectors.sshEndpoint(target)
            if rotator.credentials == .user {
                endpoint.username = rotator.username
                endpoint.authentication = .password(current)
            }
            let command = try Self.sshCommand(rotator, password: new)
            let result = try await SSHClient.run(endpoint, command: command, input: Array("\(rotator.username):\(new)\n".utf8))
            guard result.exitStatus == 0 else {
                let detail = result.stderr.split(separator: "\n").first.map(String.init) ?? ""
                throw TesseraError.badGateway("the password command exited with status \(result.exitStatus)"
                                              + (detail.isEmpty ? "" : ": " + detail))
            }
        }
    }

    /// Logs in as the account with `password` on a new connection.
    func verify(password: String) async throws {
        switch rotator.kind {
        case .postgres:
            let admin = try connectors.postgres(target)
            let session = PostgresTarget(host: admin.host, port: rotator.verifyPort > 0 ? rotator.verifyPort : admin.port,
                                         database: admin.database, username: rotator.username, password: password, tls: admin.tls)
            try await session.verify()
        case .ssh:
            var endpoint = try connectors.sshEndpoint(target)
            endpoint.username = rotator.username
            endpoint.authentication = .password(password)
            if rotator.verifyPort > 0 { endpoint.port = rotator.verifyPort }
            _ = try await SSHClient.run(endpoint, command: "true", timeout: .seconds(15))
        }
    }

    /// Checks, before anything is stored, that the target's credentials work (and, when the
    /// account changes its own password, that its current password logs in).
    func dryRun(current: String) async throws {
        switch (rotator.kind, rotator.credentials) {
        case (.postgres, .target): try await connectors.postgres(target).verify()
        case (.ssh, .target): _ = try await SSHClient.run(try connectors.sshEndpoint(target), command: "true", timeout: .seconds(15))
        case (_, .user): try await verify(password: current)
        }
    }

    /// `chpasswd`, or the custom command with `{{username}}` and `{{password}}` shell-quoted.
    /// The input line `username:password` is always on stdin, so commands need not name the password.
    static func sshCommand(_ r: Rotator, password: String) throws -> String {
        guard !r.customCommand.isEmpty else { return "chpasswd" }
        return r.customCommand
            .replacingOccurrences(of: "{{username}}", with: shellQuote(r.username))
            .replacingOccurrences(of: "{{password}}", with: shellQuote(password))
    }

    static func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
