// A pool of connections to one PostgreSQL database (postgres-nio's PostgresClient), with every
// call bounded by the configured time-out and every driver error mapped to the taxonomy without
// echoing values: PostgreSQL's messages quote the rows they reject, so only SQLSTATEs are kept.
import Foundation
import Logging
import Synchronization
import PostgresNIO
import TesseraCore

final class PostgresDatabase: Sendable {
    let client: PostgresClient
    let settings: PostgresSettings
    private let runner: Task<Void, Never>
    let logger: Logger

    static func open(_ settings: PostgresSettings, logger: Logger) async throws -> PostgresDatabase {
        let client = PostgresClient(configuration: try settings.clientConfiguration(), backgroundLogger: logger)
        let runner = Task { await client.run() }
        let db = PostgresDatabase(client: client, settings: settings, runner: runner, logger: logger)
        do {
            _ = try await db.query("SELECT 1 AS one")
        } catch {
            await db.close()
            throw TesseraError.unavailable("cannot connect to PostgreSQL at \(settings.host):\(settings.port): \(Self.describe(error))")
        }
        return db
    }

    private init(client: PostgresClient, settings: PostgresSettings, runner: Task<Void, Never>, logger: Logger) {
        self.client = client
        self.settings = settings
        self.runner = runner
        self.logger = logger
    }

    func close() async {
        runner.cancel()
        _ = await runner.value
    }

    /// Runs one statement (atomic on its own) and returns its rows.
    @discardableResult
    func query(_ sql: String, _ values: [PGValue] = []) async throws -> [PostgresRow] {
        let query = PGValue.query(sql, values)
        let client = self.client, logger = self.logger
        return try await bounded { try await client.query(query, logger: logger).collect() }
    }

    /// Runs one statement and returns how many rows it returned (write statements end in RETURNING 1).
    func count(_ sql: String, _ values: [PGValue] = []) async throws -> Int {
        try await query(sql, values).count
    }

    /// Runs `body` in one transaction (READ COMMITTED), committed if it returns, rolled back if it throws.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PGTransaction) async throws -> T) async throws -> T {
        let client = self.client, logger = self.logger
        return try await bounded {
            try await client.withTransaction(logger: logger) { connection in
                try await body(PGTransaction(connection: connection, logger: logger))
            }
        }
    }

    /// Runs `body` on one connection of its own (advisory locks, LISTEN).
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let client = self.client
        do {
            return try await client.withConnection { connection in try await body(connection) }
        } catch {
            throw Self.map(error)
        }
    }

    /// Races `body` against the time-out. The caller gets an answer by the deadline even if
    /// `body` ignores its cancellation (a query on a connection that died silently, a wait for
    /// a connection from a pool that cannot reach the server): `body` then finishes, or fails,
    /// on its own in the background. A task group could not give this guarantee, since it
    /// waits for every child before it returns.
    private func bounded<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let timeout = settings.timeout
        let outcome = FirstOutcome<T>()
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                    outcome.attach(continuation)
                    let work = Task {
                        do { outcome.finish(.success(try await body())) } catch { outcome.finish(.failure(error)) }
                    }
                    Task {
                        try? await Task.sleep(for: timeout)
                        let seconds = timeout.components.seconds
                        if outcome.finish(.failure(TesseraError.unavailable("PostgreSQL did not answer within \(seconds) s"))) {
                            work.cancel()
                        }
                    }
                }
            } onCancel: {
                outcome.finish(.failure(CancellationError()))
            }
        } catch {
            throw Self.map(error)
        }
    }

    /// Maps driver errors to the taxonomy by SQLSTATE, without the server's message.
    static func map(_ error: any Error) -> any Error {
        if let e = error as? TesseraError { return e }
        if let e = error as? PostgresTransactionError {
            // The error that decided the outcome: the body's, else BEGIN's or COMMIT's.
            if let inner = e.closureError ?? e.beginError ?? e.commitError { return map(inner) }
            return TesseraError.unavailable("the transaction failed")
        }
        if let e = error as? PSQLError, let state = e.serverInfo?[.sqlState] {
            switch state {
            case "23505": return TesseraError.conflict("already exists")
            case "23503": return TesseraError.conflict("refers to something that does not exist, or is still referred to")
            case "23514", "23502": return TesseraError.conflict("violates a storage constraint")
            case "40001", "40P01": return TesseraError.conflict("a concurrent change conflicted; retry")
            case "57014": return TesseraError.unavailable("PostgreSQL cancelled a statement that ran too long")
            case "55P03": return TesseraError.unavailable("PostgreSQL lock wait timed out")
            case "25006": return TesseraError.unavailable("PostgreSQL is read-only (a standby?)")
            default: return TesseraError.unavailable("storage error (SQLSTATE \(state))")
            }
        }
        if error is CancellationError { return TesseraError.unavailable("storage call cancelled") }
        return TesseraError.unavailable("cannot reach PostgreSQL: \(describe(error))")
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? TesseraError { return e.message }
        if let e = error as? PSQLError {
            if let state = e.serverInfo?[.sqlState] { return "SQLSTATE \(state)" }
            return e.code.description
        }
        return String(describing: type(of: error))
    }
}

/// The statements available inside a transaction.
struct PGTransaction: Sendable {
    let connection: PostgresConnection
    let logger: Logger

    @discardableResult
    func query(_ sql: String, _ values: [PGValue] = []) async throws -> [PostgresRow] {
        try await connection.query(PGValue.query(sql, values), logger: logger).collect()
    }

    /// Runs a write statement that ends in RETURNING 1 and returns how many rows it changed.
    func count(_ sql: String, _ values: [PGValue] = []) async throws -> Int {
        try await query(sql, values).count
    }
}

/// The first of several racing outcomes, delivered once to a continuation (later ones are dropped).
final class FirstOutcome<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var early: Result<T, any Error>?
        var done = false
    }

    private let state = Mutex(State())

    func attach(_ continuation: CheckedContinuation<T, any Error>) {
        let early = state.withLock { s -> Result<T, any Error>? in
            if let e = s.early { s.early = nil; return e }
            s.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    /// Delivers `result` unless an outcome was delivered already; true if this one was.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let continuation = state.withLock { s -> CheckedContinuation<T, any Error>?? in
            guard !s.done else { return .none }
            s.done = true
            guard let c = s.continuation else { s.early = result; return .some(nil) }
            s.continuation = nil
            return .some(c)
        }
        switch continuation {
        case .none: return false
        case .some(let c): c?.resume(with: result); return true
        }
    }
}

