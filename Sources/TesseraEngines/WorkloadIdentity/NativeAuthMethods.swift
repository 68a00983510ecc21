// The Akeyless view of workload-identity auth methods: `auth-method-create-oauth2` (JWT/OIDC),
// `auth-method-create-k8s` with its gateway k8s auth configs, and their updates. A single
// Tessera plays both the auth service and the gateway, so the k8s method's key pair is its own:
// the private key is returned once (`prv_key`) and must come back as the config's `signing-key`.
import Foundation
import TesseraCore
import TesseraCrypto

extension WorkloadIdentityEngine {
    public func createOAuth2Method(name: String, body: JSON, tokenTTLMinutes: Int?, boundCIDRs: [String], accessExpires: Date?) async throws -> AuthMethod {
        var config = try JWTSettings.nativeConfig(body, over: .object([]))
        config = try Self.adding(("description", .string(try FieldValues.string(body["description"], "description") ?? "")), to: config)
        return try await access.createMethod(name: name, type: Self.jwtType, config: config, tokenTTLMinutes: tokenTTLMinutes,
                                             boundCIDRs: boundCIDRs, accessExpires: accessExpires)
    }

    public func updateOAuth2Method(_ method: AuthMethod, body: JSON) async throws {
        guard method.type == Self.jwtType else { throw TesseraError.badRequest("\(method.name) is not an OAuth2/JWT auth method") }
        var m = method
        m.config = Self.preserving(try JWTSettings.nativeConfig(body, over: method.config), from: method.config)
        try await access.updateMethod(m)
    }

    /// Creates a k8s method; returns it and, with `gen-key`, the private key (shown once).
    public func createKubernetesMethod(name: String, body: JSON, tokenTTLMinutes: Int?, boundCIDRs: [String],
                                       accessExpires: Date?) async throws -> (AuthMethod, String) {
        let genKey = try FieldValues.bool(body["gen-key"], "gen-key") ?? true
        var privateKey = ""
        let publicKey: String
        if let given = try FieldValues.string(body["public-key"], "public-key"), !given.isEmpty {
            guard let pem = MethodKeyPair.normalizedPublicKey(given) else {
                throw TesseraError.badRequest("public-key must be an RSA public key (PEM or base64 PEM)")
            }
            publicKey = pem
        } else {
            guard genKey else { throw TesseraError.badRequest("public-key is required when gen-key is false") }
            let pair = try MethodKeyPair.generate()
            privateKey = pair.privateKeyBase64
            publicKey = pair.publicKeyPEM
        }
        let config = try Self.kubernetesBounds(body, over: .obj(("public_key", .string(publicKey)), ("k8s_auth_configs", .object([]))))
        let m = try await access.createMethod(name: name, type: Self.kubernetesType, config: config, tokenTTLMinutes: tokenTTLMinutes,
                                              boundCIDRs: boundCIDRs, accessExpires: accessExpires)
        return (m, privateKey)
    }

    public func updateKubernetesMethod(_ method: AuthMethod, body: JSON) async throws {
        guard method.type == Self.kubernetesType else { throw TesseraError.badRequest("\(method.name) is not a Kubernetes auth method") }
        var m = method
        m.config = try Self.kubernetesBounds(body, over: method.config)
        try await access.updateMethod(m)
    }

    static func kubernetesBounds(_ body: JSON, over old: JSON) throws -> JSON {
        var out = old
        for (field, key) in [("bound-namespaces", "bound_namespaces"), ("bound-sa-names", "bound_sa_names"), ("bound-pod-names", "bound_pod_names")] {
            if let v = try FieldValues.list(body[field], field) { out = try adding((key, .strings(v)), to: out) }
        }
        if let a = try FieldValues.string(body["audience"], "audience") { out = try adding(("audience", .string(a)), to: out) }
        if let d = try FieldValues.string(body["description"], "description") { out = try adding(("description", .string(d)), to: out) }
        return out
    }

    static func adding(_ pair: (String, JSON), to config: JSON) throws -> JSON {
        guard case .object(var pairs) = config else { throw TesseraError.internalError("auth method settings are not an object") }
        pairs.removeAll { $0.0 == pair.0 }
        pairs.append(pair)
        return .object(pairs)
    }

    /// The k8s method whose gateway configs include `configName`, if any.
    public func kubernetesMethod(holdingConfig configName: String) async throws -> AuthMethod? {
        try await access.authMethods().first { $0.type == Self.kubernetesType && $0.config["k8s_auth_configs"]?[configName] != nil }
    }

    /// `gateway-create-k8s-auth-config` / `gateway-update-k8s-auth-config`.
    public func putGatewayKubernetesConfig(_ method: AuthMethod, name: String, body: JSON, creating: Bool) async throws {
        guard method.type == Self.kubernetesType else { throw TesseraError.badRequest("access-id must name a Kubernetes auth method") }
        guard !name.isEmpty, name.utf8.count <= 128, !name.contains("/") else { throw TesseraError.badRequest("invalid k8s auth config name") }
        let existing = method.config["k8s_auth_configs"]?[name]
        if creating, existing != nil { throw TesseraError.conflict("a k8s auth config named \(name) already exists") }
        if let holder = try await kubernetesMethod(holdingConfig: name), holder.accessId != method.accessId {
            throw TesseraError.conflict("a k8s auth config named \(name) already exists")
        }
        if !creating, existing == nil { throw TesseraError.notFound("k8s auth config \(name) not found") }
        let base = existing ?? .object([])
        // The signing key proves the caller holds the method's private key, on every change.
        guard let signing = try FieldValues.string(body["signing-key"], "signing-key"), !signing.isEmpty else {
            throw TesseraError.badRequest("signing-key is required")
        }
        guard let derived = MethodKeyPair.publicKeyPEM(ofPrivateKey: signing), derived == method.config["public_key"]?.stringValue else {
            throw TesseraError.badRequest("signing-key does not match the auth method's public key")
        }
        func decodedPEM(_ field: String) throws -> String? {
            guard let v = try FieldValues.string(body[field], field), !v.isEmpty else { return nil }
            if v.contains("BEGIN") { return v }
            guard let d = Data(base64Encoded: v.replacingOccurrences(of: "\n", with: "")) else {
                throw TesseraError.badRequest("\(field) must be base64 of a PEM certificate")
            }
            return String(decoding: d, as: UTF8.self)
        }
        let host = try FieldValues.string(body["k8s-host"], "k8s-host") ?? base["kubernetes_host"]?.stringValue ?? ""
        guard !host.isEmpty else { throw TesseraError.badRequest("k8s-host is required") }
        try IdentityHTTP.validateURL(KubernetesSettings.normalizedHost(host), field: "k8s-host")
        let ca = try decodedPEM("k8s-ca-cert") ?? base["kubernetes_ca_cert"]?.stringValue ?? ""
        if !ca.isEmpty { try IdentityHTTP.validateCA(ca, field: "k8s-ca-cert") }
        let issuer = try FieldValues.string(body["k8s-issuer"], "k8s-issuer") ?? base["issuer"]?.stringValue ?? "kubernetes/serviceaccount"
        let disableIssuer = try FieldValues.bool(body["disable-issuer-validation"], "disable-issuer-validation")
            ?? (base["disable_iss_validation"] != .bool(false))
        let tokenExp = try FieldValues.int(body["token-exp"], "token-exp", in: 0...86_400) ?? Int(TokenParameters.int(base["token_exp"]))
        var pairs: [(String, JSON)] = [
            ("disable_iss_validation", .bool(disableIssuer)), ("issuer", .string(issuer)), ("kubernetes_ca_cert", .string(ca)),
            ("kubernetes_host", .string(host)), ("token_exp", .int(Int64(tokenExp == 0 ? 300 : tokenExp))),
        ]
        if let reviewer = try FieldValues.string(body["token-reviewer-jwt"], "token-reviewer-jwt"), !reviewer.isEmpty {
            pairs.append(("token_reviewer_jwt_sealed", try KubernetesSettings.sealReviewer(reviewer, seal: seal, accessId: method.accessId, name: name)))
        } else if let sealed = base["token_reviewer_jwt_sealed"], host == base["kubernetes_host"]?.stringValue,
                  ca == base["kubernetes_ca_cert"]?.stringValue ?? "" {
            // The stored reviewer JWT is sent only to the API server it was given for: a new host or
            // CA needs it again, so that a changed config cannot send it elsewhere.
            pairs.append(("token_reviewer_jwt_sealed", sealed))
        }
        guard case .object(var configs)? = method.config["k8s_auth_configs"] ?? .object([]) else {
            throw TesseraError.internalError("k8s auth configs are not an object")
        }
        configs.removeAll { $0.0 == name }
        configs.append((name, .object(pairs)))
        var m = method
        m.config = try Self.adding(("k8s_auth_configs", .object(configs)), to: method.config)
        try await access.updateMethod(m)
    }

    public func deleteGatewayKubernetesConfig(_ method: AuthMethod, name: String) async throws {
        guard case .object(var configs)? = method.config["k8s_auth_configs"], configs.contains(where: { $0.0 == name }) else {
            throw TesseraError.notFound("k8s auth config \(name) not found")
        }
        configs.removeAll { $0.0 == name }
        var m = method
        m.config = try Self.adding(("k8s_auth_configs", .object(configs)), to: method.config)
        try await access.updateMethod(m)
    }

    /// `gateway-get-k8s-auth-config`: snake_case keys, never the reviewer JWT or a private key.
    public static func gatewayKubernetesConfigView(_ method: AuthMethod, name: String) -> JSON? {
        guard let c = method.config["k8s_auth_configs"]?[name] else { return nil }
        return .obj(("am_token_expiration", c["token_exp"] ?? .int(300)), ("auth_method_access_id", .string(method.accessId)),
                    ("auth_method_prv_key_pem", .string("")), ("cluster_api_type", .string("native_k8s")),
                    ("disable_iss_validation", c["disable_iss_validation"] ?? .bool(true)), ("id", .string(name)),
                    ("k8s_auth_type", .string("token")),
                    ("k8s_ca_cert", .string(Data((c["kubernetes_ca_cert"]?.stringValue ?? "").utf8).base64EncodedString())),
                    ("k8s_host", c["kubernetes_host"] ?? .string("")), ("k8s_issuer", c["issuer"] ?? .string("")),
                    ("k8s_pub_keys_pem", .array([])), ("k8s_token_reviewer_jwt", .string("")), ("name", .string(name)),
                    ("use_local_ca_jwt", .bool(false)))
    }
}
