// Response wrapping, Vault's `X-Vault-Wrap-TTL` and `sys/wrapping/*`: an answer is sealed and
// stored under a new single-use wrapping token, and whoever holds that token unwraps it exactly
// once, before its TTL passes. A wrapping token is nothing else: it authenticates no other request.
import Foundation
import TesseraCore
import TesseraCrypto
import TesseraStore

public struct ResponseWrapping: Sendable {
    let store: any Store
    let seal: SealManager
    let now: @Sendable () -> Date

    public init(store: any Store, seal: SealManager, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.seal = seal
        self.now = now
    }

    /// The longest wrap TTL (Tessera's longest token lifetime, 30 days).
    public static var maxTTLSeconds: Int { AuthMethod.maxTokenTTLMinutes * 60 }
    static let prefix = "w-"
    /// Live wrapped responses one identity may have outstanding (each holds up to a request body).
    public static let maxPerCreator = 1_000
    /// Vault's answer for a token that is unknown, used, expired or not a wrapping token at all.
    public static let invalid = TesseraError.badRequest("wrapping token is not valid or does not exist")

    /// A wrapping token chosen before the request runs, so that its audit event can name the
    /// accessor of the answer it wraps.
    public struct Token: Sendable {
        public let text: String
        public let hash: String
        public var accessor: String { String(hash.prefix(24)) }
    }

    public static func newToken() -> Token {
        let text = prefix + SecureRandom.bytes(32).hexString
        return Token(text: text, hash: AccessKeyHasher.tokenHash(text))
    }

    /// Whether this text has the shape of a wrapping token (it may still be unknown).
    public static func isWrappingToken(_ text: String) -> Bool {
        let rest = text.utf8.dropFirst(2)
        return text.hasPrefix(prefix) && rest.count == 64 && rest.allSatisfy {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
        }
    }

    /// Seals `body` (the answer's JSON envelope) and stores it under `token`.
    @discardableResult
    public func wrap(_ body: [UInt8], token: Token, ttlSeconds: Int, creationPath: String, wrappedAccessor: String,
                     creator: String) async throws -> WrappedResponse {
        let ttl = try InputNumber.int(Int64(ttlSeconds), field: "wrap_ttl", in: 1...Self.maxTTLSeconds)
        let keyring = try seal.keyring()
        let term = keyring.activeTerm
        let sealed = try keyring.seal(body, aad: Keyring.wrappingAAD(tokenHash: token.hash, term: term))
        let t = now()
        let record = WrappedResponse(tokenHash: token.hash, creationPath: String(creationPath.prefix(1024)), createdAt: t, ttlSeconds: ttl,
                                     expiresAt: t.addingTimeInterval(InputNumber.interval(seconds: ttl)), ciphertext: sealed.ciphertext,
                                     term: term, wrappedAccessor: wrappedAccessor, creatorAccessId: creator)
        try await store.createWrappedResponse(record, now: t, maxPerCreator: Self.maxPerCreator)
        return record
    }

    /// The live wrapped response of `token`, unopened (`sys/wrapping/lookup`).
    public func lookup(_ token: String) async throws -> WrappedResponse {
        guard Self.isWrappingToken(token),
              let record = try await store.wrappedResponse(hash: AccessKeyHasher.tokenHash(token), now: now()) else { throw Self.invalid }
        return record
    }

    /// Opens the wrapped response of `token`, then takes it (it is gone afterwards): an answer that
    /// cannot be opened is never spent, and of concurrent unwraps only one takes it.
    public func unwrap(_ token: String) async throws -> (record: WrappedResponse, body: [UInt8]) {
        let found = try await lookup(token)
        let body = try await open(found)
        guard let record = try await store.takeWrappedResponse(hash: found.tokenHash, now: now()) else { throw Self.invalid }
        return (record, body)
    }

    /// Puts back an answer taken by a request that failed afterwards (its audit event was not
    /// written), so that the failure does not destroy it.
    public func restore(_ record: WrappedResponse) async {
        try? await store.restoreWrappedResponse(record)
    }

    /// Undoes a rewrap whose request failed afterwards: the new token is withdrawn and the old
    /// one is live again.
    public func undoRewrap(previous: WrappedResponse, next: WrappedResponse) async {
        guard (try? await store.takeWrappedResponse(hash: next.tokenHash, now: now())) != nil else { return }
        await restore(previous)
    }

    /// Refuses early, before the request runs, when `creator` already holds as many wrapped
    /// answers as allowed (the store checks again when the answer is wrapped).
    public func requireRoom(creator: String) async throws {
        guard !creator.isEmpty else { return }
        if try await store.liveWrappedResponses(creator: creator, now: now()) >= Self.maxPerCreator { throw WrappedResponse.tooMany }
    }

    /// Moves the wrapped response of `token` to a new token with the same TTL; the old token is
    /// spent. Returns the new token, its record and the old one.
    public func rewrap(_ token: String) async throws -> (token: Token, record: WrappedResponse, previous: WrappedResponse) {
        let old = try await lookup(token)
        let body = try await open(old)
        let next = Self.newToken()
        let keyring = try seal.keyring()
        let term = keyring.activeTerm
        let sealed = try keyring.seal(body, aad: Keyring.wrappingAAD(tokenHash: next.hash, term: term))
        let t = now()
        let record = WrappedResponse(tokenHash: next.hash, creationPath: old.creationPath, createdAt: t, ttlSeconds: old.ttlSeconds,
                                     expiresAt: t.addingTimeInterval(InputNumber.interval(seconds: old.ttlSeconds)), ciphertext: sealed.ciphertext,
                                     term: term, wrappedAccessor: old.wrappedAccessor, creatorAccessId: old.creatorAccessId)
        guard try await store.replaceWrappedResponse(hash: old.tokenHash, with: record, now: t) else { throw Self.invalid }
        return (next, record, old)
    }

    func open(_ record: WrappedResponse) async throws -> [UInt8] {
        let keyring = try await seal.keyring(holding: record.term)
        return try keyring.open(record.ciphertext, term: record.term, aad: Keyring.wrappingAAD(tokenHash: record.tokenHash, term: record.term))
    }
}
