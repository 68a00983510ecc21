// Matching of identity claims: `*` globs (bound claims, service-account names, certificate
// names, sub-claims), claim lookup by name or JSON pointer, and the string forms of a claim that
// bounds compare against. Used by every workload-identity method and by role associations.
import Foundation

public enum Glob {
    /// Whether `value` matches `pattern`, where `*` matches any run of characters (also none)
    /// and every other character matches itself. Linear in practice: greedy with backtracking to
    /// the last star only.
    public static func matches(_ pattern: String, _ value: String) -> Bool {
        let p = Array(pattern.unicodeScalars), v = Array(value.unicodeScalars)
        var pi = 0, vi = 0
        var star = -1, mark = 0
        while vi < v.count {
            if pi < p.count, p[pi] != "*", p[pi] == v[vi] {
                pi += 1
                vi += 1
            } else if pi < p.count, p[pi] == "*" {
                star = pi
                mark = vi
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                vi = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}

public enum Claims {
    /// The claim named `key`: a top-level member, or a JSON pointer (`/a/b`) into nested objects.
    public static func value(_ claims: JSON, _ key: String) -> JSON? {
        guard key.hasPrefix("/") else { return claims[key] }
        var current: JSON? = claims
        for raw in key.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            let part = raw.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            switch current {
            case .object?: current = current?[part]
            case .array(let items)?:
                guard let i = Int(part), i >= 0, i < items.count else { return nil }
                current = items[i]
            default: return nil
            }
        }
        return current
    }

    /// The string forms of a claim: a string, a number or a boolean as text, or each such member
    /// of a list. Objects and nulls have none.
    public static func strings(_ value: JSON?) -> [String] {
        switch value {
        case .string(let s)?: [s]
        case .int(let i)?: [String(i)]
        case .double(let d)?: [d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)]
        case .bool(let b)?: [b ? "true" : "false"]
        case .array(let items)?: items.flatMap { item -> [String] in
            if case .array = item { return [] }
            return strings(item)
        }
        default: []
        }
    }

    /// Whether every key of `bounds` has a claim with a value that one of its patterns matches
    /// (`glob`: `*` wildcards, else exact). Empty bounds match everything.
    public static func satisfy(_ bounds: [String: [String]], _ claims: JSON, glob: Bool = true) -> Bool {
        firstUnmatched(bounds, claims, glob: glob) == nil
    }

    /// The first key of `bounds` whose claim is missing or matches none of its values.
    public static func firstUnmatched(_ bounds: [String: [String]], _ claims: JSON, glob: Bool = true) -> String? {
        for key in bounds.keys.sorted() {
            let patterns = bounds[key] ?? []
            let have = strings(value(claims, key))
            let ok = have.contains { v in patterns.contains { glob ? Glob.matches($0, v) : $0 == v } }
            if !ok { return key }
        }
        return nil
    }
}
