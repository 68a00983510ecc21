// PrincipalCache: a short-lived cache of verified credentials (token or access key, keyed by a
// hash, never the secret itself) → principal. Entries expire after a few seconds, a token's own
// expiry is always re-checked, revoking a token drops its entry at once, and any change to
// roles, rules, associations or auth methods clears the whole cache.
import Foundation
import Synchronization
import TesseraCore

final class PrincipalCache: Sendable {
    private struct Entry {
        var principal: Principal
        var cachedUntil: Date
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Moves on with every invalidation: a verification that read the store before an
        /// invalidation must not cache what it read (it may be what was just invalidated).
        var generation: UInt64 = 0
        /// False while changes from other nodes may be missed: nothing is served or cached.
        var usable = true
    }

    private let state = Mutex(State())
    let lifetime: TimeInterval
    let capacity: Int

    init(lifetime: TimeInterval = 5, capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// Hits and misses, for the metrics.
    let counter = HitCounter()

    /// The generation to pass to `put` (take it before reading the store).
    var generation: UInt64 { state.withLock { $0.generation } }

    func get(_ key: String, now: Date) -> Principal? {
        let found = state.withLock { s -> Principal? in
            guard s.usable, let e = s.entries[key] else { return nil }
            if e.cachedUntil <= now || (e.principal.token.map { $0.expiresAt <= now } ?? false) {
                s.entries.removeValue(forKey: key)
                return nil
            }
            return e.principal
        }
        if found == nil { counter.miss() } else { counter.hit() }
        return found
    }

    func put(_ key: String, _ principal: Principal, now: Date, generation: UInt64) {
        state.withLock { s in
            guard s.usable, s.generation == generation else { return }
            if s.entries.count >= capacity { s.entries.removeAll(keepingCapacity: true) }
            s.entries[key] = Entry(principal: principal, cachedUntil: now.addingTimeInterval(lifetime))
        }
    }

    func remove(_ key: String) {
        state.withLock { s in
            s.generation &+= 1
            s.entries.removeValue(forKey: key)
        }
    }

    func removeAll() {
        state.withLock { s in
            s.generation &+= 1
            s.entries.removeAll()
        }
    }

    /// Stops (false) or resumes (true) serving and caching; either way drops what is cached.
    func setUsable(_ usable: Bool) {
        state.withLock { s in
            s.generation &+= 1
            s.entries.removeAll()
            s.usable = usable
        }
    }
}
