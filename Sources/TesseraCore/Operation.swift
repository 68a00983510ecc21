// Operation: what every front-end turns a request into before it enters the pipeline.
import Foundation

/// The parts of a request that the pipeline needs, independent of the wire protocol.
public struct RequestContext: Sendable {
    public var requestId: String
    public var interface: Interface
    public var clientAddress: String
    public var startedAt: Date

    public init(requestId: String = UUID().uuidString.lowercased(), interface: Interface, clientAddress: String, startedAt: Date = Date()) {
        self.requestId = requestId
        self.interface = interface
        self.clientAddress = clientAddress
        self.startedAt = startedAt
    }
}

/// What the authorizer must check before an operation runs.
public enum Requirement: Sendable, Equatable {
    /// No token needed (e.g. `auth`).
    case none
    /// Any valid token.
    case authenticated
    /// A capability on each of the operation's paths, for the given rule type.
    case capability(Capability, RuleType)
    /// `list` on a folder: the result is filtered to what the identity may list.
    case listing(RuleType)
    /// Reading the audit trail.
    case auditAccess
}
