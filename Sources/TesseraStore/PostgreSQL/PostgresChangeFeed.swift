// The PostgreSQL change feed: writes that other nodes cache call pg_notify in their own
// transaction (delivered only if it commits), and every node LISTENs on one dedicated connection.
// When that connection drops, the feed is down until a new connection listens again; then a
// `.resync` tells the node to drop and reload everything it caches.
import Foundation
import Logging
import NIOPosix
import PostgresNIO
import Synchronization
import TesseraCore

final class PostgresChangeFeed: Sendable {
    static let channel = "tessera_changes"

    let broadcaster = ChangeBroadcaster(live: false)
    private let settings: PostgresSettings
    private let logger: Logger
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    init(settings: PostgresSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// Starts listening (and reconnecting) in the background; returns once the first LISTEN is
    /// in place or the first attempt failed.
    func start() async {
        let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
        let t = Task { [self] in
            var backoff = Duration.milliseconds(100)
            var signalled = false
            while !Task.isCancelled {
                do {
                    try await listenOnce {
                        backoff = .milliseconds(100)
                        if !signalled { signalled = true; readyContinuation.finish() }
                    }
                } catch {
                    if !Task.isCancelled {
                        logger.warning("change feed interrupted; caches are bypassed until it is back",
                                       metadata: ["reason": "\(PostgresDatabase.describe(error))"])
                    }
                }
                broadcaster.setLive(false)
                if !signalled { signalled = true; readyContinuation.finish() }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(2))
            }
        }
        task.withLock { $0 = t }
        for await _ in ready {}
    }

    /// One connection: LISTEN, then deliver notifications until it fails.
    private func listenOnce(onListening: () -> Void) async throws {
        var configuration = PostgresConnection.Configuration(host: settings.host, port: settings.port, username: settings.user,
                                                             password: settings.password, database: settings.database,
                                                             tls: try settings.connectionTLS())
        configuration.options.connectTimeout = .seconds(max(1, settings.timeout.components.seconds))
        let connection = try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(),
                                                              configuration: configuration, id: 0, logger: logger)
        do {
            try await connection.listen(on: Self.channel) { notifications in
                broadcaster.setLive(true)
                onListening()
                // A silent connection (a network partition) is found by a keep-alive query.
                let keepAlive = Task {
                    while !Task.isCancelled {
                        try await Task.sleep(for: .seconds(2))
                        _ = try await connection.query("SELECT 1", logger: logger).collect()
                    }
                }
                defer { keepAlive.cancel() }
                let watchdog = Task {
                    do { try await keepAlive.value } catch is CancellationError {} catch { try? await connection.close() }
                }
                defer { watchdog.cancel() }
                for try await notification in notifications {
                    if let change = StoreChange(rawValue: notification.payload) { broadcaster.publish(change) }
                }
            }
            throw TesseraError.unavailable("the notification connection closed")
        } catch {
            try? await connection.close()
            throw error
        }
    }

    func stop() async {
        let t = task.withLock { $0 }
        t?.cancel()
        _ = await t?.value
        broadcaster.setLive(false)
        broadcaster.finish()
    }
}
