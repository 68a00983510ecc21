// Kubernetes auth: a pod logs in with its service-account token. The token's claims are checked
// against the login role (service-account names and namespaces as globs, the audience), then
// the cluster confirms the token with a TokenReview (the exact request OpenBao sends), or, in the
// JWKS mode (`jwks_url`), its signature is checked against the cluster's keys with no call to the
// API server. The reviewer JWT is sealed with the keyring and never read back.
import Foundation
import NIOHTTP1
import TesseraCore
import TesseraCrypto

/// A cluster to validate service-account tokens against: Vault's `auth/<mount>/config`, or one
/// of the named Akeyless gateway k8s auth configs.
struct KubernetesCluster: Sendable {
    var host: String
    var caPEM: String
    var reviewerJWT: String?
    var pemKeys: [String]
    var jwksURL: String
    var jwksCA: String
    var issuer: String
    var checkIssuer: Bool
}

enum KubernetesSettings {
    static func aad(_ accessId: String, _ name: String) -> [UInt8] { Array("tessera-k8s-reviewer:\(accessId):\(name)".utf8) }

    static func sealReviewer(_ jwt: String, seal: SealManager, accessId: String, name: String) throws -> JSON {
        let sealed = try seal.keyring().seal(Array(jwt.utf8), aad: aad(accessId, name))
        return .obj(("ciphertext", .string(Data(sealed.ciphertext).base64EncodedString())), ("term", .int(Int64(sealed.term))))
    }

    static func openReviewer(_ stored: JSON?, seal: SealManager, accessId: String, name: String) async throws -> String? {
        guard let stored, let c = stored["ciphertext"]?.stringValue, let bytes = Data(base64Encoded: c),
              case .int(let term)? = stored["term"], let t = UInt32(exactly: term) else { return nil }
        let keyring = try await seal.keyring(holding: t)
        return String(decoding: try keyring.open([UInt8](bytes), term: t, aad: aad(accessId, name)), as: UTF8.self)
    }

    /// The stored cluster settings from a Vault `config` write.
    static func vaultConfig(_ body: JSON, old: JSON, seal: SealManager, accessId: String) async throws -> JSON {
        let host = try FieldValues.string(body["kubernetes_host"], "kubernetes_host") ?? ""
        let jwksURL = try FieldValues.string(body["jwks_url"], "jwks_url") ?? ""
        guard !host.isEmpty || !jwksURL.isEmpty else { throw TesseraError.badRequest("no host provided") }
        if !host.isEmpty { try IdentityHTTP.validateURL(normalizedHost(host), field: "kubernetes_host") }
        if !jwksURL.isEmpty { try IdentityHTTP.validateURL(jwksURL, field: "jwks_url") }
        let ca = try FieldValues.string(body["kubernetes_ca_cert"], "kubernetes_ca_cert") ?? ""
        // Like Vault, a CA that does not parse is stored (a login then fails with a clear error),
        // but it must at least be PEM-armored.
        if !ca.isEmpty, !ca.contains("-----BEGIN CERTIFICATE-----") { try IdentityHTTP.validateCA(ca, field: "kubernetes_ca_cert") }
        let jwksCA = try FieldValues.string(body["jwks_ca_pem"], "jwks_ca_pem") ?? ""
        if !jwksCA.isEmpty { try IdentityHTTP.validateCA(jwksCA, field: "jwks_ca_pem") }
        let disableLocal = try FieldValues.bool(body["disable_local_ca_jwt"], "disable_local_ca_jwt") ?? false
        if disableLocal, ca.isEmpty, !host.isEmpty, normalizedHost(host).hasPrefix("https") {
            throw TesseraError.badRequest("kubernetes_ca_cert must be given when disable_local_ca_jwt is true")
        }
        let pemKeys = try FieldValues.pemList(body["pem_keys"], "pem_keys") ?? []
        for pem in pemKeys {
            do { _ = try JWTPublicKey(pem: pem) } catch { throw TesseraError.badRequest("error parsing public key: \(error)") }
        }
        var pairs: [(String, JSON)] = [
            ("disable_iss_validation", .bool(try FieldValues.bool(body["disable_iss_validation"], "disable_iss_validation") ?? true)),
            ("disable_local_ca_jwt", .bool(disableLocal)),
            ("issuer", .string(try FieldValues.string(body["issuer"], "issuer") ?? "")),
            ("jwks_ca_pem", .string(jwksCA)), ("jwks_url", .string(jwksURL)),
            ("kubernetes_ca_cert", .string(ca)), ("kubernetes_host", .string(host)), ("pem_keys", .strings(pemKeys)),
        ]
        if let reviewer = try FieldValues.string(body["token_reviewer_jwt"], "token_reviewer_jwt"), !reviewer.isEmpty {
            pairs.append(("token_reviewer_jwt_sealed", try sealReviewer(reviewer, seal: seal, accessId: accessId, name: "")))
        }
        return .object(pairs)
    }

    static func vaultView(_ c: JSON) -> JSON {
        .obj(("disable_iss_validation", c["disable_iss_validation"] ?? .bool(true)),
             ("disable_local_ca_jwt", c["disable_local_ca_jwt"] ?? .bool(false)),
             ("issuer", c["issuer"] ?? .string("")), ("jwks_url", c["jwks_url"] ?? .string("")),
             ("kubernetes_ca_cert", c["kubernetes_ca_cert"] ?? .string("")), ("kubernetes_host", c["kubernetes_host"] ?? .string("")),
             ("pem_keys", c["pem_keys"] ?? .array([])),
             ("token_reviewer_jwt_set", .bool(c["token_reviewer_jwt_sealed"] != nil)))
    }

    static func normalizedHost(_ host: String) -> String {
        var h = host
        while h.hasSuffix("/") { h.removeLast() }
        return h.contains("://") ? h : "https://" + h
    }

    /// The stored role from a Vault role write over the existing role.
    static func vaultRole(_ body: JSON, over old: JSON?) throws -> JSON {
        let base = old ?? .object([])
        func list(_ key: String) throws -> [String] { try FieldValues.list(body[key], key) ?? Claims.strings(base[key]) }
        let names = try list("bound_service_account_names")
        guard !names.isEmpty else { throw TesseraError.badRequest("\"bound_service_account_names\" can not be empty") }
        let namespaces = try list("bound_service_account_namespaces")
        let selector = try FieldValues.string(body["bound_service_account_namespace_selector"], "bound_service_account_namespace_selector")
            ?? base["bound_service_account_namespace_selector"]?.stringValue ?? ""
        if namespaces.isEmpty, selector.isEmpty {
            throw TesseraError.badRequest("\"bound_service_account_namespaces\" can not be empty if \"bound_service_account_namespace_selector\" is not set")
        }
        if !selector.isEmpty { throw TesseraError.badRequest("bound_service_account_namespace_selector is not supported by this server") }
        for (field, values) in [("bound_service_account_names", names), ("bound_service_account_namespaces", namespaces)]
            where values.count > 1 && values.contains("*") {
            throw TesseraError.badRequest("can not mix \"*\" with values for \(field)")
        }
        let aliasSource = try FieldValues.string(body["alias_name_source"], "alias_name_source")
            ?? base["alias_name_source"]?.stringValue ?? "serviceaccount_uid"
        guard ["serviceaccount_uid", "serviceaccount_name"].contains(aliasSource) else {
            throw TesseraError.badRequest("invalid alias_name_source: \(aliasSource.prefix(32))")
        }
        let audience = try FieldValues.string(body["audience"], "audience") ?? base["audience"]?.stringValue ?? ""
        let tokens = try TokenParameters.parse(body, over: TokenParameters(stored: base))
        var out: [(String, JSON)] = [
            ("alias_name_source", .string(aliasSource)),
            ("bound_service_account_names", .strings(names)),
            ("bound_service_account_namespace_selector", .string(selector)),
            ("bound_service_account_namespaces", .strings(namespaces)),
        ]
        if !audience.isEmpty { out.append(("audience", .string(audience))) }
        out += tokens.json
        return .object(out.sorted { $0.0 < $1.0 })
    }

    static func cluster(_ c: JSON, reviewer: String?) -> KubernetesCluster {
        KubernetesCluster(host: c["kubernetes_host"]?.stringValue ?? "", caPEM: c["kubernetes_ca_cert"]?.stringValue ?? "",
                          reviewerJWT: reviewer, pemKeys: Claims.strings(c["pem_keys"]),
                          jwksURL: c["jwks_url"]?.stringValue ?? "", jwksCA: c["jwks_ca_pem"]?.stringValue ?? "",
                          issuer: c["issuer"]?.stringValue ?? "", checkIssuer: c["disable_iss_validation"] == .bool(false))
    }
}

/// The service account a token names, from legacy secret tokens or projected tokens.
struct ServiceAccount: Sendable {
    var name: String
    var namespace: String
    var uid: String
    var secretName: String
    var podName: String

    init?(claims: JSON) {
        if let name = claims["kubernetes.io/serviceaccount/service-account.name"]?.stringValue {
            self.name = name
            namespace = claims["kubernetes.io/serviceaccount/namespace"]?.stringValue ?? ""
            uid = claims["kubernetes.io/serviceaccount/service-account.uid"]?.stringValue ?? ""
            secretName = claims["kubernetes.io/serviceaccount/secret.name"]?.stringValue ?? ""
            podName = ""
        } else if let k8s = claims["kubernetes.io"], let sa = k8s["serviceaccount"], let name = sa["name"]?.stringValue {
            self.name = name
            namespace = k8s["namespace"]?.stringValue ?? ""
            uid = sa["uid"]?.stringValue ?? ""
            secretName = ""
            podName = k8s["pod"]?["name"]?.stringValue ?? ""
        } else {
            return nil
        }
        guard !namespace.isEmpty else { return nil }
    }
}

extension WorkloadIdentityEngine {
    /// Validates a service-account token against a cluster and a role's bounds; returns its account.
    func validateServiceAccount(_ jwt: String, cluster: KubernetesCluster, names: [String], namespaces: [String], podNames: [String],
                                audience: String, note: @escaping LoginNote) async throws -> ServiceAccount {
        let denied = "permission denied"
        let token: JWTToken
        do { token = try JWTToken(compact: jwt) } catch { throw Self.refused(denied, reason: "\(error)", note) }
        let claims = token.claims
        guard ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"].contains(token.alg) else {
            throw Self.refused("unsupported JWT algorithm", reason: "alg \(token.alg.prefix(16)) not allowed for service-account tokens", note)
        }
        guard let account = ServiceAccount(claims: claims) else {
            throw Self.refused(denied, reason: "the token names no service account", note)
        }
        note("claim.namespace", String(account.namespace.prefix(256)))
        note("claim.service_account", String(account.name.prefix(256)))
        if !audience.isEmpty, !Claims.strings(claims["aud"]).contains(audience) {
            throw Self.refused("invalid audience (aud) claim: audience not found", reason: "aud does not contain the role's audience", note)
        }
        func seconds(_ key: String) -> Double? {
            switch claims[key] {
            case .int(let i)?: Double(i)
            case .double(let d)?: d
            default: nil
            }
        }
        let t = now().timeIntervalSince1970
        if let exp = seconds("exp"), exp < t - 60 {
            throw Self.refused("token is expired (exp)", reason: "exp is in the past", note)
        }
        if let nbf = seconds("nbf"), nbf > t + 60 {
            throw Self.refused("token is not valid yet (nbf)", reason: "nbf is in the future", note)
        }
        // Without a TokenReview nothing else ends a token's life: the JWKS mode needs exp.
        if !cluster.jwksURL.isEmpty, seconds("exp") == nil {
            throw Self.refused(denied, reason: "the token has no exp claim (required without a TokenReview)", note)
        }
        if cluster.checkIssuer || !cluster.jwksURL.isEmpty, !cluster.issuer.isEmpty, claims["iss"]?.stringValue != cluster.issuer {
            throw Self.refused(denied, reason: "iss does not equal the configured issuer", note)
        }
        guard names.contains(where: { Glob.matches($0, account.name) }) else {
            throw Self.refused("service account name not authorized", reason: "service account \(account.name.prefix(128)) not in bound names", note)
        }
        guard namespaces.isEmpty || namespaces.contains(where: { Glob.matches($0, account.namespace) }) else {
            throw Self.refused("namespace not authorized", reason: "namespace \(account.namespace.prefix(128)) not in bound namespaces", note)
        }
        if !podNames.isEmpty, !podNames.contains(where: { Glob.matches($0, account.podName) }) {
            throw Self.refused(denied, reason: "pod \(account.podName.prefix(128)) not in bound pod names", note)
        }
        // Local signature checks: the JWKS mode, or Vault's optional pem_keys.
        if !cluster.jwksURL.isEmpty || !cluster.pemKeys.isEmpty {
            let origin: JWTKeySource.Origin = cluster.jwksURL.isEmpty ? .pem(cluster.pemKeys)
                : .jwks(url: cluster.jwksURL, ca: cluster.jwksCA.isEmpty ? nil : cluster.jwksCA)
            let keys = try await self.keys.keys(origin, for: token)
            do { try JWTVerifier.verify(token, keys: keys, allowed: []) } catch {
                throw Self.refused(denied, reason: "signature: \(error)", note)
            }
            if !cluster.jwksURL.isEmpty { return account }
        }
        try await tokenReview(jwt, token: token, account: account, cluster: cluster, audience: audience, note: note)
        return account
    }

    /// POST `<host>/apis/authentication.k8s.io/v1/tokenreviews`, as OpenBao sends it.
    func tokenReview(_ jwt: String, token: JWTToken, account: ServiceAccount, cluster: KubernetesCluster, audience: String,
                     note: @escaping LoginNote) async throws {
        let denied = "permission denied"
        guard !cluster.host.isEmpty else { throw Self.refused(denied, reason: "no kubernetes_host to send the TokenReview to", note) }
        let audiences = audience.isEmpty ? Claims.strings(token.claims["aud"]) : [audience]
        var spec: [(String, JSON)] = [("token", .string(jwt.trimmingCharacters(in: .whitespacesAndNewlines)))]
        if !audiences.isEmpty { spec.append(("audiences", .strings(audiences))) }
        let body = JSON.obj(("metadata", .obj(("creationTimestamp", .null))), ("spec", .object(spec)), ("status", .obj(("user", .obj()))))
        let bearer = cluster.reviewerJWT ?? jwt.trimmingCharacters(in: .whitespacesAndNewlines)
        let url = KubernetesSettings.normalizedHost(cluster.host) + "/apis/authentication.k8s.io/v1/tokenreviews"
        let response: IdentityHTTPResponse
        do {
            response = try await http.send(.POST, url: url, caPEM: cluster.caPEM.isEmpty ? nil : cluster.caPEM,
                                           headers: [("Authorization", "Bearer " + bearer)], body: body.bytes)
        } catch {
            throw Self.refused(denied, reason: "TokenReview request failed: \(error)", note)
        }
        guard (200..<300).contains(response.status) else {
            throw Self.refused(denied, reason: response.status == 401
                ? "TokenReview: service account unauthorized; this could mean it has been deleted or recreated with a new token"
                : "TokenReview: the API server answered \(response.status)", note)
        }
        guard let review = try? JSON.parse(response.body) else { throw Self.refused(denied, reason: "TokenReview: the answer is not JSON", note) }
        if review["kind"]?.stringValue == "Status", review["status"]?.stringValue != "Success" {
            throw Self.refused(denied, reason: "TokenReview: the API server answered a failure Status", note)
        }
        let status = review["status"]
        if let error = status?["error"]?.stringValue, !error.isEmpty {
            throw Self.refused(denied, reason: "TokenReview lookup failed: \(error.prefix(200))", note)
        }
        guard status?["authenticated"] == .bool(true) else {
            throw Self.refused(denied, reason: "TokenReview lookup failed: service account jwt not valid", note)
        }
        if !audiences.isEmpty {
            let answered = Claims.strings(status?["audiences"])
            guard answered.contains(where: audiences.contains) else {
                throw Self.refused(denied, reason: "TokenReview: the reviewed audiences do not match", note)
            }
        }
        let username = status?["user"]?["username"]?.stringValue ?? ""
        let parts = username.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "system", parts[1] == "serviceaccount" else {
            throw Self.refused(denied, reason: "TokenReview: the user is not a service account", note)
        }
        let uid = status?["user"]?["uid"]?.stringValue ?? ""
        guard String(parts[2]) == account.namespace, String(parts[3]) == account.name, uid == account.uid else {
            throw Self.refused(denied, reason: "TokenReview: the reviewed service account differs from the token's claims", note)
        }
    }

    /// `auth/<mount>/login` of a Kubernetes method.
    public func vaultKubernetesLogin(method: AuthMethod, roleName: String?, jwt: String, clientAddress: String,
                                     note: @escaping LoginNote) async throws -> WorkloadLogin {
        guard let rawName = roleName, !rawName.isEmpty else { throw TesseraError.badRequest("missing role") }
        guard !jwt.isEmpty else { throw TesseraError.badRequest("missing jwt") }
        let name = rawName.lowercased()
        note("login_role", name)
        guard let role = try await access.loginRole(accessId: method.accessId, name: name)?.config else {
            throw TesseraError.badRequest("invalid role name \"\(rawName.prefix(128))\"")
        }
        let config = method.config
        guard !(config["kubernetes_host"]?.stringValue ?? "").isEmpty || !(config["jwks_url"]?.stringValue ?? "").isEmpty else {
            throw TesseraError.badRequest("could not load backend configuration")
        }
        let tokens = TokenParameters(stored: role)
        guard tokens.admits(clientAddress: clientAddress) else {
            throw Self.refused("permission denied", reason: "client address outside token_bound_cidrs", note)
        }
        let reviewer = try await KubernetesSettings.openReviewer(config["token_reviewer_jwt_sealed"], seal: seal, accessId: method.accessId, name: "")
        let account = try await validateServiceAccount(jwt, cluster: KubernetesSettings.cluster(config, reviewer: reviewer),
                                                       names: Claims.strings(role["bound_service_account_names"]),
                                                       namespaces: Claims.strings(role["bound_service_account_namespaces"]), podNames: [],
                                                       audience: role["audience"]?.stringValue ?? "", note: note)
        let claims = JSON.obj(("namespace", .string(account.namespace)), ("service_account_name", .string(account.name)),
                              ("service_account_uid", .string(account.uid)), ("pod_name", .string(account.podName)))
        let associated = try await associatedRoles(method, claims: claims)
        let metadata = ["role": name, "service_account_name": account.name, "service_account_namespace": account.namespace,
                        "service_account_secret_name": account.secretName, "service_account_uid": account.uid]
        let grant = TokenGrant(roleNames: Array(Set(tokens.policies + associated)).sorted(), loginRole: name,
                               displayName: account.namespace + "-" + account.name, metadata: metadata,
                               ttlSeconds: tokens.lifetime(methodDefaultSeconds: method.tokenTTLMinutes * 60),
                               numUses: tokens.numUses > 0 ? tokens.numUses : nil)
        let issued = try await access.issueToken(method: method, grant: grant, clientAddress: clientAddress)
        return WorkloadLogin(method: method, issued: issued, policies: tokens.shownPolicies(extra: associated), metadata: metadata)
    }

    /// The native `auth` with `access-type` `k8s`: the method's bounds and the named gateway
    /// k8s auth config. The token may be sent raw or base64-encoded, as real clients do both.
    public func nativeKubernetesLogin(method: AuthMethod, configName: String, serviceAccountToken raw: String, clientAddress: String,
                                      note: @escaping LoginNote) async throws -> WorkloadLogin {
        let failure = "authentication failed: the service-account token was not accepted"
        var jwt = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if !(jwt.hasPrefix("eyJ") && jwt.split(separator: ".").count == 3), let decoded = Data(base64Encoded: jwt) {
            jwt = String(decoding: decoded, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard !jwt.isEmpty else { throw TesseraError.badRequest("k8s-service-account-token is required") }
        let configs = method.config["k8s_auth_configs"]
        let chosen: (String, JSON)?
        if !configName.isEmpty {
            chosen = configs?[configName].map { (configName, $0) }
        } else if case .object(let all)? = configs, all.count == 1 {
            chosen = all.first
        } else {
            chosen = nil
        }
        guard let (cname, cluster) = chosen else {
            throw TesseraError.badRequest("k8s-auth-config-name must name a gateway k8s auth config of this auth method")
        }
        note("k8s_auth_config", cname)
        let reviewer = try await KubernetesSettings.openReviewer(cluster["token_reviewer_jwt_sealed"], seal: seal, accessId: method.accessId, name: cname)
        let config = method.config
        let names = Claims.strings(config["bound_sa_names"])
        let account: ServiceAccount
        do {
            account = try await validateServiceAccount(jwt, cluster: KubernetesSettings.cluster(cluster, reviewer: reviewer),
                                                       names: names.isEmpty ? ["*"] : names,
                                                       namespaces: Claims.strings(config["bound_namespaces"]),
                                                       podNames: Claims.strings(config["bound_pod_names"]),
                                                       audience: config["audience"]?.stringValue ?? "", note: note)
        } catch let e as TesseraError where e.status == 401 {
            throw TesseraError.unauthorized(failure)
        }
        let claims = JSON.obj(("namespace", .string(account.namespace)), ("service_account_name", .string(account.name)),
                              ("service_account_uid", .string(account.uid)), ("pod_name", .string(account.podName)))
        let roles = try await associatedRoles(method, claims: claims)
        let metadata = ["service_account_name": account.name, "service_account_namespace": account.namespace]
        let grant = TokenGrant(roleNames: roles.sorted(), loginRole: "", displayName: account.namespace + "-" + account.name,
                               metadata: metadata, ttlSeconds: method.tokenTTLMinutes * 60)
        let issued = try await access.issueToken(method: method, grant: grant, clientAddress: clientAddress)
        return WorkloadLogin(method: method, issued: issued, policies: roles.sorted(), metadata: metadata)
    }
}
