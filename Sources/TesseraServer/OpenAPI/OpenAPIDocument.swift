// OpenAPIDocument: the OpenAPI 3 document of every endpoint, generated from the same declarations
// that validate requests (`NativeVerb` fields and `VaultPaths`). Served at `/v1/sys/openapi` and
// `/api/v2/openapi.json`, committed as `docs/openapi.json`, and the input of the fuzz run.
import TesseraCore

public enum OpenAPIDocument {
    /// The Vault mounts the document shows, as `tessera server --dev` has them (KV v2 at `secret/`)
    /// plus the usual names of a KV v1 and a database mount.
    static let exampleMounts: [(VaultPathSpec.Engine, String)] = [(.kvV2, "secret"), (.kvV1, "kv"), (.database, "database")]

    public static func build(registry: NativeVerbRegistry = .standard) -> JSON {
        var paths: [(String, JSON)] = []
        for name in registry.verbs.keys.sorted() {
            guard let verb = registry.verbs[name] else { continue }
            paths.append(("/api/v2/\(name)", .obj(("post", nativeOperation(verb)))))
        }
        for (path, item) in vaultPaths() { paths.append((path, item)) }
        return .obj(
            ("openapi", .string("3.0.3")),
            ("info", .obj(("title", .string("Tessera")), ("version", .string(SystemAPI.version)),
                          ("description", .string("The native API (Akeyless v2 shape: POST /api/v2/<verb>, token in the body) and the Vault-compatible API (/v1/…, token in X-Vault-Token). Generated from the endpoint declarations.")))),
            ("paths", .object(paths)),
            ("components", .obj(("securitySchemes", .obj(("vaultToken", .obj(("type", .string("apiKey")), ("in", .string("header")),
                                                                                 ("name", .string("X-Vault-Token"))))))))
        )
    }

    /// The standard document, serialized once (it depends only on the declarations).
    public static let standardBytes: [UInt8] = build().bytes

    /// The number of operations the document declares (printed by the fuzz run).
    public static func operationCount(_ doc: JSON) -> Int {
        guard case .object(let paths)? = doc["paths"] else { return 0 }
        return paths.reduce(0) { n, p in
            guard case .object(let ops) = p.1 else { return n }
            return n + ops.count
        }
    }

    static func nativeOperation(_ verb: NativeVerb) -> JSON {
        let auth: String
        switch verb.access {
        case .anonymous: auth = "none"
        default: auth = "token"
        }
        var properties: [(String, JSON)] = []
        var required: [JSON] = []
        for f in verb.fields.fields {
            properties.append((f.name, schema(f)))
            for alias in f.aliases { properties.append((alias, schema(f, aliasOf: f.name))) }
            if f.required { required.append(.string(f.name)) }
        }
        var body: [(String, JSON)] = [("type", .string("object")), ("properties", .object(properties))]
        if !required.isEmpty { body.append(("required", .array(required))) }
        return .obj(("operationId", .string(verb.name)),
                    ("summary", .string(verb.help.isEmpty ? verb.name : verb.help)),
                    ("x-tessera-auth", .string(auth)),
                    ("x-tessera-declared", .bool(!verb.fields.fields.isEmpty)),
                    ("requestBody", .obj(("required", .bool(false)),
                                         ("content", .obj(("application/json", .obj(("schema", .object(body)))))))),
                    ("responses", responses))
    }

    static func vaultPaths() -> [(String, JSON)] {
        var out: [(String, [(String, JSON)])] = []
        func add(_ path: String, _ method: String, _ op: JSON) {
            if let i = out.firstIndex(where: { $0.0 == path }) { out[i].1.append((method, op)) } else { out.append((path, [(method, op)])) }
        }
        for spec in VaultPaths.all {
            let prefixes: [String]
            switch spec.engine {
            case .system, .auth: prefixes = [""]
            default: prefixes = exampleMounts.filter { $0.0 == spec.engine }.map { $0.1 + "/" }
            }
            for prefix in prefixes {
                let path = "/v1/" + prefix + spec.pattern
                var hasGet = spec.operations.contains { $0.method == "GET" }
                for op in spec.operations {
                    if op.method == "LIST" {
                        // OpenAPI has no LIST: Vault's own document puts it on GET with `list=true`.
                        if hasGet { continue }
                        add(path, "get", vaultOperation(op, path: path, list: true))
                        hasGet = true
                        continue
                    }
                    let listToo = op.method == "GET" && spec.operations.contains { $0.method == "LIST" }
                    add(path, op.method.lowercased(), vaultOperation(op, path: path, list: listToo))
                }
            }
        }
        return out.map { ($0.0, .object($0.1)) }
    }

    static func vaultOperation(_ op: VaultPathSpec.Operation, path: String, list: Bool) -> JSON {
        var parameters: [JSON] = []
        for name in ["mount", "path", "prefix", "name"] where path.contains("{\(name)}") {
            parameters.append(.obj(("name", .string(name)), ("in", .string("path")), ("required", .bool(true)),
                                   ("schema", .obj(("type", .string("string"))))))
        }
        if list {
            parameters.append(.obj(("name", .string("list")), ("in", .string("query")), ("required", .bool(false)),
                                   ("schema", .obj(("type", .string("string")), ("enum", .strings(["true"]))))))
        }
        var fields: [(String, JSON)] = []
        var required: [JSON] = []
        for f in op.fields.fields {
            if op.method == "GET" || op.method == "DELETE" {
                parameters.append(.obj(("name", .string(f.name)), ("in", .string("query")), ("required", .bool(false)),
                                       ("description", .string(f.help)), ("schema", schema(f))))
            } else {
                fields.append((f.name, schema(f)))
                if f.required { required.append(.string(f.name)) }
            }
        }
        var pairs: [(String, JSON)] = [("summary", .string(op.summary)), ("x-tessera-auth", .string(op.authenticated ? "token" : "none"))]
        if op.authenticated { pairs.append(("security", .array([.obj(("vaultToken", .array([])))]))) }
        if !parameters.isEmpty { pairs.append(("parameters", .array(parameters))) }
        if op.method != "GET" && op.method != "DELETE" {
            var body: [(String, JSON)] = [("type", .string("object")), ("properties", .object(fields))]
            if !required.isEmpty { body.append(("required", .array(required))) }
            if op.freeForm { body.append(("additionalProperties", .bool(true))) }
            pairs.append(("requestBody", .obj(("required", .bool(false)),
                                              ("content", .obj(("application/json", .obj(("schema", .object(body)))))))))
        }
        pairs.append(("responses", responses))
        return .object(pairs)
    }

    static func schema(_ f: FieldSpec, aliasOf: String? = nil) -> JSON {
        var s: [(String, JSON)]
        switch f.kind {
        case .string: s = [("type", .string("string"))]
        case .integer(let r): s = [("type", .string("integer")), ("minimum", .int(Int64(r.lowerBound))), ("maximum", .int(Int64(r.upperBound)))]
        case .boolean: s = [("type", .string("boolean"))]
        case .duration(let max):
            s = [("oneOf", .array([.obj(("type", .string("integer")), ("minimum", .int(0)), ("maximum", .int(Int64(max)))),
                                   .obj(("type", .string("string")), ("example", .string("1h30m")))]))]
        case .stringList:
            s = [("oneOf", .array([.obj(("type", .string("array")), ("items", .obj(("type", .string("string"))))),
                                   .obj(("type", .string("string")))]))]
        case .object: s = [("type", .string("object"))]
        case .any: s = []
        }
        if f.sensitive { s += [("format", .string("password")), ("writeOnly", .bool(true))] }
        s.append(("description", .string(aliasOf.map { "Alias of \($0)." } ?? f.help)))
        return .object(s)
    }

    static let responses: JSON = .obj(
        ("200", .obj(("description", .string("Success.")))),
        ("204", .obj(("description", .string("Success, no content.")))),
        ("400", .obj(("description", .string("Invalid input; nothing changed.")))),
        ("403", .obj(("description", .string("Permission denied.")))),
        ("404", .obj(("description", .string("Not found."))))
    )
}
