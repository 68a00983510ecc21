// The one JSON form of an audit event: what `audit-query` returns and what every audit device
// receives, with sensitive parameters already replaced by their HMACs.
import Foundation
import TesseraCore

extension AuditEvent {
    public var wireJSON: JSON {
        .obj(("seq_num", .int(sequence)),
             ("timestamp", .date(time)),
             ("request_id", .string(requestId)),
             ("interface", .string(interface.rawValue)),
             ("access_type", .string(authMethodType)),
             ("access_id", .string(accessId)),
             ("actor", .string(actorName)),
             ("remote_addr", .string(clientAddress)),
             ("action", .string(action)),
             ("path", .string(path)),
             ("result", .string(result.rawValue)),
             ("status", .int(Int64(status))),
             ("duration_ms", .double(Double(durationMicros) / 1000)),
             ("error", .string(error)),
             ("request_parameters", .object(parameters.keys.sorted().map { ($0, .string(parameters[$0] ?? "")) })),
             ("prev_hash", .string(prevHash)),
             ("hash", .string(hash)))
    }
}
