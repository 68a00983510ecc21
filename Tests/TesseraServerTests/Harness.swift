// Test harness: a real Tessera on a temporary data directory, driven in-process through the
// router (no sockets), with a manual clock for expiry tests.
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing
@testable import TesseraCore
@testable import TesseraServer

final class ManualClock: Sendable {
    private let current = Mutex(Date())
    func now() -> Date { current.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

struct Harness {
    let dir: String
    let clock: ManualClock
    let options: ServerOptions

    init(busyTimeoutMillis: Int = 2000, auditWriteTimeout: Duration = .seconds(5)) {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-test-" + UUID().uuidString).path
        clock = ManualClock()
        var o = ServerOptions()
        o.dataDirectory = dir
        o.busyTimeoutMillis = busyTimeoutMillis
        o.auditWriteTimeout = auditWriteTimeout
        options = o
    }

    func open() async throws -> Tessera {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let clock = self.clock
        return try await Tessera.open(options: options, logger: logger, now: { clock.now() })
    }

    func cleanup() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Opens a Tessera, initializes it, and runs `body` with a client and the admin's credentials.
    func withServer(initialize: Bool = true, shares: Int = 1, threshold: Int = 1,
                    _ body: @Sendable (Tessera, Client, Admin) async throws -> Void) async throws {
        let tessera = try await open()
        var created = Admin(accessId: "", accessKey: "", shares: [])
        if initialize {
            let r = try await tessera.initialize(shares: shares, threshold: threshold)
            created = Admin(accessId: r.admin.method.accessId, accessKey: r.admin.accessKey, shares: r.barrier.shares.map(\.encoded))
        }
        let admin = created
        let app = Application(router: tessera.router())
        do {
            try await app.test(.router) { client in
                try await body(tessera, Client(client: client), admin)
            }
        } catch {
            await tessera.shutdown()
            throw error
        }
        await tessera.shutdown()
    }
}

struct Admin: Sendable {
    var accessId: String
    var accessKey: String
    var shares: [String]
}

struct Reply: Sendable {
    var status: Int
    var json: JSON
    var text: String

    subscript(key: String) -> JSON? { json[key] }
    var message: String { json["message"]?.stringValue ?? "" }
}

struct Client: Sendable {
    let client: any TestClientProtocol

    /// POSTs a native verb with a JSON body given as a Swift dictionary.
    func native(_ verb: String, _ fields: [String: any Sendable], token: String? = nil) async throws -> Reply {
        var body = fields
        if let token { body["token"] = token }
        let data = try JSONSerialization.data(withJSONObject: body)
        return try await raw("/api/v2/\(verb)", body: ByteBuffer(bytes: data))
    }

    func raw(_ uri: String, method: HTTPRequest.Method = .post, body: ByteBuffer? = nil, headers: HTTPFields = [:]) async throws -> Reply {
        try await client.execute(uri: uri, method: method, headers: headers, body: body) { response in
            let text = String(buffer: response.body)
            let json = (try? JSON.parse(Array(text.utf8))) ?? .null
            return Reply(status: Int(response.status.code), json: json, text: text)
        }
    }

    func login(_ accessId: String, _ accessKey: String) async throws -> String {
        let r = try await native("auth", ["access-id": accessId, "access-key": accessKey])
        guard r.status == 200, let t = r["token"]?.stringValue else {
            throw TesseraError.unauthorized("login failed in test: \(r.status) \(r.text)")
        }
        return t
    }

    /// Creates an auth method bound to a new role with the given item rules; returns its token.
    func colleague(adminToken: String, name: String, rules: [(String, [String])]) async throws -> (token: String, accessId: String) {
        let am = try await native("create-auth-method", ["name": name], token: adminToken)
        #expect(am.status == 200)
        let role = "role-" + name.replacingOccurrences(of: "/", with: "")
        #expect(try await native("create-role", ["name": role], token: adminToken).status == 200)
        for (path, caps) in rules {
            #expect(try await native("set-role-rule", ["role-name": role, "path": path, "capability": caps], token: adminToken).status == 200)
        }
        #expect(try await native("assoc-role-am", ["role-name": role, "am-name": name], token: adminToken).status == 200)
        let id = am["access_id"]?.stringValue ?? ""
        return (try await login(id, am["access_key"]?.stringValue ?? ""), id)
    }
}
