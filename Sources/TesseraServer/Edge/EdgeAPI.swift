// The central side of the edge cache (`tessera agent`): what an agent near the workloads needs
// from this server to serve reads from its cache and still keep one audit trail.
//   GET  /v1/sys/edge/self     — the caller's own identity and rules (with the client's token), so
//                                that the agent can authorize that client locally, also offline.
//   GET  /v1/sys/edge/changes  — a server-sent event stream of changes, read from the audit trail
//                                (so it covers every node and resumes after a cursor without gaps).
//   POST /v1/sys/edge/audit    — the events of reads the agent served from its cache, recorded in
//                                the one trail with their original times and marked as edge-served.
// The stream and the submission need the agent's own grants on `sys-rule /sys/edge`.
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle
import TesseraCore
import TesseraEngines
import TesseraStore

struct EdgeAPI: Sendable {
    let tessera: Tessera

    static let requestHeader = HTTPField.Name(EdgeReadHint.requestHeader)!
    static let itemsHeader = HTTPField.Name(EdgeReadHint.itemsHeader)!
    /// The native verbs whose answers an agent may cache (the Vault KV reads mark themselves).
    static let cacheableNativeActions: Set<String> = ["get_secret_value", "get_rotated_secret_value"]
    /// The actions an agent may report: reads it served (or refused) from its cache, and the KV
    /// mount lookups it answered for a token during an outage.
    static let reportableActions: Set<String> = ["get_secret_value", "get_rotated_secret_value", "mount_preflight"]
    /// Events older than this are refused: an agent that was cut off longer has lost its claim
    /// to serve (its maximum staleness is far shorter).
    static let oldestReport: TimeInterval = 90 * 86_400
    static let maxEventsPerReport = 1000

    /// Answers a forwarded cacheable read with the items it returned.
    static func nameItems(_ hint: EdgeReadHint?, in response: inout Response) {
        guard let hint, response.status == .ok else { return }
        let items = hint.items
        guard !items.isEmpty else { return }
        response.headers[itemsHeader] = hint.headerValue
    }

    func handle(_ vr: VaultRequest) async throws -> Response {
        switch (vr.path, vr.operation) {
        case ("sys/edge/self", .read): return try await identity(vr)
        case ("sys/edge/changes", .read): return try await changes(vr)
        case ("sys/edge/audit", .write): return try await report(vr)
        default: throw TesseraError.notFound("unsupported path")
        }
    }

    // MARK: the caller's identity

    /// The caller's identity, rules and token expiry. Any identity may read its own: it is what
    /// `explain` and `sys/capabilities-self` already answer piecemeal.
    func identity(_ vr: VaultRequest) async throws -> Response {
        var call = vr.pipelineCall(action: "edge_resolve_identity", auditPath: "/sys/edge/self")
        // The agent asks on its client's behalf, after forwarding the read that spent a use.
        call.spendsTokenUse = false
        let principal = try await tessera.run(call) { caller in caller.principal }
        guard let principal else { throw TesseraError.unauthorized("a token is required") }
        let a = principal.authorizer
        let rules = a.rules.map { rule in
            JSON.obj(("type", .string(rule.type.rawValue)), ("path", .string(rule.pattern.description)),
                     ("capabilities", .strings(Capability.allCases.filter { rule.capabilities.contains($0) }.map(\.rawValue))))
        }
        var expiry: [Date] = []
        if let t = principal.token?.expiresAt { expiry.append(t) }
        if let e = principal.accessExpires { expiry.append(e) }
        let id = principal.identity
        return Responses.json(.obj(
            ("auth_method_type", .string(id.authMethodType)), ("access_id", .string(id.accessId)),
            ("auth_method_name", .string(id.authMethodName)), ("roles", .strings(id.roleNames)),
            ("rules", .array(rules)), ("rule_roles", .strings(a.ruleRoles)), ("is_root", .bool(a.isRoot)),
            ("expires_at_us", expiry.min().map { .int(Int64(InputNumber.micros($0))) } ?? .null),
            ("uses_limited", .bool(principal.token?.usesLeft != nil))))
    }

    // MARK: the change stream

    /// What a change means to an edge cache: the values under a path, or who may read what.
    static func kind(of action: String) -> String? {
        if accessActions.contains(action) { return "access" }
        if mountActions.contains(action) { return "mounts" }
        if readActions.contains(action) || action.hasPrefix("get_") || action.hasPrefix("list_") || action.hasPrefix("edge_") { return nil }
        return "item"
    }

    static let accessActions: Set<String> = [
        "revoke_token", "token_revoke_self", "create_role", "delete_role", "set_role_rule", "delete_role_rule",
        "create_assoc_role_auth_method", "create_auth_method", "update_auth_method", "delete_auth_method",
        "update_auth_method_role", "delete_auth_method_role", "set_policy",
    ]
    /// A mount table change remaps Vault paths onto items: every cached Vault answer goes.
    static let mountActions: Set<String> = ["create_mount", "delete_mount", "move_mount"]
    static let readActions: Set<String> = [
        "audit_query", "audit_verify", "auth", "explain", "ha_status", "key_status", "lookup_lease", "mount_preflight",
        "read_metrics", "rekey_status", "token_lookup_self", "token_renew_self", "validate_token", "renew_lease",
        "usc_get", "usc_list", "backup",
    ]

    /// `GET sys/edge/changes?after=N`: one `hello` event with the trail's head, then a `change`
    /// event `{"seq","path","action","kind"}` for every change recorded after N (or after the
    /// head when N is absent), and a comment every 5 s so that a dead connection is noticed.
    func changes(_ vr: VaultRequest) async throws -> Response {
        let after = try vr.query["after"].map { try InputNumber.int(text: $0, field: "after", in: 0...Int(Int64.max)) }
        var call = vr.pipelineCall(action: "edge_subscribe", auditPath: SystemPath.edge.value,
                                   checks: [AccessCheck(.read, .system, SystemPath.edge)])
        if let after { call.parameters["after"] = String(after) }
        let store = tessera.auditStore
        let head = try await tessera.run(call) { _ in try await store.lastEvent()?.sequence ?? 0 }
        let start = Int64(after ?? Int(head))
        let t = tessera
        let credentials = vr.credentials
        let client = vr.context.clientAddress
        var headers: HTTPFields = [.contentType: "text/event-stream"]
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await writer.write(ByteBuffer(string: "event: hello\ndata: {\"head\":\(head)}\n\n"))
            var cursor = start
            var lastWrite = ContinuousClock.now
            var lastCheck = ContinuousClock.now
            let opened = ContinuousClock.now
            var caughtUp = false
            // The stream lives at most an hour, and its caller is checked again every 10 s: a
            // revoked token or a removed grant ends it.
            while !Task.isCancelled, !t.seal.isSealed, !Task.isShuttingDownGracefully, ContinuousClock.now - opened < .seconds(3600) {
                if ContinuousClock.now - lastCheck > .seconds(10) {
                    guard await Self.mayFollow(t, credentials, client: client) else { break }
                    lastCheck = ContinuousClock.now
                }
                let events = try await store.scan(afterSequence: cursor, limit: 500)
                var out = ""
                for e in events {
                    cursor = e.sequence
                    guard e.result != .denied, let kind = Self.kind(of: e.action) else { continue }
                    let line = JSON.obj(("seq", .int(e.sequence)), ("path", .string(e.path)), ("action", .string(e.action)),
                                        ("kind", .string(kind))).serialized
                    out += "event: change\nid: \(e.sequence)\ndata: \(line)\n\n"
                }
                // A ping says "nothing else until now": at once when the replay is done, then
                // whenever 5 s passed without a write (the scan is caught up: under 500 events).
                if events.count < 500, !caughtUp || ContinuousClock.now - lastWrite > .seconds(5) {
                    caughtUp = true
                    out += ": ping \(cursor)\n\n"
                }
                if !out.isEmpty {
                    try await writer.write(ByteBuffer(string: out))
                    lastWrite = ContinuousClock.now
                }
                if events.count < 500 { try await Task.sleep(for: .milliseconds(50)) }
            }
            try await writer.finish(nil)
        })
    }

    /// Whether the stream's caller still holds a valid token with `read` on `sys-rule /sys/edge`.
    static func mayFollow(_ t: Tessera, _ credentials: Credentials, client: String) async -> Bool {
        let principal: Principal?
        switch credentials {
        case .token(let token): principal = try? await t.access.principal(token: token, clientAddress: client, spendingUse: false)
        case .accessKey(let id, let key): principal = try? await t.access.principal(accessId: id, accessKey: key, clientAddress: client)
        case .none: principal = nil
        }
        return principal?.authorizer.check(.read, on: SystemPath.edge, type: .system).isAllowed ?? false
    }

    // MARK: reports of reads served from the cache

    struct Report: Decodable {
        var events: [EdgeReadEvent]
    }

    /// Records each reported event as the agent saw it (time, client identity, outcome), plus who
    /// reported it. The whole report is checked first: a bad event refuses the report, and
    /// nothing of it is recorded.
    func report(_ vr: VaultRequest) async throws -> Response {
        let call = vr.pipelineCall(action: "edge_audit_report", auditPath: SystemPath.edge.value,
                                   checks: [AccessCheck(.create, .system, SystemPath.edge)])
        let audit = tessera.audit
        let now = tessera.now()
        let body = Data(vr.body.readableBytesView)
        // The caller is checked first; only an agent's report is decoded and validated.
        let count = try await tessera.run(call) { caller in
            let report: Report
            do {
                report = try JSONDecoder().decode(Report.self, from: body)
            } catch {
                throw TesseraError.badRequest("the report must be {\"events\": [...]} with every event field")
            }
            guard report.events.count <= Self.maxEventsPerReport else {
                throw TesseraError.badRequest("at most \(Self.maxEventsPerReport) events per report")
            }
            var events: [AuditEvent] = []
            for e in report.events { events.append(try Self.validated(e, now: now)) }
            caller.notes.set("events", String(events.count))
            let agent = caller.principal?.identity
            for var event in events {
                event.parameters["served_by"] = "edge"
                event.parameters["edge_agent"] = agent.map { $0.authMethodName + " (" + $0.accessId + ")" } ?? ""
                event.parameters["edge_reported_at"] = JSON.formatDate(now)
                try await audit.record(event)
            }
            return events.count
        }
        return Responses.json(.obj(("recorded", .int(Int64(count)))))
    }

    static func validated(_ e: EdgeReadEvent, now: Date) throws -> AuditEvent {
        func text(_ s: String, _ field: String, max: Int = 256) throws -> String {
            guard s.utf8.count <= max, !s.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
                throw TesseraError.badRequest("event field \(field) is too long or has control characters")
            }
            return s
        }
        let micros = try InputNumber.int(e.timeMicros, field: "time_us", in: 0...(InputNumber.maxEpochSeconds * 1_000_000))
        let time = Date(timeIntervalSince1970: Double(micros) / 1_000_000)
        guard time <= now.addingTimeInterval(300), time >= now.addingTimeInterval(-oldestReport) else {
            throw TesseraError.badRequest("event time is outside the accepted window")
        }
        guard reportableActions.contains(e.action) else { throw TesseraError.badRequest("an agent reports only cached reads") }
        guard let interface = Interface(rawValue: e.interface), interface == .vault || interface == .native else {
            throw TesseraError.badRequest("event interface must be vault or native")
        }
        guard let result = AuditResult(rawValue: e.result) else { throw TesseraError.badRequest("event result must be allowed, denied or error") }
        let status = try InputNumber.int(e.status, field: "status", in: 100...599)
        var event = AuditEvent(time: time, requestId: try text(e.requestId, "request_id", max: 64), interface: interface,
                               authMethodType: try text(e.authMethodType, "auth_method_type", max: 32),
                               accessId: try text(e.accessId, "access_id", max: 80), actorName: try text(e.actorName, "actor_name"),
                               clientAddress: try text(e.clientAddress, "client_address", max: 64), action: e.action,
                               path: try text(e.path, "path", max: 1024), result: result, status: status,
                               error: try text(e.error ?? "", "error", max: 512))
        if let cache = e.cache { event.parameters["edge_cache"] = try text(cache, "cache", max: 16) }
        if let age = e.ageSeconds {
            event.parameters["edge_age_seconds"] = String(try InputNumber.int(age, field: "age_seconds", in: 0...InputNumber.maxSeconds))
        }
        return event
    }
}
