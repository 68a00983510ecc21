// JWT signature verification, tested hardest: every asymmetric algorithm verifies with its own
// key type only; `none`, HMAC (also keyed with a public key), a wrong key, a wrong key id, an
// algorithm a JWK does not allow, a tampered payload and malformed tokens are all refused.
import Crypto
import CryptoExtras
import Foundation
import Testing
import TesseraCore
@testable import TesseraCrypto

@Suite struct JWTVerifierTests {
    static func part(_ json: String) -> String { Base64URL.encode(Array(json.utf8)) }

    static func signingInput(alg: String, kid: String?, claims: String = #"{"sub":"a","aud":"x"}"#) -> String {
        let header = kid.map { #"{"alg":"\#(alg)","kid":"\#($0)"}"# } ?? #"{"alg":"\#(alg)"}"#
        return part(header) + "." + part(claims)
    }

    static func token(_ input: String, _ signature: some Sequence<UInt8>) throws -> JWTToken {
        try JWTToken(compact: input + "." + Base64URL.encode(signature))
    }

    let rsa = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    let p256 = P256.Signing.PrivateKey()
    let p384 = P384.Signing.PrivateKey()
    let ed = Curve25519.Signing.PrivateKey()

    var keys: [JWTPublicKey] {
        [JWTPublicKey(kid: "rsa", alg: nil, material: .rsa(rsa.publicKey)),
         JWTPublicKey(kid: "p256", alg: "ES256", material: .p256(p256.publicKey)),
         JWTPublicKey(kid: "p384", alg: nil, material: .p384(p384.publicKey)),
         JWTPublicKey(kid: "ed", alg: nil, material: .ed25519(ed.publicKey))]
    }

    func signed(_ alg: String, kid: String?, claims: String = #"{"sub":"a","aud":"x"}"#) throws -> JWTToken {
        let input = Self.signingInput(alg: alg, kid: kid, claims: claims)
        let data = Data(input.utf8)
        switch alg {
        case "RS256": return try Self.token(input, try rsa.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5).rawRepresentation)
        case "RS512": return try Self.token(input, try rsa.signature(for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5).rawRepresentation)
        case "PS256": return try Self.token(input, try rsa.signature(for: SHA256.hash(data: data), padding: .PSS).rawRepresentation)
        case "ES256": return try Self.token(input, try p256.signature(for: SHA256.hash(data: data)).rawRepresentation)
        case "ES384": return try Self.token(input, try p384.signature(for: SHA384.hash(data: data)).rawRepresentation)
        case "EdDSA": return try Self.token(input, try ed.signature(for: data))
        default: throw JWTError.algorithmNotAllowed(alg)
        }
    }

    @Test func everyAlgorithmVerifiesWithItsKey() throws {
        for (alg, kid) in [("RS256", "rsa"), ("RS512", "rsa"), ("PS256", "rsa"), ("ES256", "p256"), ("ES384", "p384"), ("EdDSA", "ed")] {
            try JWTVerifier.verify(try signed(alg, kid: kid), keys: keys, allowed: [])
            // without a key id, every key is tried
            try JWTVerifier.verify(try signed(alg, kid: nil), keys: keys, allowed: [])
        }
    }

    @Test func noneAndHMACAreNeverAccepted() throws {
        let input = Self.signingInput(alg: "none", kid: "rsa")
        #expect(throws: JWTError.algorithmNotAllowed("none")) { try JWTVerifier.verify(try JWTToken(compact: input + "."), keys: keys, allowed: []) }
        let pem = Array(rsa.publicKey.pemRepresentation.utf8)
        let hsInput = Self.signingInput(alg: "HS256", kid: "rsa")
        let mac = HMAC<SHA256>.authenticationCode(for: Array(hsInput.utf8), using: SymmetricKey(data: pem))
        #expect(throws: JWTError.algorithmNotAllowed("HS256")) {
            try JWTVerifier.verify(try Self.token(hsInput, Array(mac)), keys: keys, allowed: [])
        }
        // an explicit allow-list cannot re-enable them
        #expect(throws: JWTError.algorithmNotAllowed("HS256")) {
            try JWTVerifier.verify(try Self.token(hsInput, Array(mac)), keys: keys, allowed: ["HS256"])
        }
    }

    @Test func wrongKeysKeyIdsAndAlgorithmsAreRefused() throws {
        #expect(throws: JWTError.unknownKey) { try JWTVerifier.verify(try signed("RS256", kid: "other"), keys: keys, allowed: []) }
        // an RSA signature presented under the P-256 key's id
        #expect(throws: JWTError.badSignature) {
            let t = try signed("RS256", kid: "rsa")
            try JWTVerifier.verify(try JWTToken(compact: Self.signingInput(alg: "RS256", kid: "p256") + "." + Base64URL.encode(t.signature)),
                                   keys: keys, allowed: [])
        }
        // the P-256 JWK says ES256 only; a header claiming ES384 with that kid fails
        #expect(throws: JWTError.badSignature) { try JWTVerifier.verify(try signed("ES384", kid: "p256"), keys: keys, allowed: []) }
        // a valid token outside the method's allow-list
        #expect(throws: JWTError.algorithmNotAllowed("EdDSA")) { try JWTVerifier.verify(try signed("EdDSA", kid: "ed"), keys: keys, allowed: ["RS256"]) }
        // another key of the same type
        let stranger = JWTPublicKey(kid: "rsa", alg: nil, material: .rsa(try _RSA.Signing.PrivateKey(keySize: .bits2048).publicKey))
        #expect(throws: JWTError.badSignature) { try JWTVerifier.verify(try signed("RS256", kid: "rsa"), keys: [stranger], allowed: []) }
    }

    @Test func tamperedPayloadFails() throws {
        let t = try signed("ES256", kid: "p256")
        let forged = try JWTToken(compact: Self.part(#"{"alg":"ES256","kid":"p256"}"#) + "." + Self.part(#"{"sub":"admin","aud":"x"}"#)
                                  + "." + Base64URL.encode(t.signature))
        #expect(throws: JWTError.badSignature) { try JWTVerifier.verify(forged, keys: keys, allowed: []) }
    }

    @Test func malformedTokensAreRefusedBeforeAnyKey() {
        let bad = ["", "a.b", "a.b.c.d", "!!!.e30.", Self.part("[1]") + "." + Self.part("{}") + ".",
                   Self.part(#"{"alg":"RS256"}"#) + "." + Self.part("[]") + ".", Self.part(#"{"typ":"JWT"}"#) + "." + Self.part("{}") + ".",
                   Self.part(#"{"alg":"RS256","crit":["x"]}"#) + "." + Self.part("{}") + ".",
                   String(repeating: "a", count: JWTToken.maxLength + 1)]
        for text in bad {
            #expect(throws: JWTError.self) { _ = try JWTToken(compact: text) }
        }
    }

    @Test func jwksSkipsKeysItCannotUse() throws {
        let x = Base64URL.encode(ed.publicKey.rawRepresentation)
        let doc = try JSON.parse(Array(#"""
            {"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"OKP","crv":"Ed25519","x":"\#(x)","kid":"e","use":"enc"},
                     {"kty":"OKP","crv":"Ed25519","x":"\#(x)","kid":"e2"},{"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"}]}
            """#.utf8))
        let keys = try JWTPublicKey.jwks(doc)
        #expect(keys.map(\.kid) == ["e2"])
        #expect(throws: JWTError.self) { _ = try JWTPublicKey.jwks(try JSON.parse(Array(#"{"keys":[{"kty":"RSA","n":"AA"}]}"#.utf8))) }
        #expect(throws: JWTError.self) { _ = try JWTPublicKey.jwks(try JSON.parse(Array(#"{"nokeys":1}"#.utf8))) }
    }

    @Test func pemKeysAndTheMethodKeyPair() throws {
        let pem = try JWTPublicKey(pem: p256.publicKey.pemRepresentation)
        try JWTVerifier.verify(try signed("ES256", kid: nil), keys: [pem], allowed: [])
        #expect(throws: JWTError.self) { _ = try JWTPublicKey(pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----") }
        let pair = try MethodKeyPair.generate()
        #expect(MethodKeyPair.publicKeyPEM(ofPrivateKey: pair.privateKeyBase64) == pair.publicKeyPEM)
        #expect(MethodKeyPair.publicKeyPEM(ofPrivateKey: "bm90IGEga2V5") == nil)
    }
}
