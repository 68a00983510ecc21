// Access management commands: auth methods, roles, rules and associations.
import ArgumentParser
import Foundation

struct CreateAuthMethodCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-auth-method",
        abstract: CLIHelp.verb("create-auth-method", "Create an auth method: an API key (prints its access key once), or a workload identity."),
        discussion: """
            --type api_key (default): an access id and key. --type oauth2 (or jwt): JWTs from --jwks-uri, identified by \
            --unique-identifier. --type k8s: Kubernetes service-account tokens, bounded by --bound-namespaces and \
            --bound-sa-names (prints the private key for the gateway k8s auth config once). --type cert: client \
            certificates trusted by --certificate-file, identified by --unique-identifier.
            """)
    @OptionGroup var api: APIOptions
    @Option(help: .field("create-auth-method", "name")) var name: String
    @Option(help: "api_key (default), oauth2 (jwt), k8s or cert.") var type: String = "api_key"
    @Option(name: .customLong("jwt-ttl"), help: .field("create-auth-method", "jwt-ttl")) var jwtTTL: Int?
    @Option(name: .customLong("bound-ips"), help: .field("create-auth-method", "bound-ips", note: "Repeatable.")) var boundIPs: [String] = []
    @Option(name: .customLong("access-expires"), help: .field("create-auth-method", "access-expires")) var accessExpires: Int?
    @Option(name: .customLong("jwks-uri"), help: "oauth2: the issuer's JWKS URL.") var jwksURI: String?
    @Option(name: .customLong("unique-identifier"), help: "oauth2, cert: the claim or field that identifies the workload.") var uniqueIdentifier: String?
    @Option(help: "oauth2: the required iss claim.") var issuer: String?
    @Option(help: "oauth2, k8s: the required aud value.") var audience: String?
    @Option(name: .customLong("bound-client-ids"), help: "oauth2: allowed client ids. Repeatable.") var boundClientIds: [String] = []
    @Option(name: .customLong("bound-namespaces"), help: "k8s: allowed namespaces (globs). Repeatable.") var boundNamespaces: [String] = []
    @Option(name: .customLong("bound-sa-names"), help: "k8s: allowed service accounts (globs). Repeatable.") var boundSANames: [String] = []
    @Option(name: .customLong("certificate-file"), help: "cert: a PEM file with the trusted CA or certificate.") var certificateFile: String?
    @Option(name: .customLong("bound-common-names"), help: "cert: allowed common names (globs). Repeatable.") var boundCommonNames: [String] = []
    @Option(name: .customLong("bound-dns-sans"), help: "cert: allowed DNS SANs (globs). Repeatable.") var boundDNSSans: [String] = []

    func run() async throws {
        try await runCLI {
            var body: [String: Any?] = ["name": name, "jwt-ttl": jwtTTL, "bound-ips": boundIPs.isEmpty ? nil : boundIPs,
                                        "access-expires": accessExpires]
            let verb: String
            switch type {
            case "api_key", "access_key": verb = "create-auth-method"
            case "oauth2", "jwt":
                verb = "auth-method-create-oauth2"
                body["jwks-uri"] = jwksURI
                body["unique-identifier"] = uniqueIdentifier
                body["issuer"] = issuer
                body["audience"] = audience
                body["bound-client-ids"] = boundClientIds.isEmpty ? nil : boundClientIds
            case "k8s", "kubernetes":
                verb = "auth-method-create-k8s"
                body["audience"] = audience
                body["bound-namespaces"] = boundNamespaces.isEmpty ? nil : boundNamespaces
                body["bound-sa-names"] = boundSANames.isEmpty ? nil : boundSANames
            case "cert":
                verb = "auth-method-create-cert"
                guard let certificateFile, let pem = FileManager.default.contents(atPath: certificateFile) else {
                    throw CLIError(description: "--certificate-file must name a readable PEM file")
                }
                body["certificate-data"] = pem.base64EncodedString()
                body["unique-identifier"] = uniqueIdentifier ?? "common_name"
                body["bound-common-names"] = boundCommonNames.isEmpty ? nil : boundCommonNames
                body["bound-dns-sans"] = boundDNSSans.isEmpty ? nil : boundDNSSans
            default:
                throw CLIError(description: "--type must be api_key, oauth2, k8s or cert")
            }
            let a = try await APIClient.call(verb, body, options: api)
            if api.json { APIClient.print(a, options: api); return }
            let o = a as? [String: Any] ?? [:]
            print("Access ID:  \(o["access_id"] as? String ?? "")")
            if let key = o["access_key"] as? String {
                print("Access Key: \(key)")
                print("The access key is shown once; Tessera keeps only its hash.")
            }
            if let key = o["prv_key"] as? String, !key.isEmpty {
                print("Private key (the signing-key of its gateway k8s auth config): \(key)")
                print("The private key is shown once; Tessera keeps only the public key.")
            }
        }
    }
}

struct ListAuthMethodsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-auth-methods",
                                                    abstract: CLIHelp.verb("list-auth-methods", "List auth methods."))
    @OptionGroup var api: APIOptions
    func run() async throws {
        try await runCLI { APIClient.print(try await APIClient.call("list-auth-methods", [:], options: api), options: api) }
    }
}

struct GetAuthMethodCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get-auth-method",
                                                    abstract: CLIHelp.verb("get-auth-method", "Show an auth method."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("get-auth-method", "name")) var name: String
    func run() async throws {
        try await runCLI { APIClient.print(try await APIClient.call("get-auth-method", ["name": name], options: api), options: api) }
    }
}

struct DeleteAuthMethodCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete-auth-method",
                                                    abstract: CLIHelp.verb("delete-auth-method", "Delete an auth method and its tokens."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("delete-auth-method", "name")) var name: String
    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("delete-auth-method", ["name": name], options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Deleted auth method \(name)") }
        }
    }
}

struct CreateRoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create-role",
                                                    abstract: CLIHelp.verb("create-role", "Create an access role."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("create-role", "name")) var name: String
    @Option(help: .field("create-role", "description")) var description: String?
    @Option(name: .customLong("audit-access"), help: .field("create-role", "audit-access")) var auditAccess: String?
    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("create-role", ["name": name, "description": description, "audit-access": auditAccess], options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Created role \(name)") }
        }
    }
}

struct GetRoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get-role",
                                                    abstract: CLIHelp.verb("get-role", "Show a role, its rules and associations."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("get-role", "name")) var name: String
    func run() async throws {
        try await runCLI { APIClient.print(try await APIClient.call("get-role", ["name": name], options: api), options: api) }
    }
}

struct ListRolesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-roles",
                                                    abstract: CLIHelp.verb("list-roles", "List roles."))
    @OptionGroup var api: APIOptions
    func run() async throws {
        try await runCLI { APIClient.print(try await APIClient.call("list-roles", [:], options: api), options: api) }
    }
}

struct DeleteRoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete-role",
                                                    abstract: CLIHelp.verb("delete-role", "Delete a role."))
    @OptionGroup var api: APIOptions
    @Option(help: .field("delete-role", "name")) var name: String
    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("delete-role", ["name": name], options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Deleted role \(name)") }
        }
    }
}

struct SetRoleRuleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set-role-rule",
                                                    abstract: CLIHelp.verb("set-role-rule", "Set a rule's capabilities on a path pattern."))
    @OptionGroup var api: APIOptions
    @Option(name: .customLong("role-name"), help: .field("set-role-rule", "role-name")) var roleName: String
    @Option(help: .field("set-role-rule", "path")) var path: String
    @Option(help: .field("set-role-rule", "capability", note: "Repeatable.")) var capability: [String]
    @Option(name: .customLong("rule-type"), help: .field("set-role-rule", "rule-type")) var ruleType: String?
    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("set-role-rule", ["role-name": roleName, "path": path, "capability": capability,
                                                                "rule-type": ruleType], options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Rule set on role \(roleName): \(path) \(capability.joined(separator: ","))") }
        }
    }
}

struct DeleteRoleRuleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete-role-rule",
                                                    abstract: CLIHelp.verb("delete-role-rule", "Remove a rule from a role."))
    @OptionGroup var api: APIOptions
    @Option(name: .customLong("role-name"), help: .field("delete-role-rule", "role-name")) var roleName: String
    @Option(help: .field("delete-role-rule", "path")) var path: String
    @Option(name: .customLong("rule-type"), help: .field("delete-role-rule", "rule-type")) var ruleType: String?
    func run() async throws {
        try await runCLI {
            let a = try await APIClient.call("delete-role-rule", ["role-name": roleName, "path": path, "rule-type": ruleType], options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Rule removed from role \(roleName)") }
        }
    }
}

struct AssocRoleAMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "assoc-role-am",
                                                    abstract: CLIHelp.verb("assoc-role-am", "Associate a role with an auth method."))
    @OptionGroup var api: APIOptions
    @Option(name: .customLong("role-name"), help: .field("assoc-role-am", "role-name")) var roleName: String
    @Option(name: .customLong("am-name"), help: .field("assoc-role-am", "am-name")) var amName: String
    @Option(name: .customLong("sub-claims"), help: .field("assoc-role-am", "sub-claims", valueName: "key=value1,value2"))
    var subClaims: [String] = []
    func run() async throws {
        try await runCLI {
            var claims: [String: String] = [:]
            for c in subClaims {
                let parts = c.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw CLIError(description: "invalid --sub-claims '\(c)': expected key=value") }
                claims[parts[0]] = parts[1]
            }
            let a = try await APIClient.call("assoc-role-am", ["role-name": roleName, "am-name": amName,
                                                                "sub-claims": claims.isEmpty ? nil : claims], options: api)
            if api.json { APIClient.print(a, options: api) } else { print("Associated role \(roleName) with \(amName)") }
        }
    }
}
