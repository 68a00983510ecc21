// This node's claims on background work in the shared store: before a node revokes a lease,
// cleans up an interrupted issue or rotates a secret, it claims that piece of work, so that
// exactly one node does it at a time. A claim lasts `ttl`, and a node whose heartbeat is older
// than `deadAfter` holds nothing: a killed node's work is taken over within that time.
import Foundation
import Synchronization
import TesseraStore

public struct WorkClaims: Sendable {
    public enum Kind: String, Sendable {
        case lease
        case rotation
    }

    public let nodeId: String
    let store: any ClusterRepository
    let now: @Sendable () -> Date
    public let ttl: TimeInterval
    public let deadAfter: TimeInterval

    public init(nodeId: String, store: any ClusterRepository, now: @escaping @Sendable () -> Date,
                ttl: TimeInterval = 120, deadAfter: TimeInterval = 15) {
        self.nodeId = nodeId
        self.store = store
        self.now = now
        self.ttl = ttl
        self.deadAfter = deadAfter
    }

    /// Claims one piece of work; false if a live node holds it.
    public func take(_ kind: Kind, _ key: String) async throws -> Bool {
        let t = now()
        return try await store.claim(kind: kind.rawValue, key: key, node: nodeId, until: t.addingTimeInterval(ttl), now: t,
                                     deadBefore: t.addingTimeInterval(-deadAfter))
    }

    /// Gives a claim up; a failure only leaves it to expire.
    public func release(_ kind: Kind, _ key: String) async {
        try? await store.releaseClaim(kind: kind.rawValue, key: key, node: nodeId)
    }
}

/// Keys of work this process is doing right now.
final class InFlightSet: Sendable {
    private let keys = Mutex<Set<String>>([])
    func insert(_ key: String) { _ = keys.withLock { $0.insert(key) } }
    func remove(_ key: String) { _ = keys.withLock { $0.remove(key) } }
    func contains(_ key: String) -> Bool { keys.withLock { $0.contains(key) } }
}
