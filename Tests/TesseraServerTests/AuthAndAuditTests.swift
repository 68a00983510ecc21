// Tokens (expiry, revocation) and the audit trail: denials and failed logins with their actor,
// tamper detection by `audit verify`, fail-closed reads when the trail cannot be written, and
// group commit under concurrency.
import Foundation
import NIOCore
import SQLiteNIO
import Testing
@testable import TesseraCore
@testable import TesseraServer

@Suite struct TokenTests {
    @Test func expiredTokenIsRefused() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { _, c, admin in
            let t = try await c.login(admin.accessId, admin.accessKey)
            #expect(try await c.native("list-items", ["path": "/"], token: t).status == 200)
            #expect(try await c.native("validate-token", ["token": t])["is_valid"] == .bool(true))
            h.clock.advance(61 * 60)
            let r = try await c.native("list-items", ["path": "/"], token: t)
            #expect(r.status == 401)
            #expect(try await c.native("validate-token", ["token": t])["is_valid"] == .bool(false))
        }
    }

    @Test func revokedTokenIsRefused() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { _, c, admin in
            let t = try await c.login(admin.accessId, admin.accessKey)
            #expect(try await c.native("revoke-creds", [:], token: t).status == 200)
            #expect(try await c.native("list-items", ["path": "/"], token: t).status == 401)
            #expect(try await c.native("list-items", ["path": "/"], token: "t-bogus").status == 401)
            #expect(try await c.native("list-items", ["path": "/"]).status == 401)
        }
    }

    @Test func cachedVerificationFollowsRuleChangesAndRevocation() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { _, c, admin in
            let t = try await c.login(admin.accessId, admin.accessKey)
            _ = try await c.native("create-secret", ["name": "/dev/x", "value": "v"], token: t)
            let dev = try await c.colleague(adminToken: t, name: "/cache-user", rules: [("/dev/*", ["read"])])
            #expect(try await c.native("get-secret-value", ["names": ["/dev/x"]], token: dev.token).status == 200)
            // A new deny rule applies to the very next request, although the token was just verified.
            _ = try await c.native("set-role-rule", ["role-name": "role-cache-user", "path": "/dev/x", "capability": ["deny"]], token: t)
            #expect(try await c.native("get-secret-value", ["names": ["/dev/x"]], token: dev.token).status == 403)
            _ = try await c.native("revoke-creds", [:], token: dev.token)
            #expect(try await c.native("get-secret-value", ["names": ["/dev/x"]], token: dev.token).status == 401)
            // Deleting the auth method ends its tokens at once.
            let other = try await c.colleague(adminToken: t, name: "/gone", rules: [("/dev/*", ["read"])])
            #expect(try await c.native("get-secret-value", ["names": ["/dev/x"]], token: other.token).status == 200)
            _ = try await c.native("delete-auth-method", ["name": "/gone"], token: t)
            #expect(try await c.native("get-secret-value", ["names": ["/dev/x"]], token: other.token).status == 401)
        }
    }

    @Test func customTokenTTL() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { _, c, admin in
            let t = try await c.login(admin.accessId, admin.accessKey)
            let am = try await c.native("create-auth-method", ["name": "short", "jwt-ttl": "5"], token: t)
            #expect(am.status == 200)
            #expect(am["name"] == .string("/short"))
            let st = try await c.login(am["access_id"]?.stringValue ?? "", am["access_key"]?.stringValue ?? "")
            h.clock.advance(6 * 60)
            #expect(try await c.native("validate-token", ["token": st])["is_valid"] == .bool(false))
            #expect(try await c.native("validate-token", ["token": t])["is_valid"] == .bool(true))
        }
    }
}

@Suite struct AuditTrailTests {
    @Test func denialsAndFailedLoginsAreAuditedWithTheirActor() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { _, c, admin in
            let t = try await c.login(admin.accessId, admin.accessKey)
            _ = try await c.native("create-secret", ["name": "/prod/db/password", "value": "pw-1"], token: t)
            let bob = try await c.colleague(adminToken: t, name: "/bob", rules: [("/dev/*", ["read", "list"])])
            let denied = try await c.native("get-secret-value", ["names": ["/prod/db/password"]], token: bob.token)
            #expect(denied.status == 403)
            #expect(denied.message == "access denied: missing 'read' capability on /prod/db/password")
            #expect(!denied.text.contains("pw-1"))
            let failed = try await c.native("auth", ["access-id": bob.accessId, "access-key": "wrong-key-123"])
            #expect(failed.status == 401)

            let events = try await c.native("audit-query", ["result": "denied"], token: t)
            guard case .array(let list)? = events["events"] else { Issue.record("no events"); return }
            #expect(list.contains { $0["action"] == .string("get_secret_value") && $0["access_id"] == .string(bob.accessId)
                && $0["path"] == .string("/prod/db/password") && $0["status"] == .int(403) })
            #expect(list.contains { $0["action"] == .string("auth") && $0["access_id"] == .string(bob.accessId) && $0["status"] == .int(401) })
            // Who read /prod/db/* in the last 90 days?
            let reads = try await c.native("audit-query", ["path-prefix": "/prod/db/*", "action": "get_secret_value", "since": "90d"], token: t)
            guard case .array(let readList)? = reads["events"] else { Issue.record("no events"); return }
            #expect(readList.count == 1)
            // A colleague without audit access cannot query the trail.
            #expect(try await c.native("audit-query", [:], token: bob.token).status == 403)
            // No event carries a secret value, access key or token.
            let all = try await c.native("audit-query", ["limit": 10000], token: t)
            for needle in ["pw-1", admin.accessKey, t, bob.token, "wrong-key-123"] {
                #expect(!all.text.contains(needle))
            }
            #expect(all.text.contains("hmac-sha256:"))
        }
    }

    @Test func verifyCatchesEditedAndDeletedRows() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { _, c, admin in
            let t = try await c.login(admin.accessId, admin.accessKey)
            for i in 0..<5 { _ = try await c.native("create-secret", ["name": "/v/\(i)", "value": "x"], token: t) }
            #expect(try await c.native("audit-verify", [:], token: t)["ok"] == .bool(true))

            let conn = try await SQLiteConnection.open(storage: .file(path: h.dir + "/audit.db"))
            _ = try await conn.query("UPDATE audit_events SET path = '/somewhere/else' WHERE seq = 4")
            let edited = try await c.native("audit-verify", [:], token: t)
            #expect(edited["ok"] == .bool(false))
            #expect(edited["first_bad_sequence"] == .int(4))

            _ = try await conn.query("UPDATE audit_events SET path = '/v/1' WHERE seq = 4")
            let rows = try await conn.query("SELECT path FROM audit_events WHERE seq = 4")
            _ = rows
            _ = try await conn.query("DELETE FROM audit_events WHERE seq = 3")
            let deleted = try await c.native("audit-verify", [:], token: t)
            #expect(deleted["ok"] == .bool(false))
            #expect(deleted["first_bad_sequence"] == .int(3))
            try await conn.close()
        }
    }

    @Test func readsFailClosedWhenTheAuditStoreIsUnwritable() async throws {
        let h = Harness(busyTimeoutMillis: 200, auditWriteTimeout: .seconds(3))
        defer { h.cleanup() }
        try await h.withServer { _, c, admin in
            let t = try await c.login(admin.accessId, admin.accessKey)
            _ = try await c.native("create-secret", ["name": "/guarded", "value": "guarded-value"], token: t)
            // Another process takes the audit file's write lock and keeps it.
            let locker = try await SQLiteConnection.open(storage: .file(path: h.dir + "/audit.db"))
            _ = try await locker.query("BEGIN EXCLUSIVE")
            let r = try await c.native("get-secret-value", ["names": ["/guarded"]], token: t)
            #expect(r.status == 503)
            #expect(!r.text.contains("guarded-value"))
            #expect(r.message.contains("audit"))
            _ = try await locker.query("ROLLBACK")
            try await locker.close()
            // Once the trail is writable again, reads work.
            let ok = try await c.native("get-secret-value", ["names": ["/guarded"]], token: t)
            #expect(ok["/guarded"] == .string("guarded-value"))
            #expect(try await c.native("audit-verify", [:], token: t)["ok"] == .bool(true))
        }
    }

    @Test func concurrentRequestsAreAllAuditedInOneChain() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { tessera, c, admin in
            let t = try await c.login(admin.accessId, admin.accessKey)
            _ = try await c.native("create-secret", ["name": "/hot", "value": "v"], token: t)
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<64 {
                    group.addTask { try await c.native("get-secret-value", ["names": ["/hot"]], token: t).status }
                }
                for try await status in group { #expect(status == 200) }
            }
            let v = try await tessera.audit.verify()
            #expect(v.ok)
            #expect(v.eventsChecked >= 66)
        }
    }
}
