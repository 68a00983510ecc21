// The request pipeline: authenticate → authorize → execute → audit, the same for every
// front-end. Front-ends describe a call; this file decides whether and how it runs, and records
// exactly one audit event for it. If that event cannot be written, the caller gets a 503 and no data.
import Foundation
import Logging
import Synchronization
import TesseraCore
import TesseraCrypto
import TesseraEngines

/// How the caller proves who it is.
public enum Credentials: Sendable {
    case none
    case token(String)
    /// `<access-id>..<access-key>` as the Vault front-end accepts it.
    case accessKey(id: String, key: String)
}

/// One authorization check: any one of `capabilities` on a path under a rule type.
public struct AccessCheck: Sendable, Equatable {
    public var capabilities: [Capability]
    public var type: RuleType
    public var path: ItemPath

    public init(_ capability: Capability, _ type: RuleType, _ path: ItemPath) {
        self.init(anyOf: [capability], type, path)
    }

    public init(anyOf capabilities: [Capability], _ type: RuleType, _ path: ItemPath) {
        self.capabilities = capabilities
        self.type = type
        self.path = path
    }
}

/// A call as a front-end hands it to the pipeline.
public struct PipelineCall: Sendable {
    public var context: RequestContext
    /// The audit action, e.g. `get_secret_value`.
    public var action: String
    /// The path recorded in the audit event.
    public var auditPath: String
    public var credentials: Credentials
    /// Whether a valid identity is needed at all (`auth` itself needs none).
    public var needsIdentity: Bool
    public var checks: [AccessCheck]
    /// `list` on a folder whose result is filtered per item.
    public var listing: (folder: ItemPath, type: RuleType)?
    public var needsAuditAccess: Bool
    /// Runs while sealed (status, unseal, init).
    public var allowedWhileSealed: Bool
    /// Parameters recorded in the audit event (sensitive ones already HMAC'd by `hashed`).
    public var parameters: [String: String]
    /// Sensitive parameters: recorded only as HMAC-SHA256 under the installation's audit key.
    public var sensitive: [String: String]
    /// For `auth`: the access id that tries to log in, so that failures name their actor.
    public var claimedAccessId: String?
    /// The type of the claimed auth method (`api_key`, `oauth2`, `k8s`, `cert`).
    public var claimedMethodType = "api_key"
    /// A read of stored values (static or rotated) that an edge agent may cache: on success the
    /// checked item paths are named to the agent (`RequestContext.edge`).
    public var edgeCacheable = false
    /// Whether the request spends a use of a token limited by use count. Vault's KV preflight
    /// (`sys/internal/ui/mounts/<path>`), which the CLI sends before a KV request, does not.
    public var spendsTokenUse = true

    public init(context: RequestContext, action: String, auditPath: String = "", credentials: Credentials,
                needsIdentity: Bool = true, checks: [AccessCheck] = [], listing: (folder: ItemPath, type: RuleType)? = nil,
                needsAuditAccess: Bool = false, allowedWhileSealed: Bool = false, parameters: [String: String] = [:],
                sensitive: [String: String] = [:], claimedAccessId: String? = nil) {
        self.context = context
        self.action = action
        self.auditPath = auditPath
        self.credentials = credentials
        self.needsIdentity = needsIdentity
        self.checks = checks
        self.listing = listing
        self.needsAuditAccess = needsAuditAccess
        self.allowedWhileSealed = allowedWhileSealed
        self.parameters = parameters
        self.sensitive = sensitive
        self.claimedAccessId = claimedAccessId
    }
}

/// What an executing operation sees of the caller.
public struct CallerContext: Sendable {
    public var principal: Principal?
    public var request: RequestContext
    /// Lets an operation add non-secret details to its audit event (e.g. the version read).
    public let notes: AuditNotes
}

extension CallerContext {
    /// A check that depends on stored state (e.g. the target of an existing rotated secret),
    /// made inside the operation; without a principal it fails closed.
    public func require(_ capability: Capability, on path: ItemPath, type: RuleType) throws {
        guard let principal else { throw TesseraError.forbidden(path: path.value, capability: capability.rawValue) }
        let (decision, why) = principal.authorizer.evidence(capability, on: path, type: type)
        let before = notes.values[AuditNotes.policyKey]
        notes.set(AuditNotes.policyKey, before.map { $0 + " | " + why } ?? why)
        guard decision.isAllowed else { throw TesseraError.forbidden(path: path.value, capability: capability.rawValue) }
    }
}

/// Details an operation adds to its own audit event while it runs.
public final class AuditNotes: Sendable {
    private let state = Mutex<[String: String]>([:])
    public init() {}
    public func set(_ key: String, _ value: String) { state.withLock { $0[key] = value } }
    /// Records the status the client actually received when the operation passes an upstream's
    /// answer through (e.g. a 404 from a governed Vault).
    public func setStatus(_ status: Int) { set(AuditNotes.statusKey, String(status)) }
    static let statusKey = "status"
    /// The rules that decided the request (or the deny rule, or that none grants it).
    public static let policyKey = "policy_results"
    var values: [String: String] { state.withLock { $0 } }
}

extension Tessera {
    /// Runs one call through the pipeline and returns the operation's output.
    public func run<Output: Sendable>(_ call: PipelineCall, _ operation: (CallerContext) async throws -> Output) async throws -> Output {
        let ctx = call.context
        var event = AuditEvent(time: ctx.startedAt, requestId: ctx.requestId, interface: ctx.interface,
                               clientAddress: ctx.clientAddress, action: call.action, path: call.auditPath,
                               result: .allowed, status: 200)
        if let claimed = call.claimedAccessId {
            event.accessId = String(claimed.prefix(80))
            event.authMethodType = call.claimedMethodType
        }
        let notes = AuditNotes()
        let outcome: Result<Output, TesseraError>
        do {
            if !call.allowedWhileSealed && seal.isSealed { throw TesseraError.sealed }
            var principal: Principal?
            if call.needsIdentity {
                let p = try await authenticate(call.credentials, event: &event, spendingUse: call.spendsTokenUse && ctx.tokenUse.claim())
                principal = p
                try authorize(call, p.authorizer, notes: notes)
                // A wrapped answer that could not be stored would leave what the request did
                // (a token, a lease) with nobody holding it: refuse before it runs.
                if ctx.wrap != nil { try await wrapping.requireRoom(creator: p.identity.accessId) }
            }
            outcome = .success(try await operation(CallerContext(principal: principal, request: ctx, notes: notes)))
        } catch {
            outcome = .failure(Self.classify(error, logger: logger, requestId: ctx.requestId))
        }

        // A sealed (or not yet initialized) server has no audit key; like Vault, it serves nothing
        // that needs auditing, and a failed init or unseal attempt revealed nothing.
        if case .failure(.sealed) = outcome { throw TesseraError.sealed }
        if call.allowedWhileSealed, seal.isSealed, case .failure(let e) = outcome { throw e }

        switch outcome {
        case .success: break
        case .failure(let e):
            event.status = e.status
            event.result = (e.status == 401 || e.status == 403) ? .denied : .error
            event.error = e.message
        }
        var noted = notes.values
        if let s = noted.removeValue(forKey: AuditNotes.statusKey).flatMap(Int.init), case .success = outcome {
            event.status = s
            if s >= 400 { event.result = .error }
        }
        var parameters = call.parameters.merging(noted) { a, _ in a }
        if let wrap = ctx.wrap {
            parameters["wrap_accessor"] = wrap.accessor
            if case .success = outcome, event.status < 300, !event.accessId.isEmpty { wrap.setCreator(event.accessId) }
        }
        if !call.sensitive.isEmpty, let keyring = try? seal.keyring() {
            for (k, v) in call.sensitive { parameters[k] = keyring.auditHMAC(v) }
        }
        event.parameters = parameters
        let elapsed = now().timeIntervalSince(ctx.startedAt)
        event.durationMicros = InputNumber.int64(elapsed * 1_000_000)
        let login = call.claimedAccessId != nil
        do {
            try await audit.record(event)
            telemetry.auditWrite(success: true)
        } catch {
            telemetry.auditWrite(success: false)
            telemetry.request(interface: ctx.interface, action: call.action, status: 503, duration: Duration.seconds(max(0, elapsed)), login: login)
            throw error
        }
        telemetry.request(interface: ctx.interface, action: call.action, status: event.status, duration: Duration.seconds(max(0, elapsed)), login: login)
        if call.edgeCacheable, let hint = ctx.edge, case .success = outcome, event.status < 300 {
            hint.add(call.checks.map(\.path.value))
        }
        logger.log(level: options.logRequests ? .info : .debug, "request",
                   metadata: ["request_id": "\(ctx.requestId)", "interface": "\(ctx.interface.rawValue)", "action": "\(call.action)",
                              "status": "\(event.status)", "duration_ms": "\(Int64(elapsed * 1000))", "client": "\(ctx.clientAddress)"])
        return try outcome.get()
    }

    func authenticate(_ credentials: Credentials, event: inout AuditEvent, spendingUse: Bool = true) async throws -> Principal {
        do {
            let principal: Principal
            switch credentials {
            case .none:
                throw TesseraError.unauthorized("a token is required")
            case .token(let t):
                principal = try await access.principal(token: t, clientAddress: event.clientAddress, spendingUse: spendingUse)
            case .accessKey(let id, let key):
                event.accessId = String(id.prefix(80))
                event.authMethodType = "api_key"
                principal = try await access.principal(accessId: id, accessKey: key, clientAddress: event.clientAddress)
            }
            event.authMethodType = principal.identity.authMethodType
            event.accessId = principal.identity.accessId
            event.actorName = principal.identity.authMethodName
            return principal
        } catch let e as TesseraError where e.status == 401 {
            // Name the actor of a refused token when the token is known (expired or revoked).
            if case .token(let t) = credentials, let owner = try? await access.tokenOwner(token: t) {
                event.accessId = owner
                event.authMethodType = "api_key"
            }
            throw e
        }
    }

    /// Decides every declared check and records the evidence (the rules that decided it) in the
    /// request's audit event.
    func authorize(_ call: PipelineCall, _ authorizer: Authorizer, notes: AuditNotes) throws {
        var evidence: [String] = []
        defer { if !evidence.isEmpty { notes.set(AuditNotes.policyKey, evidence.joined(separator: " | ")) } }
        for check in call.checks {
            var allowed = false
            var reasons: [String] = []
            for capability in check.capabilities {
                let (decision, why) = authorizer.evidence(capability, on: check.path, type: check.type)
                reasons.append(why)
                if decision.isAllowed { allowed = true; reasons = [why]; break }
            }
            evidence += reasons
            if !allowed {
                throw TesseraError.forbidden(path: check.path.value, capability: check.capabilities.first?.rawValue ?? "read")
            }
        }
        if let listing = call.listing, !authorizer.mayList(folder: listing.folder, type: listing.type) {
            evidence.append("no rule grants list within \(listing.type.rawValue) \(listing.folder.value), or a deny covers it")
            throw TesseraError.forbidden(path: listing.folder.value, capability: Capability.list.rawValue)
        }
        if call.needsAuditAccess && authorizer.auditAccess == .none {
            throw TesseraError.forbidden(path: "/audit", capability: Capability.read.rawValue)
        }
    }

    /// Maps any error to the taxonomy; unexpected errors are logged by type only and become a generic 500.
    static func classify(_ error: any Error, logger: Logger, requestId: String? = nil) -> TesseraError {
        if let e = error as? TesseraError { return e }
        var metadata: Logger.Metadata = ["type": "\(String(describing: type(of: error)))"]
        if let requestId { metadata["request_id"] = "\(requestId)" }
        logger.error("unexpected error", metadata: metadata)
        return .internalError("internal error")
    }
}
