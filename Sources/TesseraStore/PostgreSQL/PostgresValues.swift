// Conversions between domain values and PostgreSQL parameters and columns. Times are BIGINT
// microseconds since the epoch (as in the SQLite engine), flags BOOLEAN, values BYTEA, JSON TEXT.
import Foundation
import NIOCore
import PostgresNIO
import TesseraCore

/// One statement parameter. A nil value is sent untyped, so the statement gives it a type
/// (a column it is assigned to, or an explicit cast).
enum PGValue: Sendable {
    case text(String?)
    case int(Int64?)
    case bool(Bool)
    case bytes([UInt8]?)
    case ints([Int64])

    static func int(_ i: Int) -> PGValue { .int(Int64(i)) }
    static func date(_ d: Date) -> PGValue { .int(Int64(d.micros)) }
    static func optionalDate(_ d: Date?) -> PGValue { .int(d.map { Int64($0.micros) }) }
    static func json<T: Encodable>(_ value: T) throws -> PGValue {
        .text(String(decoding: try JSONEncoder().encode(value), as: UTF8.self))
    }

    func append(to bindings: inout PostgresBindings) {
        switch self {
        case .text(let s): bindings.append(s)
        case .int(let i): bindings.append(i)
        case .bool(let b): bindings.append(b)
        case .bytes(let b): bindings.append(b.map { ByteBuffer(bytes: $0) })
        case .ints(let a): bindings.append(a)
        }
    }

    static func query(_ sql: String, _ values: [PGValue]) -> PostgresQuery {
        var bindings = PostgresBindings(capacity: values.count)
        for v in values { v.append(to: &bindings) }
        return PostgresQuery(unsafeSQL: sql, binds: bindings)
    }
}

/// Typed column access that reports malformed rows instead of crashing.
struct PGColumns {
    let row: PostgresRandomAccessRow
    /// Prepended to every column name: the alias prefix of a joined table's columns.
    let prefix: String

    init(_ row: PostgresRow, prefix: String = "") {
        self.row = row.makeRandomAccess()
        self.prefix = prefix
    }

    private func cell(_ name: String) throws -> PostgresCell {
        guard row.contains(prefix + name) else { throw TesseraError.integrity("column \(name) is missing") }
        return row[prefix + name]
    }

    func string(_ name: String) throws -> String {
        guard let v = try optionalString(name) else { throw TesseraError.integrity("column \(name) is missing") }
        return v
    }
    func optionalString(_ name: String) throws -> String? {
        do { return try cell(name).decode(String?.self) } catch is TesseraError { throw TesseraError.integrity("column \(name) is missing") }
        catch { throw TesseraError.integrity("column \(name) is malformed") }
    }
    func optionalInt64(_ name: String) throws -> Int64? {
        do { return try cell(name).decode(Int64?.self) } catch { throw TesseraError.integrity("column \(name) is malformed") }
    }
    func int64(_ name: String) throws -> Int64 {
        guard let v = try optionalInt64(name) else { throw TesseraError.integrity("column \(name) is missing") }
        return v
    }
    func int(_ name: String) throws -> Int {
        guard let v = Int(exactly: try int64(name)) else { throw TesseraError.integrity("column \(name) is out of range") }
        return v
    }
    func optionalInt(_ name: String) throws -> Int? { try optionalInt64(name).flatMap { Int(exactly: $0) } }
    func bool(_ name: String) throws -> Bool {
        do {
            guard let v = try cell(name).decode(Bool?.self) else { throw TesseraError.integrity("column \(name) is missing") }
            return v
        } catch let e as TesseraError { throw e } catch { throw TesseraError.integrity("column \(name) is malformed") }
    }
    func date(_ name: String) throws -> Date { Date(micros: try int(name)) }
    func optionalDate(_ name: String) throws -> Date? { try optionalInt(name).map { Date(micros: $0) } }
    func term(_ name: String) throws -> UInt32 { UInt32(clamping: try int64(name)) }
    func optionalBytes(_ name: String) throws -> [UInt8]? {
        do {
            guard var buffer = try cell(name).decode(ByteBuffer?.self) else { return nil }
            return buffer.readBytes(length: buffer.readableBytes)
        } catch { throw TesseraError.integrity("column \(name) is malformed") }
    }
    func bytes(_ name: String) throws -> [UInt8] {
        guard let b = try optionalBytes(name) else { throw TesseraError.integrity("column \(name) is missing") }
        return b
    }
    func json<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
        let text = try string(name)
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch {
            throw TesseraError.integrity("column \(name) is malformed")
        }
    }
}
