// Change notifications between the nodes that share one store. A node caches some of what it
// reads (verified credentials, the mount table, the keyring); a change committed by any node is
// announced on the feed, and every node drops what it cached of it. While the feed is down a
// node must not serve from those caches: it may have missed a change.
import Foundation
import Synchronization

/// What changed, as coarse as the caches that hold it.
public enum StoreChange: String, Sendable, Equatable, CaseIterable {
    /// Roles, rules, associations, auth methods, or tokens (issued or revoked).
    case access
    /// The Vault mount table.
    case mounts
    /// The seal configuration or the keyring (a key rotation or rekey).
    case seal
    /// The feed was interrupted or has (re)started: anything cached may be stale.
    case resync
}

public protocol ChangeFeed: Sendable {
    /// False while the feed is interrupted. Caches must not serve until it is live again, which
    /// is announced by a `.resync`.
    var isLive: Bool { get }
    /// Every change committed by any node (this one included) from now on.
    func changes() -> AsyncStream<StoreChange>
}

/// Fans changes out to every subscriber, and tracks whether the feed is live.
public final class ChangeBroadcaster: ChangeFeed {
    private struct State {
        var live = false
        var subscribers: [UUID: AsyncStream<StoreChange>.Continuation] = [:]
    }

    private let state = Mutex(State())

    public init(live: Bool = false) { state.withLock { $0.live = live } }

    public var isLive: Bool { state.withLock { $0.live } }

    public func changes() -> AsyncStream<StoreChange> {
        let (stream, continuation) = AsyncStream<StoreChange>.makeStream(bufferingPolicy: .bufferingNewest(256))
        let id = UUID()
        state.withLock { $0.subscribers[id] = continuation }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Announces a change to every subscriber.
    public func publish(_ change: StoreChange) {
        for c in state.withLock({ Array($0.subscribers.values) }) { c.yield(change) }
    }

    /// Marks the feed down (caches stop serving) or live again (announced as `.resync`).
    public func setLive(_ live: Bool) {
        let changed = state.withLock { s -> Bool in
            defer { s.live = live }
            return s.live != live
        }
        if changed && live { publish(.resync) }
    }

    public func finish() {
        for c in state.withLock({ s -> [AsyncStream<StoreChange>.Continuation] in
            defer { s.subscribers = [:] }
            return Array(s.subscribers.values)
        }) { c.finish() }
    }
}
