// One SQLite database file opened for concurrent use: one writer connection whose transactions
// are serialized by an async mutex, and a few reader connections (WAL mode lets them read
// committed data while a write is in progress). Waits on locks are bounded by busy_timeout.
import Foundation
import Synchronization
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO
import TesseraCore

final class SQLiteDatabaseFile: Sendable {
    let path: String
    private let writer: SQLiteConnection
    private let readers: [SQLiteConnection]
    private let writeLock = AsyncMutex()
    private let nextReader = AtomicCounter()
    private let threadPool: NIOThreadPool

    /// - Parameter busyTimeoutMillis: how long a statement waits for another connection's lock
    ///   before failing; keeps a stuck or locked file from hanging requests.
    /// - Parameter durability: `.process` (WAL, synchronous=NORMAL): a commit is in the OS before
    ///   it is acknowledged, so it survives the server being killed; `.fsync` (synchronous=FULL)
    ///   also survives an OS crash or power loss, at the cost of one fsync per commit.
    static func open(path: String, readers readerCount: Int = 2, busyTimeoutMillis: Int = 2000, durability: Durability = .process,
                     logger: Logger) async throws -> SQLiteDatabaseFile {
        let pool = NIOThreadPool(numberOfThreads: readerCount + 2)
        pool.start()
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        do {
            let writer = try await SQLiteConnection.open(storage: .file(path: path), threadPool: pool, logger: logger, on: loop)
            _ = try await writer.query("PRAGMA busy_timeout = \(busyTimeoutMillis)")
            _ = try await writer.query("PRAGMA journal_mode = WAL")
            _ = try await writer.query("PRAGMA synchronous = \(durability == .fsync ? "FULL" : "NORMAL")")
            _ = try await writer.query("PRAGMA foreign_keys = ON")
            var readers: [SQLiteConnection] = []
            for _ in 0..<readerCount {
                let r = try await SQLiteConnection.open(storage: .file(path: path), threadPool: pool, logger: logger, on: loop)
                _ = try await r.query("PRAGMA busy_timeout = \(busyTimeoutMillis)")
                _ = try await r.query("PRAGMA foreign_keys = ON")
                readers.append(r)
            }
            return SQLiteDatabaseFile(path: path, writer: writer, readers: readers, threadPool: pool)
        } catch {
            try? await pool.shutdownGracefully()
            throw TesseraError.unavailable("cannot open the database file: \(SQLiteDatabaseFile.describe(error))")
        }
    }

    private init(path: String, writer: SQLiteConnection, readers: [SQLiteConnection], threadPool: NIOThreadPool) {
        self.path = path
        self.writer = writer
        self.readers = readers
        self.threadPool = threadPool
    }

    /// Runs a read-only query on a reader connection.
    func read(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        let connection = readers.isEmpty ? writer : readers[nextReader.next() % readers.count]
        do {
            return try await connection.query(sql, binds)
        } catch {
            throw SQLiteDatabaseFile.map(error)
        }
    }

    /// Runs statements in one write transaction (BEGIN IMMEDIATE … COMMIT), rolled back on error.
    func transaction<T: Sendable>(_ body: (SQLiteTransaction) async throws -> T) async throws -> T {
        try await writeLock.withLock {
            let tx = SQLiteTransaction(connection: writer)
            do {
                _ = try await writer.query("BEGIN IMMEDIATE")
            } catch {
                throw SQLiteDatabaseFile.map(error)
            }
            do {
                let result = try await body(tx)
                _ = try await writer.query("COMMIT")
                return result
            } catch {
                _ = try? await writer.query("ROLLBACK")
                throw SQLiteDatabaseFile.map(error)
            }
        }
    }

    /// Runs one write statement, atomically on its own (SQLite's autocommit), under the write lock.
    @discardableResult
    func write(_ sql: String, _ binds: [SQLiteData] = []) async throws -> Int {
        try await writeLock.withLock {
            do {
                return try await SQLiteTransaction(connection: writer).execute(sql, binds)
            } catch {
                throw SQLiteDatabaseFile.map(error)
            }
        }
    }

    /// Runs one statement as is (no row count), atomically on its own, under the write lock.
    func run(_ sql: String, _ binds: [SQLiteData] = []) async throws {
        try await writeLock.withLock {
            do {
                _ = try await writer.query(sql, binds)
            } catch {
                throw SQLiteDatabaseFile.map(error)
            }
        }
    }

    /// Writes a consistent copy of the database, as of one moment, to a new file at `destination`
    /// (`VACUUM INTO` on a connection of its own: a read transaction, so writers go on).
    func snapshot(to destination: String) async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        var logger = Logger(label: "tessera.store.snapshot")
        logger.logLevel = .warning
        do {
            let connection = try await SQLiteConnection.open(storage: .file(path: path), threadPool: threadPool, logger: logger, on: loop)
            do {
                _ = try await connection.query("PRAGMA busy_timeout = 10000")
                _ = try await connection.query("VACUUM INTO ?", [.text(destination)])
                try await connection.close()
            } catch {
                try? await connection.close()
                throw error
            }
        } catch {
            throw TesseraError.unavailable("cannot snapshot the database: \(SQLiteDatabaseFile.describe(error))")
        }
    }

    func close() async {
        for r in readers { try? await r.close() }
        try? await writer.close()
        try? await threadPool.shutdownGracefully()
    }

    /// Maps driver errors to the taxonomy without echoing values.
    static func map(_ error: any Error) -> any Error {
        if error is TesseraError { return error }
        guard let e = error as? SQLiteError else {
            return TesseraError.unavailable("storage error")
        }
        switch e.reason {
        case .constraint, .constraintUniqueFailed, .constraintPrimaryKeyFailed, .constraintTriggerFailed:
            return TesseraError.conflict("already exists")
        default:
            return TesseraError.unavailable("storage error: \(describe(e))")
        }
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? SQLiteError { return "\(e.reason)" }
        return String(describing: type(of: error))
    }
}

/// The statements available inside a write transaction.
struct SQLiteTransaction: Sendable {
    let connection: SQLiteConnection

    func query(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        try await connection.query(sql, binds)
    }

    /// Executes a statement and returns the number of rows it changed. INSERT, UPDATE and DELETE
    /// count their rows with RETURNING, in the same call (one trip to the database thread).
    @discardableResult
    func execute(_ sql: String, _ binds: [SQLiteData] = []) async throws -> Int {
        if Self.canCountWithReturning(sql) {
            return try await connection.query(sql + " RETURNING 1", binds).count
        }
        _ = try await connection.query(sql, binds)
        let rows = try await connection.query("SELECT changes() AS n")
        return rows.first?.column("n")?.integer ?? 0
    }

    /// True for an INSERT, UPDATE or DELETE without its own RETURNING clause (checked on the
    /// bytes: this runs on every write).
    static func canCountWithReturning(_ sql: String) -> Bool {
        let bytes = Array(sql.utf8)
        guard let start = bytes.firstIndex(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }),
              bytes.count - start >= 6 else { return false }
        let verb = bytes[start..<start + 6].map { $0 & 0xDF }   // ASCII upper case
        guard verb == Array("INSERT".utf8) || verb == Array("UPDATE".utf8) || verb == Array("DELETE".utf8) else { return false }
        let returning = Array("RETURNING".utf8)
        guard bytes.count >= returning.count else { return true }
        for i in start...(bytes.count - returning.count) where bytes[i] & 0xDF == returning[0] {
            if zip(bytes[i..<i + returning.count], returning).allSatisfy({ $0.0 & 0xDF == $0.1 }) { return false }
        }
        return true
    }
}

/// A lock-free round-robin counter.
final class AtomicCounter: Sendable {
    private let value = Synchronization.Atomic<Int>(0)
    func next() -> Int { value.add(1, ordering: .relaxed).newValue & Int.max }
}
