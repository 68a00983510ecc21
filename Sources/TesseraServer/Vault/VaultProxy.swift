// VaultProxy: a Vault mount backed by a Universal Secret Connector. Each request is authorized
// by Tessera on `/<usc-name>/<path>` — the same item paths as the `usc` commands, so one role
// governs both routes — audited with the caller's Tessera identity, and only then forwarded to
// the upstream Vault with the target's token. Upstream answers pass through unchanged, except
// a rejected target token or an upstream server error (502) and a time-out (504).
import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1
import TesseraCore
import TesseraEngines

struct VaultProxy: Sendable {
    let tessera: Tessera
    let mount: VaultMount
    let uscName: String

    func handle(_ vr: VaultRequest, rest: String) async throws -> Response {
        let (section, sub) = VaultKV(tessera: tessera, mount: mount).split(rest)
        let folder = mount.folder
        switch (section, vr.operation) {
        case ("metadata", .list), ("data", .list):
            let listFolder = sub.isEmpty ? folder : try mount.folderPath(sub)
            return try await forward(vr, action: "list_items", auditPath: listFolder.value, call: vr.pipelineCall(action: "list_items", auditPath: listFolder.value, listing: listFolder),
                                     method: .GET, upstreamPath: "metadata/", sub: sub, query: "list=true", filterFolder: listFolder)
        case ("data", .read):
            let p = try mount.itemPath(sub)
            let q = vr.query["version"].map { "version=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "") }
            return try await forward(vr, action: "get_secret_value", path: p, checks: [AccessCheck(.read, .item, p)], method: .GET, upstreamPath: "data/", sub: sub, query: q)
        case ("data", .write):
            let p = try mount.itemPath(sub)
            return try await forwardWrite(vr, p, sub: sub)
        case ("data", .patch):
            let p = try mount.itemPath(sub)
            return try await forward(vr, action: "update_item", path: p, checks: [AccessCheck(.update, .item, p)], method: .PATCH, upstreamPath: "data/", sub: sub, body: true)
        case ("data", .delete):
            let p = try mount.itemPath(sub)
            return try await forward(vr, action: "delete_item", path: p, checks: [AccessCheck(.delete, .item, p)], method: .DELETE, upstreamPath: "data/", sub: sub)
        case ("delete", .write), ("destroy", .write), ("undelete", .write):
            let p = try mount.itemPath(sub)
            let capability: Capability = section == "undelete" ? .update : .delete
            return try await forward(vr, action: section + "_item", path: p, checks: [AccessCheck(capability, .item, p)], method: .PUT,
                                     upstreamPath: section + "/", sub: sub, body: true)
        case ("metadata", .read):
            let p = try mount.itemPath(sub)
            return try await forward(vr, action: "get_item", path: p, checks: [AccessCheck(anyOf: [.read, .list], .item, p)], method: .GET, upstreamPath: "metadata/", sub: sub)
        case ("metadata", .write), ("metadata", .patch):
            let p = try mount.itemPath(sub)
            return try await forward(vr, action: "update_item_metadata", path: p, checks: [AccessCheck(.update, .item, p)],
                                     method: vr.operation == .patch ? .PATCH : .PUT, upstreamPath: "metadata/", sub: sub, body: true)
        case ("metadata", .delete):
            let p = try mount.itemPath(sub)
            return try await forward(vr, action: "delete_item", path: p, checks: [AccessCheck(.delete, .item, p)], method: .DELETE, upstreamPath: "metadata/", sub: sub)
        case ("config", .read), ("config", .write):
            let write = vr.operation == .write
            // The upstream mount's settings reach past the connector's prefix to every secret of the
            // upstream mount: changing them is a system operation on this mount.
            let checks = write ? [AccessCheck(.update, .system, SystemPath.mount(mount.path)), AccessCheck(.update, .item, folder)]
                               : [AccessCheck(.read, .item, folder)]
            return try await forward(vr, action: write ? "update_mount_config" : "read_mount_config", path: folder,
                                     checks: checks, method: write ? .PUT : .GET,
                                     upstreamPath: "config", sub: "", body: write)
        case (_, .head):
            return VaultResponses.errors([], status: .methodNotAllowed)
        default:
            try await tessera.run(vr.pipelineCall(action: "vault_request", auditPath: "/" + vr.path)) { _ in () }
            return VaultResponses.errors([VaultResponses.unsupported], status: .methodNotAllowed)
        }
    }

    /// A KV v2 data write. Holding `update` allows any write; holding only `create` forwards the
    /// write with check-and-set 0, so that it can create a secret but never overwrite one.
    func forwardWrite(_ vr: VaultRequest, _ p: ItemPath, sub: String) async throws -> Response {
        let fields = try vr.fields()
        guard let data = fields.raw("data"), data != .null else { throw TesseraError.badRequest("no data provided") }
        let call = vr.pipelineCall(action: "update_item", auditPath: p.value, checks: [AccessCheck(anyOf: [.update, .create], .item, p)])
        let response = try await tessera.run(call) { caller -> UpstreamResponse in
            var body = fields.body
            if caller.principal?.authorizer.check(.update, on: p).isAllowed != true, case .object(var pairs) = body {
                pairs.removeAll { $0.0 == "options" }
                pairs.append(("options", .obj(("cas", .int(0)))))
                body = .object(pairs)
            }
            return try await send(caller, method: .PUT, upstreamPath: "data/", sub: sub, query: nil, body: body.bytes, contentType: "application/json")
        }
        return Self.relay(response)
    }

    func forward(_ vr: VaultRequest, action: String, path: ItemPath, checks: [AccessCheck], method: HTTPMethod, upstreamPath: String,
                 sub: String, query: String? = nil, body: Bool = false) async throws -> Response {
        try await forward(vr, action: action, auditPath: path.value, call: vr.pipelineCall(action: action, auditPath: path.value, checks: checks),
                          method: method, upstreamPath: upstreamPath, sub: sub, query: query, body: body)
    }

    func forward(_ vr: VaultRequest, action: String, auditPath: String, call: PipelineCall, method: HTTPMethod, upstreamPath: String,
                 sub: String, query: String? = nil, body: Bool = false, filterFolder: ItemPath? = nil) async throws -> Response {
        if body, vr.body.readableBytes > 0 { _ = try vr.fields() }
        let payload: [UInt8]? = body ? Array(vr.body.readableBytesView) : nil
        let response = try await tessera.run(call) { caller -> UpstreamResponse in
            var r = try await send(caller, method: method, upstreamPath: upstreamPath, sub: sub, query: query, body: payload, contentType: vr.contentType)
            if let filterFolder, r.status == 200 {
                r = try Self.filterKeys(r, folder: filterFolder, authorizer: caller.principal?.authorizer ?? Authorizer(rules: []))
            }
            return r
        }
        return Self.relay(response)
    }

    /// Sends the request upstream and records the status the client will get.
    func send(_ caller: CallerContext, method: HTTPMethod, upstreamPath: String, sub: String, query: String?, body: [UInt8]?,
              contentType: String?) async throws -> UpstreamResponse {
        let binding = try await tessera.connectors.bind(try await tessera.connectors.connector(named: uscName))
        let target = upstreamPath == "config" ? "config" : upstreamPath + binding.upstreamPath(sub)
        let path = "/v1/" + binding.kvMount + target + (query.map { "?" + $0 } ?? "")
        let r = try await tessera.connectors.send(binding, method: method, path: path, body: body, contentType: contentType)
        switch r.status {
        case 401, 403:
            throw TesseraError.badGateway("the upstream Vault rejected the target's token (permission denied)")
        case 500...:
            throw TesseraError.badGateway("the upstream Vault answered HTTP \(r.status)\(r.errorText.isEmpty ? "" : ": " + r.errorText)")
        default:
            caller.notes.setStatus(r.status)
            return r
        }
    }

    /// Keeps only the keys the caller may list; no visible key is a 404, as Vault answers. An
    /// answer that cannot be filtered is never relayed (fails closed, 502).
    static func filterKeys(_ r: UpstreamResponse, folder: ItemPath, authorizer: Authorizer) throws -> UpstreamResponse {
        guard let parsed = try? JSON.parse(r.body), case .object(var pairs) = parsed,
              let dataIndex = pairs.firstIndex(where: { $0.0 == "data" }), case .object(var data) = pairs[dataIndex].1,
              let keysIndex = data.firstIndex(where: { $0.0 == "keys" }), case .array(let keys) = data[keysIndex].1 else {
            throw TesseraError.badGateway("the upstream Vault's list answer could not be read, so it was not relayed")
        }
        let visible = keys.filter { key in
            guard case .string(let k) = key else { return false }
            if k.hasSuffix("/") {
                guard let sub = try? folder.appending(String(k.dropLast())) else { return false }
                return authorizer.mayList(folder: sub)
            }
            guard let item = try? folder.appending(k) else { return false }
            return authorizer.check(.list, on: item).isAllowed
        }
        if visible.isEmpty { return UpstreamResponse(status: 404, body: Array(#"{"errors":[]}"#.utf8), contentType: "application/json") }
        data[keysIndex].1 = .array(visible)
        pairs[dataIndex].1 = .object(data)
        return UpstreamResponse(status: r.status, body: JSON.object(pairs).bytes, contentType: r.contentType)
    }

    /// The upstream answer as the client's response: same status, same body, Vault's headers.
    static func relay(_ r: UpstreamResponse) -> Response {
        var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
        if r.status == 204 || r.body.isEmpty {
            return Response(status: .init(code: r.status), headers: headers)
        }
        headers[.contentLength] = String(r.body.count)
        return Response(status: .init(code: r.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: r.body)))
    }
}
