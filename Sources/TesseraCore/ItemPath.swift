// ItemPath: the single parser that normalizes item, folder and rule paths. Every path that
// reaches authorization or storage has passed through here; it is security-critical.
import Foundation

/// A normalized item path such as `/prod/db/password`: a leading `/`, non-empty segments,
/// no `.` or `..`, no control characters, bounded length.
public struct ItemPath: Hashable, Sendable, Comparable, CustomStringConvertible {
    public static let maxLength = 1024
    public static let maxSegmentLength = 255

    /// The normalized text, always starting with `/` and never ending with `/` (except the root).
    public let value: String

    public var description: String { value }
    public static func < (lhs: ItemPath, rhs: ItemPath) -> Bool { lhs.value < rhs.value }

    public static let root = ItemPath(trusted: "/")

    private init(trusted: String) { value = trusted }

    /// Parses an item path. A missing leading `/` is added (as Akeyless does).
    public init(_ raw: String) throws {
        let segments = try ItemPath.segments(of: ItemPath.canonical(raw), allowTrailingSlash: false, allowRoot: false)
        value = "/" + segments.joined(separator: "/")
    }

    /// Parses a folder path: like an item path, but the root `/` and a trailing `/` are accepted.
    public init(folder raw: String) throws {
        let segments = try ItemPath.segments(of: ItemPath.canonical(raw), allowTrailingSlash: true, allowRoot: true)
        value = "/" + segments.joined(separator: "/")
    }

    public var isRoot: Bool { value == "/" }

    /// The segments of the path (empty for the root).
    public var components: [Substring] { value.split(separator: "/") }

    /// The last segment (the item's short name).
    public var name: String { components.last.map(String.init) ?? "" }

    /// The parent folder (`/` for a top-level item).
    public var parent: ItemPath {
        guard let slash = value.lastIndex(of: "/"), slash != value.startIndex else { return .root }
        return ItemPath(trusted: String(value[..<slash]))
    }

    /// The prefix that every descendant of this folder starts with, e.g. `/prod/` (or `/` for the root).
    public var folderPrefix: String { isRoot ? "/" : value + "/" }

    /// Whether `other` is this folder or lies below it (compared as bytes, never as graphemes).
    public func contains(_ other: ItemPath) -> Bool {
        isRoot || other.value.utf8.elementsEqual(value.utf8) || ItemPath.bytes(other.value, haveprefix: folderPrefix)
    }

    /// `s` without `prefix`, cut by bytes, or nil when `s` does not start with those bytes.
    public static func bytes(_ s: String, droppingPrefix prefix: String) -> String? {
        guard bytes(s, haveprefix: prefix) else { return nil }
        return String(decoding: s.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
    }

    /// Byte-wise prefix test. Swift's `String.hasPrefix` compares grapheme clusters, so
    /// `"/a/\u{301}x".hasPrefix("/a/")` is false: a combining mark would escape a rule.
    public static func bytes(_ s: String, haveprefix prefix: String) -> Bool {
        s.utf8.starts(with: prefix.utf8)
    }

    /// The one canonical form of a path: Unicode NFC, so that the NFC and NFD spellings of a name
    /// are the same path for the authorizer, the cache and the store alike. Code points that
    /// render invisibly or reorder text (format characters such as zero-width spaces, joiners
    /// and bidirectional overrides, line and paragraph separators) are refused, as is a segment
    /// that starts with a combining mark, which would attach to the `/` before it.
    static func canonical(_ raw: String) throws -> String {
        if raw.utf8.allSatisfy({ $0 < 0x80 }) { return raw }
        let nfc = raw.precomposedStringWithCanonicalMapping
        var atSegmentStart = true
        for scalar in nfc.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .format, .lineSeparator, .paragraphSeparator, .privateUse, .surrogate, .unassigned:
                throw TesseraError.badRequest("invalid path: contains an invisible or ambiguous character (U+\(String(scalar.value, radix: 16, uppercase: true)))")
            case .nonspacingMark, .spacingMark, .enclosingMark:
                if atSegmentStart { throw TesseraError.badRequest("invalid path: a segment starts with a combining mark") }
            default:
                // Anything else that would join the `/` before it into one grapheme (emoji
                // modifiers, halfwidth sound marks): string operations would then disagree on
                // where the segment starts.
                if atSegmentStart, scalar.properties.isGraphemeExtend || scalar.properties.isEmojiModifier {
                    throw TesseraError.badRequest("invalid path: a segment starts with a combining mark")
                }
            }
            atSegmentStart = scalar == "/"
        }
        return nfc
    }

    /// Joins a relative, already-validated path below this folder.
    public func appending(_ relative: String) throws -> ItemPath {
        try ItemPath(folderPrefix + relative)
    }

    static func segments(of raw: String, allowTrailingSlash: Bool, allowRoot: Bool) throws -> [String] {
        guard !raw.isEmpty else { throw TesseraError.badRequest("invalid path: the path is empty") }
        guard raw.utf8.count <= maxLength else {
            throw TesseraError.badRequest("invalid path: longer than \(maxLength) bytes")
        }
        try checkCharacters(raw)
        // Check the percent-decoded form too, so that an encoded `..` or control character cannot
        // slip through a layer that decodes later.
        if raw.utf8.contains(UInt8(ascii: "%")) {
            guard let decoded = raw.removingPercentEncoding else {
                throw TesseraError.badRequest("invalid path: malformed percent-encoding")
            }
            if decoded != raw {
                try checkCharacters(decoded)
                _ = try splitSegments(decoded, allowTrailingSlash: allowTrailingSlash, allowRoot: allowRoot)
            }
        }
        return try splitSegments(raw, allowTrailingSlash: allowTrailingSlash, allowRoot: allowRoot)
    }

    private static func checkCharacters(_ s: String) throws {
        for scalar in s.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) {
                throw TesseraError.badRequest("invalid path: contains a control character")
            }
            if scalar == "\\" {
                throw TesseraError.badRequest("invalid path: contains a backslash")
            }
        }
    }

    private static func splitSegments(_ s: String, allowTrailingSlash: Bool, allowRoot: Bool) throws -> [String] {
        var body = Substring(s)
        if body.hasPrefix("/") { body = body.dropFirst() }
        if body.isEmpty {
            guard allowRoot else { throw TesseraError.badRequest("invalid path: a name is required, not the root folder") }
            return []
        }
        if body.hasSuffix("/") {
            guard allowTrailingSlash else { throw TesseraError.badRequest("invalid path: an item name cannot end with '/'") }
            body = body.dropLast()
            if body.isEmpty {
                guard allowRoot else { throw TesseraError.badRequest("invalid path: a name is required") }
                return []
            }
        }
        let parts = body.split(separator: "/", omittingEmptySubsequences: false)
        var result: [String] = []
        result.reserveCapacity(parts.count)
        for part in parts {
            if part.isEmpty { throw TesseraError.badRequest("invalid path: empty segment ('//')") }
            if part == "." || part == ".." {
                throw TesseraError.badRequest("invalid path: '.' and '..' segments are not allowed")
            }
            if part.utf8.count > maxSegmentLength {
                throw TesseraError.badRequest("invalid path: a segment is longer than \(maxSegmentLength) bytes")
            }
            if part.allSatisfy({ $0 == " " }) {
                throw TesseraError.badRequest("invalid path: blank segment")
            }
            result.append(String(part))
        }
        return result
    }
}

/// A rule's path pattern: a normalized path, optionally ending in `*`, which matches any suffix.
/// `/prod/*` matches `/prod/a` and `/prod/a/b`; `/*` matches everything; `/prod/db` matches only itself.
public struct PathPattern: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The literal part before the wildcard (normalized, may end with `/` when a wildcard follows).
    public let prefix: String
    public let hasWildcard: Bool

    public var description: String { hasWildcard ? prefix + "*" : prefix }

    public init(_ raw: String) throws {
        guard !raw.isEmpty else { throw TesseraError.badRequest("invalid rule path: the path is empty") }
        var text = try ItemPath.canonical(raw)
        if !text.hasPrefix("/") { text = "/" + text }
        if text.hasSuffix("*") {
            let literal = String(text.dropLast())
            guard !literal.contains("*") else {
                throw TesseraError.badRequest("invalid rule path: '*' is allowed only at the end")
            }
            if literal == "/" {
                prefix = "/"
            } else if literal.hasSuffix("/") {
                prefix = try ItemPath(literal.dropLast().description).folderPrefix
            } else {
                // `/prod/db*` matches `/prod/db`, `/prod/db-x`, `/prod/db/y`.
                prefix = try ItemPath(literal).value
            }
            hasWildcard = true
        } else {
            guard !text.contains("*") else {
                throw TesseraError.badRequest("invalid rule path: '*' is allowed only at the end")
            }
            prefix = try ItemPath(text).value
            hasWildcard = false
        }
    }

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        self = try PathPattern(raw)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// Whether the pattern matches an item path.
    public func matches(_ path: ItemPath) -> Bool {
        hasWildcard ? ItemPath.bytes(path.value, haveprefix: prefix) : path.value.utf8.elementsEqual(prefix.utf8)
    }

    /// Whether every path this pattern matches is matched by `self` as well.
    public func covers(_ other: PathPattern) -> Bool {
        if hasWildcard { return ItemPath.bytes(other.prefix, haveprefix: prefix) }
        return !other.hasWildcard && other.prefix.utf8.elementsEqual(prefix.utf8)
    }

    /// Whether some path is matched by both patterns.
    public func overlaps(_ other: PathPattern) -> Bool {
        switch (hasWildcard, other.hasWildcard) {
        case (true, true): return ItemPath.bytes(prefix, haveprefix: other.prefix) || ItemPath.bytes(other.prefix, haveprefix: prefix)
        case (true, false): return ItemPath.bytes(other.prefix, haveprefix: prefix)
        case (false, true): return ItemPath.bytes(prefix, haveprefix: other.prefix)
        case (false, false): return prefix.utf8.elementsEqual(other.prefix.utf8)
        }
    }

    /// Whether the pattern could match some path inside `folder` (used to allow listing a folder
    /// whose contents are only partly visible).
    public func overlaps(folder: ItemPath) -> Bool {
        let folderPrefix = folder.folderPrefix
        if hasWildcard {
            return ItemPath.bytes(prefix, haveprefix: folderPrefix) || ItemPath.bytes(folderPrefix, haveprefix: prefix)
        }
        return ItemPath.bytes(prefix, haveprefix: folderPrefix)
    }
}
