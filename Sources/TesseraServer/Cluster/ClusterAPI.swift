// The cluster endpoints, as Vault answers them: `sys/leader` (unauthenticated) and
// `sys/ha-status` (authenticated, system rule on /sys/cluster). Every Tessera node serves reads
// and writes, so on a shared store (PostgreSQL) each node answers as an active node: it is its
// own leader, and `ha-status` lists every node with `active_node` true while its heartbeat is
// fresh. On SQLite (one node) `ha_enabled` is false, as Vault's non-HA answer.
import Foundation
import Hummingbird
import TesseraCore

extension VaultSysAPI {
    var haEnabled: Bool { tessera.store.changeFeed != nil }

    func leader() -> Response {
        // The full superset of Vault's fields: typed clients that expect each one keep working.
        Responses.json(.obj(("ha_enabled", .bool(haEnabled)), ("is_self", .bool(haEnabled)),
                            ("active_time", haEnabled ? JSON.date(tessera.node.startedAt) : .string("0001-01-01T00:00:00Z")),
                            ("leader_address", .string(haEnabled ? tessera.node.apiAddress : "")),
                            ("leader_cluster_address", .string("")),
                            ("performance_standby", .bool(false)), ("performance_standby_last_remote_wal", .int(0)),
                            ("raft_committed_index", .int(0)), ("raft_applied_index", .int(0))))
    }

    func haStatus(_ vr: VaultRequest) async throws -> Response {
        let members = try await tessera.run(vr.pipelineCall(action: "ha_status", auditPath: SystemPath.cluster.value,
                                                            checks: [AccessCheck(.read, .system, SystemPath.cluster)])) { _ in
            try await tessera.members()
        }
        let nodes = members.map { m in
            JSON.obj(("hostname", .string(m.node.hostname)), ("api_address", .string(m.node.apiAddress)),
                     ("cluster_address", .string("")), ("active_node", .bool(m.alive)),
                     ("last_echo", m.isSelf ? .null : JSON.date(m.node.heartbeatAt)),
                     ("version", .string(m.node.version)), ("node_id", .string(m.node.id)),
                     ("started_at", JSON.date(m.node.startedAt)), ("is_self", .bool(m.isSelf)))
        }
        return VaultResponses.doubled(.obj(("nodes", .array(nodes))), requestId: vr.context.requestId)
    }
}
