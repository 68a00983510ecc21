// Vault wire shapes: the 8-key response envelope, the `{"errors":[…]}` error body, and the
// mapping from Tessera's error taxonomy to the statuses Vault clients expect (403, never 401).
import Foundation
import Hummingbird
import NIOCore
import TesseraCore

enum VaultResponses {
    /// The standard envelope. Every key is always present.
    static func envelope(data: JSON?, leaseDuration: Int64 = 0, warnings: [String]? = nil, auth: JSON? = nil,
                         requestId: String, status: HTTPResponse.Status = .ok) -> Response {
        Responses.json(.obj(("request_id", .string(requestId)), ("lease_id", .string("")), ("renewable", .bool(false)),
                            ("lease_duration", .int(leaseDuration)), ("data", data ?? .null), ("wrap_info", .null),
                            ("warnings", warnings.map { .strings($0) } ?? .null), ("auth", auth ?? .null)),
                       status: status)
    }

    /// An envelope whose `data` is also repeated at the top level, as several sys endpoints answer.
    static func doubled(_ data: JSON, requestId: String) -> Response {
        guard case .object(let pairs) = data else { return envelope(data: data, requestId: requestId) }
        let env: [(String, JSON)] = [("request_id", .string(requestId)), ("lease_id", .string("")), ("renewable", .bool(false)),
                                     ("lease_duration", .int(0)), ("data", data), ("wrap_info", .null), ("warnings", .null), ("auth", .null)]
        return Responses.json(.object(pairs.filter { p in !env.contains { $0.0 == p.0 } } + env))
    }

    static func errors(_ messages: [String], status: HTTPResponse.Status) -> Response {
        Responses.json(.obj(("errors", .strings(messages))), status: status)
    }

    static let permissionDenied = "permission denied"
    static let multiDenied = "1 error occurred:\n\t* permission denied\n\n"
    static let unsupported = "1 error occurred:\n\t* unsupported operation\n\n"

    /// Maps a Tessera error to Vault's status and text.
    static func error(_ e: TesseraError) -> Response {
        switch e {
        case .unauthorized: errors([permissionDenied], status: .forbidden)
        case .forbidden: errors([multiDenied], status: .forbidden)
        case .notFound: errors([], status: .notFound)
        case .sealed: errors(["Vault is sealed"], status: .serviceUnavailable)
        case .conflict(let m): errors([m], status: .badRequest)
        default: errors([e.message], status: .init(code: e.status))
        }
    }

    static func noContent() -> Response { Responses.noContent() }
}
