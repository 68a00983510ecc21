// Version pruning: an item keeps its newest `maxVersions` version numbers, pruned by the write
// that goes past the limit (an append, or a metadata update that lowers it), except while the
// item has delete protection, which keeps every version (SQLite migration 7).
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Version pruning")
    struct Pruning {
        @Test("appending past maxVersions removes the oldest versions", arguments: Engines.all)
        func appendPrunes(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.createItem("/p/a", maxVersions: 3)
                try await s.store.appendVersions(item, through: 3)
                #expect(try await s.store.versionNumbers(item) == [1, 2, 3])
                try await s.store.appendVersions(item, through: 7)
                #expect(try await s.store.versionNumbers(item) == [5, 6, 7])
                #expect(try await s.store.version(itemId: item.id, number: 4) == nil)
                #expect(try await s.store.item(at: item.path)?.lastVersion == 7)
            }
        }

        @Test("deleted and destroyed versions count toward maxVersions", arguments: Engines.all)
        func deletedVersionsCount(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.appendVersions(try await s.store.createItem("/p/b", maxVersions: 3), through: 3)
                try await s.store.setVersionsDeleted(itemId: item.id, numbers: [3], at: T.at(1))
                try await s.store.destroyVersions(itemId: item.id, numbers: [2], at: T.at(1))
                try await s.store.appendVersions(item, through: 4)
                let kept = try await s.store.versions(itemId: item.id)
                #expect(kept.map(\.version) == [2, 3, 4])
                #expect(kept.map(\.isLive) == [false, false, true])
            }
        }

        @Test("maxVersions 1 keeps only the newest version", arguments: Engines.all)
        func keepOne(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.appendVersions(try await s.store.createItem("/p/one", maxVersions: 1), through: 5)
                #expect(try await s.store.versionNumbers(item) == [5])
            }
        }

        @Test("an item with delete protection keeps every version", arguments: Engines.all)
        func protectedItemsAreNotPruned(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.createItem("/p/protected", maxVersions: 2, deleteProtection: true)
                try await s.store.appendVersions(item, through: 6)
                #expect(try await s.store.versionNumbers(item) == [1, 2, 3, 4, 5, 6])
            }
        }

        @Test("lowering maxVersions in a metadata update prunes at once", arguments: Engines.all)
        func metadataPrunes(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                var item = try await s.store.appendVersions(try await s.store.createItem("/p/meta", maxVersions: 10), through: 6)
                item.maxVersions = 2
                try await s.store.updateItemMetadata(item)
                #expect(try await s.store.versionNumbers(item) == [5, 6])
            }
        }

        @Test("a metadata update that keeps delete protection on does not prune", arguments: Engines.all)
        func protectedMetadataUpdateDoesNotPrune(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                var item = try await s.store.createItem("/p/meta-protected", maxVersions: 10, deleteProtection: true)
                item = try await s.store.appendVersions(item, through: 5)
                item.maxVersions = 1
                try await s.store.updateItemMetadata(item)
                #expect(try await s.store.versionNumbers(item) == [1, 2, 3, 4, 5])
            }
        }

        @Test("turning delete protection off prunes what the limit no longer allows", arguments: Engines.all)
        func unprotectingPrunes(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                var item = try await s.store.createItem("/p/unprotect", maxVersions: 2, deleteProtection: true)
                item = try await s.store.appendVersions(item, through: 5)
                item.deleteProtection = false
                try await s.store.updateItemMetadata(item)
                #expect(try await s.store.versionNumbers(item) == [4, 5])
                try await s.store.appendVersions(item, through: 6)
                #expect(try await s.store.versionNumbers(item) == [5, 6])
            }
        }

        @Test("a metadata update from a stale read still prunes against the stored last version", arguments: Engines.all)
        func metadataPrunesAgainstStoredLastVersion(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                var read = try await s.store.appendVersions(try await s.store.createItem("/p/stale", maxVersions: 10), through: 3)
                try await s.store.appendVersions(read, through: 5)    // written meanwhile by someone else
                read.maxVersions = 2
                try await s.store.updateItemMetadata(read)
                let kept = try await s.store.versionNumbers(read)
                #expect(kept == [4, 5])
            }
        }

        @Test("concurrent appends to a pruned item leave exactly the newest maxVersions", arguments: Engines.all)
        func concurrentAppendsPrune(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.createItem("/p/busy", maxVersions: 3)
                let store = s.store
                let results = await concurrently(8) { writer in
                    for _ in 0..<4 { try await appendWithRetry(store, path: item.path, value: "w\(writer)") }
                }
                #expect(results.allSatisfy { (try? $0.get()) != nil })
                #expect(try await s.store.item(at: item.path)?.lastVersion == 33)
                #expect(try await s.store.versionNumbers(item) == [31, 32, 33])
            }
        }
    }
}
