// Keyring: numbered AES-256-GCM data-key terms. The newest term encrypts; every term decrypts.
// Each value is sealed under additional authenticated data that binds it to where it belongs.
import Crypto
import Foundation
import TesseraCore

public struct Keyring: Sendable {
    public private(set) var terms: [UInt32: SymmetricKey]
    public private(set) var activeTerm: UInt32
    /// Per-installation key for audit HMACs and the audit hash chain.
    public let auditKey: SymmetricKey
    /// When each term was added (Vault's key `install_time`); empty for keyrings written before.
    public private(set) var installedAt: [UInt32: Date] = [:]

    public init(terms: [UInt32: SymmetricKey], activeTerm: UInt32, auditKey: SymmetricKey) {
        self.terms = terms
        self.activeTerm = activeTerm
        self.auditKey = auditKey
    }

    /// A new keyring with one term (1) and a fresh audit key.
    public static func generate(now: Date = Date()) -> Keyring {
        var k = Keyring(terms: [1: SymmetricKey(size: .bits256)], activeTerm: 1, auditKey: SymmetricKey(size: .bits256))
        k.installedAt[1] = now
        return k
    }

    /// Adds a new term and makes it active.
    public mutating func rotate(now: Date = Date()) {
        let next = (terms.keys.max() ?? 0) + 1
        terms[next] = SymmetricKey(size: .bits256)
        installedAt[next] = now
        activeTerm = next
    }

    /// Encrypts under the active term. Output: nonce ‖ ciphertext ‖ tag.
    public func seal(_ plaintext: [UInt8], aad: [UInt8]) throws -> (ciphertext: [UInt8], term: UInt32) {
        guard let key = terms[activeTerm] else { throw TesseraError.internalError("the active key term is missing") }
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: aad)
        guard let combined = box.combined else { throw TesseraError.internalError("encryption failed") }
        return (Array(combined), activeTerm)
    }

    /// Decrypts a value sealed under `term` with the same `aad`; any mismatch fails.
    public func open(_ ciphertext: [UInt8], term: UInt32, aad: [UInt8]) throws -> [UInt8] {
        guard let key = terms[term] else { throw TesseraError.integrity("stored value uses an unknown key term \(term)") }
        do {
            let box = try AES.GCM.SealedBox(combined: ciphertext)
            return Array(try AES.GCM.open(box, using: key, authenticating: aad))
        } catch {
            throw TesseraError.integrity("stored value failed its integrity check")
        }
    }

    /// The additional authenticated data for an item version: a label, the item id, the version and the term.
    public static func itemAAD(itemId: Int64, version: Int, term: UInt32) -> [UInt8] {
        var out = Array("tessera/item-version/v1".utf8)
        withUnsafeBytes(of: itemId.bigEndian) { out += $0 }
        withUnsafeBytes(of: Int64(version).bigEndian) { out += $0 }
        withUnsafeBytes(of: term.bigEndian) { out += $0 }
        return out
    }

    /// The additional authenticated data for a wrapped response: a label, the wrapping token's
    /// hash and the term (a sealed answer cannot be moved to another token).
    public static func wrappingAAD(tokenHash: String, term: UInt32) -> [UInt8] {
        var out = Array("tessera/wrapped-response/v1".utf8)
        out += Array(tokenHash.utf8)
        withUnsafeBytes(of: term.bigEndian) { out += $0 }
        return out
    }

    /// HMAC-SHA256 of a sensitive parameter under the audit key, as `hmac-sha256:<hex>`.
    public func auditHMAC(_ value: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(value.utf8), using: auditKey)
        return "hmac-sha256:" + mac.hexString
    }

    /// The key that signs a snapshot's SHA256SUMS (its `SHA256SUMS.sealed` entry), derived from
    /// the audit key so that it needs no storage of its own.
    public var snapshotSealKey: SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: auditKey, info: Array("tessera/snapshot-seal/v1".utf8), outputByteCount: 32)
    }

    /// The next link of the audit hash chain: HMAC-SHA256(auditKey, canonical event bytes).
    public func auditChainHash(_ canonical: [UInt8]) -> String {
        HMAC<SHA256>.authenticationCode(for: canonical, using: auditKey).hexString
    }

    // MARK: Serialization (only ever stored encrypted by the barrier)

    struct Serialized: Codable {
        var terms: [String: String]
        var active: UInt32
        var audit: String
        /// term → seconds since 1970; absent in keyrings written before it existed.
        var installed: [String: Double]?
    }

    func serialize() throws -> [UInt8] {
        var map: [String: String] = [:]
        for (term, key) in terms {
            map[String(term)] = key.withUnsafeBytes { Data($0).base64EncodedString() }
        }
        let installed = Dictionary(uniqueKeysWithValues: installedAt.map { (String($0.key), $0.value.timeIntervalSince1970) })
        let s = Serialized(terms: map, active: activeTerm, audit: auditKey.withUnsafeBytes { Data($0).base64EncodedString() },
                           installed: installed)
        return Array(try JSONEncoder().encode(s))
    }

    static func deserialize(_ bytes: [UInt8]) throws -> Keyring {
        let s = try JSONDecoder().decode(Serialized.self, from: Data(bytes))
        var terms: [UInt32: SymmetricKey] = [:]
        for (k, v) in s.terms {
            guard let term = UInt32(k), let data = Data(base64Encoded: v) else { throw TesseraError.integrity("keyring is malformed") }
            terms[term] = SymmetricKey(data: data)
        }
        guard let audit = Data(base64Encoded: s.audit) else { throw TesseraError.integrity("keyring is malformed") }
        var keyring = Keyring(terms: terms, activeTerm: s.active, auditKey: SymmetricKey(data: audit))
        for (k, v) in s.installed ?? [:] {
            if let term = UInt32(k) { keyring.installedAt[term] = Date(timeIntervalSince1970: v) }
        }
        return keyring
    }
}
