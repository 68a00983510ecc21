// JSON log lines (`log_format: json`, `--log-format json`), in the shape of Vault's JSON logs:
// `@timestamp`, `@level`, `@module`, `@message`, then the metadata (a request's line carries
// `request_id`, the same id as its audit event). One line per entry, written to stderr.
import TesseraCore
import Foundation
import Logging
import Synchronization

public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    let label: String
    static let output = Mutex<Void>(())

    public init(label: String, level: Logger.Level) {
        self.label = label
        logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var pairs: [(String, JSON)] = [("@timestamp", .string(JSON.formatDate(Date()))), ("@level", .string(event.level.rawValue)),
                                       ("@module", .string(label)), ("@message", .string(event.message.description))]
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        for key in merged.keys.sorted() {
            if let value = merged[key] { pairs.append((key, Self.json(value))) }
        }
        var bytes = JSON.object(pairs).bytes
        bytes.append(0x0A)
        let data = Data(bytes)
        // A failed write (a full disk behind stderr) loses the line; it must not stop the server.
        Self.output.withLock { _ in try? FileHandle.standardError.write(contentsOf: data) }
    }

    static func json(_ value: Logger.Metadata.Value) -> JSON {
        switch value {
        case .string(let s): return .string(s)
        case .stringConvertible(let c): return .string(c.description)
        case .array(let a): return .array(a.map(json))
        case .dictionary(let d): return .object(d.keys.sorted().map { ($0, json(d[$0] ?? .string(""))) })
        }
    }
}
