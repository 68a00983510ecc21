// The workload-identity engine: logins with a JWT (JWT/OIDC methods), a Kubernetes
// service-account token or a TLS client certificate. Each login verifies the credential, checks
// the bounds of the method and of the login role, chooses the access roles (the role's
// `token_policies` and every association whose sub-claims the identity's claims match), and
// issues a Tessera token that carries them. A refusal gives the client Vault's words and records
// the exact bound that failed through `note`, for the audit event and the log.
import Foundation
import TesseraCore
import TesseraCrypto
import TesseraStore

/// A successful login.
public struct WorkloadLogin: Sendable {
    public var method: AuthMethod
    public var issued: IssuedToken
    /// The policies shown to a Vault client (`default` first, then the access roles).
    public var policies: [String]
    public var metadata: [String: String]
}

/// Records a detail of a login in its audit event (claims, the failed bound).
public typealias LoginNote = @Sendable (String, String) -> Void

public struct WorkloadIdentityEngine: Sendable {
    public static let jwtType = "oauth2"
    public static let kubernetesType = "k8s"
    public static let certType = "cert"

    let access: AccessEngine
    let store: any Store
    public let keys: JWTKeySource
    public let http: IdentityHTTP
    let seal: SealManager
    let now: @Sendable () -> Date

    public init(access: AccessEngine, store: any Store, seal: SealManager, http: IdentityHTTP, now: @escaping @Sendable () -> Date = Date.init) {
        self.access = access
        self.store = store
        self.seal = seal
        self.http = http
        self.keys = JWTKeySource(http: http)
        self.now = now
    }

    /// A refused login: `client` is what the caller sees, `reason` what the operator sees.
    static func refused(_ client: String, reason: String, _ note: LoginNote) -> TesseraError {
        note("refusal_reason", reason)
        return TesseraError.unauthorized(client)
    }

    /// The method's mount path as Vault shows it (`/ci/jwt` → `ci/jwt`).
    public static func mountPath(_ method: AuthMethod) -> String { String(method.name.dropFirst()) }

    // MARK: JWT

    /// Decodes and verifies a JWT with the method's keys; the claims are not checked yet.
    func verifiedJWT(_ config: JSON, _ jwt: String, _ note: LoginNote) async throws -> JWTToken {
        let token: JWTToken
        do { token = try JWTToken(compact: jwt) } catch {
            throw Self.refused("error validating token: \(error)", reason: "\(error)", note)
        }
        let allowed = Set(Claims.strings(config["jwt_supported_algs"]))
        var keys: [JWTPublicKey] = []
        if let inline = config["jwks_json"]?.stringValue, !inline.isEmpty, let doc = try? JSON.parse(Array(inline.utf8)) {
            keys = (try? JWTPublicKey.jwks(doc)) ?? []
        } else if let origin = JWTSettings.origin(config) {
            keys = try await self.keys.keys(origin, for: token)
        } else {
            throw TesseraError.badRequest("could not load configuration")
        }
        do {
            try JWTVerifier.verify(token, keys: keys, allowed: allowed)
        } catch {
            throw Self.refused("error validating token: \(error)", reason: "signature: \(error)", note)
        }
        return token
    }

    /// `exp`, `nbf` and `iat` with the leeways (-1 disables a check).
    func checkTimes(_ claims: JSON, expirationLeeway: Int, notBeforeLeeway: Int, skew: Int, _ note: LoginNote) throws {
        let t = now().timeIntervalSince1970
        let s = Double(max(skew, 0))
        func number(_ key: String) throws -> Double? {
            switch claims[key] {
            case nil, .null?: return nil
            case .int(let i)?: return Double(i)
            case .double(let d)?: return d
            default: throw Self.refused("error validating token: malformed claim \"\(key)\"", reason: "claim \(key) is not a number", note)
            }
        }
        let exp = try number("exp"), nbf = try number("nbf"), iat = try number("iat")
        // As OpenBao's JWT validation: a token with no time claim at all is refused, and one with
        // no exp expires a leeway after it was issued.
        guard exp != nil || nbf != nil || iat != nil else {
            throw Self.refused("error validating token: no issued at (iat), not before (nbf), or expiration time (exp) claims in token",
                               reason: "no exp, iat or nbf claim", note)
        }
        if let exp, expirationLeeway >= 0, t > exp + Double(expirationLeeway) + s {
            throw Self.refused("error validating token: token is expired (exp)", reason: "exp is in the past", note)
        }
        if exp == nil, expirationLeeway >= 0, let issued = iat ?? nbf,
           t > issued + Double(expirationLeeway > 0 ? expirationLeeway : JWTSettings.defaultExpirationLeeway) + s {
            throw Self.refused("error validating token: token is expired (exp)", reason: "no exp, and iat/nbf is older than the leeway", note)
        }
        if let nbf, notBeforeLeeway >= 0, t + Double(notBeforeLeeway) + s < nbf {
            throw Self.refused("error validating token: token not valid yet (nbf)", reason: "nbf is in the future", note)
        }
        if let iat, t + s < iat {
            throw Self.refused("error validating token: token issued in the future (iat)", reason: "iat is in the future", note)
        }
    }

    /// Notes the identifying claims of a login (never the token).
    static func noteClaims(_ claims: JSON, _ keys: [String], _ note: LoginNote) {
        for key in keys {
            let values = Claims.strings(Claims.value(claims, key))
            if !values.isEmpty { note("claim." + key, String(values.joined(separator: ",").prefix(256))) }
        }
    }

    /// The roles of the method's associations whose sub-claims the claims match.
    func associatedRoles(_ method: AuthMethod, claims: JSON) async throws -> [String] {
        try await store.associations(accessId: method.accessId).filter { Claims.satisfy($0.subClaims, claims) }.map(\.roleName)
    }

    /// `auth/<mount>/login` of a JWT method: `role` (or the default role) and `jwt`.
    public func vaultJWTLogin(method: AuthMethod, roleName: String?, jwt: String, clientAddress: String,
                              note: @escaping LoginNote) async throws -> WorkloadLogin {
        let config = method.config
        guard JWTSettings.origin(config) != nil || !(config["jwks_json"]?.stringValue ?? "").isEmpty else {
            throw TesseraError.badRequest("could not load configuration")
        }
        let name = (roleName?.isEmpty == false ? roleName : config["default_role"]?.stringValue)?.lowercased() ?? ""
        guard !name.isEmpty else { throw TesseraError.badRequest("missing role") }
        note("login_role", name)
        guard let role = try await access.loginRole(accessId: method.accessId, name: name)?.config else {
            throw TesseraError.badRequest("role \"\(name.prefix(128))\" could not be found")
        }
        if role["role_type"]?.stringValue == "oidc" { throw TesseraError.badRequest("role with oidc role_type is not allowed") }
        guard !jwt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw TesseraError.badRequest("missing token") }
        let tokens = TokenParameters(stored: role)
        guard tokens.admits(clientAddress: clientAddress) else {
            throw Self.refused("permission denied", reason: "client address outside token_bound_cidrs", note)
        }
        let token = try await verifiedJWT(config, jwt, note)
        let claims = token.claims
        Self.noteClaims(claims, ["iss", "sub", "aud"], note)
        func leeway(_ k: String, _ d: Int) -> Int { if case .int(let i)? = role[k] { Int(i) } else { d } }
        try checkTimes(claims, expirationLeeway: leeway("expiration_leeway", JWTSettings.defaultExpirationLeeway),
                       notBeforeLeeway: leeway("not_before_leeway", JWTSettings.defaultNotBeforeLeeway),
                       skew: leeway("clock_skew_leeway", JWTSettings.defaultClockSkewLeeway), note)
        if let issuer = config["bound_issuer"]?.stringValue, !issuer.isEmpty, claims["iss"]?.stringValue != issuer {
            throw Self.refused("error validating token: invalid issuer (iss) claim", reason: "iss does not equal bound_issuer", note)
        }
        if let subject = role["bound_subject"]?.stringValue, !subject.isEmpty, claims["sub"]?.stringValue != subject {
            throw Self.refused("error validating token: invalid subject (sub) claim", reason: "sub does not equal bound_subject", note)
        }
        let audiences = Claims.strings(role["bound_audiences"])
        let tokenAudiences = Claims.strings(claims["aud"])
        if !audiences.isEmpty, !tokenAudiences.contains(where: audiences.contains) {
            throw Self.refused("error validating token: invalid audience (aud) claim", reason: "aud matches none of bound_audiences", note)
        }
        if audiences.isEmpty, !tokenAudiences.isEmpty {
            throw Self.refused("audience claim found in JWT but no audiences bound to the role", reason: "aud present, no bound_audiences", note)
        }
        let userClaim = role["user_claim"]?.stringValue ?? "sub"
        guard let user = Claims.value(claims, userClaim)?.stringValue, !user.isEmpty else {
            throw Self.refused("claim \"\(userClaim.prefix(64))\" not found in token", reason: "user_claim \(userClaim) missing", note)
        }
        let bound = (try? FieldValues.listMap(role["bound_claims"], "bound_claims")) ?? [:]
        let glob = role["bound_claims_type"]?.stringValue == "glob"
        if let failed = Claims.firstUnmatched(bound, claims, glob: glob) {
            let missing = Claims.value(claims, failed) == nil
            throw Self.refused(missing ? "error validating claims: claim \"\(failed.prefix(64))\" is missing"
                                       : "error validating claims: claim \"\(failed.prefix(64))\" does not match any associated bound claim values",
                               reason: "bound_claims \(failed) \(missing ? "missing" : "does not match")", note)
        }
        var metadata: [String: String] = ["role": name]
        for (claim, key) in (try? FieldValues.pairs(role["claim_mappings"], "claim_mappings")) ?? [:] {
            let values = Claims.strings(Claims.value(claims, claim))
            if !values.isEmpty { metadata[key] = values.joined(separator: ",") }
        }
        let associated = try await associatedRoles(method, claims: claims)
        let grant = TokenGrant(roleNames: Array(Set(tokens.policies + associated)).sorted(), loginRole: name,
                               displayName: Self.mountPath(method).replacingOccurrences(of: "/", with: "-") + "-" + user,
                               metadata: metadata, ttlSeconds: tokens.lifetime(methodDefaultSeconds: method.tokenTTLMinutes * 60),
                               numUses: tokens.numUses > 0 ? tokens.numUses : nil)
        let issued = try await access.issueToken(method: method, grant: grant, clientAddress: clientAddress)
        return WorkloadLogin(method: method, issued: issued, policies: tokens.shownPolicies(extra: associated), metadata: metadata)
    }

    /// The native `auth` with `access-type` `jwt` (or `oidc` with a pre-obtained ID token): the
    /// method's own bounds (issuer, audience, client ids, the unique identifier claim), then the
    /// associations whose sub-claims match.
    public func nativeJWTLogin(method: AuthMethod, jwt: String, clientAddress: String, note: @escaping LoginNote) async throws -> WorkloadLogin {
        let config = method.config
        guard !jwt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw TesseraError.badRequest("jwt is required") }
        let failure = "authentication failed: the JWT was not accepted"
        let token: JWTToken
        do {
            token = try await verifiedJWT(config, jwt, note)
        } catch let e as TesseraError where e.status == 401 {
            throw TesseraError.unauthorized(failure)
        }
        let claims = token.claims
        let unique = config["unique_identifier"]?.stringValue ?? "sub"
        Self.noteClaims(claims, Array(Set(["iss", "sub", unique])).sorted(), note)
        do {
            try checkTimes(claims, expirationLeeway: 0, notBeforeLeeway: 0, skew: JWTSettings.defaultClockSkewLeeway, note)
        } catch let e as TesseraError where e.status == 401 {
            throw TesseraError.unauthorized(failure)
        }
        if let issuer = config["bound_issuer"]?.stringValue, !issuer.isEmpty, claims["iss"]?.stringValue != issuer {
            throw Self.refused(failure, reason: "iss does not equal the method's issuer", note)
        }
        if let audience = config["audience"]?.stringValue, !audience.isEmpty, !Claims.strings(claims["aud"]).contains(audience) {
            throw Self.refused(failure, reason: "aud does not contain the method's audience", note)
        }
        let clientIds = Claims.strings(config["bound_client_ids"])
        if !clientIds.isEmpty {
            let presented = ["azp", "client_id", "cid", "appid"].flatMap { Claims.strings(claims[$0]) }
            guard presented.contains(where: clientIds.contains) else { throw Self.refused(failure, reason: "client id not in bound-client-ids", note) }
        }
        guard let identity = Claims.strings(Claims.value(claims, unique)).first, !identity.isEmpty else {
            throw Self.refused(failure, reason: "unique-identifier claim \(unique) missing", note)
        }
        let roles = try await associatedRoles(method, claims: claims)
        let grant = TokenGrant(roleNames: roles.sorted(), loginRole: "", displayName: identity,
                               metadata: [unique: identity], ttlSeconds: method.tokenTTLMinutes * 60)
        let issued = try await access.issueToken(method: method, grant: grant, clientAddress: clientAddress)
        return WorkloadLogin(method: method, issued: issued, policies: roles.sorted(), metadata: [unique: identity])
    }
}
