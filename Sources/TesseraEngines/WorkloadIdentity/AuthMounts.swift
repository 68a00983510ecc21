// AuthMounts: the Vault view of workload-identity auth methods. `sys/auth/<path>` enables a
// method named `/<path>`; `auth/<path>/config` and `auth/<path>/role/<name>` are its settings and
// login roles. A method created through the native API is the same object, so either API sees it.
import Foundation
import TesseraCore

extension WorkloadIdentityEngine {
    /// Vault mount types and the Tessera method type behind each.
    public static func methodType(vaultType: String) -> String? {
        switch vaultType {
        case "jwt", "oidc": jwtType
        case "kubernetes": kubernetesType
        case "cert": certType
        default: nil
        }
    }

    /// The Vault type a method shows in `sys/auth`.
    public static func vaultType(_ m: AuthMethod) -> String {
        if let t = m.config["vault_type"]?.stringValue, !t.isEmpty { return t }
        switch m.type {
        case jwtType: return "jwt"
        case kubernetesType: return "kubernetes"
        case certType: return "cert"
        default: return "approle"
        }
    }

    public static func isWorkloadType(_ type: String) -> Bool { [jwtType, kubernetesType, certType].contains(type) }

    /// A Vault auth path: segments of letters, digits, `-`, `_` and `.`, not a built-in mount.
    public static func validateMountPath(_ raw: String) throws -> String {
        var path = raw
        while path.hasSuffix("/") { path.removeLast() }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.isEmpty, path.utf8.count <= 128,
              segments.allSatisfy({ s in !s.isEmpty && s != "." && s != ".." && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) } })
        else { throw TesseraError.badRequest("invalid auth path \"\(raw.prefix(128))\"") }
        guard !["token", "approle"].contains(String(segments[0])) else {
            throw TesseraError.badRequest("path is already in use at \(segments[0])/")
        }
        return path
    }

    /// Login role names: lower-cased, letters, digits, `-`, `_`, `.` and `@`.
    public static func roleName(_ raw: String) throws -> String {
        let name = raw.lowercased()
        guard !name.isEmpty, name.utf8.count <= 128, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.@".contains($0)) }) else {
            throw TesseraError.badRequest("invalid role name \"\(raw.prefix(128))\"")
        }
        return name
    }

    public func enable(path: String, vaultType: String, description: String) async throws -> AuthMethod {
        guard let type = Self.methodType(vaultType: vaultType) else {
            throw TesseraError.badRequest("plugin not found in the catalog: \(vaultType.prefix(64))")
        }
        let name = "/" + path
        if try await store.authMethod(name: name) != nil { throw TesseraError.badRequest("path is already in use at \(path)/") }
        try await access.requireFreeAuthMountPath(path)
        return try await access.createMethod(name: name, type: type,
                                             config: .obj(("description", .string(description)), ("vault_type", .string(vaultType))),
                                             tokenTTLMinutes: nil)
    }

    /// Keys that a `config` write (which replaces the configuration) leaves in place.
    static let preservedKeys = ["vault_type", "description", "audience", "unique_identifier", "bound_client_ids", "k8s_auth_configs",
                                "bound_namespaces", "bound_sa_names", "bound_pod_names", "tune_default_lease_ttl", "tune_max_lease_ttl"]

    static func preserving(_ fresh: JSON, from old: JSON) -> JSON {
        guard case .object(var pairs) = fresh else { return fresh }
        for key in preservedKeys where fresh[key] == nil {
            if let v = old[key] { pairs.append((key, v)) }
        }
        return .object(pairs)
    }

    /// `auth/<path>/config` write.
    public func writeVaultConfig(_ method: AuthMethod, body: JSON) async throws {
        var m = method
        switch method.type {
        case Self.jwtType:
            let config = try JWTSettings.vaultConfig(body)
            if config["skip_jwks_validation"] != .bool(true), let origin = JWTSettings.origin(config) {
                do { try await keys.probe(origin) } catch { throw TesseraError.badRequest("error checking jwks URL: \(error)") }
            }
            m.config = Self.preserving(config, from: method.config)
        case Self.kubernetesType:
            m.config = Self.preserving(try await KubernetesSettings.vaultConfig(body, old: method.config, seal: seal, accessId: method.accessId),
                                       from: method.config)
        case Self.certType:
            let disableBinding = try FieldValues.bool(body["disable_binding"], "disable_binding") ?? false
            let aliasMetadata = try FieldValues.bool(body["enable_identity_alias_metadata"], "enable_identity_alias_metadata") ?? false
            m.config = Self.preserving(.obj(("disable_binding", .bool(disableBinding)), ("enable_identity_alias_metadata", .bool(aliasMetadata)),
                                            ("ocsp_cache_size", .int(100))), from: method.config)
        default:
            throw TesseraError.badRequest("unsupported operation")
        }
        try await access.updateMethod(m)
    }

    /// `auth/<path>/config` read; nil for a JWT/OIDC or Kubernetes mount that was enabled and
    /// never configured (Vault answers 404 there).
    public func vaultConfigView(_ method: AuthMethod) -> JSON? {
        let setUpKeys: Set<String> = ["description", "vault_type", "tune_default_lease_ttl", "tune_max_lease_ttl"]
        if method.type == Self.jwtType || method.type == Self.kubernetesType, case .object(let pairs) = method.config,
           pairs.allSatisfy({ setUpKeys.contains($0.0) }) {
            return nil
        }
        return switch method.type {
        case Self.jwtType: JWTSettings.vaultView(method.config)
        case Self.kubernetesType: KubernetesSettings.vaultView(method.config)
        case Self.certType: .obj(("disable_binding", method.config["disable_binding"] ?? .bool(false)),
                                 ("enable_identity_alias_metadata", method.config["enable_identity_alias_metadata"] ?? .bool(false)),
                                 ("ocsp_cache_size", .int(100)))
        default: .object([])
        }
    }

    /// `auth/<path>/role/<name>` write (create, or update over the existing role).
    public func writeVaultRole(_ method: AuthMethod, name raw: String, body: JSON) async throws -> AuthMethodRole {
        let name = try Self.roleName(raw)
        let old = try await access.loginRole(accessId: method.accessId, name: name)?.config
        let config: JSON
        switch method.type {
        case Self.jwtType: config = try JWTSettings.vaultRole(body, over: old)
        case Self.kubernetesType: config = try KubernetesSettings.vaultRole(body, over: old)
        case Self.certType: config = try CertSettings.vaultRole(body, name: name, over: old)
        default: throw TesseraError.badRequest("unsupported operation")
        }
        let role = AuthMethodRole(accessId: method.accessId, name: name, config: config)
        try await access.putLoginRole(role)
        return role
    }

    /// The access roles a login role would grant (for the delegation check of its writer).
    public static func grantedRoles(_ role: AuthMethodRole) -> [String] {
        TokenParameters(stored: role.config).policies
    }

    /// The access roles a role write would leave the role granting (`token_policies` as parsed).
    public static func grantedRoles(afterWriting body: JSON, over old: AuthMethodRole?) throws -> [String] {
        try TokenParameters.parse(body, over: TokenParameters(stored: old?.config ?? .object([]))).policies
    }
}
