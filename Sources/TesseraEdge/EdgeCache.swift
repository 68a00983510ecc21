// EdgeCache: what the agent keeps of its clients' reads — the answers (sealed, in memory as on
// disk), the identities and rules behind the tokens it has seen (by the token's hash, never the
// token), and how far it has followed the central change stream. The disk copy is one sealed
// snapshot, rewritten atomically; without the key it is noise.
import Foundation
import Logging
import Synchronization
import TesseraCore
import TesseraCrypto

/// The caller behind a client token, as the central server described it.
struct ResolvedIdentity: Sendable, Codable {
    var authMethodType: String
    var accessId: String
    var authMethodName: String
    var roles: [String]
    var rules: [Rule]
    var ruleRoles: [String]
    var isRoot: Bool
    var expiresAt: Date?
    var resolvedAt: Date
    /// A token limited by use count: never remembered, and its reads are always forwarded, so
    /// that each one spends a use on the central server.
    var usesLimited: Bool?

    init(json: Data) throws {
        guard let o = try JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw AgentFailure(status: 502, message: "the central server's identity answer is not an object")
        }
        authMethodType = o["auth_method_type"] as? String ?? ""
        accessId = o["access_id"] as? String ?? ""
        authMethodName = o["auth_method_name"] as? String ?? ""
        roles = o["roles"] as? [String] ?? []
        ruleRoles = o["rule_roles"] as? [String] ?? []
        isRoot = o["is_root"] as? Bool ?? false
        expiresAt = (o["expires_at_us"] as? NSNumber).map { Date(timeIntervalSince1970: $0.doubleValue / 1_000_000) }
        resolvedAt = Date()
        usesLimited = o["uses_limited"] as? Bool ?? false
        rules = try (o["rules"] as? [[String: Any]] ?? []).map { r in
            guard let type = RuleType(rawValue: r["type"] as? String ?? ""), let path = r["path"] as? String else {
                throw AgentFailure(status: 502, message: "the central server's identity answer has a malformed rule")
            }
            let caps = Set((r["capabilities"] as? [String] ?? []).compactMap(Capability.init(rawValue:)))
            return Rule(pattern: try PathPattern(path), capabilities: caps, type: type)
        }
    }

    var authorizer: Authorizer { Authorizer(rules: rules, isRoot: isRoot, ruleRoles: ruleRoles) }
}

/// One cached answer: the response the central server gave, sealed, and the items it returned.
struct CachedAnswer: Sendable, Codable {
    var key: String
    var items: [String]
    var status: Int
    var contentType: String
    var sealedBody: [UInt8]
    var fetchedAt: Date
}

final class EdgeCache: Sendable {
    struct State {
        var answers: [String: CachedAnswer] = [:]
        var identities: [String: ResolvedIdentity] = [:]
        /// The authorizer of each identity, built once (not stored: it is made from the rules).
        var authorizers: [String: Authorizer] = [:]
        /// The last change-stream sequence applied, and when the stream last proved the cache current.
        var cursor: Int64?
        var currentAt: Date?
        var dirty = false
        /// Counts every invalidation; the recent ones are kept with their paths, so that a fetch
        /// that raced a change does not store what it read before the change.
        var generation: UInt64 = 0
        var recent: [(generation: UInt64, path: String)] = []
        var accessGeneration: UInt64 = 0
        var bytes = 0
    }

    struct Snapshot: Codable {
        var answers: [CachedAnswer]
        var identities: [String: ResolvedIdentity]
        var cursor: Int64?
        var currentAt: Date?
    }

    let sealer: CacheSealer
    let file: String?
    let maxEntries: Int
    /// The most the sealed answers may take in memory, and the largest answer that is cached.
    let maxBytes = 256 << 20
    static let maxAnswerBytes = 1 << 20
    static let recentLimit = 4096
    private let state = Mutex(State())
    private let logger: Logger

    init(sealer: CacheSealer, directory: String?, maxEntries: Int = 50_000, logger: Logger) {
        self.sealer = sealer
        self.file = directory.map { ($0 as NSString).appendingPathComponent("cache.sealed") }
        self.maxEntries = maxEntries
        self.logger = logger
    }

    // MARK: answers

    func answer(_ key: String) -> CachedAnswer? { state.withLock { $0.answers[key] } }

    func body(of answer: CachedAnswer) throws -> [UInt8] {
        try sealer.open(answer.sealedBody, context: "answer:" + answer.key)
    }

    /// What the invalidations have reached; take it before a fetch and pass it to `store`.
    var generation: UInt64 { state.withLock { $0.generation } }
    var accessGeneration: UInt64 { state.withLock { $0.accessGeneration } }

    /// Caches an answer unless a change to one of its items (or a reset) arrived since `since`:
    /// the answer may then predate the change. Returns whether it was stored.
    @discardableResult
    func store(key: String, items: [String], status: Int, contentType: String, body: [UInt8], at: Date, since: UInt64) throws -> Bool {
        guard body.count <= Self.maxAnswerBytes else { return false }
        let sealed = try sealer.seal(body, context: "answer:" + key)
        let answer = CachedAnswer(key: key, items: items, status: status, contentType: contentType, sealedBody: sealed, fetchedAt: at)
        return state.withLock { s in
            if s.generation != since {
                guard let oldest = s.recent.first, oldest.generation <= since + 1 else { return false }
                let touched = s.recent.contains { r in
                    r.generation > since && items.contains { Self.covers(r.path, $0) }
                }
                if touched { return false }
            }
            if let old = s.answers[key] { s.bytes -= old.sealedBody.count }
            s.answers[key] = answer
            s.bytes += sealed.count
            while s.answers.count > maxEntries || s.bytes > maxBytes,
                  let oldest = s.answers.values.min(by: { $0.fetchedAt < $1.fetchedAt }) {
                s.answers.removeValue(forKey: oldest.key)
                s.bytes -= oldest.sealedBody.count
            }
            s.dirty = true
            return true
        }
    }

    /// A change to `path` touches `item` when it is the item or a folder above it ("" is everything).
    static func covers(_ path: String, _ item: String) -> Bool {
        path.isEmpty || item == path || item.hasPrefix(path.hasSuffix("/") ? path : path + "/")
    }

    func remove(key: String) {
        state.withLock { s in
            if let old = s.answers.removeValue(forKey: key) {
                s.bytes -= old.sealedBody.count
                s.dirty = true
            }
        }
    }

    /// Drops every answer that returned `path` or an item under it (a folder's deletion); ""
    /// drops every answer whose key starts with `keyPrefix` (a mount table change).
    @discardableResult
    func invalidate(path: String, keyPrefix: String = "") -> Int {
        state.withLock { s in
            s.generation += 1
            s.recent.append((s.generation, path))
            if s.recent.count > Self.recentLimit { s.recent.removeFirst(s.recent.count - Self.recentLimit) }
            let gone = s.answers.values.filter { a in
                a.key.hasPrefix(keyPrefix) && (path.isEmpty || a.items.contains { Self.covers(path, $0) })
            }
            for a in gone {
                s.answers.removeValue(forKey: a.key)
                s.bytes -= a.sealedBody.count
            }
            if !gone.isEmpty { s.dirty = true }
            return gone.count
        }
    }

    var count: Int { state.withLock { $0.answers.count } }

    // MARK: identities

    func identity(tokenHash: String) -> ResolvedIdentity? { state.withLock { $0.identities[tokenHash] } }

    func authorizer(tokenHash: String) -> Authorizer? { state.withLock { $0.authorizers[tokenHash] } }

    /// Keeps a resolved identity unless an access change arrived since `since` (it may predate it).
    func remember(_ identity: ResolvedIdentity, tokenHash: String, since: UInt64) {
        let authorizer = identity.authorizer
        state.withLock { s in
            guard s.accessGeneration == since else { return }
            s.identities[tokenHash] = identity
            s.authorizers[tokenHash] = authorizer
            s.dirty = true
        }
    }

    func forget(tokenHash: String) {
        state.withLock { s in
            s.authorizers.removeValue(forKey: tokenHash)
            if s.identities.removeValue(forKey: tokenHash) != nil { s.dirty = true }
        }
    }

    /// Who may read what changed: every identity is resolved again before it is used.
    func forgetIdentities() {
        state.withLock { s in
            s.accessGeneration += 1
            s.identities.removeAll()
            s.authorizers.removeAll()
            s.dirty = true
        }
    }

    // MARK: the change stream's position

    var cursor: Int64? { state.withLock { $0.cursor } }
    var currentAt: Date? { state.withLock { $0.currentAt } }

    func advance(cursor: Int64?, currentAt: Date?) {
        state.withLock { s in
            if let cursor { s.cursor = cursor }
            if let currentAt { s.currentAt = currentAt }
            s.dirty = true
        }
    }

    /// The central trail is behind what this cache followed (a restore, another installation):
    /// nothing cached can be trusted to be current.
    func reset(cursor: Int64) {
        state.withLock { s in
            s.answers.removeAll()
            s.bytes = 0
            s.identities.removeAll()
            s.authorizers.removeAll()
            s.generation += 1
            s.recent.append((s.generation, ""))
            s.accessGeneration += 1
            s.cursor = cursor
            s.currentAt = nil
            s.dirty = true
        }
    }

    /// When an answer was last known to be current: its fetch, or the stream's last word since.
    func knownCurrentAt(_ fetchedAt: Date) -> Date {
        guard let c = currentAt else { return fetchedAt }
        return max(c, fetchedAt)
    }

    // MARK: the disk copy

    /// Loads the sealed snapshot; one that this key cannot open is discarded (a new key, or tampering).
    func load() {
        guard let file, let data = FileManager.default.contents(atPath: file) else { return }
        do {
            let plain = try sealer.open(Array(data), context: "snapshot")
            let snap = try JSONDecoder().decode(Snapshot.self, from: Data(plain))
            state.withLock { s in
                s.answers = Dictionary(snap.answers.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
                s.bytes = s.answers.values.reduce(0) { $0 + $1.sealedBody.count }
                s.identities = snap.identities
                s.authorizers = snap.identities.mapValues(\.authorizer)
                s.cursor = snap.cursor
                s.currentAt = snap.currentAt
            }
            logger.info("loaded the edge cache", metadata: ["answers": "\(snap.answers.count)"])
        } catch {
            logger.warning("the edge cache on disk cannot be opened with this key; starting empty")
        }
    }

    /// Writes the snapshot if anything changed: to a new file, synced, then renamed over the old one.
    func persist() {
        guard let file else { return }
        let snap: Snapshot? = state.withLock { s in
            guard s.dirty else { return nil }
            s.dirty = false
            return Snapshot(answers: Array(s.answers.values), identities: s.identities, cursor: s.cursor, currentAt: s.currentAt)
        }
        guard let snap else { return }
        do {
            let sealed = try sealer.seal(Array(try JSONEncoder().encode(snap)), context: "snapshot")
            try DurableFile.replace(file, with: sealed)
        } catch {
            state.withLock { $0.dirty = true }
            logger.error("the edge cache could not be written to disk", metadata: ["type": "\(type(of: error))"])
        }
    }
}

/// Whole-file writes that survive a crash: a temporary file, fsync, rename, fsync of the folder.
enum DurableFile {
    static func replace(_ path: String, with bytes: [UInt8]) throws {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw AgentFailure(status: 500, message: "cannot write \(tmp)") }
        defer { close(fd) }
        try writeAll(fd, bytes)
        guard fsync(fd) == 0, rename(tmp, path) == 0 else { throw AgentFailure(status: 500, message: "cannot replace \(path)") }
        syncFolder(of: path)
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw AgentFailure(status: 500, message: "write failed")
            }
            offset += n
        }
    }

    static func syncFolder(of path: String) {
        let dir = open((path as NSString).deletingLastPathComponent, O_RDONLY)
        if dir >= 0 {
            _ = fsync(dir)
            close(dir)
        }
    }
}
