// `tessera auth`, `validate-token` and `revoke-token`: logging in and managing the saved token.
import ArgumentParser
import Foundation

struct AuthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auth", abstract: CLIHelp.verb("auth", "Log in with an API key and save the token to a profile."),
        discussion: "The token is saved to the profile (--profile); the access key is never saved.")
    @OptionGroup var api: APIOptions
    @Option(name: .customLong("access-id"), help: .field("auth", "access-id")) var accessId: String
    @Option(name: .customLong("access-key"), help: .field("auth", "access-key", note: "When omitted: $TESSERA_ACCESS_KEY or standard input."))
    var accessKey: String?

    func run() async throws {
        try await runCLI {
            let key = try SecretInput.resolve(accessKey, flag: "--access-key")
                ?? ProcessInfo.processInfo.environment["TESSERA_ACCESS_KEY"] ?? readLine(strippingNewline: true) ?? ""
            let answer = try await APIClient.call("auth", ["access-id": accessId, "access-key": key, "access-type": "access_key"],
                                                  options: api, withToken: false)
            guard let o = answer as? [String: Any], let token = o["token"] as? String else {
                throw CLIError(description: "the server did not return a token")
            }
            try Profile(address: api.resolvedAddress, token: token, expiration: o["expiration"] as? String, caCert: api.resolvedCACert).save(api.profile)
            if api.json { APIClient.print(answer, options: api) } else {
                print("Authenticated. Token saved to profile '\(api.profile)' (expires \(o["expiration"] as? String ?? "?")).")
            }
        }
    }
}

struct ValidateTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "validate-token",
                                                    abstract: CLIHelp.verb("validate-token", "Check whether the token is valid."))
    @OptionGroup var api: APIOptions

    func run() async throws {
        try await runCLI {
            let answer = try await APIClient.call("validate-token", [:], options: api)
            APIClient.print(answer, options: api)
            if let o = answer as? [String: Any], o["is_valid"] as? Bool != true { throw ExitCode(2) }
        }
    }
}

struct RevokeTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke-token",
                                                    abstract: CLIHelp.verb("revoke-creds", "Revoke the token (log out)."))
    @OptionGroup var api: APIOptions

    func run() async throws {
        try await runCLI {
            _ = try await APIClient.call("revoke-creds", [:], options: api)
            if !api.json { print("Token revoked.") }
        }
    }
}
