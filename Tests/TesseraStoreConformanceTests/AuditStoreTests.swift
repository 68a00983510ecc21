// The audit trail's storage and its anchor: batches are appended atomically with the sequence
// numbers the writer assigned (a taken number refuses the whole batch), events read back
// exactly, in sequence order, through `lastEvent`, `scan` and every `query` filter; the anchor
// kept with the data only ever moves forward, also under concurrent writers.
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Audit store")
    struct Audit {
        @Test("an empty trail has no last event and scans empty", arguments: Engines.all)
        func empty(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                #expect(try await s.audit.lastEvent() == nil)
                #expect(try await s.audit.scan(afterSequence: 0, limit: 10).isEmpty)
                try await s.audit.append([])
                #expect(try await s.audit.lastEvent() == nil)
            }
        }

        @Test("events read back exactly as written, every field included", arguments: Engines.all)
        func roundTrip(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                var odd = Make.event(1, time: T.at(0.5), path: "/prod/ünïcödé/😀", result: .error)
                odd.interface = .vault
                odd.error = "quote ' and \"double\" and newline\n"
                odd.parameters = [:]
                let events = [odd, Make.event(2), Make.event(3, result: .denied)]
                try await s.audit.append(events)
                #expect(try await s.audit.scan(afterSequence: 0, limit: 10) == events)
                #expect(try await s.audit.lastEvent() == events.last)
            }
        }

        /// Numbers a batch after the head and links it, as the audit writer does (with a
        /// readable stand-in for the HMAC).
        static let chain: @Sendable (AuditAnchor?, [AuditEvent]) throws -> [AuditEvent] = { head, events in
            var seq = head?.sequence ?? 0
            var prev = head?.hash ?? ""
            return events.map { event in
                var e = event
                seq += 1
                e.sequence = seq
                e.prevHash = prev
                e.hash = "h\(seq)<\(prev)"
                prev = e.hash
                return e
            }
        }

        static func expectLinked(_ events: [AuditEvent]) {
            var prev = ""
            for (index, e) in events.enumerated() {
                #expect(e.sequence == Int64(index + 1))
                #expect(e.prevHash == prev)
                prev = e.hash
            }
        }

        @Test("a chained batch starts after the stored head and links to it", arguments: Engines.all)
        func chainedAfterHead(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let first = try await s.audit.appendChained([Make.event(0), Make.event(0)], known: nil, chain: Self.chain)
                #expect(first.map(\.sequence) == [1, 2])
                let second = try await s.audit.appendChained([Make.event(0)], known: nil, chain: Self.chain)
                #expect(second.map(\.sequence) == [3])
                let stored = try await s.audit.scan(afterSequence: 0, limit: 10)
                #expect(stored == first + second)
                Self.expectLinked(stored)
                #expect(try await s.audit.appendChained([], known: nil, chain: Self.chain).isEmpty)
            }
        }

        @Test("a writer that knows of events past the stored end continues after them, leaving the gap", arguments: Engines.all)
        func chainedAfterKnown(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                _ = try await s.audit.appendChained([Make.event(0)], known: nil, chain: Self.chain)
                let after = try await s.audit.appendChained([Make.event(0)], known: AuditAnchor(sequence: 7, hash: "h7"), chain: Self.chain)
                #expect(after.first?.sequence == 8 && after.first?.prevHash == "h7")
                // A writer behind the stored head (another node moved it on) follows the store.
                let behind = try await s.audit.appendChained([Make.event(0)], known: AuditAnchor(sequence: 1, hash: "old"), chain: Self.chain)
                #expect(behind.first?.sequence == 9 && behind.first?.prevHash == after.first?.hash)
            }
        }

        @Test("a chained batch whose hashing fails writes nothing", arguments: Engines.all)
        func chainedFailure(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let failing: @Sendable (AuditAnchor?, [AuditEvent]) throws -> [AuditEvent] = { _, _ in throw TesseraError.sealed }
                await #expect(throws: TesseraError.self) {
                    _ = try await s.audit.appendChained([Make.event(0)], known: nil, chain: failing)
                }
                let last = try await s.audit.lastEvent()
                #expect(last == nil)
            }
        }

        @Test("concurrent writers (nodes) form one gapless chain with every event", arguments: Engines.all)
        func chainedConcurrently(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                // Each writer opens a store of its own where the engine allows it (another node).
                var writers: [any AuditStore] = [s.audit]
                for _ in 0..<3 { if let other = try await s.openAnotherAudit?() { writers.append(other) } }
                let all = writers
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (w, writer) in all.enumerated() {
                        group.addTask {
                            for k in 0..<20 {
                                var events = [Make.event(0), Make.event(0)]
                                for i in events.indices { events[i].requestId = "w\(w)-\(k)-\(i)" }
                                _ = try await writer.appendChained(events, known: nil, chain: Self.chain)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let stored = try await s.audit.scan(afterSequence: 0, limit: 1000)
                #expect(stored.count == all.count * 40)
                Self.expectLinked(stored)
                #expect(Set(stored.map(\.requestId)).count == stored.count)
                for other in all.dropFirst() { try await other.close() }
            }
        }

        @Test("batches append in sequence order, and scan pages through them", arguments: Engines.all)
        func scanOrder(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.audit.append((1...3).map { Make.event($0) })
                try await s.audit.append((4...250).map { Make.event($0) })
                try await s.audit.append([Make.event(251)])
                #expect(try await s.audit.lastEvent()?.sequence == 251)
                var seen: [Int64] = []
                var after: Int64 = 0
                while true {
                    let page = try await s.audit.scan(afterSequence: after, limit: 40)
                    guard let last = page.last else { break }
                    #expect(page.count <= 40)
                    seen += page.map(\.sequence)
                    after = last.sequence
                }
                #expect(seen == Array(1...251))
                #expect(try await s.audit.scan(afterSequence: 249, limit: 10).map(\.sequence) == [250, 251])
            }
        }

        @Test("a batch holding a sequence number already written is refused whole", arguments: Engines.all)
        func takenSequenceRefusesBatch(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.audit.append((1...5).map { Make.event($0) })
                let small = [Make.event(6), Make.event(7), Make.event(5)]
                #expect(await outcome { try await s.audit.append(small) }.isFailure)
                let large = (6...200).map { Make.event($0) } + [Make.event(3)]
                #expect(await outcome { try await s.audit.append(large) }.isFailure)
                #expect(try await s.audit.lastEvent()?.sequence == 5)
                #expect(try await s.audit.scan(afterSequence: 0, limit: 1000).map(\.sequence) == [1, 2, 3, 4, 5])
                #expect(try await s.audit.scan(afterSequence: 4, limit: 1).first == Make.event(5))
            }
        }

        @Test("of concurrent batches with the same sequence numbers, exactly one is written", arguments: Engines.all)
        func racingWriters(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let audit = s.audit
                let results = await concurrently(6) { writer in
                    try await audit.append((1...20).map { Make.event($0, accessId: "p-writer\(writer)") })
                }
                #expect(results.filter { (try? $0.get()) != nil }.count == 1)
                let stored = try await s.audit.scan(afterSequence: 0, limit: 100)
                #expect(stored.map(\.sequence) == Array(1...20))
                #expect(Set(stored.map(\.accessId)).count == 1)
            }
        }

        /// A trail with variety in every field that a query filters on.
        func filled(_ audit: any AuditStore) async throws -> [AuditEvent] {
            let events = [
                Make.event(1, accessId: "p-alice", action: "get_secret_value", path: "/prod/db/password"),
                Make.event(2, accessId: "p-bob", action: "get_secret_value", path: "/prod/db/password", result: .denied),
                Make.event(3, accessId: "p-alice", action: "create_secret", path: "/prod/db-admin"),
                Make.event(4, accessId: "p-alice", action: "list_items", path: "/prod/db_x/y"),
                Make.event(5, accessId: "p-carol", action: "get_secret_value", path: "/dev/app", result: .error),
                Make.event(6, accessId: "p-bob", action: "auth", path: ""),
                Make.event(7, accessId: "p-alice", action: "get_secret_value", path: "/prod/db/user"),
            ]
            try await audit.append(events)
            return events
        }

        func query(_ audit: any AuditStore, _ q: AuditQuery) async throws -> [Int64] {
            try await audit.query(q).map(\.sequence)
        }

        @Test("query filters by path prefix (bytes), actor, action and result, each narrowing the others",
              arguments: Engines.all)
        func queryFilters(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let events = try await filled(s.audit)
                #expect(try await s.audit.query(AuditQuery()) == events)
                #expect(try await query(s.audit, AuditQuery(pathPrefix: "/prod/db/")) == [1, 2, 7])
                #expect(try await query(s.audit, AuditQuery(pathPrefix: "/prod/db")) == [1, 2, 3, 4, 7])
                #expect(try await query(s.audit, AuditQuery(pathPrefix: "/prod/db_")) == [4])
                #expect(try await query(s.audit, AuditQuery(pathPrefix: "")) == [1, 2, 3, 4, 5, 6, 7])
                #expect(try await query(s.audit, AuditQuery(accessId: "p-bob")) == [2, 6])
                #expect(try await query(s.audit, AuditQuery(action: "get_secret_value")) == [1, 2, 5, 7])
                #expect(try await query(s.audit, AuditQuery(result: .denied)) == [2])
                #expect(try await query(s.audit, AuditQuery(result: .error)) == [5])
                #expect(try await query(s.audit, AuditQuery(pathPrefix: "/prod/", accessId: "p-alice", action: "get_secret_value",
                                                            result: .allowed)) == [1, 7])
                #expect(try await query(s.audit, AuditQuery(accessId: "p-nobody")).isEmpty)
            }
        }

        @Test("query filters by time, both bounds included, and pages by sequence and limit", arguments: Engines.all)
        func queryTimeAndPaging(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                _ = try await filled(s.audit)    // event n happened at T.at(n)
                #expect(try await query(s.audit, AuditQuery(since: T.at(3))) == [3, 4, 5, 6, 7])
                #expect(try await query(s.audit, AuditQuery(until: T.at(2))) == [1, 2])
                #expect(try await query(s.audit, AuditQuery(since: T.at(2), until: T.at(4))) == [2, 3, 4])
                #expect(try await query(s.audit, AuditQuery(since: T.at(2.5), until: T.at(2.75))).isEmpty)
                #expect(try await query(s.audit, AuditQuery(limit: 3)) == [1, 2, 3])
                #expect(try await query(s.audit, AuditQuery(limit: 3, afterSequence: 3)) == [4, 5, 6])
                #expect(try await query(s.audit, AuditQuery(accessId: "p-alice", limit: 2, afterSequence: 1)) == [3, 4])
            }
        }

        @Test("the audit anchor starts empty and reads back as set", arguments: Engines.all)
        func anchor(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                #expect(try await s.store.auditAnchor() == nil)
                try await s.store.setAuditAnchor(AuditAnchor(sequence: 10, hash: "h10"))
                #expect(try await s.store.auditAnchor() == AuditAnchor(sequence: 10, hash: "h10"))
                try await s.store.setAuditAnchor(AuditAnchor(sequence: 11, hash: "h11"))
                #expect(try await s.store.auditAnchor() == AuditAnchor(sequence: 11, hash: "h11"))
            }
        }

        @Test("the audit anchor only moves forward: an older or equal sequence is ignored", arguments: Engines.all)
        func anchorForwardOnly(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.setAuditAnchor(AuditAnchor(sequence: 20, hash: "h20"))
                try await s.store.setAuditAnchor(AuditAnchor(sequence: 19, hash: "h19"))
                try await s.store.setAuditAnchor(AuditAnchor(sequence: 20, hash: "other"))
                try await s.store.setAuditAnchor(AuditAnchor(sequence: 0, hash: ""))
                #expect(try await s.store.auditAnchor() == AuditAnchor(sequence: 20, hash: "h20"))
            }
        }

        @Test("of concurrent anchor moves, the highest sequence is what stays", arguments: Engines.all)
        func anchorUnderRace(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                let store = s.store
                let order = [7, 3, 19, 11, 2, 17, 13, 5, 23, 1, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67]
                let results = await concurrently(order.count) { i in
                    try await store.setAuditAnchor(AuditAnchor(sequence: Int64(order[i]), hash: "h\(order[i])"))
                }
                #expect(results.allSatisfy { (try? $0.get()) != nil })
                let anchor = try await s.store.auditAnchor()
                #expect(anchor == AuditAnchor(sequence: 67, hash: "h67"))
            }
        }
    }
}
