// System endpoints in Vault's shape (so `bao status` and hvac work): seal status, init, unseal,
// seal, health; plus `/health` for probes. Init and unseal are answered while sealed.
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TesseraCore
import TesseraCrypto

public struct SystemAPI: Sendable {
    let tessera: Tessera
    public static let version = "0.1.0"

    /// Only `/health` is routed here; the `/v1/sys/*` endpoints are reached through the Vault front-end.
    func register(on router: Router<TesseraRequestContext>) {
        router.get("/metrics") { request, context in await authorizedMetrics(request, clientAddress: context.clientAddress) }
        router.get("/api/v2/openapi.json") { _, _ in SystemAPI.openAPI() }
        router.get("/health") { _, _ in
            Responses.json(.obj(("status", .string(tessera.seal.isSealed ? "sealed" : "ok"))),
                           status: tessera.seal.isSealed ? .serviceUnavailable : .ok)
        }
    }

    /// The OpenAPI document (no token: it holds declarations, never data).
    static func openAPI() -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        headers[.contentLength] = String(OpenAPIDocument.standardBytes.count)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.standardBytes)))
    }

    /// `/metrics` and `/v1/sys/metrics`: a token with `sys-rule` read on `/sys/metrics`, unless the
    /// config sets `unauthenticated_metrics_access` (Vault's option of the same name).
    func authorizedMetrics(_ request: Request, clientAddress: String) async -> Response {
        if !tessera.options.unauthenticatedMetricsAccess {
            do {
                let call = PipelineCall(context: RequestContext(interface: .system, clientAddress: clientAddress, startedAt: tessera.now()),
                                        action: "read_metrics", auditPath: SystemPath.metrics.value, credentials: SystemAPI.credentials(request),
                                        checks: [AccessCheck(.read, .system, SystemPath.metrics)])
                try await tessera.run(call) { _ in () }
            } catch {
                return Self.vaultError(Tessera.classify(error, logger: tessera.logger))
            }
        }
        return await metrics()
    }

    /// Prometheus text: the counted metrics (`Telemetry`) and the state read now.
    func metrics() async -> Response {
        var bytes = tessera.telemetry.emitted()
        bytes += Array(await stateGauges().text.utf8)
        var headers: HTTPFields = [.contentType: "text/plain; version=0.0.4; charset=utf-8"]
        headers[.contentLength] = String(bytes.count)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// The most rotated secrets listed one by one (as Vault's `maximum_gauge_cardinality`).
    static let maxRotationSeries = 500

    func stateGauges() async -> GaugeText {
        var g = GaugeText()
        let t = tessera
        g.gauge("tessera_up", "1 while the server answers.", 1)
        g.gauge("vault_core_unsealed", "1 when the server is unsealed (Vault's name).", t.seal.isSealed ? 0 : 1)
        g.gauge("tessera_sealed", "1 when the server is sealed.", t.seal.isSealed ? 1 : 0)
        var leases: [Lease.State: Int] = [:]
        for state in Lease.State.allCases {
            let n = (try? await t.store.countLeases(state: state)) ?? 0
            leases[state] = n
            g.gauge("tessera_leases", "Dynamic-secret leases by state.", Double(n), [("state", state.rawValue)])
        }
        g.gauge("vault_expire_num_leases", "Leases that will expire or be revoked (Vault's name).",
                Double((leases[.active] ?? 0) + (leases[.revoking] ?? 0) + (leases[.pending] ?? 0)))
        g.gauge("vault_expire_num_irrevocable_leases", "Leases whose revocation failed for good (Vault's name).", Double(leases[.irrevocable] ?? 0))
        for status in Rotator.Status.allCases {
            let n = (try? await t.store.countRotators(status: status)) ?? 0
            g.gauge("tessera_rotated_secrets", "Rotated secrets by the status of their last rotation.", Double(n), [("status", status.rawValue)])
        }
        // Seconds since each rotated secret's last successful rotation, by its opaque id (never
        // its name); and the oldest, which the alert rules watch.
        if let rotators = try? await t.store.rotators() {
            let now = t.now()
            var oldest = 0.0
            for (index, r) in rotators.sorted(by: { $0.itemId < $1.itemId }).enumerated() {
                let since = r.lastRotationAt ?? r.createdAt
                let age = max(0, now.timeIntervalSince(since))
                if r.autoRotate { oldest = max(oldest, age) }
                if index < Self.maxRotationSeries {
                    let labels = [("rotated_secret_id", String(r.itemId)), ("target_type", r.kind.rawValue),
                                  ("auto_rotate", r.autoRotate ? "true" : "false")]
                    g.gauge("tessera_rotation_last_success_age_seconds", "Seconds since a rotated secret last rotated (or was created), by id.",
                            age.rounded(), labels)
                    g.gauge("tessera_rotation_interval_seconds", "A rotated secret's rotation interval, by id.",
                            Double(r.intervalMinutes) * 60, labels)
                }
            }
            g.gauge("tessera_rotation_oldest_success_age_seconds", "The largest age of the last rotation among auto-rotated secrets.", oldest.rounded())
        }
        let head = (try? await t.auditStore.lastEvent()?.sequence) ?? 0
        g.gauge("tessera_audit_last_sequence", "The sequence number of the newest audit event.", Double(head))
        for d in t.auditDevices.statuses() {
            let labels = [("device", d.config.name), ("type", d.config.type.rawValue)]
            g.gauge("tessera_audit_device_lag", "Audit events not yet delivered to a device.", Double(max(0, head - d.cursor)), labels)
            g.gauge("tessera_audit_device_up", "1 when a device's last delivery succeeded.", d.consecutiveFailures == 0 ? 1 : 0, labels)
            g.counter("tessera_audit_device_failures_total", "Failed deliveries to a device.", Int(d.failures), labels)
            g.counter("tessera_audit_device_delivered_total", "Events delivered to a device.", Int(d.delivered), labels)
        }
        var fs = statvfs()
        if statvfs(t.options.dataDirectory, &fs) == 0 {
            g.gauge("tessera_data_dir_free_bytes", "Free bytes on the data directory's file system.", Double(fs.f_bavail) * Double(fs.f_frsize))
            g.gauge("tessera_data_dir_size_bytes", "Size of the data directory's file system.", Double(fs.f_blocks) * Double(fs.f_frsize))
        }
        if let rewrap = try? await t.rewrap.status() {
            g.gauge("tessera_key_term", "The keyring term new writes use.", Double(rewrap.activeTerm))
            g.gauge("tessera_rewrap_remaining_values", "Stored values still sealed under an older key term.", Double(rewrap.remaining))
            g.gauge("tessera_rewrap_running", "1 while the rewrap runs.", rewrap.running ? 1 : 0)
        }
        for (cache, counter) in [("items", t.store.itemCacheCounter), ("principals", t.access.principalCacheCounter)] {
            g.counter("tessera_cache_requests_total", "Cache lookups by cache and result.", counter.hits, [("cache", cache), ("result", "hit")])
            g.counter("tessera_cache_requests_total", "Cache lookups by cache and result.", counter.misses, [("cache", cache), ("result", "miss")])
        }
        return g
    }

    func sealStatusJSON() -> JSON {
        let s = tessera.seal.status
        return .obj(("type", .string("shamir")), ("initialized", .bool(s.initialized)), ("sealed", .bool(s.sealed)),
                    ("t", .int(Int64(s.threshold))), ("n", .int(Int64(s.shares))), ("progress", .int(Int64(s.progress))),
                    ("nonce", .string("")), ("version", .string(Self.version)), ("build_date", .string("")),
                    ("migration", .bool(false)), ("cluster_name", .string("tessera")), ("cluster_id", .string(tessera.clusterId)),
                    ("recovery_seal", .bool(false)), ("storage_type", .string(tessera.options.storage)))
    }

    func health() -> Response {
        let s = tessera.seal.status
        let status: HTTPResponse.Status = !s.initialized ? .init(code: 501) : (s.sealed ? .serviceUnavailable : .ok)
        return Responses.json(.obj(("initialized", .bool(s.initialized)), ("sealed", .bool(s.sealed)), ("standby", .bool(false)),
                                   ("performance_standby", .bool(false)), ("replication_performance_mode", .string("disabled")),
                                   ("replication_dr_mode", .string("disabled")),
                                   ("server_time_utc", .int(InputNumber.int64(tessera.now().timeIntervalSince1970))),
                                   ("cluster_name", .string("tessera")), ("cluster_id", .string(tessera.clusterId)),
                                   ("version", .string(Self.version))), status: status)
    }

    static func vaultError(_ e: TesseraError) -> Response {
        VaultResponses.error(e)
    }

    func body(_ request: Request) async throws -> RequestFields {
        var request = request
        let buffer = try await request.collectLimited(64 * 1024)
        if buffer.readableBytes == 0 { return .empty }
        let json = try JSON.parse(buffer.readableBytesView)
        if json == .null { return .empty }
        return try RequestFields(json)
    }

    func initialize(_ request: Request, _ context: TesseraRequestContextInfo) async -> Response {
        do {
            let f = try await body(request)
            let shares = try f.int("secret_shares", in: 1...255) ?? f.int("shares", in: 1...255) ?? 1
            let threshold = try f.int("secret_threshold", in: 1...255) ?? f.int("threshold", in: 1...255) ?? 1
            let call = PipelineCall(context: RequestContext(interface: .system, clientAddress: context.clientAddress, startedAt: tessera.now()),
                                    action: "operator_init", credentials: .none, needsIdentity: false, allowedWhileSealed: true,
                                    parameters: ["shares": String(shares), "threshold": String(threshold)])
            let result = try await tessera.run(call) { _ in try await tessera.initialize(shares: shares, threshold: threshold) }
            let keys = result.barrier.shares.map(\.encoded)
            let hex = result.barrier.shares.map { ([$0.x] + $0.y).hexString }
            return Responses.json(.obj(("keys", .strings(hex)), ("keys_base64", .strings(keys)),
                                       ("root_token", .string(result.admin.method.accessId + ".." + result.admin.accessKey)),
                                       ("admin_access_id", .string(result.admin.method.accessId)),
                                       ("admin_access_key", .string(result.admin.accessKey))))
        } catch {
            return Self.vaultError(Tessera.classify(error, logger: tessera.logger))
        }
    }

    func unseal(_ request: Request, _ context: TesseraRequestContextInfo) async -> Response {
        do {
            let f = try await body(request)
            if try f.bool("reset") == true {
                tessera.seal.resetProgress()
                return Responses.json(sealStatusJSON())
            }
            let share = try Shamir.Share(encoded: try f.requiredString("key"))
            if try tessera.seal.submit(share: share) {
                let call = PipelineCall(context: RequestContext(interface: .system, clientAddress: context.clientAddress, startedAt: tessera.now()),
                                        action: "operator_unseal", credentials: .none, needsIdentity: false, allowedWhileSealed: true)
                try await tessera.run(call) { _ in () }
            }
            return Responses.json(sealStatusJSON())
        } catch {
            return Self.vaultError(Tessera.classify(error, logger: tessera.logger))
        }
    }

    func sealNow(_ request: Request, _ context: TesseraRequestContextInfo) async -> Response {
        do {
            let path = SystemPath.seal
            let call = PipelineCall(context: RequestContext(interface: .system, clientAddress: context.clientAddress, startedAt: tessera.now()),
                                    action: "operator_seal", auditPath: path.value, credentials: SystemAPI.credentials(request),
                                    checks: [AccessCheck(.update, .system, path)])
            // The event is written before sealing, while the audit key is still available.
            try await tessera.run(call) { _ in () }
            tessera.seal.seal()
            tessera.logger.notice("sealed by operator request")
            return Responses.noContent()
        } catch {
            return Self.vaultError(Tessera.classify(error, logger: tessera.logger))
        }
    }

    /// Credentials from `X-Vault-Token` or `Authorization: Bearer`: a Tessera token `t-…` or `<access-id>..<access-key>`.
    static func credentials(_ request: Request) -> Credentials {
        var text = request.headers[SystemAPI.vaultTokenHeader]
        if text == nil, let auth = request.headers[.authorization], auth.hasPrefix("Bearer ") {
            text = String(auth.dropFirst(7))
        }
        return credentials(fromHeader: text)
    }

    /// The credential in an `X-Vault-Token` value: a token, or `<access-id>..<access-key>`.
    /// Byte-level: this runs on every Vault request.
    static func credentials(fromHeader text: String?) -> Credentials {
        guard let raw = text?.utf8 else { return .none }
        let isBlank = { (b: UInt8) in b == 0x20 || b == 0x09 }
        guard let first = raw.firstIndex(where: { !isBlank($0) }), let last = raw.lastIndex(where: { !isBlank($0) }) else { return .none }
        let t = raw[first...last]
        var i = t.startIndex
        while i < t.endIndex {
            let next = t.index(after: i)
            if t[i] == UInt8(ascii: "."), next < t.endIndex, t[next] == UInt8(ascii: ".") {
                return .accessKey(id: String(decoding: t[t.startIndex..<i], as: UTF8.self),
                                  key: String(decoding: t[t.index(after: next)...], as: UTF8.self))
            }
            i = next
        }
        return .token(String(decoding: t, as: UTF8.self))
    }
}

extension SystemAPI {
    static let vaultTokenHeader = HTTPField.Name("X-Vault-Token") ?? .authorization
}

/// The parts of the HTTP context that the sys handlers need.
struct TesseraRequestContextInfo: Sendable {
    var clientAddress: String
}
