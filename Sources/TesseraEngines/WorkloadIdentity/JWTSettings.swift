// JWTSettings: the settings of a JWT/OIDC auth method (Vault's `auth/<mount>/config`, or the
// Akeyless OAuth2/JWT method's fields) and of its login roles (`auth/<mount>/role/<name>`),
// validated as OpenBao validates them and stored as their read-back JSON.
import Foundation
import TesseraCore
import TesseraCrypto

enum JWTSettings {
    // MARK: Method configuration

    /// The stored configuration from a Vault `config` write (which replaces the whole config).
    static func vaultConfig(_ body: JSON) throws -> JSON {
        let pubkeys = try FieldValues.pemList(body["jwt_validation_pubkeys"], "jwt_validation_pubkeys") ?? []
        let jwksURL = try FieldValues.string(body["jwks_url"], "jwks_url") ?? ""
        let discovery = try FieldValues.string(body["oidc_discovery_url"], "oidc_discovery_url") ?? ""
        let provider = body["provider_config"].flatMap { $0 == .null || $0 == .object([]) ? nil : $0 }
        let sources = [!pubkeys.isEmpty, !jwksURL.isEmpty, !discovery.isEmpty, provider != nil].filter { $0 }.count
        guard sources == 1 else {
            throw TesseraError.badRequest("exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs', 'oidc_discovery_url', or 'provider_config' must be set")
        }
        if provider != nil { throw TesseraError.badRequest("'provider_config' is not supported by this server") }
        if discovery.contains(".well-known") { throw TesseraError.badRequest("'oidc_discovery_url' contains '.well-known' component") }
        if !jwksURL.isEmpty { try IdentityHTTP.validateURL(jwksURL, field: "jwks_url") }
        if !discovery.isEmpty { try IdentityHTTP.validateURL(discovery, field: "oidc_discovery_url") }
        for pem in pubkeys {
            do { _ = try JWTPublicKey(pem: pem) } catch { throw TesseraError.badRequest("error parsing public key: \(error)") }
        }
        let jwksCA = try FieldValues.string(body["jwks_ca_pem"], "jwks_ca_pem") ?? ""
        let discoveryCA = try FieldValues.string(body["oidc_discovery_ca_pem"], "oidc_discovery_ca_pem") ?? ""
        if !jwksCA.isEmpty { try IdentityHTTP.validateCA(jwksCA, field: "jwks_ca_pem") }
        if !discoveryCA.isEmpty { try IdentityHTTP.validateCA(discoveryCA, field: "oidc_discovery_ca_pem") }
        let algs = try FieldValues.list(body["jwt_supported_algs"], "jwt_supported_algs") ?? []
        for alg in algs where !JWTVerifier.asymmetricAlgorithms.contains(alg) {
            throw TesseraError.badRequest("invalid jwt_supported_algs: \(alg.prefix(16))")
        }
        let clientId = try FieldValues.string(body["oidc_client_id"], "oidc_client_id") ?? ""
        let clientSecret = try FieldValues.string(body["oidc_client_secret"], "oidc_client_secret") ?? ""
        if clientId.isEmpty != clientSecret.isEmpty {
            throw TesseraError.badRequest("both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC")
        }
        return .obj(("bound_issuer", .string(try FieldValues.string(body["bound_issuer"], "bound_issuer") ?? "")),
                    ("default_role", .string((try FieldValues.string(body["default_role"], "default_role") ?? "").lowercased())),
                    ("jwks_ca_pem", .string(jwksCA)), ("jwks_url", .string(jwksURL)),
                    ("jwt_supported_algs", .strings(algs)), ("jwt_validation_pubkeys", .strings(pubkeys)),
                    ("namespace_in_state", .bool(try FieldValues.bool(body["namespace_in_state"], "namespace_in_state") ?? true)),
                    ("oidc_client_id", .string(clientId)), ("oidc_discovery_ca_pem", .string(discoveryCA)),
                    ("oidc_discovery_url", .string(discovery)),
                    ("oidc_response_mode", .string(try FieldValues.string(body["oidc_response_mode"], "oidc_response_mode") ?? "")),
                    ("oidc_response_types", .strings(try FieldValues.list(body["oidc_response_types"], "oidc_response_types") ?? [])),
                    ("provider_config", .object([])),
                    ("skip_jwks_validation", .bool(try FieldValues.bool(body["skip_jwks_validation"], "skip_jwks_validation") ?? false)))
    }

    /// The configuration of an Akeyless OAuth2/JWT method (`auth-method-create-oauth2`). Fields
    /// not given keep their value from `old` (an update).
    static func nativeConfig(_ body: JSON, over old: JSON) throws -> JSON {
        func str(_ key: String, _ stored: String) throws -> String {
            try FieldValues.string(body[key], key) ?? old[stored]?.stringValue ?? ""
        }
        let jwksURL = try str("jwks-uri", "jwks_url")
        var pubkeys = Claims.strings(old["jwt_validation_pubkeys"])
        var jwksJSON = old["jwks_json"]?.stringValue ?? ""
        if let data = try FieldValues.string(body["jwks-json-data"], "jwks-json-data"), !data.isEmpty {
            guard let raw = Base64URL.decode(Substring(data.replacingOccurrences(of: "\n", with: ""))),
                  let doc = try? JSON.parse(raw), (try? JWTPublicKey.jwks(doc)) != nil else {
                throw TesseraError.badRequest("jwks-json-data must be the base64 of a JWKS document")
            }
            jwksJSON = doc.serialized
            pubkeys = []
        }
        if !jwksURL.isEmpty { try IdentityHTTP.validateURL(jwksURL, field: "jwks-uri") }
        guard !jwksURL.isEmpty || !jwksJSON.isEmpty || !pubkeys.isEmpty else {
            throw TesseraError.badRequest("one of jwks-uri or jwks-json-data is required")
        }
        let unique = try str("unique-identifier", "unique_identifier")
        guard !unique.isEmpty else { throw TesseraError.badRequest("unique-identifier is required") }
        var ca = old["jwks_ca_pem"]?.stringValue ?? ""
        if let data = try FieldValues.string(body["cert-file-data"], "cert-file-data"), !data.isEmpty {
            guard let raw = Data(base64Encoded: data) else { throw TesseraError.badRequest("cert-file-data must be base64 PEM") }
            ca = String(decoding: raw, as: UTF8.self)
            try IdentityHTTP.validateCA(ca, field: "cert-file-data")
        }
        let clientIds = try FieldValues.list(body["bound-client-ids"], "bound-client-ids") ?? Claims.strings(old["bound_client_ids"])
        return .obj(("audience", .string(try str("audience", "audience"))),
                    ("bound_client_ids", .strings(clientIds)),
                    ("bound_issuer", .string(try str("issuer", "bound_issuer"))),
                    ("default_role", .string(old["default_role"]?.stringValue ?? "")),
                    ("jwks_ca_pem", .string(ca)), ("jwks_json", .string(jwksJSON)), ("jwks_url", .string(jwksURL)),
                    ("jwt_supported_algs", .strings(Claims.strings(old["jwt_supported_algs"]))),
                    ("jwt_validation_pubkeys", .strings(pubkeys)),
                    ("oidc_discovery_ca_pem", .string(old["oidc_discovery_ca_pem"]?.stringValue ?? "")),
                    ("oidc_discovery_url", .string(old["oidc_discovery_url"]?.stringValue ?? "")),
                    ("unique_identifier", .string(unique)))
    }

    /// The read-back view of `auth/<mount>/config`.
    static func vaultView(_ c: JSON) -> JSON {
        let keys = ["bound_issuer", "default_role", "jwks_ca_pem", "jwks_url", "jwt_supported_algs", "jwt_validation_pubkeys",
                    "namespace_in_state", "oidc_client_id", "oidc_discovery_ca_pem", "oidc_discovery_url", "oidc_response_mode",
                    "oidc_response_types", "provider_config"]
        var out: [(String, JSON)] = keys.map { k in
            (k, c[k] ?? (k.hasSuffix("s") && k != "bound_issuer" ? .array([]) : .string("")))
        }
        out.append(("status", .string("valid")))
        return .object(out)
    }

    static func origin(_ c: JSON) -> JWTKeySource.Origin? {
        let pems = Claims.strings(c["jwt_validation_pubkeys"])
        if !pems.isEmpty { return .pem(pems) }
        if let url = c["jwks_url"]?.stringValue, !url.isEmpty { return .jwks(url: url, ca: c["jwks_ca_pem"]?.stringValue) }
        if let url = c["oidc_discovery_url"]?.stringValue, !url.isEmpty {
            return .discovery(url: url, ca: c["oidc_discovery_ca_pem"]?.stringValue)
        }
        return nil
    }

    // MARK: Login roles

    static let defaultExpirationLeeway = 150
    static let defaultNotBeforeLeeway = 150
    static let defaultClockSkewLeeway = 60

    /// The stored role from a Vault role write over the existing role (`old`, or empty).
    static func vaultRole(_ body: JSON, over old: JSON?) throws -> JSON {
        let base = old ?? .object([])
        func str(_ key: String, default d: String = "") throws -> String {
            try FieldValues.string(body[key], key) ?? base[key]?.stringValue ?? d
        }
        func list(_ key: String) throws -> [String] {
            try FieldValues.list(body[key], key) ?? Claims.strings(base[key])
        }
        func leeway(_ key: String, _ d: Int) throws -> Int {
            if let v = try FieldValues.duration(body[key], key, signed: true) { return v }
            if case .int(let i)? = base[key] { return Int(i) }
            return d
        }
        let roleType = try str("role_type", default: "oidc")
        guard roleType == "jwt" || roleType == "oidc" else { throw TesseraError.badRequest("invalid 'role_type': \(roleType.prefix(32))") }
        let claimsType = try str("bound_claims_type", default: "string")
        guard claimsType == "string" || claimsType == "glob" else {
            throw TesseraError.badRequest("invalid 'bound_claims_type': \(claimsType.prefix(32))")
        }
        let boundClaims = try FieldValues.listMap(body["bound_claims"], "bound_claims")
            ?? (try FieldValues.listMap(base["bound_claims"], "bound_claims") ?? [:])
        let mappings = try FieldValues.pairs(body["claim_mappings"], "claim_mappings") ?? (try FieldValues.pairs(base["claim_mappings"], "claim_mappings") ?? [:])
        if mappings.values.contains("role") {
            throw TesseraError.badRequest("metadata key \"role\" is reserved and may not be a mapping destination")
        }
        let userClaim = try str("user_claim")
        guard !userClaim.isEmpty else { throw TesseraError.badRequest("a user claim must be defined on the role") }
        let redirects = try list("allowed_redirect_uris")
        if roleType == "oidc", redirects.isEmpty {
            throw TesseraError.badRequest("'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.")
        }
        let tokens = try TokenParameters.parse(body, over: TokenParameters(stored: base))
        let audiences = try list("bound_audiences")
        let subject = try str("bound_subject")
        if roleType == "jwt", audiences.isEmpty, subject.isEmpty, boundClaims.isEmpty, tokens.boundCIDRs.isEmpty {
            throw TesseraError.badRequest("must have at least one bound constraint when creating/updating a role")
        }
        var out: [(String, JSON)] = [
            ("allowed_redirect_uris", .strings(redirects)), ("bound_audiences", .strings(audiences)),
            ("bound_claims", FieldValues.listMapJSON(boundClaims)), ("bound_claims_type", .string(claimsType)),
            ("bound_subject", .string(subject)), ("claim_mappings", JSON.stringMap(mappings)),
            ("clock_skew_leeway", .int(Int64(try leeway("clock_skew_leeway", defaultClockSkewLeeway)))),
            ("expiration_leeway", .int(Int64(try leeway("expiration_leeway", defaultExpirationLeeway)))),
            ("groups_claim", .string(try str("groups_claim"))),
            ("max_age", .int(Int64(try FieldValues.duration(body["max_age"], "max_age") ?? Int(TokenParameters.int(base["max_age"]))))),
            ("not_before_leeway", .int(Int64(try leeway("not_before_leeway", defaultNotBeforeLeeway)))),
            ("oidc_scopes", .strings(try list("oidc_scopes"))), ("role_type", .string(roleType)),
            ("user_claim", .string(userClaim)),
            ("user_claim_json_pointer", .bool(try FieldValues.bool(body["user_claim_json_pointer"], "user_claim_json_pointer")
                ?? (base["user_claim_json_pointer"] == .bool(true)))),
            ("verbose_oidc_logging", .bool(try FieldValues.bool(body["verbose_oidc_logging"], "verbose_oidc_logging")
                ?? (base["verbose_oidc_logging"] == .bool(true)))),
        ]
        out += tokens.json
        return .object(out.sorted { $0.0 < $1.0 })
    }
}
