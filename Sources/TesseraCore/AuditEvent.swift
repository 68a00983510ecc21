// AuditEvent: one record of the audit trail, and the query that selects events.
import Foundation

/// Which front-end a request came through.
public enum Interface: String, Sendable, Codable, CaseIterable {
    case native, vault, console, cli, system
}

/// How a request ended.
public enum AuditResult: String, Sendable, Codable, CaseIterable {
    case allowed, denied, error
}

/// One audit event. It never holds a secret value, access key or token: sensitive request
/// parameters are present only as HMAC-SHA256 digests in `hashedParameters`.
public struct AuditEvent: Sendable, Codable, Equatable {
    /// Sequence number, assigned by the audit writer (0 until written).
    public var sequence: Int64
    public var time: Date
    public var requestId: String
    public var interface: Interface
    public var authMethodType: String
    public var accessId: String
    public var actorName: String
    public var clientAddress: String
    public var action: String
    public var path: String
    public var result: AuditResult
    public var status: Int
    public var durationMicros: Int64
    public var error: String
    /// Non-secret parameters (e.g. `version`) and HMACs of sensitive ones, as `name → text`.
    public var parameters: [String: String]
    public var prevHash: String
    public var hash: String

    public init(time: Date, requestId: String, interface: Interface, authMethodType: String = "",
                accessId: String = "", actorName: String = "", clientAddress: String = "",
                action: String, path: String = "", result: AuditResult, status: Int,
                durationMicros: Int64 = 0, error: String = "", parameters: [String: String] = [:]) {
        self.sequence = 0
        self.time = time
        self.requestId = requestId
        self.interface = interface
        self.authMethodType = authMethodType
        self.accessId = accessId
        self.actorName = actorName
        self.clientAddress = clientAddress
        self.action = action
        self.path = path
        self.result = result
        self.status = status
        self.durationMicros = durationMicros
        self.error = error
        self.parameters = parameters
        self.prevHash = ""
        self.hash = ""
    }

    /// The canonical bytes that the hash chain covers: every field but `hash`, in a fixed order.
    public var canonicalBytes: [UInt8] {
        var out = ""
        func add(_ s: String) {
            out += String(s.utf8.count)
            out += ":"
            out += s
            out += ";"
        }
        add(String(sequence))
        add(String(InputNumber.micros(time)))
        add(requestId)
        add(interface.rawValue)
        add(authMethodType)
        add(accessId)
        add(actorName)
        add(clientAddress)
        add(action)
        add(path)
        add(result.rawValue)
        add(String(status))
        add(String(durationMicros))
        add(error)
        for key in parameters.keys.sorted() {
            add(key)
            add(parameters[key] ?? "")
        }
        add(prevHash)
        return Array(out.utf8)
    }
}

/// A selection of audit events. Every field narrows the result; nil means "any".
public struct AuditQuery: Sendable, Equatable {
    public var pathPrefix: String?
    public var accessId: String?
    public var action: String?
    public var result: AuditResult?
    public var since: Date?
    public var until: Date?
    public var limit: Int
    /// Return events with a sequence number greater than this (for paging).
    public var afterSequence: Int64?

    public init(pathPrefix: String? = nil, accessId: String? = nil, action: String? = nil,
                result: AuditResult? = nil, since: Date? = nil, until: Date? = nil,
                limit: Int = 1000, afterSequence: Int64? = nil) {
        self.pathPrefix = pathPrefix
        self.accessId = accessId
        self.action = action
        self.result = result
        self.since = since
        self.until = until
        self.limit = limit
        self.afterSequence = afterSequence
    }
}

/// The outcome of verifying the audit hash chain.
/// The last audit event known to have been written: its sequence number and chain hash.
public struct AuditAnchor: Sendable, Equatable {
    public var sequence: Int64
    public var hash: String

    public init(sequence: Int64, hash: String) {
        self.sequence = sequence
        self.hash = hash
    }
}

public struct AuditVerification: Sendable, Codable, Equatable {
    public var ok: Bool
    public var eventsChecked: Int64
    /// The last sequence number up to which the chain verifies.
    public var lastVerifiedSequence: Int64 = 0
    /// The first sequence number at which the chain breaks, if any.
    public var firstBadSequence: Int64?
    public var reason: String?

    public init(ok: Bool, eventsChecked: Int64, firstBadSequence: Int64? = nil, reason: String? = nil) {
        self.ok = ok
        self.eventsChecked = eventsChecked
        self.firstBadSequence = firstBadSequence
        self.reason = reason
    }
}
