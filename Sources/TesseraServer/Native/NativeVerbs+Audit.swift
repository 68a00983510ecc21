// Native verbs for the audit trail (Tessera extensions): audit-query and audit-verify.
import Foundation
import TesseraCore
import TesseraEngines

extension NativeVerbs {
    static let audit: [NativeVerb] = [
        NativeVerb("audit-query", action: "audit_query", access: .audit,
                   help: "Find audit events by path, actor, action, result and time (oldest first, by sequence number).",
                   fields: declare([.string("path-prefix", "Only events on paths under this prefix (a trailing * is allowed)."),
                                    .string("access-id", "Only events of this access id."),
                                    .string("action", "Only this action, e.g. get_secret_value."),
                                    .string("result", "Only allowed, denied or error."),
                                    .string("since", "From: RFC 3339 time, Unix seconds, or a time back from now (90d, 12h)."),
                                    .string("until", "To, in the same forms as since."),
                                    .int("limit", 1...10_000, "At most this many events (default 1000)."),
                                    .int("after-seq", 0...Int.max, "Only events after this sequence number.")])) { f in
            var q = AuditQuery()
            q.pathPrefix = try f.string("path-prefix").map { $0.hasPrefix("/") ? $0 : "/" + $0 }
            if let p = q.pathPrefix, p.hasSuffix("*") { q.pathPrefix = String(p.dropLast()) }
            q.accessId = try f.string("access-id")
            q.action = try f.string("action")
            if let r = try f.string("result") {
                guard let result = AuditResult(rawValue: r) else {
                    throw TesseraError.badRequest("invalid result '\(r)': expected allowed, denied or error")
                }
                q.result = result
            }
            let since = try f.string("since")
            let until = try f.string("until")
            q.limit = try f.int("limit", in: 1...10_000) ?? 1000
            q.afterSequence = try f.int("after-seq", in: 0...Int.max).map(Int64.init)
            return PreparedVerb(auditPath: q.pathPrefix ?? "") { [q] t, caller in
                var query = q
                query.since = try since.map { try parseTime($0, now: t.now()) }
                query.until = try until.map { try parseTime($0, now: t.now()) }
                if caller.principal?.authorizer.auditAccess == .own {
                    query.accessId = caller.principal?.identity.accessId
                }
                let events = try await t.audit.query(query)
                return .obj(("events", .array(events.map(auditEventJSON))))
            }
        },
        NativeVerb("audit-verify", action: "audit_verify", access: .audit,
                   help: "Verify the audit hash chain; names the first bad event and the last that verifies.") { _ in
            PreparedVerb(auditPath: "") { t, caller in
                guard caller.principal?.authorizer.auditAccess == .all else {
                    throw TesseraError.forbidden(path: "/audit", capability: "read")
                }
                let v = try await t.audit.verify()
                return .obj(("ok", .bool(v.ok)), ("events_checked", .int(v.eventsChecked)),
                            ("first_bad_sequence", v.firstBadSequence.map { .int($0) } ?? .null),
                            ("last_verified_sequence", .int(v.lastVerifiedSequence)),
                            ("reason", v.reason.map(JSON.string) ?? .null))
            }
        },
    ]

    /// Accepts an RFC 3339 time, a Unix time in seconds, or a duration back from now such as `90d`, `12h`, `30m`.
    static func parseTime(_ text: String, now: Date) throws -> Date {
        if let unit = text.last, "smhdw".contains(unit), !text.dropLast().isEmpty,
           text.dropLast().utf8.allSatisfy({ (0x30...0x39).contains($0) }) {
            let n = try InputNumber.int(text: String(text.dropLast()), field: "since", in: 0...InputNumber.maxSeconds)
            let unitSeconds = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800][String(unit)] ?? 1
            let back = try InputNumber.product(n, unitSeconds, field: "since", in: 0...InputNumber.maxEpochSeconds)
            return now.addingTimeInterval(-InputNumber.interval(seconds: back))
        }
        if !text.isEmpty, text.utf8.allSatisfy({ (0x30...0x39).contains($0) || $0 == 0x2E }), let epoch = Double(text) {
            return try InputNumber.date(epochSeconds: epoch, field: "since")
        }
        if let d = try? Date(text, strategy: .iso8601) { return d }
        if let d = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return d }
        throw TesseraError.badRequest("invalid time '\(text)': expected RFC 3339, Unix seconds, or a duration like 90d")
    }

    static func auditEventJSON(_ e: AuditEvent) -> JSON { e.wireJSON }
}
