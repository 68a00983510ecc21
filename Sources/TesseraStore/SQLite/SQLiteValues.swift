// Conversions between domain values and SQLite column values.
import Foundation
import NIOCore
import SQLiteNIO
import TesseraCore

extension Date {
    var micros: Int { InputNumber.micros(self) }
    init(micros: Int) { self.init(timeIntervalSince1970: Double(micros) / 1_000_000) }
}

extension SQLiteData {
    static func date(_ d: Date) -> SQLiteData { .integer(d.micros) }
    static func optionalDate(_ d: Date?) -> SQLiteData { d.map { .integer($0.micros) } ?? .null }
    static func bytes(_ b: [UInt8]) -> SQLiteData { .blob(ByteBuffer(bytes: b)) }
    static func optionalBytes(_ b: [UInt8]?) -> SQLiteData { b.map { .blob(ByteBuffer(bytes: $0)) } ?? .null }
    static func int(_ i: Int) -> SQLiteData { .integer(i) }
    static func int64(_ i: Int64) -> SQLiteData { .integer(Int(i)) }
    static func bool(_ b: Bool) -> SQLiteData { .integer(b ? 1 : 0) }
    static func json<T: Encodable>(_ value: T) throws -> SQLiteData {
        .text(String(decoding: try JSONEncoder().encode(value), as: UTF8.self))
    }
}

/// Typed column access that reports malformed rows instead of crashing.
struct Columns {
    let row: SQLiteRow

    func string(_ name: String) throws -> String {
        guard let v = row.column(name)?.string else { throw TesseraError.integrity("column \(name) is missing") }
        return v
    }
    func int(_ name: String) throws -> Int {
        guard let v = row.column(name)?.integer else { throw TesseraError.integrity("column \(name) is missing") }
        return v
    }
    func int64(_ name: String) throws -> Int64 { Int64(try int(name)) }
    func bool(_ name: String) throws -> Bool { try int(name) != 0 }
    func date(_ name: String) throws -> Date { Date(micros: try int(name)) }
    func optionalDate(_ name: String) -> Date? { row.column(name)?.integer.map { Date(micros: $0) } }
    func bytes(_ name: String) throws -> [UInt8] {
        guard let b = optionalBytes(name) else { throw TesseraError.integrity("column \(name) is missing") }
        return b
    }
    func optionalBytes(_ name: String) -> [UInt8]? {
        guard case .blob(var buffer)? = row.column(name) else { return nil }
        return buffer.readBytes(length: buffer.readableBytes)
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
