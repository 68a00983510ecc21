// TLS certificate auth: the client certificate of the connection (Vault's `auth/cert/login`) or
// a certificate and its private key sent in the body (the Akeyless SDK's `auth` with access-type
// cert) is trusted by a role's certificate (`auth/cert/certs/<name>`, or the method's own
// `certificate-data`), then matched against the name constraints (CN, DNS/email/URI SANs, OU,
// as globs). Trust is decided in `ClientCertificates` (TesseraCrypto).
import Foundation
import TesseraCore
import TesseraCrypto
import X509

enum CertSettings {
    static let constraintFields = ["allowed_common_names", "allowed_dns_sans", "allowed_email_sans", "allowed_uri_sans",
                                   "allowed_organizational_units"]

    /// The stored role from a Vault `certs/<name>` write over the existing role. hvac sends
    /// every default as `""`, `0` or `[]`: those mean "unset".
    static func vaultRole(_ body: JSON, name: String, over old: JSON?) throws -> JSON {
        let base = old ?? .object([])
        var pem = try FieldValues.string(body["certificate"], "certificate") ?? ""
        if pem.isEmpty { pem = base["certificate"]?.stringValue ?? "" }
        guard !pem.isEmpty else { throw TesseraError.badRequest("missing certificate") }
        let certs: [Certificate]
        do { certs = try ClientCertificates.certificates(pemBundle: pem) } catch { throw TesseraError.badRequest("failed to parse certificate") }
        guard !certs.isEmpty else { throw TesseraError.badRequest("failed to parse certificate") }
        for c in certs where !ClientCertificates.isCA(c) && !ClientCertificates.allowsClientAuth(c) {
            throw TesseraError.badRequest("nonCA certificates should have TLS client authentication set as an extended key usage")
        }
        var out: [(String, JSON)] = [("certificate", .string(pem))]
        for field in constraintFields {
            out.append((field, .strings(try FieldValues.list(body[field], field) ?? Claims.strings(base[field]))))
        }
        let legacyNames = try FieldValues.list(body["allowed_names"], "allowed_names") ?? Claims.strings(base["allowed_names"])
        out.append(("allowed_names", .strings(legacyNames)))
        // Refused rather than stored and ignored: a constraint that is not enforced would be a silent hole.
        for field in ["required_extensions", "allowed_metadata_extensions", "ocsp_servers_override", "ocsp_ca_certificates"]
            where !(try FieldValues.list(body[field], field) ?? []).isEmpty {
            throw TesseraError.badRequest("\(field) is not supported by this server yet")
        }
        if try FieldValues.bool(body["ocsp_enabled"], "ocsp_enabled") == true {
            throw TesseraError.badRequest("ocsp_enabled is not supported by this server yet")
        }
        out.append(("required_extensions", .array([])))
        var display = try FieldValues.string(body["display_name"], "display_name") ?? base["display_name"]?.stringValue ?? ""
        if display.isEmpty { display = name }
        out.append(("display_name", .string(display)))
        var tokenBody = body
        if case .object(var pairs) = body, let lease = body["lease"], body["token_ttl"] == nil, body["ttl"] == nil {
            pairs.append(("ttl", lease))
            tokenBody = .object(pairs)
        }
        out += try TokenParameters.parse(tokenBody, over: TokenParameters(stored: base)).json
        return .object(out.sorted { $0.0 < $1.0 })
    }

    /// Whether the names match every constraint that is set (each a list of globs).
    static func firstFailedConstraint(_ role: JSON, _ names: ClientCertificateNames) -> String? {
        func check(_ field: String, _ values: [String]) -> Bool {
            let patterns = Claims.strings(role[field])
            return patterns.isEmpty || values.contains { v in patterns.contains { Glob.matches($0, v) } }
        }
        if !check("allowed_common_names", [names.commonName]) { return "allowed_common_names" }
        if !check("allowed_dns_sans", names.dnsNames) { return "allowed_dns_sans" }
        if !check("allowed_email_sans", names.emailAddresses) { return "allowed_email_sans" }
        if !check("allowed_uri_sans", names.uris) { return "allowed_uri_sans" }
        if !check("allowed_organizational_units", names.organizationalUnits) { return "allowed_organizational_units" }
        if !check("allowed_names", [names.commonName] + names.dnsNames + names.emailAddresses) { return "allowed_names" }
        return nil
    }

    /// The claims a certificate login offers to sub-claims (as Akeyless names them).
    static func claims(_ n: ClientCertificateNames) -> JSON {
        .obj(("common_name", .string(n.commonName)), ("dns_sans", .strings(n.dnsNames)), ("email_sans", .strings(n.emailAddresses)),
             ("organizational_unit", .strings(n.organizationalUnits)), ("serial_number", .string(n.serialNumber)),
             ("uri_sans", .strings(n.uris)))
    }

    /// The configuration of an Akeyless certificate method (`auth-method-create-cert`).
    static func nativeConfig(_ body: JSON, over old: JSON) throws -> JSON {
        var pem = old["certificate"]?.stringValue ?? ""
        if let data = try FieldValues.string(body["certificate-data"], "certificate-data"), !data.isEmpty {
            guard let raw = Data(base64Encoded: data.replacingOccurrences(of: "\n", with: "")) else {
                throw TesseraError.badRequest("certificate-data must be base64 of a PEM certificate")
            }
            pem = String(decoding: raw, as: UTF8.self)
        }
        guard !pem.isEmpty, let certs = try? ClientCertificates.certificates(pemBundle: pem), !certs.isEmpty else {
            throw TesseraError.badRequest("certificate-data must be base64 of a PEM certificate")
        }
        let unique = try FieldValues.string(body["unique-identifier"], "unique-identifier") ?? old["unique_identifier"]?.stringValue ?? ""
        guard !unique.isEmpty else { throw TesseraError.badRequest("unique-identifier is required") }
        var out: [(String, JSON)] = [("certificate", .string(pem)), ("unique_identifier", .string(unique))]
        for (field, key) in [("bound-common-names", "allowed_common_names"), ("bound-dns-sans", "allowed_dns_sans"),
                             ("bound-email-sans", "allowed_email_sans"), ("bound-uri-sans", "allowed_uri_sans"),
                             ("bound-organizational-units", "allowed_organizational_units")] {
            out.append((key, .strings(try FieldValues.list(body[field], field) ?? Claims.strings(old[key]))))
        }
        out.append(("revoked_cert_ids", .strings(try FieldValues.list(body["revoked-cert-ids"], "revoked-cert-ids")
            ?? Claims.strings(old["revoked_cert_ids"]))))
        return .object(out)
    }
}

extension WorkloadIdentityEngine {
    /// Whether any certificate of `pemBundle` trusts `leaf` now.
    func trusts(_ pemBundle: String, _ leaf: Certificate) async -> Bool {
        guard var trusted = try? ClientCertificates.certificates(pemBundle: pemBundle), let first = trusted.first else { return false }
        // A bundle that starts with a leaf (a full chain pasted as is) pins that leaf only, as
        // OpenBao does; it never trusts the issuer that follows it.
        if !ClientCertificates.isCA(first) { trusted = [first] }
        for t in trusted where await ClientCertificates.isTrusted(leaf: leaf, by: t, now: now()) { return true }
        return false
    }

    static func noteCertificate(_ n: ClientCertificateNames, _ note: LoginNote) {
        note("cert.subject", String(n.subject.prefix(256)))
        note("cert.serial_number", n.serialNumber)
        note("claim.common_name", String(n.commonName.prefix(256)))
    }

    /// `auth/<mount>/login` of a cert method, with the connection's client certificate (DER).
    public func vaultCertLogin(method: AuthMethod, roleName: String?, clientCertificate der: [UInt8]?, clientAddress: String,
                               note: @escaping LoginNote) async throws -> WorkloadLogin {
        guard let der else { throw TesseraError.badRequest("no client certificate found") }
        guard let leaf = try? ClientCertificates.certificate(der: der) else {
            throw TesseraError.badRequest("invalid certificate or no client certificate supplied")
        }
        let names = ClientCertificates.names(leaf)
        Self.noteCertificate(names, note)
        var roles = try await access.loginRoles(accessId: method.accessId)
        if let roleName, !roleName.isEmpty {
            let name = roleName.lowercased()
            roles = roles.filter { $0.name == name }
            note("login_role", name)
        }
        var trustedBySome = false
        var chosen: AuthMethodRole?
        var failed = ""
        for role in roles where await trusts(role.config["certificate"]?.stringValue ?? "", leaf) {
            trustedBySome = true
            if let f = CertSettings.firstFailedConstraint(role.config, names) {
                failed = "\(role.name): \(f)"
                continue
            }
            chosen = role
            break
        }
        guard trustedBySome else {
            note("refusal_reason", "no trusted certificate of this method validates the client certificate (expired, not yet valid, or another CA)")
            throw TesseraError.badRequest("invalid certificate or no client certificate supplied")
        }
        guard let role = chosen else {
            note("refusal_reason", "constraint not met: \(failed)")
            throw TesseraError.badRequest("no chain matching all constraints could be found for this login certificate")
        }
        note("login_role", role.name)
        let tokens = TokenParameters(stored: role.config)
        guard tokens.admits(clientAddress: clientAddress) else {
            throw Self.refused("permission denied", reason: "client address outside token_bound_cidrs", note)
        }
        let associated = try await associatedRoles(method, claims: CertSettings.claims(names))
        let metadata = ["cert_name": role.name, "common_name": names.commonName, "serial_number": names.serialNumber,
                        "subject_key_id": names.subjectKeyId, "authority_key_id": names.authorityKeyId]
        let grant = TokenGrant(roleNames: Array(Set(tokens.policies + associated)).sorted(), loginRole: role.name,
                               displayName: role.config["display_name"]?.stringValue ?? role.name, metadata: metadata,
                               ttlSeconds: tokens.lifetime(methodDefaultSeconds: method.tokenTTLMinutes * 60),
                               numUses: tokens.numUses > 0 ? tokens.numUses : nil)
        let issued = try await access.issueToken(method: method, grant: grant, clientAddress: clientAddress)
        return WorkloadLogin(method: method, issued: issued, policies: tokens.shownPolicies(extra: associated), metadata: metadata)
    }

    /// The native `auth` with `access-type` `cert`: `cert-data` and `key-data` (base64 PEM), or the
    /// connection's client certificate when no `cert-data` is sent.
    public func nativeCertLogin(method: AuthMethod, certData: String, keyData: String, connectionCertificate: [UInt8]?,
                                clientAddress: String, note: @escaping LoginNote) async throws -> WorkloadLogin {
        let failure = TesseraError.unauthorized("authentication failed: the certificate was not accepted")
        let leaf: Certificate
        if !certData.isEmpty {
            guard let raw = Data(base64Encoded: certData.replacingOccurrences(of: "\n", with: "")),
                  let cert = try? ClientCertificates.certificate(pem: String(decoding: raw, as: UTF8.self)) else {
                throw TesseraError.badRequest("cert-data must be base64 of a PEM certificate")
            }
            // The body carries a certificate anyone may hold: the private key proves possession.
            guard let keyRaw = Data(base64Encoded: keyData.replacingOccurrences(of: "\n", with: "")),
                  ClientCertificates.keyMatches(String(decoding: keyRaw, as: UTF8.self), certificate: cert) else {
                note("refusal_reason", "key-data is missing or is not the certificate's private key")
                throw failure
            }
            leaf = cert
        } else if let der = connectionCertificate, let cert = try? ClientCertificates.certificate(der: der) {
            leaf = cert
        } else {
            throw TesseraError.badRequest("cert-data and key-data are required")
        }
        let names = ClientCertificates.names(leaf)
        Self.noteCertificate(names, note)
        let config = method.config
        guard await trusts(config["certificate"]?.stringValue ?? "", leaf) else {
            note("refusal_reason", "the method's certificate does not validate the client certificate (expired, not yet valid, or another CA)")
            throw failure
        }
        if Claims.strings(config["revoked_cert_ids"]).contains(names.serialNumber) {
            note("refusal_reason", "the certificate's serial number is in revoked-cert-ids")
            throw failure
        }
        if let f = CertSettings.firstFailedConstraint(config, names) {
            note("refusal_reason", "constraint not met: \(f)")
            throw failure
        }
        let claims = CertSettings.claims(names)
        let unique = config["unique_identifier"]?.stringValue ?? "common_name"
        guard let identity = Claims.strings(Claims.value(claims, unique)).first, !identity.isEmpty else {
            note("refusal_reason", "the certificate has no \(unique)")
            throw failure
        }
        let roles = try await associatedRoles(method, claims: claims)
        let metadata = [unique: identity, "serial_number": names.serialNumber]
        let grant = TokenGrant(roleNames: roles.sorted(), loginRole: "", displayName: identity, metadata: metadata,
                               ttlSeconds: method.tokenTTLMinutes * 60)
        let issued = try await access.issueToken(method: method, grant: grant, clientAddress: clientAddress)
        return WorkloadLogin(method: method, issued: issued, policies: roles.sorted(), metadata: metadata)
    }

    public func createCertMethod(name: String, body: JSON, tokenTTLMinutes: Int?, boundCIDRs: [String], accessExpires: Date?) async throws -> AuthMethod {
        try await access.createMethod(name: name, type: Self.certType, config: try CertSettings.nativeConfig(body, over: .object([])),
                                      tokenTTLMinutes: tokenTTLMinutes, boundCIDRs: boundCIDRs, accessExpires: accessExpires)
    }

    public func updateCertMethod(_ method: AuthMethod, body: JSON) async throws {
        guard method.type == Self.certType else { throw TesseraError.badRequest("\(method.name) is not a certificate auth method") }
        var m = method
        m.config = Self.preserving(try CertSettings.nativeConfig(body, over: method.config), from: method.config)
        try await access.updateMethod(m)
    }
}
