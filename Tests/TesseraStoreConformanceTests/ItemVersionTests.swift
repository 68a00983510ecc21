// Items and their versions: creating, reading back exactly what was written, appending under
// check-and-set, soft delete / undelete / destroy, whole-item deletion and metadata updates.
// Reads must see the store's own writes at once, whatever cache the engine keeps.
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Items and versions")
    struct ItemVersions {
        @Test("an item and its first version read back exactly as written", arguments: Engines.all)
        func createAndRead(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try Make.item("/prod/db/password", maxVersions: 7, lastVersion: 1, at: T.at(0.25))
                let first = ItemVersion(itemId: item.id, version: 1, ciphertext: [0, 1, 2, 255], keyTerm: 3,
                                        createdBy: "p-creator", createdAt: T.at(0.5))
                try await s.store.createItem(item, firstVersion: first)
                #expect(try await s.store.item(at: item.path) == item)
                #expect(try await s.store.version(itemId: item.id, number: 1) == first)
                #expect(try await s.store.versions(itemId: item.id) == [first])
            }
        }

        @Test("an item and one of its versions read in one call: the last, a numbered one, or none kept", arguments: Engines.all)
        func itemAndVersion(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try Make.item("/one/read", lastVersion: 1, at: T.at(0.25))
                let first = Make.version(item, 1, at: T.at(0.5))
                try await s.store.createItem(item, firstVersion: first)
                let second = Make.version(item, 2, term: 4, at: T.at(1))
                try await s.store.appendVersion(second, expectedLastVersion: 1, updatedAt: T.at(1))
                let latest = try #require(try await s.store.itemAndVersion(at: item.path, number: 0))
                #expect(latest.item == (try await s.store.item(at: item.path)))
                #expect(latest.version == second)
                #expect(try await s.store.itemAndVersion(at: item.path, number: 1)?.version == first)
                let missing = try #require(try await s.store.itemAndVersion(at: item.path, number: 9))
                #expect(missing.item.id == item.id && missing.version == nil)
                #expect(try await s.store.itemAndVersion(at: try ItemPath("/one/absent"), number: 0) == nil)
                let empty = try Make.item("/one/empty", lastVersion: 0)
                try await s.store.createItem(empty, firstVersion: nil)
                let none = try #require(try await s.store.itemAndVersion(at: empty.path, number: 0))
                #expect(none.item == empty && none.version == nil)
            }
        }

        @Test("an item can be created without a version and gets its first by appending after version 0", arguments: Engines.all)
        func createEmpty(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try Make.item("/kv/empty", lastVersion: 0)
                try await s.store.createItem(item, firstVersion: nil)
                #expect(try await s.store.item(at: item.path)?.lastVersion == 0)
                #expect(try await s.store.versions(itemId: item.id).isEmpty)
                try await s.store.appendVersion(Make.version(item, 1), expectedLastVersion: 0, updatedAt: T.at(5))
                #expect(try await s.store.item(at: item.path)?.lastVersion == 1)
                #expect(try await s.store.versionNumbers(item) == [1])
            }
        }

        @Test("a second item at the same path is a conflict, and the first stays as it was", arguments: Engines.all)
        func duplicatePath(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let first = try await s.store.createItem("/a/b")
                let second = try Make.item("/a/b")
                #expect(await outcome {
                    try await s.store.createItem(second, firstVersion: Make.version(second, 1, value: "other"))
                } == .conflict)
                #expect(try await s.store.item(at: first.path)?.id == first.id)
                #expect(try await s.store.versions(itemId: second.id).isEmpty)
                #expect(try await s.store.version(itemId: first.id, number: 1)?.ciphertext == sealed("/a/b#1"))
            }
        }

        @Test("a second item with the same id is a conflict", arguments: Engines.all)
        func duplicateId(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let first = try await s.store.createItem("/a/one")
                let clash = try Make.item("/a/two", id: first.id)
                #expect(await outcome { try await s.store.createItem(clash, firstVersion: Make.version(clash, 1)) } == .conflict)
                #expect(try await s.store.item(at: clash.path) == nil)
            }
        }

        @Test("paths are compared as bytes: paths that differ only in case or accents are different items",
              arguments: Engines.all)
        func pathsAreBytes(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let upper = try await s.store.createItem("/Team/Key")
                #expect(try await s.store.item(at: try ItemPath("/team/key")) == nil)
                let lower = try await s.store.createItem("/team/key")
                let accented = try await s.store.createItem("/team/kéy")
                #expect(try await s.store.item(at: upper.path)?.id == upper.id)
                #expect(try await s.store.item(at: lower.path)?.id == lower.id)
                #expect(try await s.store.item(at: accented.path)?.id == accented.id)
                #expect(try await s.store.item(at: try ItemPath("/team/key ")) == nil)
            }
        }

        @Test("a large value reads back byte for byte", arguments: Engines.all)
        func largeValue(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try Make.item("/big")
                let bytes = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
                let version = ItemVersion(itemId: item.id, version: 1, ciphertext: bytes, keyTerm: 1, createdBy: "p-x",
                                          createdAt: T.origin)
                try await s.store.createItem(item, firstVersion: version)
                #expect(try await s.store.version(itemId: item.id, number: 1)?.ciphertext == bytes)
            }
        }

        @Test("a path looked up before it existed is found once created", arguments: Engines.all)
        func missingThenCreated(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let path = try ItemPath("/later")
                #expect(try await s.store.item(at: path) == nil)
                #expect(try await s.store.item(at: path) == nil)
                let item = try await s.store.createItem("/later")
                #expect(try await s.store.item(at: path)?.id == item.id)
            }
        }

        @Test("appending a version moves the last version and the update time, and keeps the older versions",
              arguments: Engines.all)
        func append(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.createItem("/app/key")
                let v2 = ItemVersion(itemId: item.id, version: 2, ciphertext: sealed("two"), keyTerm: 2, createdBy: "p-second",
                                     createdAt: T.at(20))
                try await s.store.appendVersion(v2, expectedLastVersion: 1, updatedAt: T.at(21))
                let stored = try await s.store.item(at: item.path)
                #expect(stored?.lastVersion == 2)
                #expect(stored?.updatedAt == T.at(21))
                #expect(stored?.createdAt == item.createdAt)
                #expect(try await s.store.version(itemId: item.id, number: 2) == v2)
                #expect(try await s.store.version(itemId: item.id, number: 1) == Make.version(item, 1))
                #expect(try await s.store.versionNumbers(item) == [1, 2])
            }
        }

        @Test("an append that expects another last version is a conflict and writes nothing", arguments: Engines.all)
        func staleAppend(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.appendVersions(try await s.store.createItem("/app/key"), through: 3)
                for expected in [0, 2, 4] {
                    #expect(await outcome {
                        try await s.store.appendVersion(Make.version(item, expected + 1, value: "stale"),
                                                        expectedLastVersion: expected, updatedAt: T.at(99))
                    } == .conflict)
                }
                #expect(try await s.store.item(at: item.path) == item)
                #expect(try await s.store.versionNumbers(item) == [1, 2, 3])
                #expect(try await s.store.version(itemId: item.id, number: 3)?.ciphertext == sealed("/app/key#3"))
            }
        }

        @Test("appending to an item that does not exist is a conflict", arguments: Engines.all)
        func appendToMissing(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let ghost = try Make.item("/ghost")
                #expect(await outcome {
                    try await s.store.appendVersion(Make.version(ghost, 1), expectedLastVersion: 0, updatedAt: T.origin)
                } == .conflict)
                #expect(try await s.store.versions(itemId: ghost.id).isEmpty)
            }
        }

        @Test("an unknown version reads as nil, and versions are listed oldest first", arguments: Engines.all)
        func versionLookups(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.appendVersions(try await s.store.createItem("/v"), through: 4)
                #expect(try await s.store.version(itemId: item.id, number: 5) == nil)
                #expect(try await s.store.version(itemId: item.id, number: 0) == nil)
                #expect(try await s.store.version(itemId: item.id + 1, number: 1) == nil)
                #expect(try await s.store.versionNumbers(item) == [1, 2, 3, 4])
            }
        }

        @Test("deleting an item removes it with every version, frees its path, and reports whether it existed",
              arguments: Engines.all)
        func deleteItem(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.appendVersions(try await s.store.createItem("/gone"), through: 3)
                #expect(try await s.store.deleteItem(id: item.id))
                #expect(try await s.store.item(at: item.path) == nil)
                #expect(try await s.store.version(itemId: item.id, number: 3) == nil)
                #expect(try await s.store.versions(itemId: item.id).isEmpty)
                #expect(try await s.store.deleteItem(id: item.id) == false)
                let again = try await s.store.createItem("/gone")
                #expect(try await s.store.item(at: again.path)?.id == again.id)
                #expect(try await s.store.versionNumbers(again) == [1])
            }
        }

        @Test("concurrent deletes of one item: exactly one reports that it deleted it", arguments: Engines.all)
        func concurrentDelete(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.createItem("/contended")
                let store = s.store
                let results = await concurrently(8) { _ in try await store.deleteItem(id: item.id) }
                #expect(results.filter { (try? $0.get()) == true }.count == 1)
                #expect(results.allSatisfy { (try? $0.get()) != nil })
            }
        }

        @Test("soft delete keeps the value and the first deletion time; undelete restores it", arguments: Engines.all)
        func softDeleteAndUndelete(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.appendVersions(try await s.store.createItem("/kv/a"), through: 3)
                try await s.store.setVersionsDeleted(itemId: item.id, numbers: [1, 3], at: T.at(100))
                try await s.store.setVersionsDeleted(itemId: item.id, numbers: [3], at: T.at(200))
                let deleted = try await s.store.versions(itemId: item.id)
                #expect(deleted.map(\.deletedAt) == [T.at(100), nil, T.at(100)])
                #expect(deleted.map(\.ciphertext) == [sealed("/kv/a#1"), sealed("/kv/a#2"), sealed("/kv/a#3")])
                #expect(deleted.map(\.isLive) == [false, true, false])

                try await s.store.setVersionsDeleted(itemId: item.id, numbers: [3], at: nil)
                let restored = try await s.store.version(itemId: item.id, number: 3)
                #expect(restored?.deletedAt == nil)
                #expect(restored?.isLive == true)
                #expect(try await s.store.version(itemId: item.id, number: 1)?.isLive == false)
                #expect(try await s.store.item(at: item.path)?.lastVersion == 3)
            }
        }

        @Test("soft delete and undelete ignore unknown version numbers and an empty list", arguments: Engines.all)
        func softDeleteUnknown(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.createItem("/kv/b")
                try await s.store.setVersionsDeleted(itemId: item.id, numbers: [], at: T.at(1))
                try await s.store.setVersionsDeleted(itemId: item.id, numbers: [7, 8], at: T.at(1))
                try await s.store.setVersionsDeleted(itemId: item.id, numbers: [7], at: nil)
                #expect(try await s.store.versions(itemId: item.id) == [Make.version(item, 1)])
            }
        }

        @Test("destroyed versions lose their value for good: undelete does not bring them back", arguments: Engines.all)
        func destroy(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.appendVersions(try await s.store.createItem("/kv/c"), through: 3)
                try await s.store.destroyVersions(itemId: item.id, numbers: [1, 2, 9], at: T.at(50))
                try await s.store.setVersionsDeleted(itemId: item.id, numbers: [1, 2], at: nil)
                let versions = try await s.store.versions(itemId: item.id)
                #expect(versions.map(\.version) == [1, 2, 3])
                #expect(versions.map(\.destroyed) == [true, true, false])
                #expect(versions.map { $0.ciphertext == nil } == [true, true, false])
                #expect(versions.map(\.isLive) == [false, false, true])
                // A destroyed version stays destroyed when soft-deleted afterwards, too.
                try await s.store.setVersionsDeleted(itemId: item.id, numbers: [1], at: T.at(60))
                #expect(try await s.store.version(itemId: item.id, number: 1)?.ciphertext == nil)
            }
        }

        @Test("deleting one version destroys it, keeps an earlier deletion time, and fails once it is destroyed",
              arguments: Engines.all)
        func deleteVersion(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.appendVersions(try await s.store.createItem("/native/x"), through: 2)
                try await s.store.setVersionsDeleted(itemId: item.id, numbers: [1], at: T.at(10))
                #expect(try await s.store.deleteVersion(itemId: item.id, number: 1, at: T.at(20)))
                #expect(try await s.store.deleteVersion(itemId: item.id, number: 2, at: T.at(30)))
                let versions = try await s.store.versions(itemId: item.id)
                #expect(versions.map(\.deletedAt) == [T.at(10), T.at(30)])
                #expect(versions.allSatisfy { $0.destroyed && $0.ciphertext == nil })
                #expect(try await s.store.deleteVersion(itemId: item.id, number: 2, at: T.at(40)) == false)
                #expect(try await s.store.deleteVersion(itemId: item.id, number: 3, at: T.at(40)) == false)
                #expect(try await s.store.item(at: item.path)?.lastVersion == 2)
            }
        }

        @Test("a metadata update stores the new settings and leaves versions, type and creation time alone",
              arguments: Engines.all)
        func metadata(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.appendVersions(try await s.store.createItem("/meta"), through: 2)
                var changed = item
                changed.maxVersions = 20
                changed.casRequired = true
                changed.deleteVersionAfter = "3h0m0s"
                changed.customMetadata = ["owner": "ops", "ticket": "T-1"]
                changed.description = "new description"
                changed.deleteProtection = true
                changed.updatedAt = T.at(500)
                changed.metadataVersion = 3
                changed.vaultMaxVersions = 20
                try await s.store.updateItemMetadata(changed)
                let stored = try await s.store.item(at: item.path)
                #expect(stored?.maxVersions == 20)
                #expect(stored?.metadataVersion == 3 && stored?.vaultMaxVersions == 20)
                #expect(stored?.casRequired == true)
                #expect(stored?.deleteVersionAfter == "3h0m0s")
                #expect(stored?.customMetadata == ["owner": "ops", "ticket": "T-1"])
                #expect(stored?.description == "new description")
                #expect(stored?.deleteProtection == true)
                #expect(stored?.updatedAt == T.at(500))
                #expect(stored?.lastVersion == 2)
                #expect(stored?.type == item.type)
                #expect(stored?.createdAt == item.createdAt)
                #expect(try await s.store.versionNumbers(item) == [1, 2])
            }
        }

        @Test("a metadata update from a stale read never moves the last version back", arguments: Engines.all)
        func metadataFromStaleRead(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let read = try await s.store.createItem("/meta/stale")
                try await s.store.appendVersions(read, through: 3)
                var changed = read    // still says lastVersion 1
                changed.customMetadata = ["k": "v"]
                try await s.store.updateItemMetadata(changed)
                #expect(try await s.store.item(at: read.path)?.lastVersion == 3)
                #expect(await outcome {
                    try await s.store.appendVersion(Make.version(read, 2), expectedLastVersion: 1, updatedAt: T.at(9))
                } == .conflict)
                try await s.store.appendVersion(Make.version(read, 4), expectedLastVersion: 3, updatedAt: T.at(9))
            }
        }

        @Test("a metadata update stores the tags it is given (rotated-secret-update --tags relies on it)",
              arguments: Engines.all)
        func metadataTags(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                var item = try await s.store.createItem("/rotated/tags")
                item.tags = ["blue", "green"]
                try await s.store.updateItemMetadata(item)
                let stored = try await s.store.item(at: item.path)
                #expect(stored?.tags == ["blue", "green"])
            }
        }

        @Test("a metadata update of an item that does not exist is notFound", arguments: Engines.all)
        func metadataOfMissing(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let ghost = try Make.item("/ghost")
                #expect(await outcome { try await s.store.updateItemMetadata(ghost) } == .notFound)
                #expect(try await s.store.item(at: ghost.path) == nil)
            }
        }
    }
}
