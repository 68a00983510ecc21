// The engines that the conformance suite runs against. Every test takes an engine as its argument
// and gets a fresh, empty store from it; adding an engine (PostgreSQL) means adding one factory
// to `Engines.all`, and every rule below is then checked on it too.
import Foundation
import Logging
import Testing
import TesseraCore
import TesseraStore

/// One storage engine under test: how to make a fresh store for one test, and how to open the
/// copies that its snapshots write.
protocol StoreUnderTest: Sendable, CustomTestStringConvertible {
    var name: String { get }
    /// Whether `snapshot(to:)` writes a file (SQLite); a PostgreSQL store is backed up by the
    /// database's own tools and refuses.
    var writesSnapshots: Bool { get }
    /// A new, empty data store and audit store that no other test sees.
    func make() async throws -> StoreInstance
}

extension StoreUnderTest {
    var testDescription: String { name }
}

/// A fresh store, the audit store beside it, and what a test needs around them.
struct StoreInstance: Sendable {
    var store: any Store
    var audit: any AuditStore
    /// A directory that the test may write files to (snapshots); removed by `teardown`.
    var scratch: String
    /// Opens a file written by `Store.snapshot(to:)` as a store (the caller closes it).
    var openStoreSnapshot: @Sendable (String) async throws -> any Store
    /// Opens a file written by `AuditStore.snapshot(to:)` as an audit store (the caller closes it).
    var openAuditSnapshot: @Sendable (String) async throws -> any AuditStore
    /// Opens a second audit store on the same trail, as another node does (nil for an engine that
    /// one process owns); the caller closes it.
    var openAnotherAudit: (@Sendable () async throws -> any AuditStore)? = nil
    /// Opens a second data store on the same data, as another node does (nil for an engine that
    /// one process owns); the caller closes it.
    var openAnotherStore: (@Sendable () async throws -> any Store)? = nil
    /// Closes the stores and removes everything the instance created.
    var teardown: @Sendable () async throws -> Void

    /// A path in the scratch directory that does not exist yet.
    func scratchFile(_ name: String) -> String { scratch + "/" + name }
}

enum Engines {
    /// Every engine the suite runs against. PostgreSQL runs when `TESSERA_TEST_POSTGRES_URL`
    /// names a server (scripts/test starts one); `TESSERA_REQUIRE_POSTGRES=1` makes its absence
    /// a failure rather than a skip.
    static let all: [any StoreUnderTest] = [SQLiteUnderTest()] + (PostgresUnderTest.fromEnvironment().map { [$0] } ?? [])
    /// The engines whose snapshots are files.
    static let snapshotting: [any StoreUnderTest] = all.filter(\.writesSnapshots)
}

/// The embedded engine: `tessera.db` and `audit.db` in a temporary directory.
struct SQLiteUnderTest: StoreUnderTest {
    let name = "sqlite"
    let writesSnapshots = true

    static let logger: Logger = {
        var logger = Logger(label: "tessera.conformance")
        logger.logLevel = .critical
        return logger
    }()

    func make() async throws -> StoreInstance {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("tessera-conformance-" + UUID().uuidString).path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let logger = Self.logger
        let store: SQLiteStore
        let audit: SQLiteAuditStore
        do {
            store = try await SQLiteStore.open(path: dir + "/tessera.db", logger: logger)
            do {
                audit = try await SQLiteAuditStore.open(path: dir + "/audit.db", logger: logger)
            } catch {
                try? await store.close()
                throw error
            }
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
        return StoreInstance(
            store: store, audit: audit, scratch: dir,
            openStoreSnapshot: { path in try await SQLiteStore.open(path: path, logger: logger) },
            openAuditSnapshot: { path in try await SQLiteAuditStore.open(path: path, logger: logger) },
            teardown: {
                try? await store.close()
                try? await audit.close()
                try FileManager.default.removeItem(atPath: dir)
            })
    }
}

/// Runs `body` with a fresh store of `engine`, and tears it down afterwards, also on failure.
func withStore(_ engine: any StoreUnderTest, _ body: (StoreInstance) async throws -> Void) async throws {
    let instance = try await engine.make()
    do {
        try await body(instance)
    } catch {
        try? await instance.teardown()
        throw error
    }
    try await instance.teardown()
}

/// The whole suite. Its tests run one after another: several make many concurrent writes on
/// purpose, and each one's races should be with itself, not with the rest of the suite.
@Suite("Store conformance", .serialized)
enum StoreConformance {}
