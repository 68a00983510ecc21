// NativeVerb: the declaration of one native API verb — its name, audit action, required access,
// sensitive fields and how it parses its request. The declaration drives routing (by name),
// validation (prepare) and the authorizer (access + paths); there is no other list of verbs.
import Foundation
import TesseraCore
import TesseraEngines

/// The access a verb declares.
public enum VerbAccess: Sendable {
    /// No identity (auth, validate-token).
    case anonymous
    /// Any valid token.
    case authenticated
    /// One of these capabilities on every path the request names, under the rule type.
    case capability([Capability], RuleType)
    /// `list` on a folder; results are filtered per entry.
    case listing(RuleType)
    /// Reading the audit trail (role's audit-access).
    case audit
}

/// A validated request, ready to run.
public struct PreparedVerb: Sendable {
    /// The paths that the declared capability is checked on.
    public var paths: [ItemPath]
    /// Further checks beyond the declared one (e.g. the auth method of an association).
    public var extraChecks: [AccessCheck] = []
    /// The folder for `.listing` verbs.
    public var folder: ItemPath?
    public var auditPath: String
    public var parameters: [String: String] = [:]
    public var claimedAccessId: String?
    /// The type of the claimed auth method, for the audit event of a login.
    public var claimedMethodType = "api_key"
    public var run: @Sendable (Tessera, CallerContext) async throws -> JSON

    public init(paths: [ItemPath] = [], extraChecks: [AccessCheck] = [], folder: ItemPath? = nil, auditPath: String? = nil,
                parameters: [String: String] = [:], claimedAccessId: String? = nil,
                run: @escaping @Sendable (Tessera, CallerContext) async throws -> JSON) {
        self.paths = paths
        self.extraChecks = extraChecks
        self.folder = folder
        self.auditPath = auditPath ?? (folder?.value ?? paths.map(\.value).joined(separator: ","))
        self.parameters = parameters
        self.claimedAccessId = claimedAccessId
        self.run = run
    }
}

public struct NativeVerb: Sendable {
    public let name: String
    public let action: String
    public let access: VerbAccess
    /// Fields recorded in the audit event only as HMACs.
    public let sensitiveFields: [String]
    /// The declared request fields (see `FieldSpec`): validation, audit, CLI help, OpenAPI.
    public let fields: FieldSet
    public let help: String
    public let prepare: @Sendable (RequestFields) throws -> PreparedVerb

    /// Fields every verb accepts: the token and the SDK's output switches.
    public static let commonFields: [FieldSpec] = [
        .string("token", "A token from `auth` (t-…)."),
        .string("uid-token", "A universal-identity token (accepted as a token)."),
        .bool("json", "Ignored (the Akeyless CLI's output switch)."),
    ]

    public init(_ name: String, action: String, access: VerbAccess, sensitive: [String] = [], help: String = "",
                fields: [FieldSpec] = [], prepare: @escaping @Sendable (RequestFields) throws -> PreparedVerb) {
        self.name = name
        self.action = action
        self.access = access
        self.help = help
        // A verb with help but no fields of its own still declares the common ones.
        self.fields = FieldSet(fields.isEmpty && help.isEmpty ? [] : Self.commonFields + fields)
        var sensitiveNames = Set(sensitive)
        for f in fields where f.sensitive { sensitiveNames.formUnion(f.names) }
        self.sensitiveFields = sensitiveNames.sorted()
        self.prepare = prepare
    }

    /// The pipeline call for a prepared request.
    func call(_ prepared: PreparedVerb, fields: RequestFields, context: RequestContext) throws -> PipelineCall {
        var credentials = Credentials.none
        if let token = try fields.string("token") ?? fields.string("uid-token"), !token.isEmpty {
            credentials = .token(token)
        }
        var call = PipelineCall(context: context, action: action, auditPath: prepared.auditPath, credentials: credentials,
                                parameters: prepared.parameters, claimedAccessId: prepared.claimedAccessId)
        call.claimedMethodType = prepared.claimedMethodType
        switch access {
        case .anonymous:
            call.needsIdentity = false
        case .authenticated:
            break
        case .capability(let caps, let type):
            call.checks = prepared.paths.map { AccessCheck(anyOf: caps, type, $0) }
        case .listing(let type):
            call.listing = (prepared.folder ?? .root, type)
        case .audit:
            call.needsAuditAccess = true
        }
        call.checks += prepared.extraChecks
        for field in sensitiveFields {
            if let v = try? fields.string(field), !v.isEmpty { call.sensitive[field] = v }
        }
        return call
    }
}

/// All native verbs by name.
public struct NativeVerbRegistry: Sendable {
    public let verbs: [String: NativeVerb]

    public init(_ groups: [[NativeVerb]]) {
        var map: [String: NativeVerb] = [:]
        for verb in groups.joined() {
            precondition(map[verb.name] == nil, "native verb \(verb.name) is declared twice")
            map[verb.name] = verb
        }
        verbs = map
    }

    public static let standard = NativeVerbRegistry([
        NativeVerbs.authentication, NativeVerbs.items, NativeVerbs.authMethods, NativeVerbs.roles, NativeVerbs.audit, NativeVerbs.vaultMounts,
        NativeVerbs.targets, NativeVerbs.connectors, NativeVerbs.dynamicSecrets, NativeVerbs.rotatedSecrets, NativeVerbs.explain,
        NativeVerbs.workloadIdentity,
    ])
}

/// Namespace for the verb declarations, one file per family.
public enum NativeVerbs {}
