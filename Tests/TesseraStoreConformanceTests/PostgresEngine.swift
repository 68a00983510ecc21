// The PostgreSQL engine under test: each test gets a database of its own on the server that
// `TESSERA_TEST_POSTGRES_URL` names (an administrator URL; scripts/test starts a throwaway
// server), dropped afterwards. Also the checks that only make sense for a shared database:
// migrations when several nodes start at once, and refusal of a bad URL.
import Foundation
import Logging
import NIOPosix
import PostgresNIO
import Testing
import TesseraCore
import TesseraStore

struct PostgresUnderTest: StoreUnderTest {
    let name = "postgresql"
    let writesSnapshots = false
    let admin: PostgresSettings

    static func fromEnvironment() -> PostgresUnderTest? {
        guard let url = ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES_URL"], !url.isEmpty,
              let settings = try? PostgresSettings.parse(url) else { return nil }
        return PostgresUnderTest(admin: settings)
    }

    /// Runs one statement on the administrator database (CREATE/DROP DATABASE), on a connection of its own.
    static func adminQuery(_ settings: PostgresSettings, _ sql: String) async throws {
        let configuration = PostgresConnection.Configuration(host: settings.host, port: settings.port, username: settings.user,
                                                             password: settings.password, database: settings.database, tls: .disable)
        let connection = try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(),
                                                              configuration: configuration, id: 1, logger: SQLiteUnderTest.logger)
        do {
            _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: SQLiteUnderTest.logger).collect()
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    /// A fresh, empty database; returns the settings that connect to it.
    func createDatabase() async throws -> PostgresSettings {
        let name = "tessera_ct_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await Self.adminQuery(admin, "CREATE DATABASE \(name) TEMPLATE template0 ENCODING 'UTF8'")
        var settings = admin
        settings.database = name
        settings.poolSize = 8
        return settings
    }

    func dropDatabase(_ settings: PostgresSettings) async throws {
        try await Self.adminQuery(admin, "DROP DATABASE IF EXISTS \(settings.database) WITH (FORCE)")
    }

    func make() async throws -> StoreInstance {
        let settings = try await createDatabase()
        let logger = SQLiteUnderTest.logger
        let store: PostgresStore
        let audit: PostgresAuditStore
        do {
            store = try await PostgresStore.open(settings, logger: logger)
            do {
                audit = try await PostgresAuditStore.open(settings, logger: logger)
            } catch {
                try? await store.close()
                throw error
            }
        } catch {
            try? await dropDatabase(settings)
            throw error
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-conformance-" + UUID().uuidString).path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let unsupported: @Sendable (String) async throws -> Never = { _ in
            throw TesseraError.badRequest("PostgreSQL stores write no snapshot files")
        }
        return StoreInstance(
            store: store, audit: audit, scratch: scratch,
            openStoreSnapshot: { try await unsupported($0) },
            openAuditSnapshot: { try await unsupported($0) },
            openAnotherAudit: { try await PostgresAuditStore.open(settings, logger: logger) },
            openAnotherStore: { try await PostgresStore.open(settings, logger: logger) },
            teardown: {
                try? await store.close()
                try? await audit.close()
                try? FileManager.default.removeItem(atPath: scratch)
                try await dropDatabase(settings)
            })
    }
}

extension StoreConformance {
    @Suite("PostgreSQL engine")
    struct PostgresEngine {
        static let engines: [PostgresUnderTest] = Engines.all.compactMap { $0 as? PostgresUnderTest }

        @Test("the PostgreSQL engine is under test when scripts/test asks for it")
        func configured() {
            if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_POSTGRES"] == "1" {
                #expect(!Self.engines.isEmpty, "TESSERA_TEST_POSTGRES_URL is missing or malformed")
            }
        }

        @Test("nodes starting at once on an empty database migrate it once, and all of them serve", arguments: engines)
        func concurrentMigrations(engine: PostgresUnderTest) async throws {
            let settings = try await engine.createDatabase()
            do {
                let stores = try await withThrowingTaskGroup(of: (PostgresStore, PostgresAuditStore).self) { group in
                    for _ in 0..<4 {
                        group.addTask {
                            (try await PostgresStore.open(settings, logger: SQLiteUnderTest.logger),
                             try await PostgresAuditStore.open(settings, logger: SQLiteUnderTest.logger))
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(stores.count == 4)
                for (index, (store, _)) in stores.enumerated() {
                    _ = try await store.createItem("/node/\(index)")
                }
                for (store, audit) in stores {
                    #expect(try await store.items(withPrefix: "/node/", limit: 10).count == 4)
                    #expect(try await audit.lastEvent() == nil)
                    try await store.close()
                    try await audit.close()
                }
            } catch {
                try? await engine.dropDatabase(settings)
                throw error
            }
            try await engine.dropDatabase(settings)
        }

        @Test("a server that cannot be reached fails fast with 503, not a hang")
        func unreachable() async throws {
            var settings = try PostgresSettings.parse("postgres://tessera@127.0.0.1:1/tessera?sslmode=disable", environment: [:])
            settings.timeout = .seconds(2)
            let started = ContinuousClock.now
            await #expect(throws: TesseraError.self) { _ = try await PostgresStore.open(settings, logger: SQLiteUnderTest.logger) }
            #expect(ContinuousClock.now - started < .seconds(10))
        }

        @Test("URLs: the password comes from the URL, PGPASSWORD or a file; bad parameters are refused")
        func urls() throws {
            let plain = try PostgresSettings.parse("postgres://app@db.example:6432/vault?sslmode=verify-full&pool_size=4",
                                                   environment: ["PGPASSWORD": "from-env"])
            #expect(plain.host == "db.example" && plain.port == 6432 && plain.user == "app" && plain.database == "vault")
            #expect(plain.sslMode == .verifyFull && plain.poolSize == 4 && plain.password == "from-env")
            #expect(!plain.redacted.contains("from-env"))
            let inline = try PostgresSettings.parse("postgresql://app:s%40cret@db/vault", environment: ["PGPASSWORD": "other"])
            #expect(inline.password == "s@cret" && inline.port == 5432 && inline.sslMode == .prefer)
            #expect(PostgresSettings.hasPassword("postgres://app:x@db/vault") && !PostgresSettings.hasPassword("postgres://app@db/vault"))
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("pgpass-" + UUID().uuidString).path
            try "from-file\n".write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            #expect(try PostgresSettings.parse("postgres://app@db/vault", passwordFile: file, environment: [:]).password == "from-file")
            for bad in ["mysql://app@db/vault", "postgres:///vault", "postgres://app@db/vault?sslmode=sometimes",
                        "postgres://app@db/vault?pool_size=0", "postgres://app@db/vault?pool_size=99999999999999999999",
                        "postgres://app@db/vault?nonsense=1"] {
                #expect(throws: TesseraError.self, "\(bad)") { try PostgresSettings.parse(bad, environment: [:]) }
            }
        }
    }
}
