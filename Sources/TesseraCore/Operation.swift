// Operation: what every front-end turns a request into before it enters the pipeline.
import Foundation
import Synchronization

/// The parts of a request that the pipeline needs, independent of the wire protocol.
public struct RequestContext: Sendable {
    public var requestId: String
    public var interface: Interface
    public var clientAddress: String
    public var startedAt: Date
    /// Set when an edge agent forwards the request: the pipeline names here the items that a
    /// cacheable read returned, and the front-end answers with them (see `EdgeReadHint`).
    public var edge: EdgeReadHint?
    /// Set when the answer is to be wrapped (Vault's `X-Vault-Wrap-TTL`).
    public var wrap: WrapIntent?
    /// A request spends at most one use of a token limited by use count, however many pipeline
    /// calls it makes.
    public let tokenUse = OnceFlag()

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

/// True the first time it is claimed, false after; shared by the copies of one request's context.
public final class OnceFlag: Sendable {
    private let claimed = Mutex(false)
    public init() {}
    public func claim() -> Bool {
        claimed.withLock { was in
            defer { was = true }
            return !was
        }
    }
}

/// What an edge agent needs to cache a read it forwarded: the items the read returned, which it
/// authorizes locally for the clients it later serves from its cache. Shared by reference between
/// the copies of one request's context.
public final class EdgeReadHint: Sendable {
    private let state = Mutex<[String]>([])
    public init() {}
    public func add(_ paths: [String]) { state.withLock { $0 += paths } }
    public var items: [String] { state.withLock { $0 } }
    /// The request header an edge agent sends, and the response header that answers it.
    public static let requestHeader = "X-Tessera-Edge"
    public static let itemsHeader = "X-Tessera-Edge-Items"

    /// The items as one header value: each path percent-encoded, separated by commas.
    public var headerValue: String {
        items.map { $0.addingPercentEncoding(withAllowedCharacters: Self.unreserved) ?? "" }.joined(separator: ",")
    }

    public static func parse(headerValue: String) -> [String] {
        headerValue.split(separator: ",").compactMap { String($0).removingPercentEncoding }
    }

    static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/")
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

/// A request whose answer is to be wrapped: the TTL, the wrapping token's accessor (which the
/// request's audit event records) and, once the pipeline has authenticated the caller, who the
/// caller is. Shared by reference between the copies of one request's context.
public final class WrapIntent: Sendable {
    public let ttlSeconds: Int
    public let accessor: String
    private let caller = Mutex<String>("")
    public init(ttlSeconds: Int, accessor: String) {
        self.ttlSeconds = ttlSeconds
        self.accessor = accessor
    }
    /// The access id of the authenticated caller (or of the login that succeeded); "" if none.
    public var creator: String { caller.withLock { $0 } }
    public func setCreator(_ accessId: String) { caller.withLock { $0 = accessId } }
}
