// This node's record in the shared store: registered at start, a heartbeat every
// `heartbeatInterval`, and the records of long-dead nodes pruned. Other nodes take over the
// background work of a node whose heartbeat is older than `WorkClaims.deadAfter`.
import Foundation
import Logging
import TesseraCore
import TesseraStore

extension Tessera {
    static let heartbeatInterval: Duration = .seconds(2)
    /// Records of nodes silent for this long are removed from `operator members`.
    static let forgetNodesAfter: TimeInterval = 24 * 3600

    /// Registers this node. On SQLite one process owns the store, so every other record is of
    /// a previous process and is removed (its claims are then free at once); on PostgreSQL the
    /// record of this node's previous run (same host and address) is.
    func registerNode() async throws {
        for other in try await store.nodes() where other.id != node.id {
            if store.changeFeed == nil || (other.hostname == node.hostname && other.apiAddress == node.apiAddress) {
                try await store.removeNode(id: other.id)
            }
        }
        var record = node
        record.heartbeatAt = now()
        try await store.registerNode(record)
    }

    /// Sends heartbeats until cancelled; re-registers if another node removed the record.
    public func runHeartbeat() async {
        var lastPrune = Date.distantPast
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.heartbeatInterval)
            do {
                let t = now()
                if try await store.heartbeat(nodeId: node.id, at: t) == false {
                    logger.warning("this node's record was gone (taken for dead); registering again")
                    var record = node
                    record.heartbeatAt = t
                    try await store.registerNode(record)
                }
                if t.timeIntervalSince(lastPrune) > 600 {
                    _ = try await store.removeNodes(heartbeatBefore: t.addingTimeInterval(-Self.forgetNodesAfter))
                    lastPrune = t
                }
            } catch {
                // Cancelled at shutdown: not a failure.
                if Task.isCancelled { return }
                logger.warning("heartbeat failed", metadata: ["reason": "\(Tessera.classify(error, logger: logger).message)"])
            }
        }
    }

    /// The nodes sharing the store, with whether each is alive (heartbeat within `deadAfter`).
    public func members() async throws -> [(node: NodeRecord, alive: Bool, isSelf: Bool)] {
        let cutoff = now().addingTimeInterval(-claims.deadAfter)
        return try await store.nodes().map { ($0, $0.heartbeatAt >= cutoff, $0.id == node.id) }
    }
}
