// Rotated secrets: the item, its first version and its rotator are created together; at most
// one rotation is pending at a time (the pending record is the claim, also across nodes);
// finishing appends the version under check-and-set and clears the record in one write; and
// due rotations come from an indexed query that skips pending ones.
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Rotations")
    struct Rotations {
        /// Creates a rotated secret on the target `pg` (created if needed).
        func rotated(_ store: any Store, _ path: String, maxVersions: Int = 10, autoRotate: Bool = true,
                     next: Date? = T.at(60)) async throws -> (Item, Rotator) {
            if try await store.target(named: "pg") == nil { try await store.createTarget(Make.target("pg")) }
            let item = try Make.item(path, maxVersions: maxVersions, type: .rotatedSecret)
            let rotator = Make.rotator(item, target: "pg", autoRotate: autoRotate, next: next)
            try await store.createRotatedSecret(item, firstVersion: Make.version(item, 1), rotator: rotator)
            return (item, rotator)
        }

        @Test("a rotated secret's item, first version and rotator read back as written", arguments: Engines.all)
        func create(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let (item, rotator) = try await rotated(s.store, "/rot/a")
                #expect(try await s.store.item(at: item.path) == item)
                #expect(try await s.store.versions(itemId: item.id) == [Make.version(item, 1)])
                #expect(try await s.store.rotator(itemId: item.id) == rotator)
                #expect(try await s.store.rotators() == [rotator])
                #expect(try await s.store.rotator(itemId: item.id + 1) == nil)
            }
        }

        @Test("a rotated secret whose rotator cannot be stored leaves no item behind", arguments: Engines.all)
        func createIsAtomic(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try Make.item("/rot/orphan", type: .rotatedSecret)
                let rotator = Make.rotator(item, target: "no-such-target")
                #expect(await outcome {
                    try await s.store.createRotatedSecret(item, firstVersion: Make.version(item, 1), rotator: rotator)
                }.isFailure)
                #expect(try await s.store.item(at: item.path) == nil)
                #expect(try await s.store.versions(itemId: item.id).isEmpty)
                #expect(try await s.store.rotator(itemId: item.id) == nil)
            }
        }

        @Test("a rotated secret at a taken path is a conflict and stores no rotator", arguments: Engines.all)
        func createAtTakenPath(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createTarget(Make.target("pg"))
                let existing = try await s.store.createItem("/rot/taken")
                let item = try Make.item("/rot/taken", type: .rotatedSecret)
                #expect(await outcome {
                    try await s.store.createRotatedSecret(item, firstVersion: Make.version(item, 1),
                                                          rotator: Make.rotator(item, target: "pg"))
                } == .conflict)
                #expect(try await s.store.rotator(itemId: item.id) == nil)
                #expect(try await s.store.rotators().isEmpty)
                #expect(try await s.store.item(at: existing.path)?.id == existing.id)
            }
        }

        @Test("rotators are listed by path", arguments: Engines.all)
        func listing(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                for path in ["/rot/c", "/rot/a", "/rot/b"] { _ = try await rotated(s.store, path) }
                #expect(try await s.store.rotators().map(\.path.value) == ["/rot/a", "/rot/b", "/rot/c"])
            }
        }

        @Test("only one rotation is pending at a time", arguments: Engines.all)
        func onePending(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let (item, _) = try await rotated(s.store, "/rot/one")
                let pending = Make.pending("first")
                #expect(try await s.store.beginRotation(itemId: item.id, pending: pending))
                #expect(try await s.store.beginRotation(itemId: item.id, pending: Make.pending("second")) == false)
                let stored = try await s.store.rotator(itemId: item.id)
                #expect(stored?.pending == pending)
                #expect(stored?.status == .inProgress)
                #expect(try await s.store.pendingRotations().map(\.itemId) == [item.id])
                #expect(try await s.store.beginRotation(itemId: item.id + 1, pending: pending) == false)
            }
        }

        @Test("of concurrent rotations of one secret, exactly one begins", arguments: Engines.all)
        func onePendingUnderRace(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let (item, _) = try await rotated(s.store, "/rot/race")
                let store = s.store
                let results = await concurrently(12) { i in
                    try await store.beginRotation(itemId: item.id, pending: Make.pending("password-\(i)"))
                }
                let begun = results.enumerated().filter { (try? $0.element.get()) == true }.map(\.offset)
                #expect(begun.count == 1)
                #expect(results.allSatisfy { (try? $0.get()) != nil })
                let winner = try #require(begun.first)
                #expect(try await s.store.rotator(itemId: item.id)?.pending?.ciphertext == sealed("password-\(winner)"))
            }
        }

        @Test("finishing a rotation appends the version and clears the pending record together", arguments: Engines.all)
        func finish(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let (item, rotator) = try await rotated(s.store, "/rot/finish")
                #expect(try await s.store.beginRotation(itemId: item.id, pending: Make.pending()))
                var done = rotator
                done.pending = nil
                done.status = .succeeded
                done.lastRotationAt = T.at(70)
                done.nextRotationAt = T.at(3670)
                try await s.store.finishRotation(done, version: Make.version(item, 2, value: "rotated"), expectedLastVersion: 1)
                #expect(try await s.store.rotator(itemId: item.id) == done)
                #expect(try await s.store.item(at: item.path)?.lastVersion == 2)
                #expect(try await s.store.version(itemId: item.id, number: 2)?.ciphertext == sealed("rotated"))
                #expect(try await s.store.pendingRotations().isEmpty)
                #expect(try await s.store.beginRotation(itemId: item.id, pending: Make.pending("next")))
            }
        }

        @Test("a finish whose version conflicts changes nothing: the pending record stays", arguments: Engines.all)
        func finishConflict(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let (item, rotator) = try await rotated(s.store, "/rot/conflict")
                let pending = Make.pending()
                #expect(try await s.store.beginRotation(itemId: item.id, pending: pending))
                try await s.store.appendVersions(item, through: 2)    // written meanwhile
                var done = rotator
                done.pending = nil
                done.status = .succeeded
                #expect(await outcome {
                    try await s.store.finishRotation(done, version: Make.version(item, 2, value: "lost"), expectedLastVersion: 1)
                } == .conflict)
                let stored = try await s.store.rotator(itemId: item.id)
                #expect(stored?.pending == pending)
                #expect(stored?.status == .inProgress)
                #expect(try await s.store.version(itemId: item.id, number: 2)?.ciphertext == sealed("/rot/conflict#2"))
            }
        }

        @Test("a finish without a version records the outcome and clears the pending record", arguments: Engines.all)
        func finishWithoutVersion(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let (item, rotator) = try await rotated(s.store, "/rot/failed")
                #expect(try await s.store.beginRotation(itemId: item.id, pending: Make.pending()))
                var done = rotator
                done.status = .failed
                done.lastError = "the target refused the new password"
                done.failures = 1
                done.nextRotationAt = T.at(90)
                try await s.store.finishRotation(done, version: nil, expectedLastVersion: 1)
                #expect(try await s.store.rotator(itemId: item.id) == done)
                #expect(try await s.store.versionNumbers(item) == [1])
                #expect(try await s.store.countRotators(status: .failed) == 1)
            }
        }

        @Test("versions appended by rotations are pruned like any others", arguments: Engines.all)
        func rotationsPrune(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let (item, rotator) = try await rotated(s.store, "/rot/prune", maxVersions: 2)
                for n in 2...4 {
                    #expect(try await s.store.beginRotation(itemId: item.id, pending: Make.pending("p\(n)")))
                    var done = rotator
                    done.status = .succeeded
                    try await s.store.finishRotation(done, version: Make.version(item, n), expectedLastVersion: n - 1)
                }
                #expect(try await s.store.versionNumbers(item) == [3, 4])
            }
        }

        @Test("updating a rotator replaces its settings and state", arguments: Engines.all)
        func update(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let (item, rotator) = try await rotated(s.store, "/rot/update")
                var changed = rotator
                changed.username = "other"
                changed.credentials = .user
                changed.policy = PasswordPolicy(length: 32, lower: true, upper: false, numbers: true, special: false)
                changed.customCommand = "echo"
                changed.verifyPort = 6543
                changed.autoRotate = false
                changed.intervalMinutes = 2880
                changed.rotationHour = 3
                changed.nextRotationAt = nil
                changed.status = .succeeded
                changed.lastRotationAt = T.at(5)
                changed.lastError = "e"
                changed.failures = 4
                try await s.store.updateRotator(changed)
                #expect(try await s.store.rotator(itemId: item.id) == changed)
            }
        }

        @Test("due rotations: auto-rotated, time come, none pending, by next rotation time, up to the limit",
              arguments: Engines.all)
        func due(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let now = T.at(1000)
                _ = try await rotated(s.store, "/due/late", next: T.at(500))
                _ = try await rotated(s.store, "/due/now", next: now)
                _ = try await rotated(s.store, "/due/earliest", next: T.at(100))
                _ = try await rotated(s.store, "/due/future", next: T.at(1001))
                _ = try await rotated(s.store, "/due/unscheduled", next: nil)
                _ = try await rotated(s.store, "/due/manual", autoRotate: false, next: T.at(100))
                let (busy, _) = try await rotated(s.store, "/due/pending", next: T.at(50))
                #expect(try await s.store.beginRotation(itemId: busy.id, pending: Make.pending()))
                #expect(try await s.store.dueRotations(now: now, limit: 10).map(\.path.value)
                        == ["/due/earliest", "/due/late", "/due/now"])
                #expect(try await s.store.dueRotations(now: now, limit: 1).map(\.path.value) == ["/due/earliest"])
                #expect(try await s.store.pendingRotations().map(\.path.value) == ["/due/pending"])
            }
        }

        @Test("rotators are counted by status", arguments: Engines.all)
        func counts(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let (a, ra) = try await rotated(s.store, "/count/a")
                _ = try await rotated(s.store, "/count/b")
                var failed = ra
                failed.status = .failed
                try await s.store.updateRotator(failed)
                #expect(try await s.store.countRotators(status: .notRotated) == 1)
                #expect(try await s.store.countRotators(status: .failed) == 1)
                #expect(try await s.store.beginRotation(itemId: a.id, pending: Make.pending()))
                #expect(try await s.store.countRotators(status: .inProgress) == 1)
                #expect(try await s.store.countRotators(status: .succeeded) == 0)
            }
        }

        @Test("deleting a rotated secret's item removes its rotator", arguments: Engines.all)
        func deleteRemovesRotator(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let (item, _) = try await rotated(s.store, "/rot/gone")
                #expect(try await s.store.beginRotation(itemId: item.id, pending: Make.pending()))
                #expect(try await s.store.deleteItem(id: item.id))
                #expect(try await s.store.rotator(itemId: item.id) == nil)
                #expect(try await s.store.rotators().isEmpty)
                #expect(try await s.store.pendingRotations().isEmpty)
                #expect(try await s.store.deleteTarget(named: "pg"))
            }
        }
    }
}
