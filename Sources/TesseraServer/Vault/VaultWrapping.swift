// Vault response wrapping on the wire: the `X-Vault-Wrap-TTL` header on any request, which turns
// a 200 answer into a `wrap_info` envelope, and `sys/wrapping/wrap`, `unwrap`, `lookup` and
// `rewrap`. The answer itself is sealed and stored by `ResponseWrapping`; the request that
// produced it is audited with the wrapping token's accessor, and so is the one unwrap.
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import TesseraCore
import TesseraEngines

struct VaultWrapping: Sendable {
    let tessera: Tessera

    static let header = HTTPField.Name("X-Vault-Wrap-TTL")!
    /// The largest answer that is wrapped.
    static let maxWrappedBytes = 8 << 20

    /// The wrap TTL a request asks for, in seconds; nil when it asks for none (absent, empty or 0).
    static func requestedTTL(_ request: Request) throws -> Int? {
        guard let raw = request.headers[header]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
        let prefix = "error parsing X-Vault-Wrap-TTL header: "
        if raw.hasPrefix("-") { throw TesseraError.badRequest(prefix + "requested wrap ttl cannot be negative") }
        let seconds: Int
        do {
            seconds = try GoDuration.seconds(text: raw, field: "X-Vault-Wrap-TTL", max: Int(Int32.max))
        } catch {
            throw TesseraError.badRequest(prefix + "time: invalid duration \"\(raw.prefix(64))\"")
        }
        // "0", "0s": no wrapping; a fraction of a second: the shortest TTL.
        if seconds == 0 { return raw.contains(where: { ("1"..."9").contains($0) }) ? 1 : nil }
        guard seconds <= ResponseWrapping.maxTTLSeconds else {
            throw TesseraError.badRequest(prefix + "wrap ttl of \(seconds)s is longer than the maximum of \(ResponseWrapping.maxTTLSeconds)s (30 days)")
        }
        return seconds
    }

    // MARK: Wrapping an answer

    /// Replaces a 200 answer that has `data` or `auth` by its `wrap_info`; other answers pass.
    func wrap(_ response: Response, _ vr: VaultRequest, intent: WrapIntent, token: ResponseWrapping.Token) async throws -> Response {
        guard response.status == .ok, vr.operation != .head else { return response }
        guard response.headers[.contentType]?.hasPrefix("application/json") == true else {
            throw TesseraError.badRequest("the answer of \(vr.path.prefix(128)) cannot be wrapped")
        }
        let bytes = try await Self.collect(response.body)
        guard let json = try? JSON.parse(bytes.readableBytesView), case .object = json else {
            throw TesseraError.badRequest("the answer of \(vr.path.prefix(128)) cannot be wrapped")
        }
        let auth = json["auth"] ?? .null
        // Nothing to wrap (rewrap's own answer is a wrap_info already).
        guard (json["data"] ?? .null) != .null || auth != .null else {
            return Response(status: response.status, headers: response.headers, body: .init(byteBuffer: bytes))
        }
        // An anonymous caller could otherwise fill the store with sealed answers of its own.
        guard !intent.creator.isEmpty else { throw TesseraError.badRequest("response wrapping needs an authenticated request") }
        var wrappedAccessor = ""
        // The token inside a login or token creation (only Tessera's own handlers answer with
        // `auth`), or the secret id inside an AppRole secret-id answer. Never a field of stored
        // data: that would show a secret in wrap_info and the audit trail.
        if case .string(let a)? = auth["accessor"], Self.isAccessorShaped(a) {
            wrappedAccessor = a
        } else if Self.isSecretIDPath(vr.path), case .string(let a)? = json["data"]?["secret_id_accessor"], Self.isAccessorShaped(a) {
            wrappedAccessor = a
        }
        let record = try await tessera.wrapping.wrap(Array(bytes.readableBytesView), token: token, ttlSeconds: intent.ttlSeconds,
                                                     creationPath: vr.path + (vr.hadTrailingSlash ? "/" : ""), wrappedAccessor: wrappedAccessor, creator: intent.creator)
        return Self.wrapInfo(token.text, record)
    }

    /// Accessors Tessera issues: 24 hex digits (tokens) or a UUID (AppRole secret ids).
    static func isAccessorShaped(_ s: String) -> Bool {
        s.utf8.count <= 64 && !s.isEmpty
            && s.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) || $0 == UInt8(ascii: "-") }
    }

    /// `auth/<approle mount>/role/<name>/secret-id`, where an answer holds a new secret id.
    static func isSecretIDPath(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 5, parts[0] == "auth", let last = parts.last else { return false }
        return parts[parts.count - 3] == "role" && (last == "secret-id" || last == "custom-secret-id")
    }

    /// Answers that are never wrapped, refused before the request runs: streamed or non-JSON
    /// answers whose handlers hold resources until their body is sent.
    static func refusesWrapping(_ uriPath: String) -> Bool {
        ["/v1/sys/storage/raft/snapshot", "/v1/sys/metrics"].contains { uriPath.hasPrefix($0) }
    }

    static func wrapInfo(_ token: String, _ record: WrappedResponse) -> Response {
        var info: [(String, JSON)] = [("token", .string(token)), ("accessor", .string(record.accessor)), ("ttl", .int(Int64(record.ttlSeconds))),
                                      ("creation_time", .date(record.createdAt)), ("creation_path", .string(record.creationPath))]
        if !record.wrappedAccessor.isEmpty { info.append(("wrapped_accessor", .string(record.wrappedAccessor))) }
        return Responses.json(.obj(("request_id", .string("")), ("lease_id", .string("")), ("renewable", .bool(false)), ("lease_duration", .int(0)),
                                   ("data", .null), ("wrap_info", .object(info)), ("warnings", .null), ("auth", .null)))
    }

    /// The bytes of an answer's body, up to `maxWrappedBytes`.
    static func collect(_ body: ResponseBody) async throws -> ByteBuffer {
        let collector = BodyCollector(limit: maxWrappedBytes)
        try await body.write(collector)
        return collector.buffer
    }

    // MARK: sys/wrapping/*

    static func handles(_ path: String) -> Bool { path.hasPrefix("sys/wrapping/") }

    func handle(_ vr: VaultRequest) async throws -> Response {
        switch (vr.path, vr.operation) {
        case ("sys/wrapping/wrap", .write): return try await wrapBody(vr)
        case ("sys/wrapping/unwrap", .write): return try await unwrap(vr)
        case ("sys/wrapping/lookup", .write), ("sys/wrapping/lookup", .read): return try await lookup(vr)
        case ("sys/wrapping/rewrap", .write): return try await rewrap(vr)
        case ("sys/wrapping/wrap", _), ("sys/wrapping/unwrap", _), ("sys/wrapping/lookup", _), ("sys/wrapping/rewrap", _):
            return VaultResponses.errors([], status: .methodNotAllowed)
        default: throw VaultRequest.unsupportedPath
        }
    }

    /// The wrapping token of a request: the body's `token`, else `X-Vault-Token` when that is a
    /// wrapping token. `header` says whether it came from the header (and so authenticates nothing).
    func target(_ vr: VaultRequest) throws -> (token: String, header: Bool) {
        let f = try vr.fields()
        if let t = try f.string("token")?.trimmingCharacters(in: .whitespaces), !t.isEmpty { return (t, false) }
        if case .token(let t) = vr.credentials, ResponseWrapping.isWrappingToken(t) { return (t, true) }
        throw ResponseWrapping.invalid
    }

    func wrapBody(_ vr: VaultRequest) async throws -> Response {
        guard vr.context.wrap != nil else { throw TesseraError.badRequest("endpoint requires response wrapping to be used") }
        let data: JSON
        if vr.body.readableBytes == 0 {
            data = .object([])
        } else {
            guard var json = try? JSON.parse(vr.body.readableBytesView) else { throw TesseraError.badRequest("failed to decode JSON input: malformed body") }
            if json == .null { json = .object([]) }
            guard case .object = json else {
                throw TesseraError.badRequest("failed to decode JSON input: json: cannot unmarshal non-object into Go value of type map[string]interface {}")
            }
            data = json
        }
        try await tessera.run(vr.pipelineCall(action: "wrap", auditPath: "sys/wrapping/wrap")) { _ in () }
        return VaultResponses.envelope(data: data, requestId: vr.context.requestId)
    }

    func unwrap(_ vr: VaultRequest) async throws -> Response {
        let (token, fromHeader) = try target(vr)
        // The bearer of a wrapping token needs no other identity; a token named in the body is
        // unwrapped by an authenticated caller (Vault's default policy).
        let call = vr.pipelineCall(action: "unwrap", auditPath: "sys/wrapping/unwrap", needsIdentity: !fromHeader)
        let taken = TakenRecords()
        let body: [UInt8]
        do {
            body = try await tessera.run(call) { caller in
                let (record, body) = try await tessera.wrapping.unwrap(token)
                taken.set(record)
                Self.note(record, caller.notes)
                // Wrapping the unwrapped answer again is done for the one who wrapped it.
                if fromHeader { vr.context.wrap?.setCreator(record.creatorAccessId) }
                return body
            }
        } catch {
            // Taken but not audited (or not served): it stays wrapped.
            if let record = taken.first { await tessera.wrapping.restore(record) }
            throw error
        }
        guard case .object(var pairs)? = try? JSON.parse(body) else { throw TesseraError.integrity("a wrapped answer is malformed") }
        for i in pairs.indices {
            if pairs[i].0 == "request_id" { pairs[i].1 = .string(vr.context.requestId) }
            if pairs[i].0 == "wrap_info" { pairs[i].1 = .null }
        }
        return Responses.json(.object(pairs))
    }

    func lookup(_ vr: VaultRequest) async throws -> Response {
        let (token, _) = try target(vr)
        let record = try await tessera.run(vr.pipelineCall(action: "wrapping_lookup", auditPath: "sys/wrapping/lookup", needsIdentity: false)) { caller in
            let record = try await tessera.wrapping.lookup(token)
            Self.note(record, caller.notes, key: "looked_up_accessor")
            return record
        }
        return VaultResponses.envelope(data: .obj(("creation_path", .string(record.creationPath)), ("creation_time", .date(record.createdAt)),
                                                  ("creation_ttl", .int(Int64(record.ttlSeconds)))),
                                       requestId: vr.context.requestId)
    }

    func rewrap(_ vr: VaultRequest) async throws -> Response {
        let (token, fromHeader) = try target(vr)
        guard !fromHeader else { throw TesseraError.unauthorized("") }
        let taken = TakenRecords()
        do {
            let (next, record) = try await tessera.run(vr.pipelineCall(action: "rewrap", auditPath: "sys/wrapping/rewrap")) { caller in
                let (next, record, previous) = try await tessera.wrapping.rewrap(token)
                taken.set(previous, record)
                Self.note(previous, caller.notes, key: "rewrapped_accessor")
                caller.notes.set("new_wrap_accessor", record.accessor)
                return (next, record)
            }
            return Self.wrapInfo(next.text, record)
        } catch {
            // The new token was never delivered: the old one stays live.
            if let previous = taken.first, let next = taken.second { await tessera.wrapping.undoRewrap(previous: previous, next: next) }
            throw error
        }
    }

    /// What the audit event of an unwrap, lookup or rewrap records: the wrapped answer's
    /// accessor, where it came from, and the accessor of a token inside it.
    static func note(_ record: WrappedResponse, _ notes: AuditNotes, key: String = "unwrapped_accessor") {
        notes.set(key, record.accessor)
        notes.set("creation_path", record.creationPath)
        if !record.wrappedAccessor.isEmpty { notes.set("wrapped_accessor", record.wrappedAccessor) }
    }
}

/// Collects an answer's body in memory (answers are built whole; this only reads them back).
final class BodyCollector: ResponseBodyWriter {
    var buffer = ByteBuffer()
    let limit: Int
    init(limit: Int) { self.limit = limit }
    func write(_ part: ByteBuffer) async throws {
        guard buffer.readableBytes + part.readableBytes <= limit else { throw TesseraError.badRequest("the answer is too large to wrap") }
        var part = part
        buffer.writeBuffer(&part)
    }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

/// What an unwrap or rewrap took from the store, kept so that a request that fails afterwards
/// can put it back.
final class TakenRecords: Sendable {
    private let state = Mutex<(WrappedResponse?, WrappedResponse?)>((nil, nil))
    func set(_ first: WrappedResponse, _ second: WrappedResponse? = nil) { state.withLock { $0 = (first, second) } }
    var first: WrappedResponse? { state.withLock { $0.0 } }
    var second: WrappedResponse? { state.withLock { $0.1 } }
}
