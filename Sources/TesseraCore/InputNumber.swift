// InputNumber: the one place where a number that came from outside (a request, a config file or a
// stored value that a client wrote) becomes an Int, a duration or a date. Every conversion is
// range-checked and overflow-safe and throws a 400 naming the field; nothing here can trap.
import Foundation

public enum InputNumber {
    /// The longest duration any field accepts: 100 years, far beyond any TTL, and far below any
    /// value whose arithmetic (seconds × 1e6, dates) could overflow.
    public static let maxSeconds = 100 * 365 * 86_400
    /// Epoch seconds accepted for dates: 1970 … 9999-12-31.
    public static let maxEpochSeconds = 253_402_300_799

    /// An integer from a JSON integer, within `range`.
    public static func int(_ value: Int64, field: String, in range: ClosedRange<Int>) throws -> Int {
        guard let v = Int(exactly: value), range.contains(v) else { throw outOfRange(field, range) }
        return v
    }

    /// An integer from a JSON number that may have been written as a double (`5.0`), within `range`.
    public static func int(_ value: Double, field: String, in range: ClosedRange<Int>) throws -> Int {
        guard value.isFinite, value == value.rounded() else { throw notAnInteger(field) }
        // Compare as doubles first: `Int(exactly:)` of a value beyond Int's range is nil, never a trap.
        guard value >= Double(range.lowerBound), value <= Double(range.upperBound),
              let v = Int(exactly: value), range.contains(v) else { throw outOfRange(field, range) }
        return v
    }

    /// An integer written as text (`"42"`, `" 7 "`), within `range`. Only an optional sign and
    /// ASCII digits are accepted; `"1e3"`, `"0x10"` and `"4.0"` are not integers.
    public static func int(text: String, field: String, in range: ClosedRange<Int>) throws -> Int {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty, t.utf8.count <= 40 else { throw notAnInteger(field) }
        var digits = Substring(t)
        if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { throw notAnInteger(field) }
        // `Int(_: String)` returns nil on overflow.
        guard let v = Int(t.hasPrefix("+") ? String(t.dropFirst()) : t) else { throw outOfRange(field, range) }
        guard range.contains(v) else { throw outOfRange(field, range) }
        return v
    }

    /// `a * b`, or a 400 naming the field when it overflows or leaves `range`.
    public static func product(_ a: Int, _ b: Int, field: String, in range: ClosedRange<Int> = Int.min...Int.max) throws -> Int {
        let (r, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow, range.contains(r) else { throw outOfRange(field, range) }
        return r
    }

    /// A number of seconds that is already known to be in `0...maxSeconds` as a `TimeInterval`.
    public static func interval(seconds: Int) -> TimeInterval {
        TimeInterval(min(max(seconds, -maxSeconds), maxSeconds))
    }

    /// A date from epoch seconds, within 1970 … 9999.
    public static func date(epochSeconds: Int, field: String) throws -> Date {
        guard (0...maxEpochSeconds).contains(epochSeconds) else { throw outOfRange(field, 0...maxEpochSeconds) }
        return Date(timeIntervalSince1970: TimeInterval(epochSeconds))
    }

    /// A date from epoch seconds written as a double (the audit query's `since`), within 1970 … 9999.
    public static func date(epochSeconds value: Double, field: String) throws -> Date {
        guard value.isFinite, value >= 0, value <= Double(maxEpochSeconds) else {
            throw outOfRange(field, 0...maxEpochSeconds)
        }
        return Date(timeIntervalSince1970: value)
    }

    // MARK: Never-trapping conversions of values the server computed itself

    /// A `Double` as an Int, clamped to Int's range (NaN is 0). For values the server computed,
    /// such as the seconds between two stored dates, which must never crash a response.
    public static func clamped(_ value: Double) -> Int {
        guard value.isFinite else { return value.isNaN ? 0 : (value > 0 ? Int.max : Int.min) }
        if value >= 9.2e18 { return Int.max }
        if value <= -9.2e18 { return Int.min }
        return Int(value)
    }

    /// Whole seconds between two dates, clamped.
    public static func seconds(from start: Date, to end: Date) -> Int {
        clamped(end.timeIntervalSince(start))
    }

    /// Microseconds since the epoch, clamped.
    public static func micros(_ date: Date) -> Int {
        clamped((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    public static func outOfRangeError(_ field: String, _ range: ClosedRange<Int>) -> TesseraError { outOfRange(field, range) }

    static func outOfRange(_ field: String, _ range: ClosedRange<Int>) -> TesseraError {
        .badRequest("field '\(field)' must be an integer between \(range.lowerBound) and \(range.upperBound)")
    }

    static func notAnInteger(_ field: String) -> TesseraError {
        .badRequest("field '\(field)' must be an integer")
    }
}

/// Durations as Vault and Go write them: `90`, `"90"`, `"1h30m"`, `"45s"`, `"1.5h"`, `"2d"`, `"500ms"`.
public enum GoDuration {
    /// Parses a duration given as text, in whole seconds within `0...max`.
    public static func seconds(text s: String, field: String, max: Int = InputNumber.maxSeconds) throws -> Int {
        let range = 0...max
        let t = s.trimmingCharacters(in: .whitespaces)
        if t.isEmpty { return 0 }
        guard t.utf8.count <= 64 else { throw invalid(field, s) }
        if t.utf8.allSatisfy({ (0x30...0x39).contains($0) }) {
            return try InputNumber.int(text: t, field: field, in: range)
        }
        var total = 0.0
        var number = ""
        let units = Array(t.unicodeScalars)
        var i = 0
        while i < units.count {
            let c = units[i]
            if ("0"..."9").contains(c) || c == "." { number.unicodeScalars.append(c); i += 1; continue }
            var unit = String(c)
            if c == "m", i + 1 < units.count, units[i + 1] == "s" { unit = "ms"; i += 1 }
            if c == "u" || c == "µ", i + 1 < units.count, units[i + 1] == "s" { unit = "us"; i += 1 }
            if c == "n", i + 1 < units.count, units[i + 1] == "s" { unit = "ns"; i += 1 }
            guard !number.isEmpty, number != ".", let n = Double(number), n.isFinite else { throw invalid(field, s) }
            switch unit {
            case "d": total += n * 86_400
            case "h": total += n * 3_600
            case "m": total += n * 60
            case "s": total += n
            case "ms": total += n / 1_000
            case "us": total += n / 1_000_000
            case "ns": total += n / 1_000_000_000
            default: throw invalid(field, s)
            }
            guard total.isFinite, total <= Double(max) else { throw InputNumber.outOfRange(field, range) }
            number = ""
            i += 1
        }
        guard number.isEmpty else { throw invalid(field, s) }
        return try InputNumber.int(total.rounded(.down), field: field, in: range)
    }

    /// Go's `time.Duration.String()` for whole seconds: `0s`, `45s`, `1h0m0s`, `768h0m0s`.
    public static func format(seconds: Int) -> String {
        let s = Swift.max(0, seconds)
        if s == 0 { return "0s" }
        let h = s / 3600, m = (s % 3600) / 60, sec = s % 60
        if h > 0 { return "\(h)h\(m)m\(sec)s" }
        if m > 0 { return "\(m)m\(sec)s" }
        return "\(sec)s"
    }

    static func invalid(_ field: String, _ text: String) -> TesseraError {
        .badRequest("field '\(field)' is not a valid duration: '\(String(text.prefix(64)))'")
    }
}

extension InputNumber {
    /// A `Double` the server computed (seconds between stored dates, an epoch) as an `Int64`, clamped.
    public static func int64(_ value: Double) -> Int64 { Int64(clamped(value)) }
}
