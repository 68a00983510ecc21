// Encryption at rest and sealing: no plaintext in the database files, ciphertexts bound to their
// item, secrets intact across restart and unseal, and a sealed server answering 503.
import Foundation
import NIOCore
import SQLiteNIO
import HTTPTypes
@testable import TesseraEngines
import Testing
@testable import TesseraCore
@testable import TesseraServer

@Suite struct EncryptionAtRestTests {
    @Test func databaseFilesHoldNoSecretValue() async throws {
        let h = Harness()
        defer { h.cleanup() }
        let values = ["plaintext-marker-\(UUID().uuidString)", "second-marker-\(UUID().uuidString)"]
        try await h.withServer { _, c, admin in
            let t = try await c.login(admin.accessId, admin.accessKey)
            #expect(try await c.native("create-secret", ["name": "/a/one", "value": values[0]], token: t).status == 200)
            #expect(try await c.native("update-secret-val", ["name": "/a/one", "value": values[1]], token: t).status == 200)
            #expect(try await c.native("get-secret-value", ["names": ["/a/one"]], token: t)["/a/one"] == .string(values[1]))
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: h.dir)
        #expect(files.contains("tessera.db"))
        for file in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: h.dir + "/" + file))
            for v in values {
                #expect(data.range(of: Data(v.utf8)) == nil, "\(file) contains a secret value")
            }
        }
    }

    @Test func ciphertextSwappedBetweenItemsIsRejected() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { tessera, c, admin in
            let t = try await c.login(admin.accessId, admin.accessKey)
            _ = try await c.native("create-secret", ["name": "/x/alpha", "value": "alpha-value"], token: t)
            _ = try await c.native("create-secret", ["name": "/x/beta", "value": "beta-value"], token: t)
            // Swap the stored ciphertexts directly in the database file.
            let conn = try await SQLiteConnection.open(storage: .file(path: h.dir + "/tessera.db"))
            _ = try await conn.query("""
                UPDATE item_versions SET ciphertext = (SELECT v2.ciphertext FROM item_versions v2 WHERE v2.item_id != item_versions.item_id)
                """)
            try await conn.close()
            let r = try await c.native("get-secret-value", ["names": ["/x/alpha"]], token: t)
            #expect(r.status == 500)
            #expect(r["error"] == .string("IntegrityCheckFailed"))
            #expect(!r.text.contains("beta-value") && !r.text.contains("alpha-value"))
            _ = tessera
        }
    }

    @Test func secretsSurviveRestartAndUnsealWithShares() async throws {
        let h = Harness()
        defer { h.cleanup() }
        let admin = try await {
            let tessera = try await h.open()
            let r = try await tessera.initialize(shares: 3, threshold: 2)
            let ok = try await tessera.secrets.create(path: try ItemPath("/keep/me"), value: "v1", description: "", tags: [],
                                                      maxVersions: nil, deleteProtection: false, actor: "test")
            _ = try await tessera.secrets.update(path: ok.path, value: "v2", actor: "test")
            await tessera.shutdown()
            return Admin(accessId: r.admin.method.accessId, accessKey: r.admin.accessKey, shares: r.barrier.shares.map(\.encoded))
        }()
        try await h.withServer(initialize: false) { tessera, c, _ in
            #expect(tessera.seal.status == SealStatus(initialized: true, sealed: true, shares: 3, threshold: 2, progress: 0))
            // Sealed: data requests get 503 and say so.
            let sealed = try await c.native("auth", ["access-id": admin.accessId, "access-key": admin.accessKey])
            #expect(sealed.status == 503)
            #expect(sealed.message.contains("sealed"))
            // A wrong share set is refused and resets the progress.
            let bogus = try await c.raw("/v1/sys/unseal", method: .put, body: ByteBuffer(string: #"{"key":"not-a-share"}"#))
            #expect(bogus.status == 400)
            let one = try await c.raw("/v1/sys/unseal", method: .put, body: ByteBuffer(string: "{\"key\":\"\(admin.shares[0])\"}"))
            #expect(one["sealed"] == .bool(true))
            #expect(one["progress"] == .int(1))
            let two = try await c.raw("/v1/sys/unseal", method: .put, body: ByteBuffer(string: "{\"key\":\"\(admin.shares[2])\"}"))
            #expect(two["sealed"] == .bool(false))
            let t = try await c.login(admin.accessId, admin.accessKey)
            #expect(try await c.native("get-secret-value", ["names": ["/keep/me"]], token: t)["/keep/me"] == .string("v2"))
            #expect(try await c.native("get-secret-value", ["names": ["/keep/me"], "version": 1], token: t)["/keep/me"] == .string("v1"))
            // Sealing again needs a token and makes data unavailable.
            #expect(try await c.raw("/v1/sys/seal", method: .put).status == 403)
            var headers = HTTPFields()
            headers[SystemAPI.vaultTokenHeader] = t
            #expect(try await c.raw("/v1/sys/seal", method: .put, headers: headers).status == 204)
            #expect(try await c.native("get-secret-value", ["names": ["/keep/me"]], token: t).status == 503)
        }
    }

    /// Two nodes on one store: a value written under a term that node A has just added is read
    /// on node B before B heard of the rotation (no change feed here at all); B reloads the
    /// keyring from the store instead of failing the read.
    @Test func aValueUnderATermRotatedOnAnotherNodeIsReadable() async throws {
        let h = Harness()
        defer { h.cleanup() }
        let a = try await h.open()
        let r = try await a.initialize(shares: 1, threshold: 1)
        let sealB = SealManager(store: a.store)
        try await sealB.load()
        #expect(try sealB.submit(share: r.barrier.shares[0]))
        let b = StaticSecretEngine(store: a.store, seal: sealB)
        let before = try sealB.keyring().activeTerm
        let term = try await a.seal.rotate()
        #expect(term > before)
        let path = try ItemPath("/rotated/elsewhere")
        _ = try await a.secrets.create(path: path, value: "under-the-new-term", description: "", tags: [], maxVersions: nil,
                                       deleteProtection: false, actor: "test")
        #expect(try sealB.keyring().terms[term] == nil)
        #expect(try await b.read(path: path, version: nil).value == "under-the-new-term")
        #expect(try await b.readKV(path: path, version: nil).version.value == "under-the-new-term")
        #expect(try sealB.keyring().activeTerm == term)
        await a.shutdown()
    }

    @Test func initTwiceIsAConflict() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try await h.withServer { _, c, _ in
            let r = try await c.raw("/v1/sys/init", method: .put, body: ByteBuffer(string: #"{"secret_shares":1,"secret_threshold":1}"#))
            #expect(r.status == 400)
        }
    }

    @Test func unsealKeyFileMustBeMode0600() async throws {
        let h = Harness()
        defer { h.cleanup() }
        try FileManager.default.createDirectory(atPath: h.dir, withIntermediateDirectories: true)
        let keyFile = h.dir + "/unseal.key"
        _ = FileManager.default.createFile(atPath: keyFile, contents: Data("AAAA\n".utf8), attributes: [.posixPermissions: 0o644])
        var options = h.options
        options.unsealKeyFile = keyFile
        await #expect(throws: TesseraError.self) { _ = try await Tessera.open(options: options, logger: .init(label: "t")) }
    }
}
