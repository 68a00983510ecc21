// `tessera auth`, `validate-token` and `revoke-token`: logging in and managing the saved token.
import ArgumentParser
import Foundation

struct AuthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auth", abstract: CLIHelp.verb("auth", "Log in and save the token to a profile."),
        discussion: """
            The token is saved to the profile (--profile); no credential is saved. --access-type access_key (default) \
            takes --access-key; jwt takes --jwt (a value, @FILE, env:NAME or - for standard input); k8s takes \
            --jwt or reads the pod's service-account token, and --k8s-auth-config-name; cert takes --cert-file \
            and --key-file.
            """)
    @OptionGroup var api: APIOptions
    @Option(name: .customLong("access-id"), help: .field("auth", "access-id")) var accessId: String
    @OptionGroup var login: LoginOptions

    func run() async throws {
        try await runCLI {
            let answer = try await APIClient.call("auth", try login.body(accessId: accessId), options: api, withToken: false)
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

/// How to log in: the credential of each access type (`auth`, and `agent` for its own identity).
struct LoginOptions: ParsableArguments {
    @Option(name: .customLong("access-type"), help: "access_key (default), jwt, oidc, k8s or cert.") var accessType: String = "access_key"
    @Option(name: .customLong("access-key"), help: .field("auth", "access-key", note: "When omitted: $TESSERA_ACCESS_KEY or standard input."))
    var accessKey: String?
    @Option(help: "jwt, k8s: the token (a value, @FILE, env:NAME or -).") var jwt: String?
    @Option(name: .customLong("k8s-auth-config-name"), help: "k8s: the gateway k8s auth config.") var k8sConfig: String?
    @Option(name: .customLong("cert-file"), help: "cert: the client certificate (PEM file).") var certFile: String?
    @Option(name: .customLong("key-file"), help: "cert: its private key (PEM file).") var keyFile: String?

    static let serviceAccountTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

    func body(accessId: String) throws -> [String: Any?] {
        var body: [String: Any?] = ["access-id": accessId, "access-type": accessType]
        switch accessType {
        case "access_key", "api_key":
            body["access-key"] = try SecretInput.resolve(accessKey, flag: "--access-key")
                ?? ProcessInfo.processInfo.environment["TESSERA_ACCESS_KEY"] ?? readLine(strippingNewline: true) ?? ""
        case "jwt", "oidc":
            guard let token = try SecretInput.resolve(jwt, flag: "--jwt") else { throw CLIError(description: "--jwt is required") }
            body["jwt"] = token.trimmingCharacters(in: .whitespacesAndNewlines)
        case "k8s":
            let token: String = try SecretInput.resolve(jwt ?? "@" + Self.serviceAccountTokenFile, flag: "--jwt")
            body["k8s-service-account-token"] = token.trimmingCharacters(in: .whitespacesAndNewlines)
            body["k8s-auth-config-name"] = k8sConfig
        case "cert":
            guard let certFile, let cert = FileManager.default.contents(atPath: certFile),
                  let keyFile, let key = FileManager.default.contents(atPath: keyFile) else {
                throw CLIError(description: "--cert-file and --key-file must name readable PEM files")
            }
            body["cert-data"] = cert.base64EncodedString()
            body["key-data"] = key.base64EncodedString()
        default:
            throw CLIError(description: "--access-type must be access_key, jwt, oidc, k8s or cert")
        }
        return body
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
