// LoginThrottle: counts failed logins per access id and per client address in a sliding
// window, and refuses further attempts (429) once either count reaches its limit, so that an
// access key cannot be guessed at network speed. A success does not reset the address count.
import Foundation
import Synchronization
import TesseraCore

public struct LoginThrottleLimits: Sendable, Equatable {
    /// Failed logins per access id within `window` before further attempts are refused.
    public var perAccessId: Int
    /// Failed logins per client address within `window` before further attempts are refused.
    public var perAddress: Int
    public var window: TimeInterval

    public init(perAccessId: Int = 10, perAddress: Int = 100, window: TimeInterval = 60) {
        self.perAccessId = perAccessId
        self.perAddress = perAddress
        self.window = window
    }
}

public final class LoginThrottle: Sendable {
    private struct Window {
        var started: Date
        var failures: Int
    }

    public let limits: LoginThrottleLimits
    private let state = Mutex<[String: Window]>([:])
    /// Bounds memory under a flood of distinct keys: the oldest windows are dropped first.
    private let capacity = 100_000

    public init(limits: LoginThrottleLimits = LoginThrottleLimits()) {
        self.limits = limits
    }

    public static let refused = TesseraError.tooManyRequests("too many failed logins; try again later")

    /// Throws 429 while the access id or the address has used up its failures in the window.
    public func check(accessId: String, address: String, now: Date) throws {
        let blocked = state.withLock { map -> Bool in
            exceeded(&map, "id:" + accessId, limits.perAccessId, now) || exceeded(&map, Self.addressKey(address), limits.perAddress, now)
        }
        if blocked { throw Self.refused }
    }

    /// IPv4 addresses count one by one; IPv6 addresses by their /64, which one host usually holds.
    static func addressKey(_ address: String) -> String {
        guard address.contains(":"), let bytes = CIDR.parse(address), bytes.count == 16 else { return "ip:" + address }
        return "ip6:" + bytes.prefix(8).hexString
    }

    public func recordFailure(accessId: String, address: String, now: Date) {
        state.withLock { map in
            if map.count >= capacity {
                // Forget expired windows first, then those not (yet) blocking; never unblock a key.
                let cutoff = now.addingTimeInterval(-limits.window)
                map = map.filter { $0.value.started > cutoff }
                if map.count >= capacity { map = map.filter { $0.value.failures >= min(limits.perAccessId, limits.perAddress) } }
            }
            for key in ["id:" + accessId, Self.addressKey(address)] {
                var w = map[key] ?? Window(started: now, failures: 0)
                if now.timeIntervalSince(w.started) >= limits.window { w = Window(started: now, failures: 0) }
                w.failures += 1
                map[key] = w
            }
        }
    }

    private func exceeded(_ map: inout [String: Window], _ key: String, _ limit: Int, _ now: Date) -> Bool {
        guard limit > 0, let w = map[key] else { return false }
        if now.timeIntervalSince(w.started) >= limits.window {
            map.removeValue(forKey: key)
            return false
        }
        return w.failures >= limit
    }
}
