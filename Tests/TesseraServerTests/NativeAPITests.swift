// The native API in-process: items and versions, listing filtered by role, describe without
// values, deletion, role management, and bad input that must be a clear 4xx.
import Foundation
import NIOCore
import Testing
@testable import TesseraCore
@testable import TesseraServer

@Suite struct NativeAPITests {
    @Test func itemLifecycleAndVersions() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { _, c, admin in
            let t = try await c.login(admin.accessId, admin.accessKey)
            #expect(try await c.native("create-secret", ["name": "app/key", "value": "v1", "max-versions": "3", "tags": ["a"]], token: t)["name"] == .string("/app/key"))
            #expect(try await c.native("create-secret", ["name": "/app/key", "value": "again"], token: t).status == 409)
            for v in 2...4 { #expect(try await c.native("update-secret-val", ["name": "/app/key", "value": "v\(v)"], token: t).status == 200) }
            _ = try await c.native("create-secret", ["name": "/app/other", "value": "o"], token: t)
            let both = try await c.native("get-secret-value", ["names": ["/app/key", "app/other"]], token: t)
            #expect(both["/app/key"] == .string("v4"))
            #expect(both["app/other"] == .string("o"))
            #expect(try await c.native("get-secret-value", ["names": ["/app/key"], "version": 2], token: t)["/app/key"] == .string("v2"))
            // max-versions 3 keeps versions 2, 3 and 4.
            #expect(try await c.native("get-secret-value", ["names": ["/app/key"], "version": 1], token: t).status == 404)
            let d = try await c.native("describe-item", ["name": "/app/key"], token: t)
            #expect(d["last_version"] == .int(4))
            #expect(d["item_type"] == .string("STATIC_SECRET"))
            if case .array(let versions)? = d["item_versions"] { #expect(versions.count == 3) } else { Issue.record("no versions") }
            #expect(!d.text.contains("\"v4\"") && !d.text.contains("v3\""))
            // Delete the latest version: reads fall back to the newest live one.
            #expect(try await c.native("delete-item", ["name": "/app/key", "version": 0], token: t)["version_deleted"] == .int(4))
            #expect(try await c.native("get-secret-value", ["names": ["/app/key"]], token: t)["/app/key"] == .string("v3"))
            #expect(try await c.native("delete-item", ["name": "/app/key"], token: t).status == 200)
            #expect(try await c.native("get-secret-value", ["names": ["/app/key"]], token: t).status == 404)
            #expect(try await c.native("describe-item", ["name": "/app/key"], token: t).status == 404)
        }
    }

    @Test func listingIsFilteredByRole() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { _, c, admin in
            let t = try await c.login(admin.accessId, admin.accessKey)
            for p in ["/dev/a", "/dev/sub/b", "/prod/c", "/dev/hidden"] {
                _ = try await c.native("create-secret", ["name": p, "value": "x"], token: t)
            }
            let all = try await c.native("list-items", ["path": "/"], token: t)
            if case .array(let items)? = all["items"] { #expect(items.count == 4) }
            #expect(all["folders"] == .strings(["/dev", "/prod"]))
            let current = try await c.native("list-items", ["path": "/dev", "current-folder": true], token: t)
            if case .array(let items)? = current["items"] { #expect(items.count == 2) }
            #expect(current["folders"] == .strings(["/dev/sub"]))

            let dev = try await c.colleague(adminToken: t, name: "/dana", rules: [("/dev/*", ["read", "list"]), ("/dev/hidden", ["deny"])])
            let seen = try await c.native("list-items", ["path": "/"], token: dev.token)
            #expect(seen.status == 200)
            guard case .array(let items)? = seen["items"] else { Issue.record("no items"); return }
            #expect(Set(items.compactMap { $0["item_name"]?.stringValue }) == ["/dev/a", "/dev/sub/b"])
            #expect(seen["folders"] == .strings(["/dev"]))
            #expect(try await c.native("list-items", ["path": "/prod"], token: dev.token).status == 403)
            #expect(try await c.native("get-secret-value", ["names": ["/dev/hidden"]], token: dev.token).status == 403)
            #expect(try await c.native("create-secret", ["name": "/dev/new", "value": "x"], token: dev.token).status == 403)
            // Managing access needs role-rule / auth-method-rule capabilities the colleague lacks.
            #expect(try await c.native("create-role", ["name": "sneaky"], token: dev.token).status == 403)
            #expect(try await c.native("create-auth-method", ["name": "/sneaky"], token: dev.token).status == 403)
        }
    }

    @Test func roleManagement() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { _, c, admin in
            let t = try await c.login(admin.accessId, admin.accessKey)
            #expect(try await c.native("create-role", ["name": "r1", "audit-access": "own"], token: t).status == 200)
            #expect(try await c.native("create-role", ["name": "r1"], token: t).status == 409)
            #expect(try await c.native("set-role-rule", ["role-name": "r1", "path": "/s*", "capability": ["read", "list"]], token: t).status == 200)
            #expect(try await c.native("set-role-rule", ["role-name": "r1", "path": "/s*", "capability": ["fly"]], token: t).status == 400)
            #expect(try await c.native("set-role-rule", ["role-name": "r1", "path": "/x", "capability": ["read"], "rule-type": "bogus"], token: t).status == 400)
            let am = try await c.native("create-auth-method", ["name": "/am1"], token: t)
            let assoc = try await c.native("assoc-role-am", ["role-name": "r1", "am-name": "/am1", "case-sensitive": "true"], token: t)
            #expect(assoc["assoc_id"]?.stringValue?.hasPrefix("ass-") == true)
            let role = try await c.native("get-role", ["name": "r1"], token: t)
            #expect(role["role_name"] == .string("r1"))
            #expect(role["rules"]?["path_rules"] == .array([.obj(("path", .string("/s*")), ("capabilities", .strings(["read", "list"])),
                                                                  ("type", .string("item-rule")), ("ttl", .int(0)))]))
            #expect(role.text.contains(am["access_id"]?.stringValue ?? "missing"))
            let roles = try await c.native("list-roles", [:], token: t)
            if case .array(let list)? = roles["roles"] { #expect(list.count == 2) } else { Issue.record("no roles") }
            let methods = try await c.native("list-auth-methods", [:], token: t)
            #expect(!methods.text.contains(am["access_key"]?.stringValue ?? "missing"))
            #expect(try await c.native("delete-role-rule", ["role-name": "r1", "path": "/s*"], token: t)["deleted"] == .bool(true))
            #expect(try await c.native("delete-role-rule", ["role-name": "r1", "path": "/s*"], token: t).status == 404)
            #expect(try await c.native("delete-role", ["name": "r1"], token: t).status == 200)
            #expect(try await c.native("get-role", ["name": "r1"], token: t).status == 404)
            #expect(try await c.native("delete-auth-method", ["name": "/am1"], token: t)["name"] == .string("/am1"))
        }
    }

    @Test func badInputIsAClear4xxAndChangesNothing() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { _, c, admin in
            let t = try await c.login(admin.accessId, admin.accessKey)
            let cases: [(String, String, Int)] = [
                ("/api/v2/create-secret", "{\"name\": ", 400),
                ("/api/v2/create-secret", "[1,2,3]", 400),
                ("/api/v2/create-secret", "{\"token\":\"\(t)\",\"name\":5,\"value\":\"x\"}", 400),
                ("/api/v2/create-secret", "{\"token\":\"\(t)\",\"name\":\"/ok\",\"value\":{\"a\":1}}", 400),
                ("/api/v2/create-secret", "{\"token\":\"\(t)\",\"value\":\"x\"}", 400),
                ("/api/v2/get-secret-value", "{\"token\":\"\(t)\",\"names\":[1]}", 400),
                ("/api/v2/get-secret-value", "{\"token\":\"\(t)\"}", 400),
                ("/api/v2/create-secret", "{\"token\":\"\(t)\",\"name\":\"/a/../b\",\"value\":\"x\"}", 400),
                ("/api/v2/create-secret", "{\"token\":\"\(t)\",\"name\":\"/a/%2e%2e/b\",\"value\":\"x\"}", 400),
                ("/api/v2/create-secret", "{\"token\":\"\(t)\",\"name\":\"//b\",\"value\":\"x\"}", 400),
                ("/api/v2/create-secret", "{\"token\":\"\(t)\",\"name\":\"/a\\u0001b\",\"value\":\"x\"}", 400),
                ("/api/v2/create-secret", String(repeating: "[", count: 100_000), 400),
                ("/api/v2/create-secret", "{\"a\":" + String(repeating: "{\"a\":", count: 50) + "1" + String(repeating: "}", count: 51), 400),
                ("/api/v2/no-such-verb", "{}", 404),
                ("/api/v2/create-secret", "\u{FF}\u{FE}", 400),
            ]
            for (uri, body, expected) in cases {
                let r = try await c.raw(uri, body: ByteBuffer(string: body))
                #expect(r.status == expected, "\(body.prefix(60)) → \(r.status) \(r.text)")
                #expect(r["error"] != nil && !r.message.isEmpty, "\(body.prefix(60)) has no error message")
            }
            let big = "{\"token\":\"\(t)\",\"name\":\"/big\",\"value\":\"" + String(repeating: "x", count: 2 << 20) + "\"}"
            #expect(try await c.raw("/api/v2/create-secret", body: ByteBuffer(string: big)).status == 413)
            let listing = try await c.native("list-items", ["path": "/"], token: t)
            #expect(listing["items"] == .array([]))
        }
    }
}
