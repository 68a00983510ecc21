// JWTKeySource: the public keys a JWT method verifies with — static PEM keys, a JWKS URL, or
// OIDC discovery (`<url>/.well-known/openid-configuration` → `jwks_uri`). Fetched keys are cached
// for an hour; a token whose key id is unknown triggers a refetch (a signing-key rotation needs
// no restart), at most one per second per URL (a caller waits for the next slot, or is refused
// when two seconds of slots are taken) so that random key ids cannot flood the issuer.
import Foundation
import NIOHTTP1
import Synchronization
import TesseraCore
import TesseraCrypto

public final class JWTKeySource: Sendable {
    struct Entry: Sendable {
        var keys: [JWTPublicKey]
        var fetchedAt: ContinuousClock.Instant
    }

    let http: IdentityHTTP
    private let cache = Mutex<[String: Entry]>([:])
    /// The earliest time of the next fetch per URL (the refetch rate limit).
    private let nextFetch = Mutex<[String: ContinuousClock.Instant]>([:])
    static let lifetime: Duration = .seconds(3600)
    static let minimumInterval: Duration = .seconds(1)

    public init(http: IdentityHTTP) {
        self.http = http
    }

    /// Where the keys of a configuration come from.
    enum Origin: Sendable {
        case pem([String])
        case jwks(url: String, ca: String?)
        case discovery(url: String, ca: String?)
    }

    /// The keys for `token`: cached ones, refetched when the token's key id is not among them.
    func keys(_ origin: Origin, for token: JWTToken) async throws -> [JWTPublicKey] {
        switch origin {
        case .pem(let pems):
            return try pems.map { pem throws -> JWTPublicKey in
                do { return try JWTPublicKey(pem: pem) } catch { throw TesseraError.badRequest("error parsing public key: \(error)") }
            }
        case .jwks(let url, let ca):
            return try await cachedOrFetched(url: url, ca: ca, kid: token.kid)
        case .discovery(let base, let ca):
            let jwksURL = try await discover(base, ca: ca)
            return try await cachedOrFetched(url: jwksURL, ca: ca, kid: token.kid)
        }
    }

    func cachedOrFetched(url: String, ca: String?, kid: String?) async throws -> [JWTPublicKey] {
        let now = ContinuousClock.now
        let key = url + "\u{0}" + (ca ?? "")
        if let entry = cache.withLock({ $0[key] }), now - entry.fetchedAt < Self.lifetime {
            let known = kid.map { k in entry.keys.contains { $0.kid == k } } ?? true
            if known { return entry.keys }
            // An unknown key id: refetch, waiting for the next free slot when it is near.
            guard let slot = reserveFetch(key, now: now) else { return entry.keys }
            if slot > now { try await Task.sleep(until: slot, clock: .continuous) }
        } else {
            try refuseIfRecentlyFailed(key, now: now)
            _ = reserveFetch(key, now: now, force: true)
        }
        let keys: [JWTPublicKey]
        do {
            keys = try await fetchJWKS(url, ca: ca)
        } catch {
            failed.withLock { f in
                if f.count > 1024 { f.removeAll() }
                f[key] = ContinuousClock.now
            }
            throw error
        }
        cache.withLock { c in
            if c.count > 256 { c.removeAll() }
            c[key] = Entry(keys: keys, fetchedAt: ContinuousClock.now)
        }
        return keys
    }

    /// Fetches that failed, so that an issuer that is down is asked again only every few seconds,
    /// not on every login.
    private let failed = Mutex<[String: ContinuousClock.Instant]>([:])
    static let failureBackoff: Duration = .seconds(5)

    func refuseIfRecentlyFailed(_ key: String, now: ContinuousClock.Instant) throws {
        if let at = failed.withLock({ $0[key] }), now - at < Self.failureBackoff {
            throw TesseraError.badGateway("fetching keys: the key source failed moments ago; retrying after \(Self.failureBackoff.components.seconds) s")
        }
    }

    /// Takes the next fetch slot for `key` (one per second) and returns when it starts; nil when
    /// the slots of the next two seconds are taken already.
    func reserveFetch(_ key: String, now: ContinuousClock.Instant, force: Bool = false) -> ContinuousClock.Instant? {
        nextFetch.withLock { next in
            let start = force ? now : max(now, next[key] ?? now)
            if start - now > Self.minimumInterval * 2 { return nil }
            if next.count > 1024 { next.removeAll() }
            next[key] = start + Self.minimumInterval
            return start
        }
    }

    func fetchJWKS(_ url: String, ca: String?) async throws -> [JWTPublicKey] {
        let response = try await http.send(.GET, url: url, caPEM: ca)
        guard response.status == 200 else { throw TesseraError.badGateway("fetching keys: the JWKS URL answered \(response.status)") }
        guard let doc = try? JSON.parse(response.body) else { throw TesseraError.badGateway("fetching keys: the JWKS is not JSON") }
        do { return try JWTPublicKey.jwks(doc) } catch { throw TesseraError.badGateway("fetching keys: \(error)") }
    }

    private let discovered = Mutex<[String: (String, ContinuousClock.Instant)]>([:])

    /// The `jwks_uri` of an OIDC provider (cached like the keys).
    func discover(_ base: String, ca: String?) async throws -> String {
        let now = ContinuousClock.now
        if let (uri, at) = discovered.withLock({ $0[base] }), now - at < Self.lifetime { return uri }
        try refuseIfRecentlyFailed("discovery\u{0}" + base, now: now)
        var trimmed = base
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        let response: IdentityHTTPResponse
        do {
            response = try await http.send(.GET, url: trimmed + "/.well-known/openid-configuration", caPEM: ca)
        } catch {
            failed.withLock { $0["discovery\u{0}" + base] = ContinuousClock.now }
            throw error
        }
        guard response.status == 200, let doc = try? JSON.parse(response.body), let uri = doc["jwks_uri"]?.stringValue else {
            failed.withLock { $0["discovery\u{0}" + base] = ContinuousClock.now }
            throw TesseraError.badGateway("OIDC discovery failed: \(IdentityHTTP.hostOf(trimmed)) has no usable openid-configuration")
        }
        try IdentityHTTP.validateURL(uri, field: "jwks_uri")
        discovered.withLock { d in
            if d.count > 256 { d.removeAll() }
            d[base] = (uri, now)
        }
        return uri
    }

    /// Checks at configuration time that the keys can be fetched (Vault's `error checking jwks URL`).
    func probe(_ origin: Origin) async throws {
        switch origin {
        case .pem: return
        case .jwks(let url, let ca): _ = try await fetchJWKS(url, ca: ca)
        case .discovery(let base, let ca): _ = try await fetchJWKS(try await discover(base, ca: ca), ca: ca)
        }
    }
}
