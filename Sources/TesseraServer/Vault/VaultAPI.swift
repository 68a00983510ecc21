// The Vault-compatible front-end: everything under `/v1/`. It resolves the path to a sys
// endpoint, a token/login endpoint or a mount, and hands each operation to the pipeline with the
// capability Vault would require, mapped onto Tessera item paths.
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TesseraCore
import TesseraEngines

struct VaultAPI: Sendable {
    let tessera: Tessera
    let system: SystemAPI

    func register(on router: Router<TesseraRequestContext>) {
        for method in [HTTPRequest.Method.get, .put, .post, .delete, .patch, .head, .options] {
            router.on("/v1/**", method: method) { request, context in await handle(request, context) }
            router.on("/v1", method: method) { request, context in await handle(request, context) }
        }
    }

    func handle(_ request: Request, _ context: TesseraRequestContext) async -> Response {
        var request = request
        var ctx = TesseraCore.RequestContext(interface: .vault, clientAddress: context.clientAddress, startedAt: tessera.now())
        if request.headers[EdgeAPI.requestHeader] != nil { ctx.edge = EdgeReadHint() }
        do {
            if request.method == .options {
                return VaultResponses.errors(["cannot handle internal-only request operation"], status: .badRequest)
            }
            let body = try await request.collectLimited(tessera.options.maxBodyBytes)
            // Response wrapping: the token is chosen now, so that the request's audit event names it.
            var wrapToken: ResponseWrapping.Token?
            if let ttl = try VaultWrapping.requestedTTL(request), !request.uri.path.hasPrefix("/v1/sys/edge/") {
                guard !VaultWrapping.refusesWrapping(request.uri.path) else {
                    return VaultResponses.errors(["this endpoint's answer cannot be wrapped"], status: .badRequest)
                }
                let token = ResponseWrapping.newToken()
                wrapToken = token
                ctx.wrap = WrapIntent(ttlSeconds: ttl, accessor: token.accessor)
            }
            var vr: VaultRequest
            do {
                vr = try VaultRequest(request, body: body, context: ctx)
                vr.connection = context.channel
            } catch let e as TesseraError where e == VaultRequest.unsupportedMethod {
                return VaultResponses.errors([], status: .methodNotAllowed)
            } catch let e as TesseraError where e == VaultRequest.unsupportedPath {
                return VaultResponses.errors([e.message], status: .notFound)
            }
            var response = try await dispatch(vr, request)
            if let intent = ctx.wrap, let wrapToken {
                response = try await VaultWrapping(tessera: tessera).wrap(response, vr, intent: intent, token: wrapToken)
            }
            log(request, response.status.code, context)
            EdgeAPI.nameItems(ctx.edge, in: &response)
            let ignored = vr.ignoredFields.all
            if !ignored.isEmpty, let header = HTTPField.Name("X-Tessera-Warnings") {
                // Vault's words for the same warning.
                response.headers[header] = "Endpoint ignored these unrecognized parameters: [" + FieldSet.warningList(ignored) + "]"
            }
            return response
        } catch {
            let e = Tessera.classify(error, logger: tessera.logger)
            log(request, e.status, context)
            return VaultResponses.error(e)
        }
    }

    func dispatch(_ vr: VaultRequest, _ request: Request) async throws -> Response {
        var vr = vr
        let path = vr.path
        if path.hasPrefix("sys/edge/") {
            return try await EdgeAPI(tessera: tessera).handle(vr)
        }
        if path == "sys" || path.hasPrefix("sys/") {
            vr.declaredAt = (.system, path)
            return try await VaultSysAPI(tessera: tessera, system: system).handle(vr, request)
        }
        if path.hasPrefix("auth/") {
            vr.declaredAt = (.auth, path)
            return try await VaultAuthAPI(tessera: tessera).handle(vr)
        }
        guard let (mount, rest) = tessera.mounts.resolve(path) else {
            // Like Vault: a caller without a valid identity learns nothing about the mount table.
            let call = vr.pipelineCall(action: "vault_request", auditPath: "/" + path)
            try await tessera.run(call) { _ in () }
            return VaultResponses.errors(["no handler for route \"\(path.prefix(256))\". route entry not found."], status: .notFound)
        }
        if let usc = mount.uscName {
            vr.declaredAt = (.kvV2, rest)
            return try await VaultProxy(tessera: tessera, mount: mount, uscName: usc).handle(vr, rest: rest)
        }
        let kv = VaultKV(tessera: tessera, mount: mount)
        let engine: VaultPathSpec.Engine = switch mount.kind {
        case .kvV2: .kvV2
        case .kvV1: .kvV1
        case .database: .database
        }
        vr.declaredAt = (engine, rest)
        switch mount.kind {
        case .kvV2: return try await kv.handleV2(vr, rest: rest)
        case .kvV1: return try await kv.handleV1(vr, rest: rest)
        case .database: return try await VaultLeases(tessera: tessera).creds(vr, mount: mount, rest: rest)
        }
    }

    func log(_ request: Request, _ status: Int, _ context: TesseraRequestContext) {
        tessera.logger.debug("vault request", metadata: ["method": "\(request.method)", "status": "\(status)", "client": "\(context.clientAddress)"])
    }
}

extension VaultMount {
    /// The item path for a path relative to the mount (percent-decoded after validation).
    func itemPath(_ rest: String) throws -> ItemPath {
        guard !rest.isEmpty else { throw TesseraError.badRequest("missing secret path") }
        let raw = folder.folderPrefix + rest
        // Validate the raw and the decoded form, then use the decoded one.
        _ = try ItemPath(raw)
        return try ItemPath(raw.removingPercentEncoding ?? raw)
    }

    /// The folder for a list operation relative to the mount ("" = the mount's folder).
    func folderPath(_ rest: String) throws -> ItemPath {
        if rest.isEmpty { return folder }
        let raw = folder.folderPrefix + rest
        _ = try ItemPath(folder: raw)
        return try ItemPath(folder: raw.removingPercentEncoding ?? raw)
    }

    /// The mount entry as `sys/mounts` and the preflight show it.
    /// Vault's system default lease TTL, shown for a mount that was not tuned.
    static let systemLeaseTTL: Int64 = 2_764_800

    /// `sys/mounts/<path>/tune`: the effective settings.
    var tuneJSON: JSON {
        .obj(("default_lease_ttl", .int(defaultLeaseTTL > 0 ? Int64(defaultLeaseTTL) : Self.systemLeaseTTL)),
             ("description", .string(description)), ("force_no_cache", .bool(false)),
             ("max_lease_ttl", .int(maxLeaseTTL > 0 ? Int64(maxLeaseTTL) : Self.systemLeaseTTL)),
             ("options", kind == .database ? .null : .obj(("version", .string(kind == .kvV2 ? "2" : "1")))))
    }

    var entryJSON: JSON {
        .obj(("accessor", .string(accessor)),
             ("config", .obj(("default_lease_ttl", .int(Int64(defaultLeaseTTL))), ("force_no_cache", .bool(false)), ("max_lease_ttl", .int(Int64(maxLeaseTTL))))),
             ("deprecation_status", .string("supported")),
             ("description", .string(description)),
             ("external_entropy_access", .bool(false)),
             ("local", .bool(false)),
             ("options", kind == .database ? .null : .obj(("version", .string(kind == .kvV2 ? "2" : "1")))),
             ("plugin_version", .string("")),
             ("running_plugin_version", .string("v\(SystemAPI.version)+builtin.tessera")),
             ("running_sha256", .string("")),
             ("seal_wrap", .bool(false)),
             ("type", .string(kind == .database ? "database" : "kv")),
             ("uuid", .string(uuid)))
    }
}
