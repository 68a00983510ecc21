// PostgresConnectionPool: keeps a few authenticated connections per PostgreSQL target (host,
// port, database, user and password) so that issuing, renewing and revoking credentials does
// not pay a TCP connect and SCRAM login each time. A connection goes back to the pool only
// after a body that succeeded; any failure closes it. Idle connections are closed after a
// minute. Logins that prove a password (verification) never use the pool.
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
    }

    struct Idle {
        var connection: PostgresConnection
        var since: ContinuousClock.Instant
    }

    /// Idle connections kept per target.
    let maxIdlePerTarget: Int
    /// How long a connection may sit unused before it is closed.
    let idleTimeout: Duration
    private var idle: [Key: [Idle]] = [:]
    private var nextId = 1

    public init(maxIdlePerTarget: Int = 8, idleTimeout: Duration = .seconds(60)) {
        self.maxIdlePerTarget = maxIdlePerTarget
        self.idleTimeout = idleTimeout
    }

    /// An open idle connection for `key`, if one is kept; stale and closed ones are dropped.
    func checkout(_ key: Key) -> PostgresConnection? {
        let now = ContinuousClock.now
        while var list = idle[key], let last = list.popLast() {
            idle[key] = list.isEmpty ? nil : list
            if last.connection.isClosed { continue }
            if now - last.since > idleTimeout {
                Self.close(last.connection)
                continue
            }
            return last.connection
        }
        return nil
    }

    /// Returns a healthy connection to the pool, or closes it when the pool for its target is full.
    func checkin(_ connection: PostgresConnection, key: Key) {
        guard !connection.isClosed else { return }
        var list = idle[key] ?? []
        let now = ContinuousClock.now
        // Close what has been idle too long while we are here.
        list.removeAll { entry in
            let stale = now - entry.since > idleTimeout || entry.connection.isClosed
            if stale { Self.close(entry.connection) }
            return stale
        }
        if list.count >= maxIdlePerTarget {
            Self.close(connection)
        } else {
            list.append(Idle(connection: connection, since: now))
        }
        idle[key] = list.isEmpty ? nil : list
    }

    func connectionId() -> Int {
        defer { nextId += 1 }
        return nextId
    }

    /// Closes every idle connection (at shutdown).
    public func closeAll() async {
        let all = idle.values.flatMap { $0 }
        idle = [:]
        for entry in all { try? await entry.connection.close() }
    }

    /// How many idle connections are kept (for tests and metrics).
    public var idleCount: Int { idle.values.reduce(0) { $0 + $1.count } }

    private static func close(_ connection: PostgresConnection) {
        Task { try? await connection.close() }
    }
}
