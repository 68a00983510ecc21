// SealManager: the server's seal state. It holds the keyring only while unsealed; unsealing
// collects key shares (one call each, as `vault operator unseal` does) until the threshold.
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
        var pendingShares: [Shamir.Share] = []
    }

    private let store: any Store
    private let state = Mutex(State())

    public init(store: any Store) {
        self.store = store
    }

    /// Loads the seal configuration from storage (call once at start-up).
    public func load() async throws {
        let config = try await store.sealConfig()
        state.withLock { $0.config = config }
    }

    public var status: SealStatus {
        state.withLock { s in
            SealStatus(initialized: s.config != nil, sealed: s.keyring == nil,
                       shares: s.config?.shares ?? 0, threshold: s.config?.threshold ?? 0,
                       progress: s.pendingShares.count)
        }
    }

    public var isSealed: Bool { state.withLock { $0.keyring == nil } }

    /// The keyring, or `sealed` when the server is sealed.
    public func keyring() throws -> Keyring {
        guard let k = state.withLock({ $0.keyring }) else { throw TesseraError.sealed }
        return k
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
            return true
        }
    }

    /// Unseals with the whole root key (auto-unseal key file).
    public func unseal(rootKey: [UInt8]) throws {
        try state.withLock { s in
            guard let config = s.config else { throw TesseraError.badRequest("Tessera is not initialized") }
            s.keyring = try Barrier.openKeyring(config, rootKey: rootKey)
            s.pendingShares = []
        }
    }

    /// Forgets the shares given so far.
    public func resetProgress() {
        state.withLock { $0.pendingShares = [] }
    }

    public func seal() {
        state.withLock {
            $0.keyring = nil
            $0.pendingShares = []
        }
    }
}
