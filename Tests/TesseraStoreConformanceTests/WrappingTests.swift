// Wrapped responses on both engines: read back as stored, taken exactly once under a race,
// replaced atomically on rewrap, invisible once expired, and capped per creator.
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Wrapped responses")
    struct WrappedResponses {
        static func wrapped(_ hash: String, creator: String = "p-creator0001", createdAt: Int = 0, ttl: Int = 60) -> WrappedResponse {
            WrappedResponse(tokenHash: hash, creationPath: "secret/data/app", createdAt: T.at(Double(createdAt)), ttlSeconds: ttl,
                            expiresAt: T.at(Double(createdAt + ttl)), ciphertext: [1, 2, 3, 0, 255], term: 1,
                            wrappedAccessor: "acc", creatorAccessId: creator)
        }

        @Test("a wrapped response reads back as stored until it expires", arguments: Engines.all)
        func readBack(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let w = Self.wrapped("h1")
                try await s.store.createWrappedResponse(w, now: T.at(0), maxPerCreator: 10)
                #expect(try await s.store.wrappedResponse(hash: "h1", now: T.at(59)) == w)
                #expect(try await s.store.wrappedResponse(hash: "h1", now: T.at(60)) == nil)
                #expect(try await s.store.takeWrappedResponse(hash: "h1", now: T.at(61)) == nil)
                #expect(try await s.store.wrappedResponse(hash: "unknown", now: T.at(0)) == nil)
            }
        }

        @Test("a wrapped response is taken once, and a taken token is gone", arguments: Engines.all)
        func takenOnce(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createWrappedResponse(Self.wrapped("h1"), now: T.at(0), maxPerCreator: 10)
                #expect(try await s.store.takeWrappedResponse(hash: "h1", now: T.at(1)) == Self.wrapped("h1"))
                #expect(try await s.store.takeWrappedResponse(hash: "h1", now: T.at(1)) == nil)
                #expect(try await s.store.wrappedResponse(hash: "h1", now: T.at(1)) == nil)
            }
        }

        @Test("of concurrent unwraps of one token, exactly one gets the answer", arguments: Engines.all)
        func raced(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createWrappedResponse(Self.wrapped("once"), now: T.at(0), maxPerCreator: 10)
                let store = s.store
                let results = await concurrently(10) { _ in try await store.takeWrappedResponse(hash: "once", now: T.at(1)) }
                let taken = results.filter { if case .success(let r) = $0 { return r != nil }; return false }
                #expect(taken.count == 1)
                #expect(results.allSatisfy { if case .success = $0 { return true }; return false })
            }
        }

        @Test("a rewrap replaces a live response in one step; a spent or expired one is not replaced", arguments: Engines.all)
        func replace(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createWrappedResponse(Self.wrapped("old"), now: T.at(0), maxPerCreator: 10)
                #expect(try await s.store.replaceWrappedResponse(hash: "old", with: Self.wrapped("new", createdAt: 5), now: T.at(5)))
                #expect(try await s.store.wrappedResponse(hash: "old", now: T.at(5)) == nil)
                #expect(try await s.store.wrappedResponse(hash: "new", now: T.at(5)) == Self.wrapped("new", createdAt: 5))
                #expect(try await s.store.replaceWrappedResponse(hash: "old", with: Self.wrapped("newer"), now: T.at(6)) == false)
                #expect(try await s.store.wrappedResponse(hash: "newer", now: T.at(6)) == nil)
                #expect(try await s.store.replaceWrappedResponse(hash: "new", with: Self.wrapped("late"), now: T.at(100)) == false)
                #expect(try await s.store.wrappedResponse(hash: "late", now: T.at(0)) == nil)
            }
        }

        @Test("a creator holds at most the cap of live responses; expired ones do not count", arguments: Engines.all)
        func capped(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                for i in 0..<3 { try await s.store.createWrappedResponse(Self.wrapped("h\(i)"), now: T.at(0), maxPerCreator: 3) }
                await #expect(throws: TesseraError.self) {
                    try await s.store.createWrappedResponse(Self.wrapped("h3"), now: T.at(0), maxPerCreator: 3)
                }
                #expect(try await s.store.wrappedResponse(hash: "h3", now: T.at(0)) == nil)
                // Another identity has its own allowance.
                try await s.store.createWrappedResponse(Self.wrapped("o1", creator: "p-other000001"), now: T.at(0), maxPerCreator: 3)
                // Once the first three expire, the creator may wrap again.
                try await s.store.createWrappedResponse(Self.wrapped("h4", createdAt: 61), now: T.at(61), maxPerCreator: 3)
                #expect(try await s.store.wrappedResponse(hash: "h4", now: T.at(61)) != nil)
            }
        }

        @Test("a taken response is put back once (not over one stored since); live ones are counted per creator", arguments: Engines.all)
        func restoreAndCount(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createWrappedResponse(Self.wrapped("h1"), now: T.at(0), maxPerCreator: 10)
                try await s.store.createWrappedResponse(Self.wrapped("h2", ttl: 10), now: T.at(0), maxPerCreator: 10)
                try await s.store.createWrappedResponse(Self.wrapped("o1", creator: "p-other000001"), now: T.at(0), maxPerCreator: 10)
                #expect(try await s.store.liveWrappedResponses(creator: "p-creator0001", now: T.at(5)) == 2)
                #expect(try await s.store.liveWrappedResponses(creator: "p-creator0001", now: T.at(10)) == 1)
                #expect(try await s.store.liveWrappedResponses(creator: "p-nobody00001", now: T.at(0)) == 0)
                let taken = try #require(try await s.store.takeWrappedResponse(hash: "h1", now: T.at(1)))
                try await s.store.restoreWrappedResponse(taken)
                #expect(try await s.store.wrappedResponse(hash: "h1", now: T.at(1)) == taken)
                try await s.store.restoreWrappedResponse(Self.wrapped("h1", createdAt: 7))
                #expect(try await s.store.wrappedResponse(hash: "h1", now: T.at(1)) == taken)
            }
        }

        @Test("purging removes the responses that expired before the cutoff, and counts them", arguments: Engines.all)
        func purge(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.createWrappedResponse(Self.wrapped("short", ttl: 10), now: T.at(0), maxPerCreator: 10)
                try await s.store.createWrappedResponse(Self.wrapped("long", ttl: 100), now: T.at(0), maxPerCreator: 10)
                #expect(try await s.store.purgeExpiredWrappedResponses(before: T.at(50)) == 1)
                #expect(try await s.store.purgeExpiredWrappedResponses(before: T.at(50)) == 0)
                #expect(try await s.store.wrappedResponse(hash: "long", now: T.at(50)) != nil)
            }
        }

        @Test("of concurrent wraps by one creator, no more than the cap are stored", arguments: Engines.all)
        func cappedUnderRace(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let store = s.store
                let results = await concurrently(10) { i in
                    try await store.createWrappedResponse(Self.wrapped("r\(i)"), now: T.at(0), maxPerCreator: 4)
                }
                let stored = results.filter { if case .success = $0 { return true }; return false }
                #expect(stored.count == 4)
            }
        }
    }
}
