// VaultRequest: a request to `/v1/…` as the Vault front-end sees it — the path after `/v1/`,
// the operation (LIST is `GET ?list=true`, as the LIST rewriter delivers it), the token, and a
// body parsed leniently (clients may send no Content-Type, an empty body or `null`).
import Foundation
import Synchronization
import HTTPTypes
import Hummingbird
import NIOCore
import TesseraCore

struct VaultRequest: Sendable {
    enum Operation: Sendable, Equatable {
        case read, write, delete, list, patch, head
    }

    let operation: Operation
    /// The path after `/v1/`, percent-encoded as sent, without a trailing slash.
    let path: String
    let hadTrailingSlash: Bool
    let query: [String: String]
    let credentials: Credentials
    let context: TesseraCore.RequestContext
    let contentType: String?
    let body: ByteBuffer
    /// The client connection, for responses that stream (a stalled reader is cut off).
    var connection: (any Channel)?
    /// Where the declaration of this path and operation is (`VaultPaths`), once the front-end
    /// resolved the engine; it is looked up only when the body is read.
    var declaredAt: (engine: VaultPathSpec.Engine, path: String)?
    var declared: VaultPathSpec.Operation? {
        declaredAt.flatMap { VaultPaths.spec(engine: $0.engine, path: $0.path, method: operation.declaredMethod) }
    }
    /// Body fields the declaration does not know; the front-end names them in a warning header.
    let ignoredFields = IgnoredFields()

    static let maxPathLength = 2048

    init(_ request: Request, body: ByteBuffer, context: TesseraCore.RequestContext) throws {
        var p = request.uri.path
        guard p.hasPrefix("/v1/") || p == "/v1" else { throw TesseraError.notFound("") }
        p = String(p.dropFirst(min(p.count, 4)))
        guard p.utf8.count <= Self.maxPathLength else { throw TesseraError.badRequest("path is too long") }
        var q: [String: String] = [:]
        for (k, v) in request.uri.queryParameters { q[String(k)] = String(v) }
        query = q
        if q[ListMethodRewriter.unsupportedMarker] != nil { throw VaultRequest.unsupportedMethod }
        let listFlag = ["true", "1", "True", "TRUE"].contains(q["list"] ?? "")
        hadTrailingSlash = p.hasSuffix("/")
        while p.hasSuffix("/") { p.removeLast() }
        // A trailing slash is for lists only (`auth/token/lookup-self/` is not a path).
        if hadTrailingSlash, !listFlag, request.method != .head, p.contains("/"), !p.hasPrefix("sys/") {
            throw VaultRequest.unsupportedPath
        }
        // The same parser as every item path: no `.`/`..` or empty segments, no control
        // characters, checked in raw and percent-decoded form.
        if !p.isEmpty { _ = try ItemPath(folder: "/" + p) }
        path = p
        switch request.method {
        case .get: operation = listFlag ? .list : .read
        case .head: operation = .head
        case .put, .post: operation = .write
        case .delete: operation = .delete
        case .patch: operation = .patch
        default: throw VaultRequest.unsupportedMethod
        }
        credentials = SystemAPI.credentials(request)
        self.context = context
        contentType = request.headers[.contentType]
        self.body = body
    }

    static let unsupportedMethod = TesseraError.badRequest("unsupported method")
    static let unsupportedPath = TesseraError.notFound("1 error occurred:\n\t* unsupported path\n\n")

    /// The body as fields: empty, `null` → no fields; anything but an object → 400.
    func fields() throws -> RequestFields {
        if body.readableBytes == 0 { return .empty }
        let json: JSON
        do {
            json = try JSON.parse(body.readableBytesView)
        } catch {
            if let form = formFields() { return form }
            throw TesseraError.badRequest("failed to decode JSON input: malformed body")
        }
        if json == .null { return .empty }
        guard case .object = json else {
            throw TesseraError.badRequest("failed to decode JSON input: json: cannot unmarshal non-object into Go value of type map[string]interface {}")
        }
        // Declared fields are type- and range-checked before any handler reads them; the
        // handlers themselves say what is missing, in Vault's words.
        let declared = self.declared
        if let declared, !declared.freeForm {
            let unknown = try declared.fields.validate(json, checkRequired: false)
            if !unknown.isEmpty { ignoredFields.set(unknown) }
        }
        return try RequestFields(json, declared: declared?.fields)
    }

    /// `a=b&c=d` bodies, which Vault accepts for KV v1 writes.
    func formFields() -> RequestFields? {
        let text = String(decoding: body.readableBytesView, as: UTF8.self)
        guard !text.isEmpty, !text.contains("{"), text.contains("=") else { return nil }
        var pairs: [(String, JSON)] = []
        for part in text.split(separator: "&") {
            let kv = part.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            guard kv.count == 2, !kv[0].isEmpty else { return nil }
            pairs.append((kv[0], .string(kv[1])))
        }
        return try? RequestFields(.object(pairs))
    }

    /// A list of version numbers sent as strings (CLI) or integers (hvac).
    func versions(_ fields: RequestFields) throws -> [Int] {
        guard let raw = fields.raw("versions"), raw != .null else {
            throw TesseraError.badRequest("no version number provided")
        }
        let items: [JSON]
        switch raw {
        case .array(let a): items = a
        case .string(let s): items = s.split(separator: ",").map { .string(String($0)) }
        default: items = [raw]
        }
        guard !items.isEmpty else { throw TesseraError.badRequest("no version number provided") }
        guard items.count <= 1_000 else { throw TesseraError.badRequest("too many version numbers") }
        return try items.map {
            guard let v = try RequestFields.int($0, field: "versions", in: 0...Int(Int32.max)) else {
                throw TesseraError.badRequest("invalid version number")
            }
            return v
        }
    }

    func pipelineCall(action: String, auditPath: String, checks: [AccessCheck] = [], listing: ItemPath? = nil,
                      needsIdentity: Bool = true) -> PipelineCall {
        PipelineCall(context: context, action: action, auditPath: auditPath, credentials: credentials, needsIdentity: needsIdentity,
                     checks: checks, listing: listing.map { ($0, RuleType.item) })
    }
}

/// The unknown fields of one request, recorded while its body is read.
final class IgnoredFields: Sendable {
    private let names = Mutex<[String]>([])
    func set(_ list: [String]) { names.withLock { $0 = list } }
    var all: [String] { names.withLock { $0 } }
}
