// SealManager: the server's seal state. It holds the keyring (and the root key that seals it)
// only while unsealed; unsealing collects key shares (one call each, as `vault operator unseal`
// does) until the threshold. Key rotation adds a keyring term; a rekey replaces the root key
// and its shares from a quorum of the old ones (`vault operator rekey`).
import Foundation
import Synchronization
import TesseraCore
import TesseraCrypto
import TesseraStore

public struct SealStatus: Sendable, Equatable {
    public var initialized: Bool
    public var sealed: Bool
    public var shares: Int
    public var threshold: Int
    public var progress: Int
}

public final class SealManager: Sendable {
    private struct State {
        var config: SealConfig?
        var keyring: Keyring?
        /// Kept while unsealed so that a rotated keyring can be sealed again (as Vault does).
        var rootKey: [UInt8]?
        var pendingShares: [Shamir.Share] = []
        var rekey: RekeyProgress?
        /// Counts seals: a key change that began before a seal must not unseal the server again.
        var sealCount = 0
    }

    private let store: any Store
    private let state = Mutex(State())
    /// Serializes key changes (rotate, rekey), whose store writes are async.
    private let keyChanges = AsyncMutex()

    public init(store: any Store) {
        self.store = store
    }

    /// Loads the seal configuration from storage (call once at start-up).
    public func load() async throws {
        let config = try await store.sealConfig()
        state.withLock { $0.config = config }
    }

    /// Re-reads the seal configuration after another node changed it (an initialization, a key
    /// rotation or a rekey). While unsealed, the stored keyring is opened with this node's root
    /// key and replaces the one in memory if it is as new or newer. A keyring sealed under
    /// another root key (a rekey on another node) cannot be opened: this node keeps its keyring
    /// and false is returned.
    @discardableResult
    public func reloadFromStore() async throws -> Bool {
        guard let config = try await store.sealConfig() else { return true }
        guard let root = state.withLock({ $0.rootKey }) else {
            state.withLock { s in
                s.config = config
                s.pendingShares = []
            }
            return true
        }
        guard let keyring = try? Barrier.openKeyring(config, rootKey: root) else { return false }
        state.withLock { s in
            guard s.rootKey == root else { return }
            s.config = config
            if let current = s.keyring, keyring.activeTerm >= current.activeTerm { s.keyring = keyring }
        }
        return true
    }

    public var status: SealStatus {
        state.withLock { s in
            SealStatus(initialized: s.config != nil, sealed: s.keyring == nil,
                       shares: s.config?.shares ?? 0, threshold: s.config?.threshold ?? 0,
                       progress: s.pendingShares.count)
        }
    }

    /// When the installation was initialized (Vault's `install_time` of the key).
    public var installTime: Date { state.withLock { $0.config?.createdAt ?? Date(timeIntervalSince1970: 0) } }

    public var isSealed: Bool { state.withLock { $0.keyring == nil } }

    /// The keyring, or `sealed` when the server is sealed.
    public func keyring() throws -> Keyring {
        guard let k = state.withLock({ $0.keyring }) else { throw TesseraError.sealed }
        return k
    }

    /// The keyring, re-read from the store first when it lacks `term`: a value written just
    /// after a key rotation on another node can be read here before that node's change notice
    /// arrives. A term the stored keyring lacks too stays unknown, and opening the value fails
    /// its integrity check as before.
    public func keyring(holding term: UInt32) async throws -> Keyring {
        let current = try keyring()
        guard current.terms[term] == nil else { return current }
        try await reloadFromStore()
        return try keyring()
    }

    /// Initializes the installation: creates and stores the encrypted keyring, and leaves the
    /// server unsealed. Returns the shares and the root key (shown once, never stored).
    public func initialize(shares: Int, threshold: Int, rootKey: [UInt8]? = nil) async throws -> Barrier.Initialization {
        if status.initialized { throw TesseraError.conflict("Tessera is already initialized") }
        let initialization = try Barrier.initialize(shares: shares, threshold: threshold, rootKey: rootKey)
        try await store.createSealConfig(initialization.config)
        state.withLock {
            $0.config = initialization.config
            $0.keyring = initialization.keyring
            $0.rootKey = initialization.rootKey
            $0.pendingShares = []
        }
        return initialization
    }

    /// Adds one key share. Returns true once the threshold is reached and the keyring opens.
    /// A wrong set of shares resets the progress and fails.
    @discardableResult
    public func submit(share: Shamir.Share) throws -> Bool {
        try state.withLock { s in
            guard let config = s.config else { throw TesseraError.badRequest("Tessera is not initialized") }
            if s.keyring != nil { return true }
            guard share.y.count == 32 else {
                throw TesseraError.badRequest("invalid unseal key share: wrong length")
            }
            if s.pendingShares.contains(where: { $0.x == share.x }) {
                if s.pendingShares.contains(share) { return false }
                s.pendingShares = []
                throw TesseraError.badRequest("unseal failed: two different shares have the same index")
            }
            s.pendingShares.append(share)
            guard s.pendingShares.count >= config.threshold else { return false }
            defer { s.pendingShares = [] }
            let root = try Shamir.combine(s.pendingShares)
            s.keyring = try Barrier.openKeyring(config, rootKey: root)
            s.rootKey = root
            return true
        }
    }

    /// Unseals with the whole root key (auto-unseal key file).
    public func unseal(rootKey: [UInt8]) throws {
        try state.withLock { s in
            guard let config = s.config else { throw TesseraError.badRequest("Tessera is not initialized") }
            s.keyring = try Barrier.openKeyring(config, rootKey: rootKey)
            s.rootKey = rootKey
            s.pendingShares = []
        }
    }

    /// Forgets the shares given so far.
    public func resetProgress() {
        state.withLock { $0.pendingShares = [] }
    }

    public func seal() {
        state.withLock {
            $0.sealCount += 1
            $0.keyring = nil
            $0.rootKey = nil
            $0.pendingShares = []
            $0.rekey = nil
        }
    }

    // MARK: Key rotation

    /// Adds a keyring term and makes it the one new writes use; older terms stay for reading.
    /// The keyring is stored sealed under the root key before the new term is used.
    public func rotate() async throws -> UInt32 {
        try await keyChanges.withLock {
            // Another node may have rotated since this one loaded the keyring: rotate from the
            // stored keyring, and store the result only if nobody changed it meanwhile.
            for _ in 0..<5 {
                guard let (root, seals) = state.withLock({ s in s.rootKey.map { ($0, s.sealCount) } }) else { throw TesseraError.sealed }
                guard let stored = try await store.sealConfig() else { throw TesseraError.conflict("Tessera is not initialized") }
                guard var next = try? Barrier.openKeyring(stored, rootKey: root) else {
                    throw TesseraError.conflict("the keyring is sealed under another root key (a rekey on another node): unseal this node again")
                }
                next.rotate()
                let encrypted = try Barrier.encryptKeyring(next, rootKey: root)
                guard try await store.replaceEncryptedKeyring(encrypted, expected: stored.encryptedKeyring) else { continue }
                state.withLock { s in
                    s.config?.encryptedKeyring = encrypted
                    // Sealed meanwhile: the rotated keyring is stored, and the next unseal opens it.
                    if s.sealCount == seals, s.keyring != nil { s.keyring = next }
                }
                return next.activeTerm
            }
            throw TesseraError.conflict("the keyring kept changing during the rotation; retry")
        }
    }

    // MARK: Rekey

    /// A rekey in progress: the new share count and threshold, and the old shares given so far.
    public struct RekeyProgress: Sendable {
        public var nonce: String
        public var shares: Int
        public var threshold: Int
        public var given: [Shamir.Share] = []
    }

    public var rekeyProgress: RekeyProgress? { state.withLock { $0.rekey } }

    /// Starts a rekey to `shares`/`threshold` (replacing one in progress is refused).
    public func rekeyInit(shares: Int, threshold: Int) throws -> RekeyProgress {
        guard (1...255).contains(shares), (1...shares).contains(threshold), threshold > 1 || shares == 1 else {
            throw TesseraError.badRequest("secret_shares must be 1 to 255 and secret_threshold 2 to secret_shares (1 only with one share)")
        }
        return try state.withLock { s in
            guard s.config != nil else { throw TesseraError.badRequest("Tessera is not initialized") }
            guard s.keyring != nil else { throw TesseraError.sealed }
            guard s.rekey == nil else { throw TesseraError.badRequest("a rekey is already in progress; cancel it first") }
            let progress = RekeyProgress(nonce: UUID().uuidString.lowercased(), shares: shares, threshold: threshold)
            s.rekey = progress
            return progress
        }
    }

    public func rekeyCancel() {
        state.withLock { $0.rekey = nil }
    }

    /// Adds one old share. When the old threshold is reached, a new root key is made, the keyring
    /// is sealed under it and stored, and the new shares are returned (shown once). Wrong shares
    /// fail and reset the progress; the old root key stays.
    /// `beforeCommit` gets the new root key before anything is stored (to stage an auto-unseal
    /// key file); if it throws, nothing changes.
    public func rekeyUpdate(share: Shamir.Share, nonce: String,
                            beforeCommit: @Sendable ([UInt8]) async throws -> Void = { _ in }) async throws -> (progress: RekeyProgress, newShares: [Shamir.Share]?) {
        try await keyChanges.withLock {
            let ready: (RekeyProgress, SealConfig, Keyring, Int)? = try state.withLock { s in
                guard let config = s.config else { throw TesseraError.badRequest("Tessera is not initialized") }
                guard let keyring = s.keyring else { throw TesseraError.sealed }
                guard var rekey = s.rekey else { throw TesseraError.badRequest("no rekey is in progress") }
                guard ConstantTime.equal(Array(nonce.utf8), Array(rekey.nonce.utf8)) else {
                    throw TesseraError.badRequest("the nonce does not match the rekey in progress")
                }
                guard share.y.count == 32 else { throw TesseraError.badRequest("invalid key share: wrong length") }
                if rekey.given.contains(where: { $0.x == share.x }) {
                    if rekey.given.contains(share) { return nil }
                    rekey.given = []
                    s.rekey = rekey
                    throw TesseraError.badRequest("rekey failed: two different shares have the same index")
                }
                rekey.given.append(share)
                s.rekey = rekey
                guard rekey.given.count >= config.threshold else { return nil }
                return (rekey, config, keyring, s.sealCount)
            }
            guard let (rekey, config, keyring, seals) = ready else {
                guard let current = state.withLock({ $0.rekey }) else { throw TesseraError.badRequest("no rekey is in progress") }
                return (current, nil)
            }
            let oldRoot: [UInt8]
            do {
                oldRoot = try Shamir.combine(rekey.given)
                _ = try Barrier.openKeyring(config, rootKey: oldRoot)
            } catch {
                state.withLock { $0.rekey?.given = [] }
                throw TesseraError.badRequest("rekey failed: the key shares do not recover the root key")
            }
            let newRoot = SecureRandom.bytes(32)
            let split = try Shamir.split(secret: newRoot, shares: rekey.shares, threshold: rekey.threshold)
            let next = SealConfig(shares: rekey.shares, threshold: rekey.threshold,
                                  encryptedKeyring: try Barrier.encryptKeyring(keyring, rootKey: newRoot), createdAt: config.createdAt)
            try await beforeCommit(newRoot)
            try await store.replaceSealConfig(next)
            state.withLock { s in
                s.config = next
                s.rekey = nil
                if s.sealCount == seals, s.keyring != nil { s.rootKey = newRoot }
            }
            return (rekey, split)
        }
    }

}
