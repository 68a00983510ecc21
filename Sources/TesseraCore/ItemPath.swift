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

/// A rule's path pattern: a normalized path, optionally ending in `*`, which matches any suffix,
/// and whose segments may be `+`, which matches exactly one segment (Vault's policy globs).
/// `/prod/*` matches `/prod/a` and `/prod/a/b`; `/*` matches everything; `/prod/db` matches only
/// itself; `/prod/+/db` matches `/prod/eu/db` but neither `/prod/db` nor `/prod/eu/x/db`.
public struct PathPattern: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The literal part before the wildcard (normalized, may end with `/` when a wildcard follows).
    /// For a pattern with `+` segments, the literal part before the first of them: every path it
    /// matches starts with it.
    public let prefix: String
    /// Whether the pattern matches more than one path (a final `*`, or a `+` segment).
    public let hasWildcard: Bool
    /// A pattern with `+` segments: its segments after the leading `/` (the last may end in `*`);
    /// nil for every other pattern, which `prefix` describes alone.
    let segments: [String]?

    public var description: String {
        if let segments { return "/" + segments.joined(separator: "/") }
        return hasWildcard ? prefix + "*" : prefix
    }

    public init(_ raw: String) throws {
        guard !raw.isEmpty else { throw TesseraError.badRequest("invalid rule path: the path is empty") }
        var text = try ItemPath.canonical(raw)
        if !text.hasPrefix("/") { text = "/" + text }
        let parts = text.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        if parts.contains("+") {
            try self.init(segmentGlob: parts)
            return
        }
        if text.hasSuffix("*") {
            let literal = String(text.dropLast())
            guard !literal.contains("*") else {
                throw TesseraError.badRequest("invalid rule path: '*' is allowed only at the end")
            }
            if literal == "/" {
                self.init(prefix: "/", hasWildcard: true, segments: nil)
            } else if literal.hasSuffix("/") {
                self.init(prefix: try ItemPath(literal.dropLast().description).folderPrefix, hasWildcard: true, segments: nil)
            } else {
                // `/prod/db*` matches `/prod/db`, `/prod/db-x`, `/prod/db/y`.
                self.init(prefix: try ItemPath(literal).value, hasWildcard: true, segments: nil)
            }
        } else {
            guard !text.contains("*") else {
                throw TesseraError.badRequest("invalid rule path: '*' is allowed only at the end")
            }
            self.init(prefix: try ItemPath(text).value, hasWildcard: false, segments: nil)
        }
    }

    private init(prefix: String, hasWildcard: Bool, segments: [String]?) {
        self.prefix = prefix
        self.hasWildcard = hasWildcard
        self.segments = segments
    }

    /// A pattern with `+` segments. Every other segment is validated as a path segment (the last
    /// may be empty or end in `*`, as after `/prod/+/`).
    private init(segmentGlob parts: [Substring]) throws {
        guard parts.reduce(0, { $0 + $1.utf8.count + 1 }) <= ItemPath.maxLength else {
            throw TesseraError.badRequest("invalid path: longer than \(ItemPath.maxLength) bytes")
        }
        for (i, part) in parts.enumerated() {
            let last = i == parts.count - 1
            if part == "+" { continue }
            if last && (part.isEmpty || part == "*") { continue }
            let name = last && part.hasSuffix("*") ? part.dropLast() : part
            guard !name.contains("*") else { throw TesseraError.badRequest("invalid rule path: '*' is allowed only at the end") }
            guard !name.isEmpty else { throw TesseraError.badRequest("invalid path: empty segment ('//')") }
            // The same character rules as any path segment.
            _ = try ItemPath("/" + name)
        }
        // `/prod/+/` is `/prod/+/*`, as `/prod/` is a folder's contents.
        let segments = parts.last == "" ? parts.dropLast().map(String.init) + ["*"] : parts.map(String.init)
        let literalCount = parts.firstIndex(of: "+") ?? 0
        self.init(prefix: "/" + parts.prefix(literalCount).map { $0 + "/" }.joined(), hasWildcard: true, segments: segments)
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
        if let segments { return Self.matches(segments: segments, path.value.utf8.dropFirst()) }
        return hasWildcard ? ItemPath.bytes(path.value, haveprefix: prefix) : path.value.utf8.elementsEqual(prefix.utf8)
    }

    /// Segment-by-segment matching of a `+` pattern against a path without its leading `/`:
    /// `+` takes one whole segment, a literal must be equal byte for byte, and a final segment
    /// ending in `*` matches any rest that starts with its literal part (including further
    /// segments).
    static func matches(segments: [String], _ rest: Substring.UTF8View) -> Bool {
        var remaining = rest[...]
        for (i, segment) in segments.enumerated() {
            let last = i == segments.count - 1
            if last && segment.hasSuffix("*") {
                return remaining.starts(with: segment.utf8.dropLast())
            }
            let end = remaining.firstIndex(of: UInt8(ascii: "/")) ?? remaining.endIndex
            let name = remaining[remaining.startIndex..<end]
            if name.isEmpty { return false }
            if segment != "+" && !name.elementsEqual(segment.utf8) { return false }
            if last { return end == remaining.endIndex }
            guard end != remaining.endIndex else { return false }
            remaining = remaining[remaining.index(after: end)...]
        }
        return false
    }

    /// Whether every path this pattern matches is matched by `self` as well. For `+` patterns the
    /// answer is conservative: a `+` pattern covers only itself, and a plain pattern covers a `+`
    /// pattern only when its prefix holds the `+` pattern's literal start.
    public func covers(_ other: PathPattern) -> Bool {
        if segments != nil { return self == other }
        if hasWildcard { return ItemPath.bytes(other.prefix, haveprefix: prefix) }
        return !other.hasWildcard && other.prefix.utf8.elementsEqual(prefix.utf8)
    }

    /// Whether some path is matched by both patterns. A `+` pattern is taken as its literal
    /// start followed by `*`, so the answer errs towards yes.
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
