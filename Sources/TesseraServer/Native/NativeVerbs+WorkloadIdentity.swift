// Native verbs for workload-identity auth methods, with the Akeyless SDK's names and fields:
// OAuth2/JWT (`auth-method-create-oauth2`), Kubernetes (`auth-method-create-k8s`) and certificate
// (`auth-method-create-cert`) methods,
// their updates, and the gateway k8s auth configs. Get, list and delete are the generic
// auth-method verbs. Creating needs `create` and changing needs `update` on the method's path
// under the auth-method rule type.
import Foundation
import TesseraCore
import TesseraEngines

extension NativeVerbs {
    static let commonMethodFields: [FieldSpec] = [
        .string("name", required: true, "The auth method's name, e.g. /ci/github."),
        .int("jwt-ttl", 0...AuthMethod.maxTokenTTLMinutes, "Token lifetime in minutes (0: default)."),
        .int("access-expires", 0...InputNumber.maxEpochSeconds, "Unix time when access ends (0: never)."),
        .list("bound-ips", "Client CIDRs allowed to log in and use its tokens."),
        .string("description", "A description."),
    ]
    static let ignoredMethodFields = ["allowed-client-type", "audit-logs-claims", "delete_protection", "expiration-event-in",
                                      "force-sub-claims", "gw-bound-ips", "product-type", "new-name"]

    static let oauth2Fields = declare(commonMethodFields + [
        .string("jwks-uri", "The JWKS URL of the issuer."),
        .string("jwks-json-data", "A JWKS document, base64-encoded (instead of jwks-uri)."),
        .string("unique-identifier", "The claim that identifies the workload (e.g. sub, repository)."),
        .string("issuer", "The required iss claim."),
        .string("audience", "The required aud value."),
        .list("bound-client-ids", "Allowed client ids (azp, client_id or cid claims)."),
        .string("cert-file-data", "A CA for the JWKS URL's TLS, base64 PEM."),
    ], sdk: ignoredMethodFields + ["cert", "gateway-url", "subclaims-delimiters"])

    static let k8sFields = declare(commonMethodFields + [
        .string("audience", "The required aud value of the service-account token."),
        .list("bound-namespaces", "Allowed namespaces (globs); empty: any."),
        .list("bound-sa-names", "Allowed service-account names (globs); empty: any."),
        .list("bound-pod-names", "Allowed pod names (globs); empty: any."),
        .string("gen-key", "\"true\" (default): generate the key pair and return the private key as prv_key."),
        .string("public-key", "An RSA public key, when gen-key is false."),
    ], sdk: ignoredMethodFields)

    static let certFields = declare(commonMethodFields + [
        .string("certificate-data", "The trusted CA (or client certificate), base64 PEM."),
        .string("unique-identifier", "The certificate field that identifies the client: common_name, organizational_unit, …"),
        .list("bound-common-names", "Allowed common names (globs)."),
        .list("bound-dns-sans", "Allowed DNS SANs (globs)."),
        .list("bound-email-sans", "Allowed email SANs (globs)."),
        .list("bound-uri-sans", "Allowed URI SANs (globs)."),
        .list("bound-organizational-units", "Allowed organizational units (globs)."),
        .list("revoked-cert-ids", "Serial numbers (decimal) that are refused."),
    ], sdk: ignoredMethodFields + ["allowed-cors", "bound-extensions", "require-crl-dp"])

    static let gatewayK8sFields = declare([
        .string("name", required: true, "The config's name (clients send it as k8s-auth-config-name)."),
        .string("access-id", "The Kubernetes auth method's access id."),
        .string("k8s-host", "The API server URL."),
        .string("k8s-ca-cert", "The API server's CA, base64 PEM."),
        .string("token-reviewer-jwt", sensitive: true, "The bearer for TokenReview calls (else the login token itself)."),
        .string("signing-key", sensitive: true, "The auth method's private key (its prv_key)."),
        .string("k8s-issuer", "The expected iss claim."),
        .string("disable-issuer-validation", "\"true\" to skip the issuer check."),
        .int("token-exp", 0...86_400, "Lifetime of the gateway's signed token in seconds."),
    ], sdk: ["cluster-api-type", "k8s-auth-type", "k8s-client-certificate", "k8s-client-key", "rancher-api-key", "rancher-cluster-id",
             "use-gw-service-account", "new-name"])

    static func methodSettings(_ f: RequestFields) throws -> (name: String, path: ItemPath, ttl: Int?, expires: Int, ips: [String]) {
        let name = try AccessEngine.authMethodName(try f.requiredString("name"))
        let ttl = try f.int("jwt-ttl", in: 0...AuthMethod.maxTokenTTLMinutes)
        let expires = try f.int("access-expires", in: 0...InputNumber.maxEpochSeconds) ?? 0
        let ips = try f.stringList("bound-ips") ?? []
        for cidr in ips { _ = try CIDR(cidr) }
        return (name, try ItemPath(name), ttl, expires, ips)
    }

    static let workloadIdentity: [NativeVerb] = {
        let createOAuth2: @Sendable (RequestFields) throws -> PreparedVerb = { f in
            let s = try methodSettings(f)
            let body = f.body
            return PreparedVerb(paths: [s.path]) { t, _ in
                let expires = s.expires > 0 ? try InputNumber.date(epochSeconds: s.expires, field: "access-expires") : nil
                let m = try await t.identity.createOAuth2Method(name: s.name, body: body, tokenTTLMinutes: s.ttl, boundCIDRs: s.ips, accessExpires: expires)
                return .obj(("access_id", .string(m.accessId)), ("name", .string(m.name)))
            }
        }
        let updateOAuth2 = updateVerb { t, m, body in try await t.identity.updateOAuth2Method(m, body: body) }
        let createK8s: @Sendable (RequestFields) throws -> PreparedVerb = { f in
            let s = try methodSettings(f)
            let body = f.body
            return PreparedVerb(paths: [s.path]) { t, _ in
                let expires = s.expires > 0 ? try InputNumber.date(epochSeconds: s.expires, field: "access-expires") : nil
                let (m, key) = try await t.identity.createKubernetesMethod(name: s.name, body: body, tokenTTLMinutes: s.ttl,
                                                                           boundCIDRs: s.ips, accessExpires: expires)
                return .obj(("access_id", .string(m.accessId)), ("name", .string(m.name)), ("prv_key", .string(key)))
            }
        }
        let updateK8s = updateVerb { t, m, body in try await t.identity.updateKubernetesMethod(m, body: body) }
        let putGatewayConfig: @Sendable (Bool) -> @Sendable (RequestFields) throws -> PreparedVerb = { creating in
            { f in
                let name = try f.requiredString("name")
                let accessId = try f.string("access-id") ?? ""
                if creating, accessId.isEmpty { throw TesseraError.badRequest("access-id is required") }
                let body = f.body
                return PreparedVerb(auditPath: "/gateway/k8s-auth-config/" + name) { t, caller in
                    let holder = try await t.identity.kubernetesMethod(holdingConfig: name)
                    guard let method = accessId.isEmpty ? holder : try await t.access.authMethod(accessId: accessId) else {
                        throw TesseraError.notFound(accessId.isEmpty ? "k8s auth config \(name) not found" : "auth method with access id \(accessId.prefix(80)) not found")
                    }
                    try caller.require(.update, on: try ItemPath(method.name), type: .authMethod)
                    try await requireMayGrantReachable(t, caller, method)
                    try await t.identity.putGatewayKubernetesConfig(method, name: name, body: body, creating: creating)
                    return .obj(("cluster_id", .string(name)), ("total_hash", .string("")))
                }
            }
        }
        let getGatewayConfig: @Sendable (RequestFields) throws -> PreparedVerb = { f in
            let name = try f.requiredString("name")
            return PreparedVerb(auditPath: "/gateway/k8s-auth-config/" + name) { t, caller in
                guard let method = try await t.identity.kubernetesMethod(holdingConfig: name),
                      let view = WorkloadIdentityEngine.gatewayKubernetesConfigView(method, name: name) else {
                    throw TesseraError.notFound("k8s auth config \(name) not found")
                }
                try caller.require(.read, on: try ItemPath(method.name), type: .authMethod)
                return view
            }
        }
        let deleteGatewayConfig: @Sendable (RequestFields) throws -> PreparedVerb = { f in
            let name = try f.requiredString("name")
            return PreparedVerb(auditPath: "/gateway/k8s-auth-config/" + name) { t, caller in
                guard let method = try await t.identity.kubernetesMethod(holdingConfig: name) else {
                    throw TesseraError.notFound("k8s auth config \(name) not found")
                }
                try caller.require(.update, on: try ItemPath(method.name), type: .authMethod)
                try await t.identity.deleteGatewayKubernetesConfig(method, name: name)
                return .obj(("name", .string(name)))
            }
        }
        let createCert: @Sendable (RequestFields) throws -> PreparedVerb = { f in
            let s = try methodSettings(f)
            let body = f.body
            return PreparedVerb(paths: [s.path]) { t, _ in
                let expires = s.expires > 0 ? try InputNumber.date(epochSeconds: s.expires, field: "access-expires") : nil
                let m = try await t.identity.createCertMethod(name: s.name, body: body, tokenTTLMinutes: s.ttl, boundCIDRs: s.ips, accessExpires: expires)
                return .obj(("access_id", .string(m.accessId)), ("name", .string(m.name)))
            }
        }
        let updateCert = updateVerb { t, m, body in try await t.identity.updateCertMethod(m, body: body) }
        let certHelp = "Create a certificate auth method: clients whose certificate the given CA (or pinned certificate) trusts log in with access-type cert."
        let oauth2Help = "Create an OAuth2/JWT auth method: tokens signed by a JWKS (or the given keys) log in with access-type jwt."
        let k8sHelp = "Create a Kubernetes auth method; returns its access id and (with gen-key) the private key for its gateway config."
        let gatewayHelp = "Create a gateway k8s auth config: the API server that reviews the service-account tokens of a k8s auth method."
        let nameOnly = declare([.string("name", required: true, "The config's name.")])
        return [
            NativeVerb("auth-method-create-oauth2", action: "create_auth_method", access: .capability([.create], .authMethod),
                       help: oauth2Help, fields: oauth2Fields, prepare: createOAuth2),
            NativeVerb("create-auth-method-oauth2", action: "create_auth_method", access: .capability([.create], .authMethod),
                       help: oauth2Help, fields: oauth2Fields, prepare: createOAuth2),
            NativeVerb("auth-method-update-oauth2", action: "update_auth_method", access: .capability([.update], .authMethod),
                       help: "Change an OAuth2/JWT auth method.", fields: oauth2Fields, prepare: updateOAuth2),
            NativeVerb("update-auth-method-oauth2", action: "update_auth_method", access: .capability([.update], .authMethod),
                       help: "Change an OAuth2/JWT auth method.", fields: oauth2Fields, prepare: updateOAuth2),
            NativeVerb("auth-method-create-k8s", action: "create_auth_method", access: .capability([.create], .authMethod),
                       help: k8sHelp, fields: k8sFields, prepare: createK8s),
            NativeVerb("create-auth-method-k8s", action: "create_auth_method", access: .capability([.create], .authMethod),
                       help: k8sHelp, fields: k8sFields, prepare: createK8s),
            NativeVerb("auth-method-update-k8s", action: "update_auth_method", access: .capability([.update], .authMethod),
                       help: "Change a Kubernetes auth method.", fields: k8sFields, prepare: updateK8s),
            NativeVerb("update-auth-method-k8s", action: "update_auth_method", access: .capability([.update], .authMethod),
                       help: "Change a Kubernetes auth method.", fields: k8sFields, prepare: updateK8s),
            NativeVerb("auth-method-create-cert", action: "create_auth_method", access: .capability([.create], .authMethod),
                       help: certHelp, fields: certFields, prepare: createCert),
            NativeVerb("create-auth-method-cert", action: "create_auth_method", access: .capability([.create], .authMethod),
                       help: certHelp, fields: certFields, prepare: createCert),
            NativeVerb("auth-method-update-cert", action: "update_auth_method", access: .capability([.update], .authMethod),
                       help: "Change a certificate auth method.", fields: certFields, prepare: updateCert),
            NativeVerb("update-auth-method-cert", action: "update_auth_method", access: .capability([.update], .authMethod),
                       help: "Change a certificate auth method.", fields: certFields, prepare: updateCert),
            NativeVerb("gateway-create-k8s-auth-config", action: "create_k8s_auth_config", access: .authenticated,
                       help: gatewayHelp, fields: gatewayK8sFields, prepare: putGatewayConfig(true)),
            NativeVerb("gateway-update-k8s-auth-config", action: "update_k8s_auth_config", access: .authenticated,
                       help: "Change a gateway k8s auth config.", fields: gatewayK8sFields, prepare: putGatewayConfig(false)),
            NativeVerb("gateway-get-k8s-auth-config", action: "get_k8s_auth_config", access: .authenticated,
                       help: "Show a gateway k8s auth config (never its reviewer JWT).", fields: nameOnly, prepare: getGatewayConfig),
            NativeVerb("gateway-delete-k8s-auth-config", action: "delete_k8s_auth_config", access: .authenticated,
                       help: "Delete a gateway k8s auth config.", fields: nameOnly, prepare: deleteGatewayConfig),
        ]
    }()

    /// An update verb: the type's own settings through `apply`, then the shared ones. Changing
    /// what a method trusts needs the right to grant every role it reaches.
    static func updateVerb(_ apply: @escaping @Sendable (Tessera, AuthMethod, JSON) async throws -> Void)
        -> @Sendable (RequestFields) throws -> PreparedVerb {
        { f in
            let s = try methodSettings(f)
            let body = f.body
            return PreparedVerb(paths: [s.path]) { t, caller in
                var m = try await t.access.authMethod(named: s.name)
                try await requireMayGrantReachable(t, caller, m)
                try await apply(t, m, body)
                m = try await t.access.authMethod(named: s.name)
                try await applyCommon(t, &m, s, f)
                return .obj(("access_id", .string(m.accessId)))
            }
        }
    }

    /// The settings every method type shares, on update (only those the request names).
    static func applyCommon(_ t: Tessera, _ m: inout AuthMethod, _ s: (name: String, path: ItemPath, ttl: Int?, expires: Int, ips: [String]),
                            _ f: RequestFields) async throws {
        var changed = false
        if let ttl = s.ttl, ttl > 0 { m.tokenTTLMinutes = ttl; changed = true }
        if f.has("bound-ips") { m.boundCIDRs = s.ips; changed = true }
        if f.has("access-expires") {
            m.accessExpires = s.expires > 0 ? try InputNumber.date(epochSeconds: s.expires, field: "access-expires") : nil
            changed = true
        }
        if changed { try await t.access.updateMethod(m) }
    }
}
