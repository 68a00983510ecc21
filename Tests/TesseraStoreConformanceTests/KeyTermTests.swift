// Key terms and the rewrap: how many stored values each term seals (item versions, target
// credentials, pending rotations), and batches that re-seal the values under older terms. A
// batch is all or nothing, touches only older terms, and never writes over a change made to a
// value while the batch was re-sealing it: a destroyed version or a finished rotation stays so.
import Dispatch
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Key terms and rewrap")
    struct KeyTerms {
        /// Stores values under term 1 (versions 1–3 of /k/item, version 2 destroyed; the target
        /// "old"; a pending rotation) and term 2 (versions 4–5; the target "new"; the rotated
        /// secret's first version).
        func fill(_ store: any Store) async throws -> (item: Item, rotated: Item) {
            let item = try Make.item("/k/item")
            try await store.createItem(item, firstVersion: Make.version(item, 1, term: 1))
            for n in 2...5 {
                try await store.appendVersion(Make.version(item, n, term: n <= 3 ? 1 : 2), expectedLastVersion: n - 1,
                                              updatedAt: T.at(Double(n)))
            }
            try await store.destroyVersions(itemId: item.id, numbers: [2], at: T.at(9))
            try await store.createTarget(Make.target("old", term: 1))
            try await store.createTarget(Make.target("new", term: 2))
            let rotated = try Make.item("/k/rotated", type: .rotatedSecret)
            try await store.createRotatedSecret(rotated, firstVersion: Make.version(rotated, 1, term: 2),
                                                rotator: Make.rotator(rotated, target: "old"))
            #expect(try await store.beginRotation(itemId: rotated.id, pending: Make.pending("pending", term: 1)))
            return (item, rotated)
        }

        /// A re-seal that marks the value with the new term, so that a test can see it moved.
        static func reseal(_ value: SealedValue) -> [UInt8] { value.ciphertext + sealed("@3") }

        @Test("usage counts every stored value by the term that seals it", arguments: Engines.all)
        func usage(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                #expect(try await s.store.keyTermUsage().total == 0)
                _ = try await fill(s.store)
                let usage = try await s.store.keyTermUsage()
                #expect(usage.byTerm == [1: 5, 2: 4])
                #expect(usage.below(2) == 5)
            }
        }

        @Test("batches move every value under an older term, and only those, up to the limit each", arguments: Engines.all)
        func rewrapMovesOlderTerms(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let (item, rotated) = try await fill(s.store)
                let seen = Shared<[SealedValue.Owner]>([])
                var batches: [Int] = []
                while true {
                    let moved = try await s.store.rewrapBatch(below: 2, limit: 2) { value in
                        seen.update { $0.append(value.owner) }
                        return Self.reseal(value)
                    }
                    if moved == 0 { break }
                    #expect(moved <= 2)
                    batches.append(moved)
                    #expect(batches.count < 10)
                    if batches.count >= 10 { break }
                }
                #expect(batches.reduce(0, +) == 5)
                #expect(try await s.store.keyTermUsage().byTerm == [2: 9])
                // A destroyed version has no value to re-seal: only its term moves.
                #expect(Set(seen.get().map { "\($0)" }) == Set([SealedValue.Owner.itemVersion(itemId: item.id, version: 1),
                                                               .itemVersion(itemId: item.id, version: 3),
                                                               .target(name: "old"),
                                                               .pendingRotation(itemId: rotated.id)].map { "\($0)" }))
                let versions = try await s.store.versions(itemId: item.id)
                #expect(versions.map(\.keyTerm) == [2, 2, 2, 2, 2])
                #expect(versions.map(\.ciphertext) == [sealed("/k/item#1@3"), nil, sealed("/k/item#3@3"), sealed("/k/item#4"),
                                                       sealed("/k/item#5")])
                #expect(try await s.store.target(named: "old")?.credentialCiphertext == sealed("cred:old@3"))
                #expect(try await s.store.target(named: "old")?.keyTerm == 2)
                #expect(try await s.store.target(named: "new")?.credentialCiphertext == sealed("cred:new"))
                let pending = try await s.store.rotator(itemId: rotated.id)?.pending
                #expect(pending?.ciphertext == sealed("pending@3"))
                #expect(pending?.keyTerm == 2)
            }
        }

        @Test("the re-seal sees each value's owner, ciphertext and term", arguments: Engines.all)
        func resealSeesTheValue(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try Make.item("/k/one")
                try await s.store.createItem(item, firstVersion: Make.version(item, 1, value: "secret", term: 4))
                let seen = Shared<[SealedValue]>([])
                let moved = try await s.store.rewrapBatch(below: 5, limit: 10) { value in
                    seen.update { $0.append(value) }
                    return sealed("resealed")
                }
                #expect(moved == 1)
                let value = try #require(seen.get().first)
                #expect(seen.get().count == 1)
                #expect(value.owner == .itemVersion(itemId: item.id, version: 1))
                #expect(value.ciphertext == sealed("secret"))
                #expect(value.term == 4)
                #expect(try await s.store.version(itemId: item.id, number: 1)?.ciphertext == sealed("resealed"))
                #expect(try await s.store.version(itemId: item.id, number: 1)?.keyTerm == 5)
            }
        }

        @Test("a batch whose re-seal fails moves nothing", arguments: Engines.all)
        func failedBatchMovesNothing(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                _ = try await fill(s.store)
                let before = try await s.store.keyTermUsage()
                let calls = Shared(0)
                #expect(await outcome {
                    _ = try await s.store.rewrapBatch(below: 2, limit: 100) { value in
                        if calls.update({ $0 += 1; return $0 }) == 3 { throw TesseraError.integrity("cannot open") }
                        return Self.reseal(value)
                    }
                }.isFailure)
                #expect(try await s.store.keyTermUsage() == before)
            }
        }

        /// Runs a rewrap batch during which `change` is started concurrently, as soon as the
        /// re-seal of the value `owner` begins, and given up to 100 ms to finish before the
        /// re-seal returns (an engine that serializes writes holds it back until the batch ends).
        func rewrap(_ store: any Store, racing change: @escaping @Sendable () async throws -> Void,
                    at owner: SealedValue.Owner) async throws {
            let started = Shared<Task<Void, any Error>?>(nil)
            let finished = DispatchSemaphore(value: 0)
            _ = try await store.rewrapBatch(below: 2, limit: 100) { value in
                if value.owner == owner {
                    started.update { $0 = Task { defer { finished.signal() }; try await change() } }
                    _ = finished.wait(timeout: .now() + .milliseconds(100))
                }
                return Self.reseal(value)
            }
            try await started.get()?.value
        }

        @Test("a version destroyed while a batch re-seals it stays destroyed", arguments: Engines.all)
        func destroyDuringRewrap(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let (item, _) = try await fill(s.store)
                let store = s.store
                try await rewrap(store, racing: { try await store.destroyVersions(itemId: item.id, numbers: [3], at: T.at(50)) },
                                 at: .itemVersion(itemId: item.id, version: 3))
                let v3 = try await s.store.version(itemId: item.id, number: 3)
                #expect(v3?.destroyed == true)
                #expect(v3?.ciphertext == nil)
                #expect(try await s.store.version(itemId: item.id, number: 1)?.ciphertext == sealed("/k/item#1@3"))
            }
        }

        @Test("a rotation finished while a batch re-seals its pending password stays finished", arguments: Engines.all)
        func finishDuringRewrap(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let (_, rotated) = try await fill(s.store)
                let store = s.store
                let rotator = try #require(try await s.store.rotator(itemId: rotated.id))
                var done = rotator
                done.pending = nil
                done.status = .succeeded
                let finished = done
                try await rewrap(store, racing: {
                    try await store.finishRotation(finished, version: Make.version(rotated, 2, term: 2), expectedLastVersion: 1)
                }, at: .pendingRotation(itemId: rotated.id))
                let stored = try await s.store.rotator(itemId: rotated.id)
                #expect(stored?.pending == nil)
                #expect(stored?.status == .succeeded)
                #expect(try await s.store.pendingRotations().isEmpty)
                #expect(try await s.store.keyTermUsage().below(2) == 0)
            }
        }

        @Test("re-sealed versions are what later reads return", arguments: Engines.all)
        func readsSeeRewrap(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let item = try await s.store.createItem("/k/cached")
                // Read once first, so that an engine with a cache has this version in it.
                #expect(try await s.store.version(itemId: item.id, number: 1)?.keyTerm == 1)
                _ = try await s.store.rewrapBatch(below: 2, limit: 10) { Self.reseal($0) }
                let v1 = try await s.store.version(itemId: item.id, number: 1)
                #expect(v1?.keyTerm == 2)
                #expect(v1?.ciphertext == sealed("/k/cached#1@3"))
            }
        }
    }
}
