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

    private let entries = Mutex<[String: Entry]>([:])
    let lifetime: TimeInterval
    let capacity: Int

    init(lifetime: TimeInterval = 5, capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// Hits and misses, for the metrics.
    let counter = HitCounter()

    func get(_ key: String, now: Date) -> Principal? {
        let found = entries.withLock { map -> Principal? in
            guard let e = map[key] else { return nil }
            if e.cachedUntil <= now || (e.principal.token.map { $0.expiresAt <= now } ?? false) {
                map.removeValue(forKey: key)
                return nil
            }
            return e.principal
        }
        if found == nil { counter.miss() } else { counter.hit() }
        return found
    }

    func put(_ key: String, _ principal: Principal, now: Date) {
        entries.withLock { map in
            if map.count >= capacity { map.removeAll(keepingCapacity: true) }
            map[key] = Entry(principal: principal, cachedUntil: now.addingTimeInterval(lifetime))
        }
    }

    func remove(_ key: String) {
        _ = entries.withLock { $0.removeValue(forKey: key) }
    }

    func removeAll() {
        entries.withLock { $0.removeAll() }
    }
}
