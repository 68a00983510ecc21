// PostgresConnectionPool: keeps a few authenticated connections per PostgreSQL target (host,
// port, database, user and password) so that issuing, renewing and revoking credentials does
// not pay a TCP connect and SCRAM login each time, and caps how many are open to one target at
// once (more callers wait their turn, as with Vault's max_open_connections). A connection goes
// back to the pool only after a body that succeeded; any failure closes it. Idle connections
// are closed after a minute. Logins that prove a password (verification) never use the pool.
// Waiting for a free connection is bounded: past the caller's time-out it fails with a 504.
import Foundation
import Logging
import NIOCore
import PostgresNIO

public actor PostgresConnectionPool {
    struct Key: Hashable {
        var host: String
        var port: Int
        var database: String
        var username: String
        var password: String
        var tls: PostgresTLS
    }

    struct Idle {
        var connection: PostgresConnection
        var since: ContinuousClock.Instant
    }

    /// Connections open (in use or idle) per target at most.
    let maxOpenPerTarget: Int
    /// How long a connection may sit unused before it is closed.
    let idleTimeout: Duration
    private var idle: [Key: [Idle]] = [:]
    private var open: [Key: Int] = [:]
    private var waiting: [Key: [(id: Int, continuation: CheckedContinuation<Bool, Never>)]] = [:]
    private var nextWaiter = 1
    private var nextId = 1

    public init(maxOpenPerTarget: Int = 8, idleTimeout: Duration = .seconds(60)) {
        self.maxOpenPerTarget = max(1, maxOpenPerTarget)
        self.idleTimeout = idleTimeout
    }

    enum Lease {
        /// An idle connection to reuse.
        case reuse(PostgresConnection)
        /// A slot for a new connection: connect, then `checkin` it or `release` the slot.
        case connect
    }

    /// An idle connection, or a slot to open one; waits while the target has its maximum open,
    /// at most `timeout` (then nil).
    func acquire(_ key: Key, timeout: Duration = .seconds(10)) async -> Lease? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let c = checkout(key) { return .reuse(c) }
            if open[key, default: 0] < maxOpenPerTarget {
                open[key, default: 0] += 1
                return .connect
            }
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { return nil }
            let id = nextWaiter
            nextWaiter += 1
            let timer = Task { [weak self] in
                try? await Task.sleep(for: remaining)
                await self?.expire(key, id)
            }
            let woken = await withCheckedContinuation { waiting[key, default: []].append((id, $0)) }
            timer.cancel()
            if !woken { return nil }
        }
    }

    /// Ends a wait that ran out of time.
    private func expire(_ key: Key, _ id: Int) {
        guard var list = waiting[key], let i = list.firstIndex(where: { $0.id == id }) else { return }
        let entry = list.remove(at: i)
        waiting[key] = list.isEmpty ? nil : list
        entry.continuation.resume(returning: false)
    }

    /// Gives up a slot whose connection failed or was closed.
    func release(_ key: Key) {
        open[key] = max(0, open[key, default: 0] - 1)
        wakeOne(key)
    }

    private func wakeOne(_ key: Key) {
        guard var list = waiting[key], !list.isEmpty else { return }
        let next = list.removeFirst()
        waiting[key] = list.isEmpty ? nil : list
        next.continuation.resume(returning: true)
    }

    /// An open idle connection for `key`, if one is kept; stale and closed ones are dropped.
    private func checkout(_ key: Key) -> PostgresConnection? {
        let now = ContinuousClock.now
        while var list = idle[key], let last = list.popLast() {
            idle[key] = list.isEmpty ? nil : list
            if last.connection.isClosed {
                open[key] = max(0, open[key, default: 0] - 1)
                continue
            }
            if now - last.since > idleTimeout {
                Self.close(last.connection)
                open[key] = max(0, open[key, default: 0] - 1)
                continue
            }
            return last.connection
        }
        return nil
    }

    /// Returns a healthy connection to the pool (and wakes a waiting caller).
    func checkin(_ connection: PostgresConnection, key: Key) {
        guard !connection.isClosed else {
            release(key)
            return
        }
        var list = idle[key] ?? []
        let now = ContinuousClock.now
        // Close what has been idle too long while we are here.
        list.removeAll { entry in
            let stale = now - entry.since > idleTimeout || entry.connection.isClosed
            if stale {
                Self.close(entry.connection)
                open[key] = max(0, open[key, default: 0] - 1)
            }
            return stale
        }
        list.append(Idle(connection: connection, since: now))
        idle[key] = list
        wakeOne(key)
    }

    func connectionId() -> Int {
        defer { nextId += 1 }
        return nextId
    }

    /// Closes every idle connection (at shutdown).
    public func closeAll() async {
        let all = idle.values.flatMap { $0 }
        for (key, list) in idle { open[key] = max(0, open[key, default: 0] - list.count) }
        idle = [:]
        for entry in all { try? await entry.connection.close() }
    }

    private static func close(_ connection: PostgresConnection) {
        Task { try? await connection.close() }
    }
}
