// `sys/audit` in Vault's shape: the audit devices with their delivery state (sys-rule read on
// /sys/audit), and `sys/audit/<name>` to enable or disable one. Creating devices over the API is
// refused unless the config sets `unsafe_allow_api_audit_creation` (an API that writes files
// chosen by a caller is how CVE-2025-6000 turned Vault admins into code execution); even then a
// file device may not write into the data directory.
import Foundation
import Hummingbird
import TesseraCore

extension VaultSysAPI {
    func listAuditDevices(_ vr: VaultRequest) async throws -> Response {
        try await tessera.run(vr.pipelineCall(action: "list_audit_devices", auditPath: SystemPath.auditDevices.value,
                                              checks: [AccessCheck(anyOf: [.read, .list], .system, SystemPath.auditDevices)])) { _ in () }
        let head = (try? await tessera.auditStore.lastEvent()?.sequence) ?? 0
        let entries: [(String, JSON)] = tessera.auditDevices.statuses().map { s in
            let status = JSON.obj(("cursor", .int(s.cursor)), ("lag", .int(max(0, head - s.cursor))), ("delivered", .int(s.delivered)),
                                  ("failures", .int(s.failures)), ("consecutive_failures", .int(Int64(s.consecutiveFailures))),
                                  ("last_error", s.lastError.map { .string($0) } ?? .null),
                                  ("last_delivered_at", s.lastDeliveredAt.map { .date($0) } ?? .null),
                                  ("source", .string(s.fromConfig ? "config" : "api")))
            return (s.config.name + "/", .obj(("type", .string(s.config.type.rawValue)), ("description", .string(s.config.description ?? "")),
                                              ("options", .object(s.config.options)), ("local", .bool(false)),
                                              ("path", .string(s.config.name + "/")), ("status", status)))
        }
        return VaultResponses.doubled(.object(entries), requestId: vr.context.requestId)
    }

    func enableAuditDevice(_ vr: VaultRequest, name: String) async throws -> Response {
        let f = try vr.fields()
        let path = SystemPath.auditDevice(name)
        try await tessera.run(vr.pipelineCall(action: "enable_audit_device", auditPath: path.value,
                                              checks: [AccessCheck(.create, .system, path)])) { _ in
            guard tessera.options.unsafeAllowAPIAuditCreation else {
                throw TesseraError.badRequest("audit devices are declared in the config file (audit_devices); creating them over the API needs unsafe_allow_api_audit_creation")
            }
            guard let kind = AuditDeviceConfig.Kind(rawValue: try f.requiredString("type")) else {
                throw TesseraError.badRequest("type must be file, syslog or http")
            }
            var config = AuditDeviceConfig(name: name, type: kind)
            config.description = try f.string("description")
            if case .object(let pairs)? = f.raw("options") {
                let o = Dictionary(pairs, uniquingKeysWith: { a, _ in a })
                config.path = o["file_path"]?.stringValue ?? o["path"]?.stringValue
                config.address = o["address"]?.stringValue
                config.protocol = o["protocol"]?.stringValue ?? o["socket_type"]?.stringValue
                config.facility = o["facility"]?.stringValue
                config.app_name = o["tag"]?.stringValue
                config.url = o["url"]?.stringValue
            }
            try config.validate(dataDirectory: tessera.options.dataDirectory, fromAPI: true)
            // A device of that name (from the config, say) keeps its row and cursor untouched.
            guard tessera.auditDevices.status(name) == nil else {
                throw TesseraError.badRequest("an audit device named \(name) exists already")
            }
            let encoded = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
            try await tessera.store.storeAuditDevice(name: name, config: encoded, at: tessera.now())
            do {
                try await tessera.auditDevices.start(config, fromConfig: false, dataDirectory: tessera.options.dataDirectory)
            } catch {
                _ = try? await tessera.store.removeStoredAuditDevice(name)
                throw error
            }
        }
        return VaultResponses.noContent()
    }

    func disableAuditDevice(_ vr: VaultRequest, name: String) async throws -> Response {
        let path = SystemPath.auditDevice(name)
        try await tessera.run(vr.pipelineCall(action: "disable_audit_device", auditPath: path.value,
                                              checks: [AccessCheck(.delete, .system, path)])) { _ in
            // Like Vault, disabling a device that is not enabled succeeds.
            guard let status = tessera.auditDevices.status(name) else { return }
            guard !status.fromConfig else {
                throw TesseraError.badRequest("audit device \(name) is declared in the config file; remove it there")
            }
            // Stopped first, so that its task cannot store a cursor after the cursor is removed.
            _ = await tessera.auditDevices.stop(name)
            _ = try await tessera.store.removeStoredAuditDevice(name)
        }
        return VaultResponses.noContent()
    }

    /// `sys/audit-hash/<name>`: the HMAC the trail records for `input` (to find a known value in
    /// it). It confirms guesses of HMAC'd values, so it needs sys-rule update on the path.
    func auditHash(_ vr: VaultRequest, name: String) async throws -> Response {
        let f = try vr.fields()
        let input = try f.string("input") ?? ""
        let path = (try? ItemPath("/sys/audit-hash/" + name)) ?? SystemPath.auditDevices
        var call = vr.pipelineCall(action: "audit_hash", auditPath: path.value, checks: [AccessCheck(.update, .system, path)])
        call.sensitive = ["input": input]
        let hash = try await tessera.run(call) { _ in
            guard tessera.auditDevices.status(name) != nil else { throw TesseraError.badRequest("unknown audit backend \"\(name.prefix(128))/\"") }
            return try tessera.seal.keyring().auditHMAC(input)
        }
        return VaultResponses.envelope(data: .obj(("hash", .string(hash))), requestId: vr.context.requestId)
    }
}
