// Telemetry: the service-level metrics of the managed-secrets practice, in Prometheus format.
// Events (requests, denials, failed logins, audit writes, credentials issued, rotations) are
// counted as they happen; state (seal, leases, rotation ages, rewrap, audit device lag, caches)
// is read when scraped. Labels are bounded kinds — interface, operation, status code, target
// type, device name — and never a secret's name or path. Vault's names are used where Vault
// has one (`vault_core_handle_request`, `vault_audit_log_request_failure`, `vault_expire_*`).
import Foundation
import Prometheus
import Synchronization
import TesseraCore
import TesseraEngines

public final class Telemetry: EngineObserver, Sendable {
    let registry = PrometheusCollectorRegistry()
    private let counters = Mutex<[String: Counter]>([:])
    private let histograms = Mutex<[String: DurationHistogram]>([:])
    /// Operations seen so far; a new one past the limit is counted as `other`.
    private let operations = Mutex<Set<String>>([])
    static let maxOperations = 200
    /// Request durations: 1 ms to 10 s.
    static let buckets: [Duration] = [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                      .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                      .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)]

    public init() {
        // Series that exist from the start, so rates and alerts have data before the first event.
        for result in ["success", "failure"] {
            counter("tessera_dynamic_credentials_total", "Dynamic credentials issued, by result.", [("target_type", "postgres"), ("result", result)])
            for kind in ["postgres", "ssh"] {
                counter("tessera_rotations_total", "Rotations finished, by target type and result.", [("target_type", kind), ("result", result)])
            }
        }
        counter("vault_audit_log_request_failure", "Audit writes that failed (requests refused with 503).", [])
        counter("tessera_audit_events_total", "Audit events written to the built-in trail.", [])
        for interface in Interface.allCases {
            counter("tessera_requests_denied_total", "Requests refused for lack of identity or rights (401/403).", [("interface", interface.rawValue)])
            counter("tessera_login_failures_total", "Failed logins, throttled ones included.", [("interface", interface.rawValue)])
        }
    }

    @discardableResult
    private func counter(_ name: String, _ help: String, _ labels: [(String, String)]) -> Counter {
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        if let c = counters.withLock({ $0[key] }) { return c }
        let c = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
        counters.withLock { $0[key] = c }
        return c
    }

    private func histogram(_ name: String, _ help: String, _ labels: [(String, String)]) -> DurationHistogram {
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        if let h = histograms.withLock({ $0[key] }) { return h }
        let h = registry.makeDurationHistogram(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help),
                                               labels: labels, buckets: Self.buckets)
        histograms.withLock { $0[key] = h }
        return h
    }

    /// The series one kind of request updates, found with one lookup per request.
    struct RequestKey: Hashable {
        var interface: Interface
        var action: String
        var status: Int
        var login: Bool
    }

    struct RequestSeries {
        let requests: Counter
        let duration: DurationHistogram
        let vaultDuration: DurationHistogram
        let denied: Counter?
        let loginFailure: Counter?
    }

    private let requestSeries = Mutex<[RequestKey: RequestSeries]>([:])

    /// The operation label: the audit action (a name chosen by the code, never by a caller).
    func operationLabel(_ action: String) -> String {
        operations.withLock { seen in
            if seen.contains(action) { return action }
            guard seen.count < Self.maxOperations else { return "other" }
            seen.insert(action)
            return action
        }
    }

    private func series(_ key: RequestKey) -> RequestSeries {
        if let known = requestSeries.withLock({ $0[key] }) { return known }
        let interface = key.interface.rawValue
        let made = RequestSeries(
            requests: counter("tessera_requests_total", "Requests by interface, operation and status code.",
                              [("interface", interface), ("operation", operationLabel(key.action)), ("status", String(key.status))]),
            duration: histogram("tessera_request_duration_seconds", "Request latency by interface.", [("interface", interface)]),
            vaultDuration: histogram(key.login ? "vault_core_handle_login_request" : "vault_core_handle_request",
                                     key.login ? "Login request latency (Vault's name)." : "Request latency (Vault's name).", []),
            denied: key.status == 401 || key.status == 403
                ? counter("tessera_requests_denied_total", "Requests refused for lack of identity or rights (401/403).", [("interface", interface)])
                : nil,
            loginFailure: key.login && (key.status == 401 || key.status == 429)
                ? counter("tessera_login_failures_total", "Failed logins, throttled ones included.", [("interface", interface)])
                : nil)
        requestSeries.withLock { map in
            // The map is bounded like the operation label: past the limit, new kinds share `other`.
            if map.count < Self.maxOperations * 20 { map[key] = made }
        }
        return made
    }

    /// One request through the pipeline.
    func request(interface: Interface, action: String, status: Int, duration: Duration, login: Bool) {
        let s = series(RequestKey(interface: interface, action: action, status: status, login: login))
        s.requests.increment()
        s.duration.record(duration)
        s.vaultDuration.record(duration)
        s.denied?.increment()
        s.loginFailure?.increment()
    }

    func auditWrite(success: Bool) {
        counter("vault_audit_log_request_failure", "Audit writes that failed (requests refused with 503).", []).increment(by: Int64(success ? 0 : 1))
        if success { counter("tessera_audit_events_total", "Audit events written to the built-in trail.", []).increment() }
    }

    public func credentialIssued(targetType: String, success: Bool) {
        counter("tessera_dynamic_credentials_total", "Dynamic credentials issued, by result.",
                [("target_type", targetType), ("result", success ? "success" : "failure")]).increment()
    }

    public func rotationFinished(targetType: String, success: Bool) {
        counter("tessera_rotations_total", "Rotations finished, by target type and result.",
                [("target_type", targetType), ("result", success ? "success" : "failure")]).increment()
    }

    /// The counted metrics in Prometheus text format.
    func emitted() -> [UInt8] { registry.emitToBuffer() }
}

/// Gauges read at scrape time, written in Prometheus text format.
struct GaugeText {
    private(set) var text = ""
    private var declared: Set<String> = []

    mutating func gauge(_ name: String, _ help: String, _ value: Double, _ labels: [(String, String)] = []) {
        if declared.insert(name).inserted { text += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n" }
        let rendered = labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        let number = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        text += "\(name)\(rendered) \(number)\n"
    }

    mutating func counter(_ name: String, _ help: String, _ value: Int, _ labels: [(String, String)] = []) {
        if declared.insert(name).inserted { text += "# HELP \(name) \(help)\n# TYPE \(name) counter\n" }
        let rendered = labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        text += "\(name)\(rendered) \(value)\n"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
