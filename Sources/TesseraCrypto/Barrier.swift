// Barrier: the root key seals the keyring. Initialization makes a root key and splits it with
// Shamir's scheme; unsealing combines shares and opens the keyring, which proves the shares.
import Crypto
import Foundation
import TesseraCore

/// What is persisted about the seal: public parameters plus the keyring encrypted under the root key.
public struct SealConfig: Sendable, Equatable {
    public var shares: Int
    public var threshold: Int
    /// AES-GCM(root key, keyring JSON), AAD = "tessera/keyring/v1".
    public var encryptedKeyring: [UInt8]
    public var createdAt: Date

    public init(shares: Int, threshold: Int, encryptedKeyring: [UInt8], createdAt: Date) {
        self.shares = shares
        self.threshold = threshold
        self.encryptedKeyring = encryptedKeyring
        self.createdAt = createdAt
    }
}

public enum Barrier {
    static let keyringAAD = Array("tessera/keyring/v1".utf8)

    public struct Initialization: Sendable {
        public var config: SealConfig
        public var keyring: Keyring
        public var rootKey: [UInt8]
        public var shares: [Shamir.Share]
    }

    /// Creates a root key, splits it, and encrypts a fresh keyring under it.
    public static func initialize(shares: Int, threshold: Int, rootKey: [UInt8]? = nil, now: Date = Date()) throws -> Initialization {
        let root = rootKey ?? SecureRandom.bytes(32)
        guard root.count == 32 else { throw TesseraError.badRequest("the root key must be 32 bytes") }
        let split = try Shamir.split(secret: root, shares: shares, threshold: threshold)
        let keyring = Keyring.generate()
        let config = SealConfig(shares: shares, threshold: threshold,
                                encryptedKeyring: try encryptKeyring(keyring, rootKey: root), createdAt: now)
        return Initialization(config: config, keyring: keyring, rootKey: root, shares: split)
    }

    public static func encryptKeyring(_ keyring: Keyring, rootKey: [UInt8]) throws -> [UInt8] {
        let box = try AES.GCM.seal(try keyring.serialize(), using: SymmetricKey(data: rootKey), authenticating: keyringAAD)
        guard let combined = box.combined else { throw TesseraError.internalError("encryption failed") }
        return Array(combined)
    }

    /// Opens the keyring with a candidate root key; wrong keys fail authentication.
    public static func openKeyring(_ config: SealConfig, rootKey: [UInt8]) throws -> Keyring {
        guard rootKey.count == 32 else { throw TesseraError.badRequest("unseal failed: the key shares do not recover a valid root key") }
        do {
            let box = try AES.GCM.SealedBox(combined: config.encryptedKeyring)
            let plain = try AES.GCM.open(box, using: SymmetricKey(data: rootKey), authenticating: keyringAAD)
            return try Keyring.deserialize(Array(plain))
        } catch {
            throw TesseraError.badRequest("unseal failed: the key shares do not recover the root key")
        }
    }
}
