// Audit devices are fed from the built-in trail, never instead of it: the trail records a
// request before it is served, and each device follows it by sequence number with its own task
// and its own cursor (kept in the data store). Delivery is at least once: a device that is down
// or hanging falls behind without holding any request, retries with backoff, and catches up
// from its cursor when it returns. Its lag and failures show in `sys/audit` and the metrics.
import Foundation
import Logging
import Synchronization
import TesseraCore
import TesseraStore

/// What an operator sees of one device.
public struct AuditDeviceStatus: Sendable {
    public var config: AuditDeviceConfig
    /// Declared in the config file (true) or created over the API.
    public var fromConfig: Bool
    public var cursor: Int64 = 0
    public var delivered: Int64 = 0
    public var failures: Int64 = 0
    public var consecutiveFailures: Int = 0
    public var lastError: String?
    public var lastDeliveredAt: Date?
}

public final class AuditDevices: Sendable {
    private struct Running {
        var status: AuditDeviceStatus
        var sink: any AuditSink
        var task: Task<Void, Never>?
    }

    let auditStore: any AuditStore
    let cursors: any AuditDeviceRepository
    let logger: Logger
    let pollInterval: Duration
    private let devices = Mutex<[String: Running]>([:])

    init(auditStore: any AuditStore, cursors: any AuditDeviceRepository, logger: Logger, pollInterval: Duration = .milliseconds(200)) {
        self.auditStore = auditStore
        self.cursors = cursors
        self.logger = logger
        self.pollInterval = pollInterval
    }

    static func makeSink(_ config: AuditDeviceConfig, forbiddenRoot: String?) throws -> any AuditSink {
        switch config.type {
        case .file: return FileAuditSink(path: config.path ?? "", forbiddenRoot: forbiddenRoot)
        case .syslog: return SyslogAuditSink(config: config)
        case .http: return try HTTPAuditSink(config: config)
        }
    }

    /// Starts a device's delivery task. Names are unique.
    func start(_ config: AuditDeviceConfig, fromConfig: Bool, dataDirectory: String) async throws {
        let sink = try Self.makeSink(config, forbiddenRoot: fromConfig ? nil : dataDirectory)
        let added = devices.withLock { d -> Bool in
            guard d[config.name] == nil else { return false }
            d[config.name] = Running(status: AuditDeviceStatus(config: config, fromConfig: fromConfig), sink: sink)
            return true
        }
        guard added else {
            await sink.close()
            throw TesseraError.badRequest("an audit device named \(config.name) exists already")
        }
        let task = Task { [self] in await self.feed(config, sink) }
        devices.withLock { $0[config.name]?.task = task }
        logger.info("audit device started", metadata: ["device": "\(config.name)", "type": "\(config.type.rawValue)"])
    }

    func stop(_ name: String) async -> Bool {
        guard let running = devices.withLock({ $0.removeValue(forKey: name) }) else { return false }
        running.task?.cancel()
        // Its delivery ends within the device's time-out; after this it stores no cursor.
        _ = await running.task?.value
        await running.sink.close()
        return true
    }

    func stopAll() async {
        for name in devices.withLock({ Array($0.keys) }) { _ = await stop(name) }
    }

    func reopenFiles() async {
        for sink in devices.withLock({ $0.values.map(\.sink) }) { await sink.reopen() }
    }

    public func statuses() -> [AuditDeviceStatus] {
        devices.withLock { $0.values.map(\.status) }.sorted { $0.config.name < $1.config.name }
    }

    func status(_ name: String) -> AuditDeviceStatus? { devices.withLock { $0[name]?.status } }

    private func update(_ name: String, _ change: (inout AuditDeviceStatus) -> Void) {
        devices.withLock { d in
            if var s = d[name]?.status {
                change(&s)
                d[name]?.status = s
            }
        }
    }

    /// The delivery loop of one device.
    private func feed(_ config: AuditDeviceConfig, _ sink: any AuditSink) async {
        let name = config.name
        var cursor: Int64
        do {
            if let stored = try await cursors.auditDeviceCursor(name) {
                cursor = stored
            } else {
                cursor = config.startsAtBeginning ? 0 : (try await auditStore.lastEvent()?.sequence ?? 0)
                try await cursors.setAuditDeviceCursor(name, cursor)
            }
        } catch {
            logger.error("audit device cannot read its cursor; it starts from the beginning", metadata: ["device": "\(name)"])
            cursor = 0
        }
        update(name) { $0.cursor = cursor }
        var backoff = Duration.milliseconds(500)
        while !Task.isCancelled {
            let events: [AuditEvent]
            do {
                events = try await auditStore.scan(afterSequence: cursor, limit: config.batchSize)
            } catch {
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            if events.isEmpty {
                try? await Task.sleep(for: pollInterval)
                continue
            }
            do {
                try await withDeadline(config.timeout + .seconds(1), "audit device \(name)") { try await sink.deliver(events) }
                cursor = events.last?.sequence ?? cursor
                try? await cursors.setAuditDeviceCursor(name, cursor)
                let delivered = cursor
                update(name) { s in
                    s.cursor = delivered
                    s.delivered += Int64(events.count)
                    s.consecutiveFailures = 0
                    s.lastDeliveredAt = Date()
                }
                backoff = .milliseconds(500)
            } catch {
                if Task.isCancelled { break }
                let reason = (error as? TesseraError)?.message ?? Self.describe(error)
                var first = false
                update(name) { s in
                    s.failures += 1
                    s.consecutiveFailures += 1
                    first = s.consecutiveFailures == 1
                    s.lastError = reason
                }
                if first { logger.warning("audit device failed; it retries and catches up", metadata: ["device": "\(name)", "reason": "\(reason)"]) }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(30))
            }
        }
    }

    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.contains("refused") { return "connection refused" }
        if text.contains("imeout") || text.contains("deadline") { return "timed out" }
        return "delivery failed (\(String(describing: type(of: error))))"
    }
}
