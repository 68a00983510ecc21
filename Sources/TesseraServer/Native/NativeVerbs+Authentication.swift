// Native verbs for authentication: auth, validate-token, revoke-creds.
import Foundation
import TesseraCore
import TesseraEngines

extension NativeVerbs {
    static let authentication: [NativeVerb] = [
        NativeVerb("auth", action: "auth", access: .anonymous, sensitive: ["access-key"]) { f in
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
        NativeVerb("validate-token", action: "validate_token", access: .anonymous) { f in
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
        NativeVerb("revoke-creds", action: "revoke_token", access: .authenticated) { f in
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
