// Native verbs for authentication: auth (API keys, JWTs, Kubernetes service-account tokens),
// validate-token, revoke-creds.
import Foundation
import TesseraCore
import TesseraEngines

extension NativeVerbs {
    static let authentication: [NativeVerb] = [
        NativeVerb("auth", action: "auth", access: .anonymous,
                   help: "Log in and get a token: with an API key (access-type access_key), a JWT (jwt, oidc), a Kubernetes service-account token (k8s) or a client certificate and its key (cert).",
                   fields: declare([.string("access-type", "access_key (the default; api_key is the same), jwt, oidc, k8s or cert."),
                                    .string("access-id", required: true, "The auth method's access id (p-…)."),
                                    .string("access-key", sensitive: true, "The access key (access_key)."),
                                    .string("jwt", sensitive: true, "The JWT (jwt, oidc)."),
                                    .string("k8s-service-account-token", sensitive: true, "The service-account token, raw or base64 (k8s)."),
                                    .string("k8s-auth-config-name", "The gateway k8s auth config (k8s)."),
                                    .string("cert-data", "The client certificate, base64 PEM (cert)."),
                                    .string("key-data", sensitive: true, "The client certificate's private key, base64 PEM (cert).")],
                                   sdk: ["account-id", "admin-email", "azure-cloud", "cert-challenge", "cloud-id", "debug",
                                         "disable-pafxfast", "gateway-spn", "gateway-url", "gcp-audience",
                                         "kerberos-username", "krb5-conf-data", "oci-auth-type", "oci-group-ocid",
                                         "signed-cert-challenge", "use-remote-browser", "username"],
                                   sdkSecrets: ["admin-password", "kerberos-token", "keytab-data", "ldap-password", "otp"])) { f in
            let accessType = try f.string("access-type") ?? "access_key"
            let id = try f.requiredString("access-id")
            switch accessType {
            case "access_key", "api_key":
                let key = try f.requiredString("access-key")
                return PreparedVerb(auditPath: "", claimedAccessId: id) { t, caller in
                    let issued = try await t.access.authenticate(accessId: id, accessKey: key, clientAddress: caller.request.clientAddress)
                    return .obj(("token", .string(issued.token)),
                                ("expiration", .string(akeylessExpiration(issued.record.expiresAt))))
                }
            case "jwt", "oidc", "k8s", "cert":
                let jwt = try f.string(accessType == "k8s" ? "k8s-service-account-token" : "jwt") ?? ""
                let configName = try f.string("k8s-auth-config-name") ?? ""
                let certData = try f.string("cert-data") ?? ""
                let keyData = try f.string("key-data") ?? ""
                let type = switch accessType {
                case "k8s": WorkloadIdentityEngine.kubernetesType
                case "cert": WorkloadIdentityEngine.certType
                default: WorkloadIdentityEngine.jwtType
                }
                var prepared = PreparedVerb(auditPath: "", claimedAccessId: id) { t, caller in
                    let failure = TesseraError.unauthorized("authentication failed: invalid access id or credential")
                    let address = caller.request.clientAddress
                    // Not throttled per method (see VaultAuthMethods.login): nothing here can be guessed.
                    guard let method = try await t.access.authMethod(accessId: id), method.type == type else { throw failure }
                    caller.notes.set("auth_method", method.name)
                    let note: LoginNote = { [notes = caller.notes, logger = t.logger, name = method.name, requestId = caller.request.requestId] k, v in
                    notes.set(k, v)
                    // The operator learns which bound failed; the client only what Vault would say.
                    if k == "refusal_reason" {
                        logger.notice("login refused", metadata: ["auth_method": "\(name)", "reason": "\(v)", "request_id": "\(requestId)"])
                    }
                }
                    let login: WorkloadLogin
                    if type == WorkloadIdentityEngine.kubernetesType {
                        login = try await t.identity.nativeKubernetesLogin(method: method, configName: configName, serviceAccountToken: jwt,
                                                                           clientAddress: address, note: note)
                    } else if type == WorkloadIdentityEngine.certType {
                        login = try await t.identity.nativeCertLogin(method: method, certData: certData, keyData: keyData,
                                                                     connectionCertificate: nil, clientAddress: address, note: note)
                    } else {
                        login = try await t.identity.nativeJWTLogin(method: method, jwt: jwt, clientAddress: address, note: note)
                    }
                    return .obj(("token", .string(login.issued.token)),
                                ("expiration", .string(akeylessExpiration(login.issued.record.expiresAt))))
                }
                prepared.claimedMethodType = type
                return prepared
            default:
                throw TesseraError.badRequest("unsupported access-type '\(accessType.prefix(32))': this server supports access_key, jwt, oidc, k8s and cert")
            }
        },
        NativeVerb("validate-token", action: "validate_token", access: .anonymous,
                   help: "Check whether a token is valid, and until when.") { f in
            let token = try f.string("token") ?? ""
            return PreparedVerb(auditPath: "") { t, caller in
                do {
                    let p = try await t.access.principal(token: token, clientAddress: caller.request.clientAddress, spendingUse: false)
                    let expires = p.token?.expiresAt ?? t.now()
                    return .obj(("is_valid", .bool(true)), ("expiration", .string(akeylessExpiration(expires))),
                                ("ttl", .int(InputNumber.int64(max(0, expires.timeIntervalSince(t.now()))))), ("reason", .string("")))
                } catch let e as TesseraError where e.status == 401 {
                    return .obj(("is_valid", .bool(false)), ("expiration", .string("")), ("ttl", .int(0)),
                                ("reason", .string("the token is invalid, expired or revoked")))
                }
            }
        },
        NativeVerb("revoke-creds", action: "revoke_token", access: .authenticated,
                   help: "Revoke the token (log out).") { f in
            let token = try f.requiredString("token")
            return PreparedVerb(auditPath: "") { t, _ in
                try await t.access.revoke(token: token)
                return .obj()
            }
        },
    ]
}

/// The expiration format of Akeyless tokens, e.g. `2030-01-01 00:00:00 +0000 UTC`.
func akeylessExpiration(_ date: Date) -> String {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC") ?? .current
    let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    func pad(_ v: Int?, _ n: Int = 2) -> String {
        let s = String(v ?? 0)
        return String(repeating: "0", count: max(0, n - s.count)) + s
    }
    return "\(pad(c.year, 4))-\(pad(c.month))-\(pad(c.day)) \(pad(c.hour)):\(pad(c.minute)):\(pad(c.second)) +0000 UTC"
}
