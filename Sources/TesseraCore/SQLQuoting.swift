// SQL quoting and statement templating for producers and rotators: the single place where
import Foundation
// values are spliced into SQL. Identifiers and literals are always quoted by this code; a
// template that already wrote `"{{name}}"` or `'{{password}}'` gets the quoted value in place
// of the whole quoted placeholder, so authors cannot get quoting wrong either way.

public enum SQLQuoting {
    /// A PostgreSQL identifier: double-quoted, embedded quotes doubled, NUL rejected.
    public static func identifier(_ s: String) throws -> String {
        guard !s.isEmpty, !s.contains("\u{0}") else { throw TesseraError.badRequest("invalid SQL identifier") }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A PostgreSQL string literal: single-quoted, embedded quotes doubled, NUL rejected.
    /// (standard_conforming_strings is on in every supported PostgreSQL, so backslashes are literal.)
    public static func literal(_ s: String) throws -> String {
        guard !s.contains("\u{0}") else { throw TesseraError.badRequest("invalid SQL literal") }
        return "'" + s.replacingOccurrences(of: "'", with: "''") + "'"
    }

    /// Renders a statement template. `identifiers` are spliced as quoted identifiers, `literals`
    /// as quoted literals, e.g. `{{name}}` → `"v_app_x1"`, `{{password}}` → `'…'`.
    public static func render(_ template: String, identifiers: [String: String], literals: [String: String]) throws -> String {
        var out = template
        for (key, value) in identifiers {
            let quoted = try identifier(value)
            out = out.replacingOccurrences(of: "\"{{\(key)}}\"", with: quoted)
            out = out.replacingOccurrences(of: "'{{\(key)}}'", with: try literal(value))
            out = out.replacingOccurrences(of: "{{\(key)}}", with: quoted)
        }
        for (key, value) in literals {
            let quoted = try literal(value)
            out = out.replacingOccurrences(of: "'{{\(key)}}'", with: quoted)
            out = out.replacingOccurrences(of: "{{\(key)}}", with: quoted)
        }
        return out
    }

    /// Splits a script on `;` outside quotes and comments; empty statements are dropped.
    public static func split(_ script: String) -> [String] {
        var statements: [String] = []
        var current = ""
        var quote: Character?
        var iterator = Array(script)
        var i = 0
        while i < iterator.count {
            let c = iterator[i]
            if let q = quote {
                current.append(c)
                if c == q {
                    if i + 1 < iterator.count, iterator[i + 1] == q { current.append(q); i += 2; continue }
                    quote = nil
                }
            } else if c == "'" || c == "\"" {
                quote = c
                current.append(c)
            } else if c == "-", i + 1 < iterator.count, iterator[i + 1] == "-" {
                while i < iterator.count, iterator[i] != "\n" { i += 1 }
                continue
            } else if c == ";" {
                let t = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if !t.isEmpty { statements.append(t) }
                current = ""
            } else {
                current.append(c)
            }
            i += 1
        }
        let t = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !t.isEmpty { statements.append(t) }
        iterator = []
        return statements
    }
}
