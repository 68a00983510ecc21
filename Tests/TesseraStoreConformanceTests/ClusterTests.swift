// Nodes and work claims: node records read back and keep heartbeats; a claim on a piece of
// background work is held by exactly one node at a time, and becomes free when it is released,
// when it expires, or when its holder stops sending heartbeats (a dead node's work is taken
// over), also when nodes race for it through stores of their own.
import Foundation
import Testing
import TesseraCore
import TesseraStore

extension StoreConformance {
    @Suite("Nodes and work claims")
    struct Cluster {
        static func node(_ id: String, address: String, at seconds: Double = 0) -> NodeRecord {
            NodeRecord(id: id, hostname: "host-\(id)", apiAddress: address, version: "1.0", startedAt: T.at(seconds), heartbeatAt: T.at(seconds))
        }

        @Test("node records read back ordered by address; heartbeats move; stale records are removed", arguments: Engines.all)
        func nodes(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.registerNode(Self.node("b", address: "https://10.0.0.2:8200"))
                try await s.store.registerNode(Self.node("a", address: "https://10.0.0.1:8200"))
                #expect(try await s.store.nodes().map(\.id) == ["a", "b"])
                #expect(try await s.store.nodes().first == Self.node("a", address: "https://10.0.0.1:8200"))
                #expect(try await s.store.heartbeat(nodeId: "a", at: T.at(30)))
                #expect(try await s.store.heartbeat(nodeId: "ghost", at: T.at(30)) == false)
                #expect(try await s.store.nodes().first?.heartbeatAt == T.at(30))
                // Registering again replaces the record (a restart with the same id).
                try await s.store.registerNode(Self.node("b", address: "https://10.0.0.3:8200", at: 40))
                #expect(try await s.store.nodes().map(\.apiAddress) == ["https://10.0.0.1:8200", "https://10.0.0.3:8200"])
                #expect(try await s.store.removeNodes(heartbeatBefore: T.at(35)) == 1)
                #expect(try await s.store.nodes().map(\.id) == ["b"])
            }
        }

        @Test("a claim is held by one live node until it is released or expires", arguments: Engines.all)
        func claims(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                for id in ["a", "b"] { try await s.store.registerNode(Self.node(id, address: id, at: 100)) }
                let dead = T.at(90)
                func claim(_ node: String, until: Double, now: Double) async throws -> Bool {
                    try await s.store.claim(kind: "lease", key: "db/L1", node: node, until: T.at(until), now: T.at(now), deadBefore: dead)
                }
                #expect(try await claim("a", until: 160, now: 100))
                #expect(try await claim("b", until: 170, now: 110) == false)
                #expect(try await claim("a", until: 200, now: 120), "the holder extends its claim")
                #expect(try await claim("b", until: 230, now: 199) == false)
                // Another kind or key is another piece of work.
                #expect(try await s.store.claim(kind: "rotation", key: "db/L1", node: "b", until: T.at(300), now: T.at(120), deadBefore: dead))
                #expect(try await s.store.claim(kind: "lease", key: "db/L2", node: "b", until: T.at(300), now: T.at(120), deadBefore: dead))
                // Only the holder's release counts.
                try await s.store.releaseClaim(kind: "lease", key: "db/L1", node: "b")
                #expect(try await claim("b", until: 230, now: 130) == false)
                try await s.store.releaseClaim(kind: "lease", key: "db/L1", node: "a")
                #expect(try await claim("b", until: 230, now: 130))
                // Expired: the next claimer takes it.
                #expect(try await claim("a", until: 300, now: 231))
            }
        }

        @Test("a dead node's claims are taken over: its heartbeat stopped, or its record is gone", arguments: Engines.all)
        func deadHolder(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                try await s.store.registerNode(Self.node("a", address: "a", at: 100))
                try await s.store.registerNode(Self.node("b", address: "b", at: 100))
                #expect(try await s.store.claim(kind: "k", key: "x", node: "a", until: T.at(1000), now: T.at(100), deadBefore: T.at(90)))
                #expect(try await s.store.claim(kind: "k", key: "x", node: "b", until: T.at(1000), now: T.at(105), deadBefore: T.at(95)) == false)
                _ = try await s.store.heartbeat(nodeId: "b", at: T.at(120))
                // a's last heartbeat (100) is before the cutoff (110): a is dead.
                #expect(try await s.store.claim(kind: "k", key: "x", node: "b", until: T.at(1000), now: T.at(120), deadBefore: T.at(110)))
                #expect(try await s.store.claim(kind: "k", key: "y", node: "ghost", until: T.at(1000), now: T.at(120), deadBefore: T.at(110)))
                #expect(try await s.store.claim(kind: "k", key: "y", node: "b", until: T.at(1000), now: T.at(121), deadBefore: T.at(110)),
                        "a holder without a node record is dead")
            }
        }

        @Test("of nodes racing for one claim, exactly one gets it", arguments: Engines.all)
        func race(engine: any StoreUnderTest) async throws {
            try await withStore(engine) { s in
                var stores: [any Store] = [s.store]
                for _ in 0..<3 { if let other = try await s.openAnotherStore?() { stores.append(other) } }
                let all = stores
                for n in 0..<8 { try await s.store.registerNode(Self.node("n\(n)", address: "n\(n)", at: 100)) }
                for round in 0..<10 {
                    let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
                        for n in 0..<8 {
                            group.addTask {
                                try await all[n % all.count].claim(kind: "lease", key: "race-\(round)", node: "n\(n)", until: T.at(500),
                                                                   now: T.at(100), deadBefore: T.at(50))
                            }
                        }
                        return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                    }
                    #expect(winners == 1)
                }
                for other in all.dropFirst() { try await other.close() }
            }
        }
    }
}
