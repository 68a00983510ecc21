// The edge agent's own answers, in the shape of the protocol the client speaks (Vault's
// `{"errors":[…]}` or the native `{"error","message"}`), and the headers that say where an
// answer came from: `X-Cache: HIT|MISS` and `Age` as the Vault agent sends them, and
// `X-Tessera-Cache: hit|stale` when it came from this cache (stale: the central server was unreachable).
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

enum AgentResponses {
    enum Interface: String {
        case vault, native
    }

    static let vaultToken = HTTPField.Name("X-Vault-Token")!
    static let xCache = HTTPField.Name("X-Cache")!
    static let age = HTTPField.Name("Age")!
    static let tesseraCache = HTTPField.Name("X-Tessera-Cache")!
    /// Request headers that change what a Vault read answers (lower case).
    static let answerShapingHeaders: Set<String> = ["x-vault-wrap-ttl", "x-vault-wrap-format", "x-vault-namespace", "x-vault-inline-auth-path"]

    static func error(_ interface: Interface, status: Int, _ message: String) -> Response {
        let object: [String: Any] = switch interface {
        case .vault: ["errors": [message]]
        case .native: ["error": status == 403 ? "Forbidden" : status == 503 ? "Unavailable" : "Error", "message": message]
        }
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
        return Response(status: .init(code: status), headers: [.contentType: "application/json", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func passThrough(_ r: CentralResponse, cache: String?) -> Response {
        var headers = HTTPFields()
        for (name, value) in r.headers {
            guard let n = HTTPField.Name(name), name.lowercased() != EdgeHeaders.items else { continue }
            headers.append(HTTPField(name: n, value: value))
        }
        if let cache { headers[xCache] = cache }
        return Response(status: .init(code: r.status), headers: headers, body: .init(byteBuffer: r.body))
    }

    static func cached(_ body: [UInt8], contentType: String, age: Int64, stale: Bool) -> Response {
        var headers: HTTPFields = [.contentType: contentType, .cacheControl: "no-store"]
        headers[xCache] = "HIT"
        headers[self.age] = String(age)
        headers[tesseraCache] = stale ? "stale" : "hit"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

enum EdgeHeaders {
    static let items = "x-tessera-edge-items"
}
