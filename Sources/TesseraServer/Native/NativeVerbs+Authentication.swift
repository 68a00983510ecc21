// Native verbs for authentication: auth, validate-token, revoke-creds.
import Foundation
import TesseraCore
import TesseraEngines

extension NativeVerbs {
    static let authentication: [NativeVerb] = [
        NativeVerb("auth", action: "auth", access: .anonymous,
                   help: "Log in with an API-key auth method's access id and key; returns a token.",
                   fields: declare([.string("access-type", "access_key (the default; api_key is the same)."),
                                    .string("access-id", required: true, "The auth method's access id (p-…)."),
                                    .string("access-key", required: true, sensitive: true, "The access key.")],
                                   sdk: ["account-id", "admin-email", "azure-cloud", "cert-challenge", "cloud-id", "debug",
                                         "disable-pafxfast", "gateway-spn", "gateway-url", "gcp-audience", "k8s-auth-config-name",
                                         "kerberos-username", "krb5-conf-data", "oci-auth-type", "oci-group-ocid",
                                         "signed-cert-challenge", "use-remote-browser", "username"],
                                   sdkSecrets: ["admin-password", "cert-data", "jwt", "k8s-service-account-token", "kerberos-token",
                                                "key-data", "keytab-data", "ldap-password", "otp"])) { f in
            let accessType = try f.string("access-type") ?? "access_key"
            guard accessType == "access_key" || accessType == "api_key" else {
                throw TesseraError.badRequest("unsupported access-type '\(accessType)': this server supports access_key")
            }
            let id = try f.requiredString("access-id")
            let key = try f.requiredString("access-key")
            return PreparedVerb(auditPath: "", claimedAccessId: id) { t, caller in
                let issued = try await t.access.authenticate(accessId: id, accessKey: key, clientAddress: caller.request.clientAddress)
                return .obj(("token", .string(issued.token)),
                            ("expiration", .string(akeylessExpiration(issued.record.expiresAt))))
            }
        },
        NativeVerb("validate-token", action: "validate_token", access: .anonymous,
                   help: "Check whether a token is valid, and until when.") { f in
            let token = try f.string("token") ?? ""
            return PreparedVerb(auditPath: "") { t, caller in
                do {
                    let p = try await t.access.principal(token: token, clientAddress: caller.request.clientAddress)
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
