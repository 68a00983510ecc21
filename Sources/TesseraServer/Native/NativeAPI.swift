// The native API front-end: `POST /api/v2/<verb>` (and `POST /<verb>`, as the Akeyless SDK
// sends when its host has no `/api/v2`). It parses the body, looks the verb up in the registry,
// and hands the call to the pipeline.
import Foundation
import HTTPTypes
import Hummingbird
import TesseraCore

public struct NativeAPI: Sendable {
    let tessera: Tessera
    let registry: NativeVerbRegistry

    public init(tessera: Tessera, registry: NativeVerbRegistry = .standard) {
        self.tessera = tessera
        self.registry = registry
    }

    func register(on router: Router<TesseraRequestContext>) {
        router.post("/api/v2/:verb") { request, context in
            await handle(request, context)
        }
        for method in [HTTPRequest.Method.get, .put, .delete, .patch, .head, .options] {
            router.on("/api/v2/:verb", method: method) { _, _ in
                Responses.json(.obj(("error", .string("MethodNotAllowed")), ("message", .string("the native API takes POST with a JSON body"))),
                               status: .methodNotAllowed)
            }
        }
        for name in registry.verbs.keys {
            router.post("/\(name)") { request, context in
                await handle(request, context)
            }
        }
    }

    func handle(_ request: Request, _ context: TesseraRequestContext) async -> Response {
        var request = request
        let name = context.parameters.get("verb") ?? String(request.uri.path.split(separator: "/").last ?? "")
        do {
            guard let verb = registry.verbs[name] else {
                throw TesseraError.notFound("unknown verb '\(name.prefix(64))'")
            }
            let body = try await request.collectLimited(tessera.options.maxBodyBytes)
            let json: JSON = body.readableBytes == 0 ? .object([]) : try JSON.parse(body.readableBytesView)
            let unknown = verb.fields.fields.isEmpty ? [] : try verb.fields.validate(json)
            let fields = try RequestFields(json, declared: verb.fields)
            var prepared = try verb.prepare(fields)
            if !unknown.isEmpty { prepared.parameters["ignored_fields"] = FieldSet.warningList(unknown) }
            var ctx = RequestContext(interface: .native, clientAddress: context.clientAddress, startedAt: tessera.now())
            if request.headers[EdgeAPI.requestHeader] != nil { ctx.edge = EdgeReadHint() }
            var call = try verb.call(prepared, fields: fields, context: ctx)
            call.edgeCacheable = EdgeAPI.cacheableNativeActions.contains(verb.action)
            let output = try await tessera.run(call) { caller in try await prepared.run(tessera, caller) }
            log(name, 200, context)
            var response = Responses.json(output)
            EdgeAPI.nameItems(ctx.edge, in: &response)
            if !unknown.isEmpty, let header = HTTPField.Name("X-Tessera-Warnings") {
                response.headers[header] = "Endpoint ignored these unrecognized parameters: [" + FieldSet.warningList(unknown) + "]"
            }
            return response
        } catch {
            let e = Tessera.classify(error, logger: tessera.logger)
            log(name, e.status, context)
            return Responses.nativeError(e)
        }
    }

    /// One debug line per request: the verb, the status and the client; never a body.
    func log(_ verb: String, _ status: Int, _ context: TesseraRequestContext) {
        tessera.logger.debug("native request", metadata: ["verb": "\(verb.prefix(64))", "status": "\(status)", "client": "\(context.clientAddress)"])
    }
}
