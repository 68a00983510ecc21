// Producers and leases: a lease is inserted as pending with the producer's quota checked in the
// same write, so that racing issues never overshoot it (on any number of nodes); the states a
// lease moves through; listing by id prefix; and the indexed queries that find due leases.
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Leases")
    struct Leases {
        /// A target and a producer on it, so that leases have something to belong to.
        func producer(_ store: any Store, _ path: String = "/db/ro", maxLeases: Int = 0) async throws -> Producer {
            if try await store.target(named: "pg") == nil { try await store.createTarget(Make.target("pg")) }
            let p = try Make.producer(path, target: "pg", maxLeases: maxLeases)
            try await store.createProducer(p)
            return p
        }

        @Test("a producer reads back as written, and producers are listed by path", arguments: Engines.all)
        func producers(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let b = try await producer(s.store, "/db/b", maxLeases: 3)
                let a = try await producer(s.store, "/db/a")
                #expect(try await s.store.producer(path: "/db/b") == b)
                #expect(try await s.store.producer(path: "/db/c") == nil)
                #expect(try await s.store.producers() == [a, b])
                #expect(await outcome { try await s.store.createProducer(b) } == .conflict)
            }
        }

        @Test("a producer needs an existing target", arguments: Engines.all)
        func producerNeedsTarget(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                #expect(await outcome {
                    try await s.store.createProducer(try Make.producer("/db/x", target: "missing"))
                }.isFailure)
                let stored = try await s.store.producer(path: "/db/x")
                #expect(stored == nil)
            }
        }

        @Test("a lease for a producer that does not exist (any more) is refused", arguments: Engines.all)
        func leaseNeedsProducer(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let p = try await producer(s.store, maxLeases: 5)
                #expect(try await s.store.deleteProducer(path: p.path.value))
                // What an issue that read the producer just before it was deleted does next.
                var admitted: [Outcome] = []
                for (id, limit) in [("db/ro/late", 5), ("db/ro/unlimited", 0)] {
                    admitted.append(await outcome {
                        guard try await s.store.insertLease(Make.lease(id, producer: p.path.value), limit: limit) else {
                            throw TesseraError.tooManyRequests("refused")
                        }
                    })
                }
                let orphans = try await s.store.leases(prefix: "db/ro/", state: nil, limit: 10)
                #expect(admitted.allSatisfy { $0.isFailure })
                #expect(orphans.isEmpty)
            }
        }

        @Test("a lease reads back as written", arguments: Engines.all)
        func roundTrip(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let p = try await producer(s.store)
                var lease = Make.lease("db/ro/AAA", producer: p.path.value)
                lease.lastRenewal = T.at(7)
                lease.attempts = 2
                lease.nextAttemptAt = T.at(8)
                lease.lastError = "previous error"
                #expect(try await s.store.insertLease(lease, limit: 0))
                #expect(try await s.store.lease(id: lease.id) == lease)
                #expect(try await s.store.lease(id: "db/ro/BBB") == nil)
            }
        }

        @Test("a second lease with the same id is refused", arguments: Engines.all)
        func duplicateId(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let p = try await producer(s.store, maxLeases: 10)
                let lease = Make.lease("db/ro/SAME", producer: p.path.value)
                #expect(try await s.store.insertLease(lease, limit: 10))
                var other = lease
                other.username = "someone_else"
                #expect(await outcome { _ = try await s.store.insertLease(other, limit: 10) } == .conflict)
                #expect(await outcome { _ = try await s.store.insertLease(other, limit: 0) } == .conflict)
                #expect(try await s.store.lease(id: lease.id)?.username == lease.username)
            }
        }

        @Test("the quota counts the producer's pending and active leases only", arguments: Engines.all)
        func quotaCountsLiveLeases(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let p = try await producer(s.store, maxLeases: 2)
                let other = try await producer(s.store, "/db/other")
                for (i, state) in [Lease.State.revoking, .revoked, .irrevocable].enumerated() {
                    let dead = Make.lease("db/ro/dead\(i)", producer: p.path.value, state: state)
                    #expect(try await s.store.insertLease(dead, limit: 0))
                }
                for i in 0..<3 {
                    #expect(try await s.store.insertLease(Make.lease("db/other/\(i)", producer: other.path.value), limit: 0))
                }
                #expect(try await s.store.insertLease(Make.lease("db/ro/one", producer: p.path.value), limit: 2))
                var two = Make.lease("db/ro/two", producer: p.path.value)
                #expect(try await s.store.insertLease(two, limit: 2))
                #expect(try await s.store.insertLease(Make.lease("db/ro/three", producer: p.path.value), limit: 2) == false)
                #expect(try await s.store.lease(id: "db/ro/three") == nil)
                // An active lease counts as a pending one does; a revoked one frees its place.
                two.state = .active
                try await s.store.updateLease(two)
                #expect(try await s.store.insertLease(Make.lease("db/ro/three", producer: p.path.value), limit: 2) == false)
                two.state = .revoked
                try await s.store.updateLease(two)
                #expect(try await s.store.insertLease(Make.lease("db/ro/three", producer: p.path.value), limit: 2))
            }
        }

        @Test("limit 0 means no limit", arguments: Engines.all)
        func noLimit(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let p = try await producer(s.store)
                for i in 0..<25 {
                    #expect(try await s.store.insertLease(Make.lease("db/ro/\(i)", producer: p.path.value), limit: 0))
                }
                #expect(try await s.store.countLeases(state: .pending) == 25)
            }
        }

        @Test("of N concurrent inserts against quota Q, exactly Q succeed", arguments: Engines.all)
        func quotaUnderRace(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let quota = 5, racers = 24
                let p = try await producer(s.store, maxLeases: quota)
                let store = s.store, producerPath = p.path.value
                let results = await concurrently(racers) { i in
                    try await store.insertLease(Make.lease("db/ro/race\(i)", producer: producerPath), limit: quota)
                }
                #expect(results.allSatisfy { (try? $0.get()) != nil })
                let admitted = results.enumerated().filter { (try? $0.element.get()) == true }.map(\.offset)
                #expect(admitted.count == quota)
                #expect(try await s.store.countLeases(state: .pending) == quota)
                let stored = try await s.store.leases(prefix: "db/ro/", state: nil, limit: 100).map(\.id)
                #expect(Set(stored) == Set(admitted.map { "db/ro/race\($0)" }))
            }
        }

        @Test("a lease moves pending → active → revoking → revoked with its retry state", arguments: Engines.all)
        func transitions(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let p = try await producer(s.store)
                var lease = Make.lease("db/ro/life", producer: p.path.value)
                #expect(try await s.store.insertLease(lease, limit: 1))
                lease.state = .active
                try await s.store.updateLease(lease)
                #expect(try await s.store.lease(id: lease.id) == lease)
                lease.expiresAt = T.at(7200)
                lease.lastRenewal = T.at(100)
                try await s.store.updateLease(lease)
                #expect(try await s.store.lease(id: lease.id) == lease)
                lease.state = .revoking
                lease.attempts = 3
                lease.nextAttemptAt = T.at(7300)
                lease.lastError = "connection refused"
                try await s.store.updateLease(lease)
                #expect(try await s.store.lease(id: lease.id) == lease)
                lease.state = .revoked
                lease.nextAttemptAt = nil
                lease.lastError = ""
                try await s.store.updateLease(lease)
                #expect(try await s.store.lease(id: lease.id) == lease)
                #expect(try await s.store.countLeases(state: .revoked) == 1)
                #expect(try await s.store.countLeases(state: .active) == 0)
            }
        }

        @Test("an update changes only the lease it names; the producer, user and issue time stay", arguments: Engines.all)
        func updateKeepsIdentity(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let p = try await producer(s.store)
                let a = Make.lease("db/ro/a", producer: p.path.value), b = Make.lease("db/ro/b", producer: p.path.value)
                #expect(try await s.store.insertLease(a, limit: 0))
                #expect(try await s.store.insertLease(b, limit: 0))
                var changed = a
                changed.state = .active
                changed.username = "renamed"
                changed.producer = "/db/elsewhere"
                changed.issuedAt = T.at(999)
                try await s.store.updateLease(changed)
                let stored = try await s.store.lease(id: a.id)
                #expect(stored?.state == .active)
                #expect(stored?.username == a.username)
                #expect(stored?.producer == a.producer)
                #expect(stored?.issuedAt == a.issuedAt)
                #expect(try await s.store.lease(id: b.id) == b)
            }
        }

        @Test("listing by prefix is ordered by id, matches bytes, and filters by state", arguments: Engines.all)
        func prefixListing(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let ro = try await producer(s.store, "/db/ro")
                let admin = try await producer(s.store, "/db/ro-admin")
                let under = try await producer(s.store, "/db/r_")
                let ids = ["db/ro/c", "db/ro/a", "db/ro/b"]
                for id in ids { #expect(try await s.store.insertLease(Make.lease(id, producer: ro.path.value), limit: 0)) }
                #expect(try await s.store.insertLease(Make.lease("db/ro-admin/z", producer: admin.path.value), limit: 0))
                #expect(try await s.store.insertLease(Make.lease("db/r_/y", producer: under.path.value, state: .active),
                                                      limit: 0))
                #expect(try await s.store.leases(prefix: "db/ro/", state: nil, limit: 10).map(\.id)
                        == ["db/ro/a", "db/ro/b", "db/ro/c"])
                #expect(try await s.store.leases(prefix: "db/ro", state: nil, limit: 10).map(\.id)
                        == ["db/ro-admin/z", "db/ro/a", "db/ro/b", "db/ro/c"])
                #expect(try await s.store.leases(prefix: "db/r_/", state: nil, limit: 10).map(\.id) == ["db/r_/y"])
                #expect(try await s.store.leases(prefix: "", state: .active, limit: 10).map(\.id) == ["db/r_/y"])
                #expect(try await s.store.leases(prefix: "db/ro/", state: .active, limit: 10).isEmpty)
                #expect(try await s.store.leases(prefix: "", state: nil, limit: 2).map(\.id) == ["db/r_/y", "db/ro-admin/z"])
            }
        }

        @Test("due leases: active past expiry and revoking past their retry time, by expiry, up to the limit",
              arguments: Engines.all)
        func dueLeases(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let p = try await producer(s.store)
                let now = T.at(1000)
                let leases: [Lease] = [
                    Make.lease("db/ro/active-past", producer: p.path.value, state: .active, expiresAt: T.at(900)),
                    Make.lease("db/ro/active-now", producer: p.path.value, state: .active, expiresAt: now),
                    Make.lease("db/ro/active-future", producer: p.path.value, state: .active, expiresAt: T.at(1001)),
                    Make.lease("db/ro/revoking-due", producer: p.path.value, state: .revoking, expiresAt: T.at(500),
                               nextAttemptAt: T.at(999)),
                    Make.lease("db/ro/revoking-later", producer: p.path.value, state: .revoking, expiresAt: T.at(400),
                               nextAttemptAt: T.at(1100)),
                    Make.lease("db/ro/pending-past", producer: p.path.value, state: .pending, expiresAt: T.at(100)),
                    Make.lease("db/ro/revoked-past", producer: p.path.value, state: .revoked, expiresAt: T.at(100)),
                    Make.lease("db/ro/irrevocable-past", producer: p.path.value, state: .irrevocable, expiresAt: T.at(100),
                               nextAttemptAt: T.at(100)),
                ]
                for l in leases { #expect(try await s.store.insertLease(l, limit: 0)) }
                #expect(try await s.store.dueLeases(now: now, limit: 10).map(\.id)
                        == ["db/ro/revoking-due", "db/ro/active-past", "db/ro/active-now"])
                #expect(try await s.store.dueLeases(now: now, limit: 2).map(\.id) == ["db/ro/revoking-due", "db/ro/active-past"])
                #expect(try await s.store.dueLeases(now: T.at(0), limit: 10).isEmpty)
            }
        }

        @Test("leases are counted by state", arguments: Engines.all)
        func counts(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let p = try await producer(s.store)
                let states: [Lease.State] = [.pending, .active, .active, .revoking, .revoked, .revoked, .revoked, .irrevocable]
                for (i, state) in states.enumerated() {
                    let lease = Make.lease("db/ro/\(i)", producer: p.path.value, state: state)
                    #expect(try await s.store.insertLease(lease, limit: 0))
                }
                for state in Lease.State.allCases {
                    #expect(try await s.store.countLeases(state: state) == states.filter { $0 == state }.count)
                }
            }
        }

        @Test("a producer with leases that are not revoked cannot be deleted", arguments: Engines.all)
        func deleteProducer(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let p = try await producer(s.store)
                for state in [Lease.State.pending, .active, .revoking, .irrevocable] {
                    var l = Make.lease("db/ro/" + state.rawValue, producer: p.path.value, state: state)
                    #expect(try await s.store.insertLease(l, limit: 0))
                    #expect(await outcome { _ = try await s.store.deleteProducer(path: p.path.value) } == .conflict)
                    l.state = .revoked
                    try await s.store.updateLease(l)
                }
                #expect(try await s.store.deleteProducer(path: p.path.value))
                #expect(try await s.store.producer(path: p.path.value) == nil)
                #expect(try await s.store.deleteProducer(path: p.path.value) == false)
            }
        }
    }
}
