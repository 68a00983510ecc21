// The native verb `explain`: whether an identity may do something and which rules decide it,
// without doing it. A role with audit access `own` may ask about itself; `all`, about anyone.
import Foundation
import TesseraCore
import TesseraEngines

extension NativeVerbs {
    static let explain: [NativeVerb] = [
        NativeVerb("explain", action: "explain", access: .audit,
                   help: "Explain whether an identity may use a capability on a path, and which rules decide it.",
                   fields: [.string("access-id", "The identity to ask about (default: the caller)."),
                            .string("path", required: true, "The path, e.g. /prod/db/password or /sys/seal."),
                            .string("capability", required: true, "read, create, update, delete, list or use."),
                            .string("rule-type", "item-rule (default), role-rule, auth-method-rule, target-rule or sys-rule.")]) { f in
            let accessId = try f.string("access-id")
            let path = try ItemPath(try f.requiredString("path"))
            let raw = try f.requiredString("capability")
            guard let capability = Capability(rawValue: raw.lowercased()), capability != .deny else {
                throw TesseraError.badRequest("invalid capability '\(raw.prefix(32))': expected read, create, update, delete, list or use")
            }
            let type = try RuleType(wire: try f.string("rule-type"))
            return PreparedVerb(auditPath: path.value, parameters: ["explained_access_id": accessId ?? "", "capability": capability.rawValue,
                                                                    "rule_type": type.rawValue]) { t, caller in
                guard let principal = caller.principal else { throw TesseraError.unauthorized("a token is required") }
                let subject = accessId ?? principal.identity.accessId
                if subject != principal.identity.accessId, principal.authorizer.auditAccess != .all {
                    throw TesseraError.forbidden(path: "/audit", capability: "audit-access all")
                }
                let authorizer = subject == principal.identity.accessId ? principal.authorizer : try await t.access.authorizer(accessId: subject)
                let (decision, evidence) = authorizer.evidence(capability, on: path, type: type)
                let outcome: String
                switch decision {
                case .allow: outcome = "allowed"
                case .deny(let explicit): outcome = explicit ? "denied" : "not granted"
                }
                return .obj(("access_id", .string(subject)), ("path", .string(path.value)), ("capability", .string(capability.rawValue)),
                            ("rule_type", .string(type.rawValue)), ("allowed", .bool(decision.isAllowed)),
                            ("decision", .string(outcome)), ("evidence", .string(evidence)))
            }
        },
    ]
}
