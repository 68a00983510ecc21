// KeyRewrap: after a key rotation, moves every stored value to the newest keyring term in small
// paced batches, so serving is not slowed. It keeps no progress of its own: the values still
// under an older term are found by their `key_term`, so a rewrap cut short by a crash simply
// goes on after the restart.
import Foundation
import Synchronization
import TesseraCore
import TesseraCrypto
import TesseraStore

public struct RewrapStatus: Sendable, Equatable {
    public var activeTerm: UInt32
    /// Values per key term now.
    public var usage: KeyTermUsage
    /// Values still sealed under an older term than the active one.
    public var remaining: Int { usage.below(activeTerm) }
    public var running: Bool
    /// Values moved since this server started.
    public var moved: Int
    public var lastCompletedAt: Date?
    public var lastError: String?
}

public final class KeyRewrap: Sendable {
    private struct State {
        var running = false
        var moved = 0
        var lastCompletedAt: Date?
        var lastError: String?
    }

    let store: any Store
    let seal: SealManager
    /// The most values moved per second (config `rewrap_rows_per_second`).
    public let rowsPerSecond: Int
    let batchSize: Int
    let now: @Sendable () -> Date
    private let state = Mutex(State())

    public init(store: any Store, seal: SealManager, rowsPerSecond: Int, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.seal = seal
        self.rowsPerSecond = max(1, rowsPerSecond)
        self.batchSize = max(1, min(200, rowsPerSecond))
        self.now = now
    }

    public func status() async throws -> RewrapStatus {
        let keyring = try seal.keyring()
        let usage = try await store.keyTermUsage()
        return state.withLock { s in
            RewrapStatus(activeTerm: keyring.activeTerm, usage: usage, running: s.running, moved: s.moved,
                         lastCompletedAt: s.lastCompletedAt, lastError: s.lastError)
        }
    }

    /// Moves one batch to the active term; returns how many values moved (0 when none is left).
    func batch() async throws -> Int {
        let keyring = try seal.keyring()
        let term = keyring.activeTerm
        return try await store.rewrapBatch(below: term, limit: batchSize) { value in
            let plain: [UInt8]
            let aad: [UInt8]
            switch value.owner {
            case .itemVersion(let itemId, let version):
                plain = try keyring.open(value.ciphertext, term: value.term, aad: Keyring.itemAAD(itemId: itemId, version: version, term: value.term))
                aad = Keyring.itemAAD(itemId: itemId, version: version, term: term)
            case .target(let name):
                aad = ConnectorEngine.targetAAD(name)
                plain = try keyring.open(value.ciphertext, term: value.term, aad: aad)
            case .pendingRotation(let itemId):
                aad = RotationEngine.pendingAAD(itemId)
                plain = try keyring.open(value.ciphertext, term: value.term, aad: aad)
            }
            let sealed = try keyring.seal(plain, aad: aad)
            guard sealed.term == term else { throw TesseraError.conflict("the key term changed during the rewrap") }
            return sealed.ciphertext
        }
    }

    /// Rewraps until no value is left under an older term, pacing batches to `rowsPerSecond`.
    /// Returns the number moved, or nil when nothing needed moving.
    public func runOnce() async throws -> Int? {
        let keyring = try seal.keyring()
        guard try await store.keyTermUsage().below(keyring.activeTerm) > 0 else { return nil }
        state.withLock { $0.running = true; $0.lastError = nil }
        defer { state.withLock { $0.running = false } }
        var total = 0
        let pause = Duration.milliseconds(Int64(1000 * batchSize / rowsPerSecond))
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let moved: Int
            do {
                moved = try await batch()
            } catch {
                state.withLock { $0.lastError = (error as? TesseraError)?.message ?? "the rewrap batch failed" }
                throw error
            }
            if moved == 0 { break }
            total += moved
            state.withLock { $0.moved += moved }
            let elapsed = ContinuousClock.now - started
            if elapsed < pause { try? await Task.sleep(for: pause - elapsed) }
        }
        if try await store.keyTermUsage().below(keyring.activeTerm) == 0 {
            state.withLock { $0.lastCompletedAt = now() }
        }
        return total
    }
}
