// Identity: who is making a request, as established by authentication.
import Foundation

/// The authenticated caller. Carries no secret: the access key and token never appear here.
public struct Identity: Sendable, Equatable {
    /// The auth method type, e.g. `api_key`.
    public var authMethodType: String
    /// The auth method's access id, e.g. `p-3x8k2m9q1w7z`.
    public var accessId: String
    /// The auth method's name, shown in audit events.
    public var authMethodName: String
    /// The names of the roles associated with the auth method.
    public var roleNames: [String]
    /// The hash of the token used, so that a token can be traced without storing it (may be empty).
    public var tokenHash: String

    public init(authMethodType: String, accessId: String, authMethodName: String, roleNames: [String], tokenHash: String = "") {
        self.authMethodType = authMethodType
        self.accessId = accessId
        self.authMethodName = authMethodName
        self.roleNames = roleNames
        self.tokenHash = tokenHash
    }

    /// The actor recorded for background work (scheduled rotations, lease expiry).
    public static let scheduler = Identity(authMethodType: "internal", accessId: "scheduler", authMethodName: "scheduler", roleNames: [])
}
