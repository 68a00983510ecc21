// Targets, the connectors that use them, and the Vault mount table: unique names, listings in
// name order, a target number that stays with the target, and deletions refused while
// something still depends on what would be deleted.
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Targets, connectors and mounts")
    struct Connectors {
        @Test("a target reads back as written; targets are listed by name; a taken name is a conflict", arguments: Engines.all)
        func targets(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let vault = Make.target("vault-prod", kind: .hashiVault, term: 2)
                let ssh = Make.target("bastion", kind: .ssh)
                try await s.store.createTarget(vault)
                try await s.store.createTarget(ssh)
                #expect(try await s.store.target(named: "vault-prod") == vault)
                #expect(try await s.store.target(named: "missing") == nil)
                #expect(try await s.store.targets() == [ssh, vault])
                #expect(await outcome { try await s.store.createTarget(Make.target("bastion")) } == .conflict)
                #expect(try await s.store.target(named: "bastion") == ssh)
            }
        }

        @Test("each target has its own number, which does not change while it exists", arguments: Engines.all)
        func targetIds(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                for name in ["t1", "t2", "t3"] { try await s.store.createTarget(Make.target(name)) }
                var before: [Int64?] = []
                for name in ["t1", "t2", "t3"] { before.append(try await s.store.targetId(named: name)) }
                #expect(Set(before.compactMap { $0 }).count == 3)
                #expect(try await s.store.targetId(named: "missing") == nil)
                #expect(try await s.store.deleteTarget(named: "t1"))
                try await s.store.createTarget(Make.target("t4"))
                #expect(try await s.store.targetId(named: "t2") == before[1])
                #expect(try await s.store.targetId(named: "t3") == before[2])
                let t4 = try await s.store.targetId(named: "t4")
                #expect(t4 != nil)
                #expect(t4 != before[1] && t4 != before[2])
                #expect(try await s.store.targetId(named: "t1") == nil)
            }
        }

        @Test("a target cannot be deleted while a connector, producer or rotated secret uses it", arguments: Engines.all)
        func targetInUse(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                for name in ["for-usc", "for-producer", "for-rotator"] { try await s.store.createTarget(Make.target(name)) }
                try await s.store.createConnector(SecretConnector(name: "usc", targetName: "for-usc", createdAt: T.origin))
                try await s.store.createProducer(try Make.producer("/db/p", target: "for-producer"))
                let item = try Make.item("/rot/r", type: .rotatedSecret)
                try await s.store.createRotatedSecret(item, firstVersion: Make.version(item, 1),
                                                      rotator: Make.rotator(item, target: "for-rotator"))
                for name in ["for-usc", "for-producer", "for-rotator"] {
                    #expect(await outcome { _ = try await s.store.deleteTarget(named: name) } == .conflict, "\(name)")
                    #expect(try await s.store.target(named: name) != nil)
                }
                #expect(try await s.store.deleteConnector(named: "usc"))
                #expect(try await s.store.deleteProducer(path: "/db/p"))
                #expect(try await s.store.deleteItem(id: item.id))
                for name in ["for-usc", "for-producer", "for-rotator"] { #expect(try await s.store.deleteTarget(named: name)) }
                #expect(try await s.store.deleteTarget(named: "for-usc") == false)
            }
        }

        @Test("a target deleted while a connector or producer is created over it never leaves one without its target",
              arguments: Engines.all)
        func deleteTargetRacingUsers(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let pairs = 8
                for i in 0..<pairs { try await s.store.createTarget(Make.target("t\(i)")) }
                let store = s.store
                _ = await concurrently(pairs * 3) { k in
                    let i = k / 3
                    switch k % 3 {
                    case 0: _ = try await store.deleteTarget(named: "t\(i)")
                    case 1:
                        let connector = SecretConnector(name: "usc\(i)", targetName: "t\(i)", createdAt: T.origin)
                        try await store.createConnector(connector)
                    default: try await store.createProducer(try Make.producer("/db/p\(i)", target: "t\(i)"))
                    }
                }
                let targets = Set(try await s.store.targets().map(\.name))
                for connector in try await s.store.connectors() {
                    #expect(targets.contains(connector.targetName), "\(connector.name)")
                }
                for producer in try await s.store.producers() {
                    #expect(targets.contains(producer.targetName), "\(producer.path)")
                }
            }
        }

        @Test("a connector reads back as written, needs an existing target, and is listed by name", arguments: Engines.all)
        func connectors(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createTarget(Make.target("vault", kind: .hashiVault))
                let b = SecretConnector(name: "b-usc", targetName: "vault", prefix: "team/", description: "B", createdAt: T.at(1))
                let a = SecretConnector(name: "a-usc", targetName: "vault", createdAt: T.at(2))
                try await s.store.createConnector(b)
                try await s.store.createConnector(a)
                #expect(try await s.store.connector(named: "b-usc") == b)
                #expect(try await s.store.connector(named: "c-usc") == nil)
                #expect(try await s.store.connectors() == [a, b])
                #expect(await outcome { try await s.store.createConnector(b) } == .conflict)
                #expect(await outcome {
                    try await s.store.createConnector(SecretConnector(name: "orphan", targetName: "missing", createdAt: T.origin))
                }.isFailure)
                #expect(try await s.store.connector(named: "orphan") == nil)
            }
        }

        @Test("a connector cannot be deleted while a Vault mount is backed by it", arguments: Engines.all)
        func connectorInUse(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createTarget(Make.target("vault", kind: .hashiVault))
                try await s.store.createConnector(SecretConnector(name: "usc", targetName: "vault", createdAt: T.origin))
                try await s.store.createMount(try Make.mount("upstream/", folder: "/usc", usc: "usc"))
                #expect(await outcome { _ = try await s.store.deleteConnector(named: "usc") } == .conflict)
                #expect(try await s.store.connector(named: "usc") != nil)
                #expect(try await s.store.deleteMount(path: "upstream/"))
                #expect(try await s.store.deleteConnector(named: "usc"))
                #expect(try await s.store.deleteConnector(named: "usc") == false)
            }
        }

        @Test("a mount reads back as written; mounts are listed by path; a taken path is a conflict", arguments: Engines.all)
        func mounts(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let secret = try Make.mount("secret/", folder: "/secret")
                let kv = try Make.mount("kv/team/", folder: "/kv/team", kind: .kvV1)
                let db = try Make.mount("database/", folder: "/db", kind: .database)
                for m in [secret, kv, db] { try await s.store.createMount(m) }
                #expect(try await s.store.mounts() == [db, kv, secret])
                #expect(await outcome { try await s.store.createMount(try Make.mount("secret/", folder: "/other")) } == .conflict)
                #expect(try await s.store.mounts().count == 3)
            }
        }

        @Test("updating a mount changes its description, KV settings and kind only; deleting reports whether it existed",
              arguments: Engines.all)
        func updateAndDeleteMount(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let m = try Make.mount("secret/", folder: "/secret")
                try await s.store.createMount(m)
                var changed = m
                changed.description = "tuned"
                changed.maxVersions = 9
                changed.casRequired = false
                changed.deleteVersionAfter = "10m0s"
                changed.kind = .kvV1
                try await s.store.updateMount(changed)
                #expect(try await s.store.mounts() == [changed])
                #expect(try await s.store.deleteMount(path: "secret/"))
                #expect(try await s.store.deleteMount(path: "secret/") == false)
                #expect(try await s.store.mounts().isEmpty)
            }
        }

        @Test("moving a mount takes the items under its folder (and only those) to the new folder, with their versions",
              arguments: Engines.all)
        func moveMountWithItems(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let m = try Make.mount("secret/", folder: "/secret")
                try await s.store.createMount(m)
                let moving = ["/secret", "/secret/a", "/secret/b/c", "/secret/é/😀"]
                let staying = ["/secretx", "/secret-y", "/other/secret/a"]
                var ids: [String: Int64] = [:]
                for p in moving + staying { ids[p] = try await s.store.createItem(p).id }
                _ = try await s.store.item(at: ItemPath("/secret/a"))   // cached, where an engine caches
                var moved = m
                moved.path = "new/"
                moved.folder = try ItemPath(folder: "/new")
                try await s.store.moveMount(from: "secret/", to: moved, itemsFrom: m.folder, expectedItems: moving.count)
                #expect(try await s.store.mounts() == [moved])
                for p in moving {
                    let to = "/new" + p.dropFirst("/secret".count)
                    let item = try await s.store.item(at: ItemPath(to))
                    #expect(item?.id == ids[p])
                    #expect(try await s.store.item(at: ItemPath(p)) == nil)
                    if let item { #expect(try await s.store.version(itemId: item.id, number: 1) != nil) }
                }
                for p in staying { #expect(try await s.store.item(at: ItemPath(p))?.id == ids[p]) }
            }
        }

        @Test("a move onto a folder that holds an item, or of other items than authorized, changes nothing; a move without items changes only the mount",
              arguments: Engines.all)
        func moveMountConflict(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let m = try Make.mount("secret/", folder: "/secret")
                try await s.store.createMount(m)
                _ = try await s.store.createItem("/secret/a")
                _ = try await s.store.createItem("/secret/b")
                _ = try await s.store.createItem("/new/b")
                var moved = m
                moved.path = "new/"
                moved.folder = try ItemPath(folder: "/new")
                #expect(await outcome { try await s.store.moveMount(from: "secret/", to: moved, itemsFrom: m.folder, expectedItems: 2) } == .conflict)
                #expect(try await s.store.mounts() == [m])
                #expect(try await s.store.item(at: ItemPath("/secret/a")) != nil)
                #expect(try await s.store.item(at: ItemPath("/new/a")) == nil)
                var renamed = m
                renamed.path = "view/"
                // Items that are not the ones the caller authorized (one more appeared): nothing moves.
                var other = m
                other.path = "other/"
                other.folder = try ItemPath(folder: "/other")
                #expect(await outcome { try await s.store.moveMount(from: "secret/", to: other, itemsFrom: m.folder, expectedItems: 1) } == .conflict)
                #expect(try await s.store.item(at: ItemPath("/secret/b")) != nil)
                #expect(try await s.store.mounts() == [m])
                try await s.store.moveMount(from: "secret/", to: renamed, itemsFrom: nil, expectedItems: 0)
                #expect(try await s.store.mounts() == [renamed])
                #expect(try await s.store.item(at: ItemPath("/secret/a")) != nil)
                #expect(await outcome { try await s.store.moveMount(from: "secret/", to: moved, itemsFrom: nil, expectedItems: 0) } == .notFound)
            }
        }
    }
}
