// The Vault front-end in-process: the LIST rewriter, one item seen through both APIs, Vault
// error shapes (403 never 401, 404 with `[]`, deleted-version envelope), and denials audited
// with interface `vault`.
import Foundation
import HTTPTypes
import NIOCore
import NIOEmbedded
import Testing
@testable import TesseraCore
@testable import TesseraServer

@Suite struct ListMethodRewriterTests {
    func rewritten(_ chunks: [String]) throws -> String {
        let channel = EmbeddedChannel(handler: ListMethodRewriter())
        for c in chunks { try channel.writeInbound(ByteBuffer(string: c)) }
        var out = ""
        while var b = try channel.readInbound(as: ByteBuffer.self) { out += b.readString(length: b.readableBytes) ?? "" }
        _ = try channel.finish()
        return out
    }

    @Test func listBecomesGetWithListFlag() throws {
        #expect(try rewritten(["LIST /v1/secret/metadata HTTP/1.1\r\nHost: x\r\n\r\n"]) == "GET /v1/secret/metadata?list=true HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try rewritten(["LIST /v1/a?x=1 HTTP/1.1\r\n\r\n"]) == "GET /v1/a?x=1&list=true HTTP/1.1\r\n\r\n")
        // Split across reads.
        #expect(try rewritten(["LI", "ST /v1/a HT", "TP/1.1\r\n\r\n"]) == "GET /v1/a?list=true HTTP/1.1\r\n\r\n")
    }

    @Test func otherMethodsPassUntouchedAndUnknownOnesAreMarked() throws {
        let get = "GET /v1/a HTTP/1.1\r\n\r\n"
        #expect(try rewritten([get]) == get)
        #expect(try rewritten(["FOO /v1/a HTTP/1.1\r\n\r\n"]) == "GET /v1/a?\(ListMethodRewriter.unsupportedMarker)=1 HTTP/1.1\r\n\r\n")
        // Once a request is under way, body bytes are never rewritten.
        #expect(try rewritten(["POST /v1/a HTTP/1.1\r\nContent-Length: 10\r\n\r\n", "LIST /x HT"]).hasSuffix("LIST /x HT"))
    }
}

@Suite struct VaultAPITests {
    func headers(_ token: String) -> HTTPFields {
        var h = HTTPFields()
        h[SystemAPI.vaultTokenHeader] = token
        return h
    }

    @Test func oneItemThroughBothAPIs() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { tessera, c, admin in
            _ = try await tessera.mounts.create(path: "secret/", kind: .kvV2, folder: nil)
            _ = try await tessera.mounts.create(path: "kv1", kind: .kvV1, folder: "/legacy")
            let vt = headers(admin.accessId + ".." + admin.accessKey)
            let put = try await c.raw("/v1/secret/data/app/db", method: .put, body: ByteBuffer(string: #"{"data":{"user":"u","pw":"p1"}}"#), headers: vt)
            #expect(put.status == 200)
            #expect(put["data"]?["version"] == .int(1))
            let t = try await c.login(admin.accessId, admin.accessKey)
            let native = try await c.native("get-secret-value", ["names": ["/secret/app/db"]], token: t)
            #expect((try? JSON.parse(Array((native["/secret/app/db"]?.stringValue ?? "").utf8))) == .obj(("pw", .string("p1")), ("user", .string("u"))))
            _ = try await c.native("update-secret-val", ["name": "/secret/app/db", "value": #"{"user":"u","pw":"p2"}"#], token: t)
            let read = try await c.raw("/v1/secret/data/app/db", method: .get, headers: vt)
            #expect(read["data"]?["data"]?["pw"] == .string("p2"))
            #expect(read["data"]?["metadata"]?["version"] == .int(2))
            #expect(try await c.raw("/v1/secret/data/app/db?version=1", method: .get, headers: vt)["data"]?["data"]?["pw"] == .string("p1"))
            // A plain-text native value reads as {"value": text}.
            _ = try await c.native("create-secret", ["name": "/legacy/plain", "value": "just text"], token: t)
            let v1 = try await c.raw("/v1/kv1/plain", method: .get, headers: vt)
            #expect(v1["data"] == .obj(("value", .string("just text"))))
            #expect(v1["lease_duration"] == .int(2_764_800))
            // Listing with ?list=true.
            let list = try await c.raw("/v1/secret/metadata/?list=true", method: .get, headers: vt)
            #expect(list["data"]?["keys"] == .strings(["app/"]))
        }
    }

    @Test func vaultErrorShapes() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { tessera, c, admin in
            _ = try await tessera.mounts.create(path: "secret/", kind: .kvV2, folder: nil)
            let vt = headers(admin.accessId + ".." + admin.accessKey)
            let noToken = try await c.raw("/v1/secret/data/x", method: .get)
            #expect(noToken.status == 403)
            #expect(noToken.json == .obj(("errors", .strings(["permission denied"]))))
            #expect(try await c.raw("/v1/secret/data/x", method: .get, headers: headers("t-bogus")).status == 403)
            let missing = try await c.raw("/v1/secret/data/missing", method: .get, headers: vt)
            #expect(missing.status == 404)
            #expect(missing.json == .obj(("errors", .array([]))))
            _ = try await c.raw("/v1/secret/data/gone", method: .put, body: ByteBuffer(string: #"{"data":{"a":"b"}}"#), headers: vt)
            #expect(try await c.raw("/v1/secret/data/gone", method: .delete, headers: vt).status == 204)
            let deleted = try await c.raw("/v1/secret/data/gone", method: .get, headers: vt)
            #expect(deleted.status == 404)
            #expect(deleted["data"]?["data"] == .null)
            #expect(deleted["data"]?["metadata"]?["deletion_time"]?.stringValue?.isEmpty == false)
            for key in ["request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth"] {
                #expect(deleted[key] != nil, "envelope key \(key) missing")
            }
            let bad = try await c.raw("/v1/secret/data/a/../b", method: .get, headers: vt)
            #expect(bad.status == 400)
            #expect(try await c.raw("/v1/secret/data/x", method: .put, body: ByteBuffer(string: "[1]"), headers: vt).status == 400)
            #expect(try await c.raw("/v1/secret/data/x", method: .put, body: ByteBuffer(string: "{}"), headers: vt).status == 400)
        }
    }

    @Test func deniedVaultRequestIsAuditedWithInterfaceVault() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { tessera, c, admin in
            _ = try await tessera.mounts.create(path: "secret/", kind: .kvV2, folder: nil)
            let t = try await c.login(admin.accessId, admin.accessKey)
            let am = try await c.native("create-auth-method", ["name": "/limited"], token: t)
            _ = try await c.native("create-role", ["name": "app-reader"], token: t)
            _ = try await c.native("set-role-rule", ["role-name": "app-reader", "path": "/secret/app/*", "capability": ["read", "list"]], token: t)
            _ = try await c.native("assoc-role-am", ["role-name": "app-reader", "am-name": "/limited"], token: t)
            let id = am["access_id"]?.stringValue ?? ""
            let limited = headers(id + ".." + (am["access_key"]?.stringValue ?? ""))
            let denied = try await c.raw("/v1/secret/data/other", method: .get, headers: limited)
            #expect(denied.status == 403)
            #expect(denied.json == .obj(("errors", .strings([VaultResponses.multiDenied]))))
            let preflight = try await c.raw("/v1/sys/internal/ui/mounts/secret/app/x", method: .get, headers: limited)
            #expect(preflight["data"]?["path"] == .string("secret/"))
            #expect(preflight["data"]?["options"]?["version"] == .string("2"))
            let events = try await c.native("audit-query", ["access-id": id, "result": "denied"], token: t)
            guard case .array(let list)? = events["events"] else { Issue.record("no events"); return }
            #expect(list.contains { $0["interface"] == .string("vault") && $0["path"] == .string("/secret/other") })
        }
    }
}
