// Check-and-set under concurrency: the store, not a lock in one process, decides which of
// several racing writes wins. Of concurrent appends that expect the same last version exactly
// one succeeds and the others get `conflict`; writers that retry lose no version and number
// none twice; of concurrent creations at one path exactly one succeeds.
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Check-and-set under concurrency")
    struct CheckAndSet {
        @Test("of concurrent appends that expect the same last version, exactly one wins", arguments: Engines.all)
        func oneWinner(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.createItem("/cas/one")
                let store = s.store
                let results = await concurrently(16) { i in
                    try await store.appendVersion(Make.version(item, 2, value: "writer-\(i)"), expectedLastVersion: 1,
                                                  updatedAt: T.at(2))
                    return i
                }
                let winners = results.compactMap { try? $0.get() }
                #expect(winners.count == 1)
                #expect(results.filter(isConflict).count == 15)
                let winner = try #require(winners.first)
                #expect(try await s.store.item(at: item.path)?.lastVersion == 2)
                #expect(try await s.store.versionNumbers(item) == [1, 2])
                #expect(try await s.store.version(itemId: item.id, number: 2)?.ciphertext == sealed("writer-\(winner)"))
            }
        }

        @Test("writers that retry on conflict lose no version and number none twice", arguments: Engines.all)
        func noLostOrDuplicatedVersions(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.createItem("/cas/many", maxVersions: 100)
                let store = s.store
                let writers = 12, each = 5
                let results = await concurrently(writers) { w in
                    var written: [Int] = []
                    for k in 0..<each { written.append(try await appendWithRetry(store, path: item.path, value: "w\(w)-\(k)")) }
                    return written
                }
                let numbers = results.compactMap { try? $0.get() }.flatMap { $0 }
                #expect(numbers.count == writers * each)
                #expect(numbers.sorted() == Array(2...(1 + writers * each)))
                let versions = try await s.store.versions(itemId: item.id)
                #expect(versions.map(\.version) == Array(1...(1 + writers * each)))
                let values = versions.dropFirst().compactMap { $0.ciphertext.map { String(decoding: $0, as: UTF8.self) } }
                #expect(Set(values) == Set((0..<writers).flatMap { w in (0..<each).map { "w\(w)-\($0)" } }))
                #expect(values.count == writers * each)
                #expect(try await s.store.item(at: item.path)?.lastVersion == 1 + writers * each)
            }
        }

        @Test("each writer's own versions are in the order it wrote them", arguments: Engines.all)
        func perWriterOrder(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.createItem("/cas/order", maxVersions: 100)
                let store = s.store
                let results = await concurrently(4) { w in
                    var written: [Int] = []
                    for k in 0..<6 { written.append(try await appendWithRetry(store, path: item.path, value: "w\(w)-\(k)")) }
                    return written
                }
                for result in results {
                    let written = try result.get()
                    #expect(written == written.sorted())
                }
            }
        }

        @Test("of concurrent creations at one path, exactly one wins and its version is the one stored", arguments: Engines.all)
        func oneCreator(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let candidates = try (0..<10).map { _ in try Make.item("/cas/new") }
                let store = s.store
                let results = await concurrently(candidates.count) { i in
                    try await store.createItem(candidates[i], firstVersion: Make.version(candidates[i], 1, value: "creator-\(i)"))
                    return i
                }
                let winners = results.compactMap { try? $0.get() }
                #expect(winners.count == 1)
                #expect(results.filter(isConflict).count == candidates.count - 1)
                let winner = try #require(winners.first)
                let stored = try await s.store.item(at: try ItemPath("/cas/new"))
                #expect(stored?.id == candidates[winner].id)
                let stored1 = try await s.store.version(itemId: candidates[winner].id, number: 1)
                #expect(stored1?.ciphertext == sealed("creator-\(winner)"))
                for (i, loser) in candidates.enumerated() where i != winner {
                    #expect(try await s.store.versions(itemId: loser.id).isEmpty)
                }
            }
        }

        @Test("appends to different items do not conflict with each other", arguments: Engines.all)
        func independentItems(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                var items: [Item] = []
                for i in 0..<8 { items.append(try await s.store.createItem("/cas/item\(i)")) }
                let store = s.store, all = items
                let results = await concurrently(all.count) { i in
                    try await store.appendVersion(Make.version(all[i], 2), expectedLastVersion: 1, updatedAt: T.at(2))
                }
                #expect(results.allSatisfy { (try? $0.get()) != nil })
                for item in all { #expect(try await s.store.item(at: item.path)?.lastVersion == 2) }
            }
        }
    }
}
