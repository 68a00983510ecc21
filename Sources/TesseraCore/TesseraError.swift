// The error taxonomy shared by every module. Each case maps to one HTTP status and one wire code;
// messages are written for the caller and never carry a secret value, key or token.
import Foundation

public enum TesseraError: Error, Sendable, Equatable {
    /// Input that fails validation (400).
    case badRequest(String)
    /// Missing, wrong or expired credentials or token (401).
    case unauthorized(String)
    /// The identity lacks a capability on a path (403).
    case forbidden(path: String, capability: String)
    /// Something the request names does not exist (404).
    case notFound(String)
    /// The request conflicts with existing state (409).
    case conflict(String)
    /// The body is larger than the server accepts (413).
    case payloadTooLarge(Int)
    /// Too many requests or a quota reached (429).
    case tooManyRequests(String)
    /// The server is sealed (503).
    case sealed
    /// The server cannot serve the request safely right now, e.g. the audit trail is not writable (503).
    case unavailable(String)
    /// An upstream system (e.g. a governed Vault) answered with an error or could not be reached (502).
    case badGateway(String)
    /// An upstream system did not answer in time (504).
    case gatewayTimeout(String)
    /// Stored data failed its integrity check (500); never caused by input alone.
    case integrity(String)
    /// An unexpected internal failure (500); the message is generic.
    case internalError(String)

    public var status: Int {
        switch self {
        case .badRequest: 400
        case .unauthorized: 401
        case .forbidden: 403
        case .notFound: 404
        case .conflict: 409
        case .payloadTooLarge: 413
        case .tooManyRequests: 429
        case .sealed, .unavailable: 503
        case .badGateway: 502
        case .gatewayTimeout: 504
        case .integrity, .internalError: 500
        }
    }

    /// The short machine-readable code used in native API error bodies.
    public var code: String {
        switch self {
        case .badRequest: "InvalidParam"
        case .unauthorized: "Unauthorized"
        case .forbidden: "AccessDenied"
        case .notFound: "NotFound"
        case .conflict: "Conflict"
        case .payloadTooLarge: "PayloadTooLarge"
        case .tooManyRequests: "TooManyRequests"
        case .sealed: "Sealed"
        case .unavailable: "ServiceUnavailable"
        case .badGateway: "BadGateway"
        case .gatewayTimeout: "GatewayTimeout"
        case .integrity: "IntegrityCheckFailed"
        case .internalError: "InternalError"
        }
    }

    public var message: String {
        switch self {
        case .badRequest(let m), .unauthorized(let m), .notFound(let m), .conflict(let m),
             .tooManyRequests(let m), .unavailable(let m), .integrity(let m), .internalError(let m),
             .badGateway(let m), .gatewayTimeout(let m):
            m
        case .forbidden(let path, let capability):
            "access denied: missing '\(capability)' capability on \(path)"
        case .payloadTooLarge(let limit):
            "request body exceeds the limit of \(limit) bytes"
        case .sealed:
            "Tessera is sealed: unseal it with `tessera operator unseal`"
        }
    }
}

extension TesseraError: CustomStringConvertible {
    public var description: String { "\(code): \(message)" }
}
