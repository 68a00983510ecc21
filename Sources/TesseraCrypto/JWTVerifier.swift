// JWT signature verification: compact JWS tokens checked against public keys from PEM or a JWKS,
// with the algorithm bound to the key's type. Only asymmetric algorithms exist here: `none` and
// every HMAC algorithm are refused before any key is looked at, so a token "signed" with a public
// key used as an HMAC secret can never verify. Claims are checked by the auth methods.
import Crypto
import CryptoExtras
import Foundation
import TesseraCore
import X509

/// Why a token did not verify. The texts are safe to show: they never quote the token.
public enum JWTError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    case algorithmNotAllowed(String)
    case unknownKey
    case badSignature

    public var description: String {
        switch self {
        case .malformed(let why): "malformed token: \(why)"
        case .algorithmNotAllowed(let alg): "signing algorithm \"\(alg.prefix(16))\" is not allowed"
        case .unknownKey: "no known key matches the token's key id"
        case .badSignature: "failed to verify id token signature"
        }
    }
}

/// A decoded but not yet verified token.
public struct JWTToken: Sendable {
    public let header: JSON
    public let claims: JSON
    public let alg: String
    public let kid: String?
    let signingInput: [UInt8]
    let signature: [UInt8]

    /// Tokens longer than this are refused before decoding.
    public static let maxLength = 16 * 1024

    public init(compact raw: String) throws(JWTError) {
        let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw .malformed("empty token") }
        guard text.utf8.count <= Self.maxLength else { throw .malformed("token is too long") }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("a compact JWS has three parts") }
        guard let headerBytes = Base64URL.decode(parts[0]), let payloadBytes = Base64URL.decode(parts[1]),
              let signature = Base64URL.decode(parts[2]) else {
            throw .malformed("invalid base64url encoding")
        }
        guard let header = try? JSON.parse(headerBytes), case .object = header else { throw .malformed("the header is not a JSON object") }
        guard let claims = try? JSON.parse(payloadBytes), case .object = claims else { throw .malformed("the payload is not a JSON object") }
        guard let alg = header["alg"]?.stringValue else { throw .malformed("the header has no alg") }
        if let crit = header["crit"], crit != .null { throw .malformed("critical header extensions are not supported") }
        self.header = header
        self.claims = claims
        self.alg = alg
        self.kid = header["kid"]?.stringValue
        self.signingInput = Array(parts[0].utf8) + [UInt8(ascii: ".")] + Array(parts[1].utf8)
        self.signature = signature
    }
}

/// A public key that may verify tokens, with its key id and algorithm when a JWKS gave them.
public struct JWTPublicKey: Sendable {
    public enum Material: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case p521(P521.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
    }

    public let kid: String?
    public let alg: String?
    public let material: Material

    public init(kid: String?, alg: String?, material: Material) {
        self.kid = kid
        self.alg = alg
        self.material = material
    }

    /// A `PUBLIC KEY` (SPKI), `RSA PUBLIC KEY` (PKCS #1) or `CERTIFICATE` PEM block.
    public init(pem: String) throws(JWTError) {
        let text = pem.trimmingCharacters(in: .whitespacesAndNewlines)
        let key: Certificate.PublicKey
        do {
            if text.contains("BEGIN RSA PUBLIC KEY") {
                self.init(kid: nil, alg: nil, material: .rsa(try _RSA.Signing.PublicKey(pemRepresentation: text)))
                return
            } else if text.contains("BEGIN CERTIFICATE") {
                key = try Certificate(pemEncoded: text).publicKey
            } else {
                key = try Certificate.PublicKey(pemEncoded: text)
            }
        } catch {
            throw .malformed("the PEM block is not a public key or certificate")
        }
        guard let material = Self.material(key) else { throw .malformed("unsupported public key type") }
        self.init(kid: nil, alg: nil, material: material)
    }

    static func material(_ key: Certificate.PublicKey) -> Material? {
        if let k = _RSA.Signing.PublicKey(key) { return .rsa(k) }
        if let k = P256.Signing.PublicKey(key) { return .p256(k) }
        if let k = P384.Signing.PublicKey(key) { return .p384(k) }
        if let k = P521.Signing.PublicKey(key) { return .p521(k) }
        if let k = Curve25519.Signing.PublicKey(key) { return .ed25519(k) }
        return nil
    }

    /// The keys of a JWKS document (`{"keys": [...]}`). Keys for encryption, symmetric keys and
    /// unknown types are skipped; a key of a known type that does not decode is an error.
    public static func jwks(_ document: JSON) throws(JWTError) -> [JWTPublicKey] {
        guard case .array(let keys)? = document["keys"] else { throw .malformed("a JWKS has a \"keys\" array") }
        var out: [JWTPublicKey] = []
        for k in keys {
            if let use = k["use"]?.stringValue, use != "sig" { continue }
            let kid = k["kid"]?.stringValue
            let alg = k["alg"]?.stringValue
            func bytes(_ name: String) throws(JWTError) -> [UInt8] {
                guard let s = k[name]?.stringValue, let b = Base64URL.decode(Substring(s)) else {
                    throw .malformed("JWK member \"\(name)\" is missing or not base64url")
                }
                return b
            }
            do {
                switch k["kty"]?.stringValue {
                case "RSA":
                    out.append(JWTPublicKey(kid: kid, alg: alg, material: .rsa(try _RSA.Signing.PublicKey(n: try bytes("n"), e: try bytes("e")))))
                case "EC":
                    let point = [UInt8(0x04)] + (try bytes("x")) + (try bytes("y"))
                    switch k["crv"]?.stringValue {
                    case "P-256": out.append(JWTPublicKey(kid: kid, alg: alg, material: .p256(try P256.Signing.PublicKey(x963Representation: point))))
                    case "P-384": out.append(JWTPublicKey(kid: kid, alg: alg, material: .p384(try P384.Signing.PublicKey(x963Representation: point))))
                    case "P-521": out.append(JWTPublicKey(kid: kid, alg: alg, material: .p521(try P521.Signing.PublicKey(x963Representation: point))))
                    default: continue
                    }
                case "OKP":
                    guard k["crv"]?.stringValue == "Ed25519" else { continue }
                    out.append(JWTPublicKey(kid: kid, alg: alg, material: .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: try bytes("x")))))
                default:
                    continue
                }
            } catch let e as JWTError {
                throw e
            } catch {
                throw .malformed("a JWK in the set is not a valid public key")
            }
        }
        return out
    }

    /// Whether this key can check `alg`: the family must match the key type, and a JWK that
    /// names its algorithm allows only that one.
    public func accepts(_ alg: String) -> Bool {
        if let own = self.alg, own != alg { return false }
        switch material {
        case .rsa: return ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"].contains(alg)
        case .p256: return alg == "ES256"
        case .p384: return alg == "ES384"
        case .p521: return alg == "ES512"
        case .ed25519: return alg == "EdDSA"
        }
    }

    func isValid(signature: [UInt8], for input: [UInt8], alg: String) -> Bool {
        guard accepts(alg) else { return false }
        switch material {
        case .rsa(let key):
            let sig = _RSA.Signing.RSASignature(rawRepresentation: signature)
            let padding: _RSA.Signing.Padding = alg.hasPrefix("PS") ? .PSS : .insecurePKCS1v1_5
            switch alg.suffix(3) {
            case "256": return key.isValidSignature(sig, for: SHA256.hash(data: input), padding: padding)
            case "384": return key.isValidSignature(sig, for: SHA384.hash(data: input), padding: padding)
            case "512": return key.isValidSignature(sig, for: SHA512.hash(data: input), padding: padding)
            default: return false
            }
        case .p256(let key):
            guard let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: SHA256.hash(data: input))
        case .p384(let key):
            guard let sig = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: SHA384.hash(data: input))
        case .p521(let key):
            guard let sig = try? P521.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: SHA512.hash(data: input))
        case .ed25519(let key):
            return key.isValidSignature(signature, for: input)
        }
    }
}

public enum JWTVerifier {
    /// Every algorithm Tessera verifies. `none` and HS* are never in it.
    public static let asymmetricAlgorithms: Set<String> = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                                           "ES256", "ES384", "ES512", "EdDSA"]

    /// Checks the signature of `token` with `keys`. `allowed` narrows the algorithms (empty: all
    /// asymmetric ones). A token with a key id is checked only with the keys of that id, unless
    /// no key has an id (static PEM keys), in which case each key is tried.
    public static func verify(_ token: JWTToken, keys: [JWTPublicKey], allowed: Set<String>) throws(JWTError) {
        guard asymmetricAlgorithms.contains(token.alg), allowed.isEmpty || allowed.contains(token.alg) else {
            throw .algorithmNotAllowed(token.alg)
        }
        var candidates = keys
        if let kid = token.kid, keys.contains(where: { $0.kid != nil }) {
            candidates = keys.filter { $0.kid == kid }
            guard !candidates.isEmpty else { throw .unknownKey }
        }
        for key in candidates where key.isValid(signature: token.signature, for: token.signingInput, alg: token.alg) {
            return
        }
        throw .badSignature
    }
}

/// Base64url without padding (RFC 7515 §2); padding is tolerated on input.
public enum Base64URL {
    public static func decode(_ text: Substring) -> [UInt8]? {
        var s = String(text).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.hasSuffix("=") { s.removeLast() }
        guard !s.contains("=") else { return nil }
        switch s.utf8.count % 4 {
        case 0: break
        case 2: s += "=="
        case 3: s += "="
        default: return nil
        }
        return Data(base64Encoded: s).map { [UInt8]($0) }
    }

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// The key pair of an Akeyless-style Kubernetes auth method (`gen-key`): the private key is
/// handed to the caller once (as the gateway's `signing-key`) and only the public key is kept.
public enum MethodKeyPair {
    /// A new RSA-2048 key pair: the private key as base64 of its PEM, and the public key PEM.
    public static func generate() throws -> (privateKeyBase64: String, publicKeyPEM: String) {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        return (Data(key.pemRepresentation.utf8).base64EncodedString(), key.publicKey.pemRepresentation)
    }

    /// The public key PEM of a private key given as base64 of a PEM, a PEM, or base64 DER.
    public static func publicKeyPEM(ofPrivateKey text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        var candidates = [trimmed]
        if let decoded = Data(base64Encoded: trimmed) {
            candidates.append(String(decoding: decoded, as: UTF8.self))
            if let k = try? _RSA.Signing.PrivateKey(derRepresentation: decoded) { return k.publicKey.pemRepresentation }
        }
        for c in candidates where c.contains("PRIVATE KEY") {
            if let k = try? _RSA.Signing.PrivateKey(pemRepresentation: c) { return k.publicKey.pemRepresentation }
        }
        return nil
    }

    /// A public key given as PEM or base64 of a PEM (`public-key`), checked to be RSA.
    public static func normalizedPublicKey(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let pem = trimmed.contains("BEGIN") ? trimmed : Data(base64Encoded: trimmed).map { String(decoding: $0, as: UTF8.self) } ?? ""
        guard let k = try? _RSA.Signing.PublicKey(pemRepresentation: pem) else { return nil }
        return k.pemRepresentation
    }
}
