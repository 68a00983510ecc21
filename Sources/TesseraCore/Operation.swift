// Operation: what every front-end turns a request into before it enters the pipeline.
import Foundation

/// The parts of a request that the pipeline needs, independent of the wire protocol.
public struct RequestContext: Sendable {
    public var requestId: String
    public var interface: Interface
    public var clientAddress: String
    public var startedAt: Date

    public init(requestId: String = RequestContext.newRequestId(), interface: Interface, clientAddress: String, startedAt: Date = Date()) {
        self.requestId = requestId
        self.interface = interface
        self.clientAddress = clientAddress
        self.startedAt = startedAt
    }

    /// A random (version 4) UUID in lower case, from the system generator (`getrandom`);
    /// Foundation's `UUID()` opens /dev/urandom on every call here.
    public static func newRequestId() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for _ in 0..<2 {
            let word = generator.next()
            for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return [bytes[0..<4], bytes[4..<6], bytes[6..<8], bytes[8..<10], bytes[10..<16]].map(\.hexString).joined(separator: "-")
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
