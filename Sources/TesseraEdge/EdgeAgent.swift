// EdgeAgent (`tessera agent`): an edge cache near the workloads. It serves the Vault API and the
// native API on a loopback or unix-socket listener by forwarding to the central Tessera, and
// answers the cacheable reads (static and rotated values) from its sealed cache:
//   - while the change stream is live, a cached answer is current and is served at once;
//   - with the stream down, it is revalidated with the central server after `revalidate`;
//   - with the central server unreachable, it is served for up to `maxStaleness`, marked stale.
// Every answer from the cache is authorized here with the client's own central rules and its
// audit event is queued durably for the central trail before the answer leaves. Dynamic
// credentials and everything else are only ever forwarded: offline they fail with a clear 503.
import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TesseraCore
import TesseraCrypto

public struct EdgeAgentOptions: Sendable {
    public var central: String
    public var caCert: String?
    /// `HOST:PORT` (loopback) or `unix:/path/to.sock`.
    public var listen: String
    public var cacheDirectory: String
    /// A file holding the cache key, kept away from the cache directory; nil: a key for this run only.
    public var keyFile: String?
    /// How long after the central server was last heard from a cached answer may still be served.
    public var maxStaleness: TimeInterval
    /// With the change stream down, how old a cached answer may be before it is checked again.
    public var revalidate: TimeInterval
    /// The agent's own token (for the change stream and the audit reports); called again after a refusal.
    public var agentToken: @Sendable () async throws -> String

    public init(central: String, caCert: String?, listen: String, cacheDirectory: String, keyFile: String?,
                maxStaleness: TimeInterval, revalidate: TimeInterval, agentToken: @escaping @Sendable () async throws -> String) {
        self.central = central
        self.caCert = caCert
        self.listen = listen
        self.cacheDirectory = cacheDirectory
        self.keyFile = keyFile
        self.maxStaleness = maxStaleness
        self.revalidate = revalidate
        self.agentToken = agentToken
    }
}

public final class EdgeAgent: Sendable {
    struct Link {
        /// Unknown until the central server first answers: a cached read is checked, not trusted.
        var reachable = false
        var lastFailure: ContinuousClock.Instant?
        var streamLive = false
        var token: String?
        var lastContact: Date?
        /// Whenever the central server refuses a report from this agent (not an outage; an empty one
        /// tests the grant at start), nothing is answered from the cache until one is accepted.
        var reportsRefused = false
        /// The central server said it is sealed: nothing is answered from the cache until it serves again.
        var sealed = false
    }

    let options: EdgeAgentOptions
    let central: CentralClient
    let cache: EdgeCache
    let queue: EdgeAuditQueue
    let metrics = EdgeMetrics()
    let logger: Logger
    let address: BindAddress
    private let link = Mutex(Link())

    public init(options: EdgeAgentOptions, logger: Logger) throws {
        let dir = (options.cacheDirectory as NSString).standardizingPath
        if let keyFile = options.keyFile {
            let key = ((keyFile as NSString).standardizingPath as NSString).resolvingSymlinksInPath
            let resolvedDir = (dir as NSString).resolvingSymlinksInPath
            if key.hasPrefix(resolvedDir + "/") {
                throw AgentFailure(status: 400, message: "the cache key file must not be kept in the cache directory")
            }
        }
        address = try Self.bindAddress(options.listen)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let sealer = try options.keyFile.map { try CacheSealer.load(keyFile: $0) } ?? CacheSealer.ephemeral()
        self.options = options
        self.logger = logger
        central = try CentralClient(base: options.central, caCert: options.caCert)
        cache = EdgeCache(sealer: sealer, directory: dir, logger: logger)
        queue = EdgeAuditQueue(directory: dir, sealer: sealer, logger: logger)
    }

    /// The listener's address: loopback or a unix socket, checked before anything starts.
    static func bindAddress(_ listen: String) throws -> BindAddress {
        if listen.hasPrefix("unix:") {
            let path = String(listen.dropFirst(5))
            // Only a socket left by an earlier run is replaced, never another file.
            if let type = try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType {
                guard type == .typeSocket else { throw AgentFailure(status: 400, message: "--listen unix: names a file that is not a socket") }
                try FileManager.default.removeItem(atPath: path)
            }
            return .unixDomainSocket(path: path)
        } else {
            let parts = listen.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let port = Int(parts[1]), (0...65535).contains(port) else {
                throw AgentFailure(status: 400, message: "--listen must be HOST:PORT or unix:/path")
            }
            // The agent serves the workloads beside it, never the network.
            guard ["127.0.0.1", "localhost"].contains(String(parts[0])) else {
                throw AgentFailure(status: 400, message: "--listen must be a loopback address (127.0.0.1) or unix:/path")
            }
            return .hostname(String(parts[0]), port: port)
        }
    }

    /// Serves until SIGTERM or SIGINT; the cache is written to disk on the way out.
    public func run(onListening: @escaping @Sendable (String) async -> Void = { _ in }) async throws {
        cache.load()
        do {
            try await queue.open()
        } catch {
            await central.shutdown()
            throw error
        }
        let router = Router(context: AgentRequestContext.self)
        for method in [HTTPRequest.Method.get, .put, .post, .delete, .patch, .head, .options] {
            router.on("/**", method: method) { request, context in await self.handle(request, context) }
            router.on("/", method: method) { request, context in await self.handle(request, context) }
        }
        let listen = options.listen
        let app = Application(router: router, configuration: .init(address: address, serverName: nil),
                              onServerRunning: { [listen] channel in
                                  if listen.hasPrefix("unix:") { _ = chmod(String(listen.dropFirst(5)), 0o660) }
                                  await onListening(channel.localAddress.map { "\($0)" } ?? listen)
                              }, logger: logger)
        let workers: [any Service] = [
            AgentWork { await self.followChanges() },
            AgentWork { await self.deliverAudit() },
            AgentWork { await self.persistCache() },
        ]
        let group = ServiceGroup(configuration: .init(
            services: workers.map { .init(service: $0, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore) }
                + [.init(service: app)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            cache.persist()
            await central.shutdown()
            throw error
        }
        cache.persist()
        await central.shutdown()
    }

    // MARK: the link to the central server

    var isReachable: Bool { link.withLock { $0.reachable } }
    var streamLive: Bool { link.withLock { $0.streamLive && $0.reachable } }

    /// Whether to try the central server now: always while it answers, else once a second.
    var shouldTryCentral: Bool {
        link.withLock { l in
            guard !l.reachable, let last = l.lastFailure else { return true }
            return ContinuousClock.now - last > .seconds(1)
        }
    }

    func markDown() {
        let wasUp = link.withLock { l -> Bool in
            defer { l.reachable = false; l.streamLive = false; l.lastFailure = .now }
            return l.reachable
        }
        if wasUp { logger.warning("the central server is unreachable; serving cached reads only") }
    }

    func markSealed() {
        let was = link.withLock { l -> Bool in
            defer { l.sealed = true; l.reachable = true; l.streamLive = false }
            return l.sealed
        }
        if !was { logger.warning("the central server is sealed; nothing is answered from the cache until it is unsealed") }
    }

    func markUp() {
        let wasDown = link.withLock { l -> Bool in
            defer { l.reachable = true; l.sealed = false; l.lastContact = Date() }
            return !l.reachable
        }
        if wasDown { logger.notice("the central server is reachable again") }
    }

    func agentToken(renew: Bool = false) async throws -> String {
        if !renew, let t = link.withLock({ $0.token }) { return t }
        let t = try await options.agentToken()
        link.withLock { $0.token = t }
        return t
    }

    // MARK: background work

    /// Follows the change stream: each change drops what it touched, each message proves the rest current.
    func followChanges() async {
        var delay = 1
        while !Task.isCancelled {
            do {
                let token = try await agentToken()
                try await central.follow(after: cache.cursor, token: token, onHead: { head in
                    if let c = self.cache.cursor, head >= c { return }
                    // First contact, or a trail behind this cache (a restore, another installation):
                    // what is cached cannot be checked against the changes in between.
                    if self.cache.cursor != nil {
                        self.logger.warning("the central audit trail is behind this cache; the cache is emptied")
                    }
                    self.cache.reset(cursor: head)
                    throw Resync()
                }, onChange: { change in
                    switch change.kind {
                    case "access": self.cache.forgetIdentities()
                    case "mounts": self.cache.invalidate(path: "", keyPrefix: EdgeAgent.vaultKeyPrefix)
                    default: self.cache.invalidate(path: change.path)
                    }
                    self.cache.advance(cursor: change.sequence, currentAt: nil)
                    self.metrics.invalidations.increment()
                }, onAlive: {
                    self.markUp()
                    self.link.withLock { $0.streamLive = true }
                    self.cache.advance(cursor: nil, currentAt: Date())
                })
                delay = 1
            } catch let e as AgentFailure {
                if e.status == 401 || e.status == 403 { _ = try? await agentToken(renew: true) }
                logger.warning("the change stream is refused; cached reads are revalidated by age", metadata: ["status": "\(e.status)"])
                delay = min(delay * 2, 30)
            } catch is Resync {
                link.withLock { $0.streamLive = false }
                continue
            } catch is Unreachable {
                markDown()
            } catch is CentralSealed {
                markSealed()
            } catch {
                delay = min(delay * 2, 30)
            }
            link.withLock { $0.streamLive = false }
            try? await Task.sleep(for: .seconds(delay))
        }
    }

    /// Sends the queued audit events to the central trail, oldest first.
    func deliverAudit() async {
        var proven = false
        while !Task.isCancelled {
            let batch = await queue.next(200)
            // With nothing queued, one empty report first proves that this agent may report.
            let probe = batch.isEmpty && !proven
            if (batch.isEmpty && !probe) || !shouldTryCentral {
                try? await Task.sleep(for: .milliseconds(batch.isEmpty ? 100 : 500))
                continue
            }
            do {
                try await central.report(batch, token: try await agentToken())
                proven = true
                try await queue.delivered(batch.count)
                metrics.delivered.increment(by: Int64(batch.count))
                link.withLock { $0.reportsRefused = false }
                markUp()
            } catch is Unreachable {
                markDown()
                try? await Task.sleep(for: .milliseconds(500))
            } catch is CentralSealed {
                markSealed()
                try? await Task.sleep(for: .milliseconds(500))
            } catch let e as AgentFailure {
                // Any refusal that is not an outage (no grant, a bad clock, a report it will not
                // take): the events stay queued, and the cache stops answering until one is accepted.
                link.withLock { $0.reportsRefused = true }
                if e.status == 401 || e.status == 403 { _ = try? await agentToken(renew: true) }
                logger.error("the central server refused queued audit events; they stay queued, and reads are forwarded, not answered from the cache",
                             metadata: ["status": "\(e.status)"])
                try? await Task.sleep(for: .seconds(2))
            } catch {
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    func persistCache() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(2))
            cache.persist()
        }
    }

    // MARK: requests

    func handle(_ request: Request, _ context: AgentRequestContext) async -> Response {
        var request = request
        let path = request.uri.path
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: 1 << 20)
        } catch {
            return AgentResponses.error(.vault, status: 413, "the request body is larger than 1 MiB")
        }
        if path == "/metrics", request.method == .get { return await metricsResponse() }
        if path == "/v1" || path.hasPrefix("/v1/") { return await vault(request, body: body, context) }
        if request.method == .post { return await native(request, body: body, context) }
        return AgentResponses.error(.native, status: 404, "not found")
    }

    func vault(_ request: Request, body: ByteBuffer, _ context: AgentRequestContext) async -> Response {
        var token = request.headers[AgentResponses.vaultToken]
        if token == nil, let auth = request.headers[.authorization], auth.lowercased().hasPrefix("bearer ") {
            token = String(auth.dropFirst(7))
        }
        let path = request.uri.path
        let query = request.uri.query ?? ""
        if request.method == .get, let token, path.hasPrefix(Self.preflightPrefix) {
            return await preflight(request, body: body, token: token, context)
        }
        // A request whose headers change the answer's shape (response wrapping, a namespace) is
        // only forwarded: its answer must not be served to anyone else. So is one with query
        // parameters other than `version` (a list, or noise that would only multiply cache keys).
        let shaped = request.headers.contains { AgentResponses.answerShapingHeaders.contains($0.name.canonicalName) }
        let onlyVersion = query.isEmpty || (query.hasPrefix("version=") && !query.contains("&") && query.utf8.count <= 20)
        let cacheable = request.method == .get && token != nil && !shaped && onlyVersion && !path.hasPrefix("/v1/sys/")
            && !path.hasPrefix("/v1/auth/")
        let call = ClientCall(interface: .vault, method: request.method.rawValue, pathAndQuery: request.uri.description,
                              headers: request.headers.map { ($0.name.rawName, $0.value) }, body: body, token: token,
                              key: cacheable ? Self.vaultKeyPrefix + path + "?" + query : nil, action: "get_secret_value",
                              dynamic: path.contains("/creds/"), clientAddress: context.clientAddress)
        return await serve(call)
    }

    static let vaultKeyPrefix = "vault GET "
    /// The mount lookup that `vault kv` and the agent's template engine make before each KV read.
    static let preflightPrefix = "/v1/sys/internal/ui/mounts/"

    /// The KV preflight: always asked of the central server while it answers (and kept for this
    /// token only); while it is unreachable, the token's own earlier answer is served, audited,
    /// so that `bao kv get` keeps working through an outage.
    func preflight(_ request: Request, body: ByteBuffer, token: String, _ context: AgentRequestContext) async -> Response {
        let hash = AccessKeyHasher.tokenHash(token)
        let key = Self.vaultKeyPrefix + "preflight " + hash + " " + request.uri.path
        let (refused, sealed) = link.withLock { ($0.reportsRefused, $0.sealed) }
        if !sealed, shouldTryCentral {
            let since = cache.generation
            do {
                let r = try await central.send(method: "GET", pathAndQuery: request.uri.description,
                                               headers: request.headers.map { ($0.name.rawName, $0.value) }, body: body)
                markUp()
                if r.status == 200, !refused {
                    _ = try? cache.store(key: key, items: [], status: 200, contentType: r.header("Content-Type") ?? "application/json",
                                         body: Array(r.body.readableBytesView), at: Date(), since: since)
                } else {
                    cache.remove(key: key)
                }
                return AgentResponses.passThrough(r, cache: nil)
            } catch is CentralSealed {
                markSealed()
                return AgentResponses.error(.vault, status: 503, Self.sealedMessage)
            } catch {
                markDown()
            }
        }
        guard !refused, !link.withLock({ $0.sealed }), let answer = cache.answer(key),
              Date().timeIntervalSince(cache.knownCurrentAt(answer.fetchedAt)) <= options.maxStaleness,
              let identity = identityIfUsable(hash, online: false), let bytes = try? cache.body(of: answer) else {
            return AgentResponses.error(.vault, status: 503, "the central server is unreachable, and this request cannot be answered from the edge cache")
        }
        let age = max(0, Int64(Date().timeIntervalSince(answer.fetchedAt)))
        let event = EdgeReadEvent(timeMicros: Int64(InputNumber.micros(Date())), requestId: RequestContext.newRequestId(), interface: "vault",
                                  authMethodType: identity.authMethodType, accessId: identity.accessId,
                                  actorName: identity.authMethodName, clientAddress: context.clientAddress, action: "mount_preflight",
                                  path: Self.clipped(String(request.uri.path.dropFirst(3)), bytes: 1024), result: "allowed", status: 200,
                                  error: "", cache: "stale", ageSeconds: age)
        do {
            try await queue.append(event)
        } catch {
            return AgentResponses.error(.vault, status: 503, "the read cannot be audited, so it is not served")
        }
        metrics.staleHits.increment()
        return AgentResponses.cached(bytes, contentType: answer.contentType, age: age, stale: true)
    }

    static let cacheableVerbs: [String: String] = [
        "get-secret-value": "get_secret_value", "get-rotated-secret-value": "get_rotated_secret_value",
        "rotated-secret-get-value": "get_rotated_secret_value",
    ]

    func native(_ request: Request, body: ByteBuffer, _ context: AgentRequestContext) async -> Response {
        let verb = String(request.uri.path.split(separator: "/").last ?? "")
        let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
        let token = (json["token"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? (json["uid-token"] as? String)
        var key: String?
        let action = Self.cacheableVerbs[verb]
        let ignoreCache = (json["ignore-cache"] as? String) == "true" || (json["ignore-cache"] as? Bool) == true
        if action != nil, token != nil, !ignoreCache {
            var rest = json
            for k in ["token", "uid-token", "ignore-cache", "json"] { rest.removeValue(forKey: k) }
            if let canonical = try? JSONSerialization.data(withJSONObject: rest, options: [.sortedKeys]) {
                key = "native " + verb + " " + String(decoding: canonical, as: UTF8.self)
            }
        }
        let call = ClientCall(interface: .native, method: "POST", pathAndQuery: request.uri.description,
                              headers: request.headers.map { ($0.name.rawName, $0.value) }, body: body, token: token,
                              key: key, action: action ?? "", dynamic: verb.contains("dynamic"), clientAddress: context.clientAddress)
        return await serve(call)
    }

    struct ClientCall {
        var interface: AgentResponses.Interface
        var method: String
        var pathAndQuery: String
        var headers: [(String, String)]
        var body: ByteBuffer
        var token: String?
        /// The cache key when this is a cacheable read.
        var key: String?
        var action: String
        var dynamic: Bool
        var clientAddress: String
    }

    static let sealedMessage = "the central server is sealed"
    static let noDynamicOffline = "the central server is unreachable: dynamic credentials are never issued by the edge cache"

    func serve(_ call: ClientCall) async -> Response {
        let (refused, sealed) = link.withLock { ($0.reportsRefused, $0.sealed) }
        guard let key = call.key, let token = call.token, !refused, !sealed else {
            // Forwarded as it is; nothing here is ever answered offline.
            if shouldTryCentral {
                do {
                    let r = try await central.send(method: call.method, pathAndQuery: call.pathAndQuery, headers: call.headers, body: call.body)
                    markUp()
                    return AgentResponses.passThrough(r, cache: nil)
                } catch is CentralSealed {
                    markSealed()
                    return AgentResponses.error(call.interface, status: 503, Self.sealedMessage)
                } catch {
                    markDown()
                }
            }
            if link.withLock({ $0.sealed }) { return AgentResponses.error(call.interface, status: 503, Self.sealedMessage) }
            return AgentResponses.error(call.interface, status: 503, call.dynamic
                ? Self.noDynamicOffline
                : "the central server is unreachable, and this request cannot be answered from the edge cache")
        }
        let now = Date()
        if let answer = cache.answer(key) {
            if isReachable, streamLive || now.timeIntervalSince(answer.fetchedAt) < options.revalidate {
                return await answerFromCache(answer, call, token: token, stale: false)
            }
            if shouldTryCentral, let r = await fetch(call, key: key, token: token) { return r }
            if now.timeIntervalSince(cache.knownCurrentAt(answer.fetchedAt)) <= options.maxStaleness {
                return await answerFromCache(answer, call, token: token, stale: true)
            }
            return AgentResponses.error(call.interface, status: 503,
                                        "the central server is unreachable, and the cached copy is older than the maximum staleness")
        }
        if shouldTryCentral, let r = await fetch(call, key: key, token: token) { return r }
        return AgentResponses.error(call.interface, status: 503, call.dynamic
            ? Self.noDynamicOffline : "the central server is unreachable, and this secret is not in the edge cache")
    }

    /// Forwards a cacheable read and caches the answer; nil when the central server is unreachable.
    func fetch(_ call: ClientCall, key: String, token: String) async -> Response? {
        metrics.misses.increment()
        let since = cache.generation
        let accessSince = cache.accessGeneration
        let response: CentralResponse
        do {
            response = try await central.send(method: call.method, pathAndQuery: call.pathAndQuery,
                                              headers: call.headers + [(EdgeReadHint.requestHeader, "1")], body: call.body)
            markUp()
        } catch is CentralSealed {
            markSealed()
            return AgentResponses.error(call.interface, status: 503, Self.sealedMessage)
        } catch {
            markDown()
            return nil
        }
        let items = response.header(EdgeReadHint.itemsHeader).map(EdgeReadHint.parse(headerValue:)) ?? []
        // An answer with warnings (ignored fields) is not cached: its key would not be the read's.
        if response.status == 200, !items.isEmpty, response.header("X-Tessera-Warnings") == nil {
            let hash = AccessKeyHasher.tokenHash(token)
            if identityIfUsable(hash, online: true) == nil {
                if let id = try? await central.resolve(token: token), id.usesLimited != true {
                    cache.remember(id, tokenHash: hash, since: accessSince)
                }
            }
            _ = try? cache.store(key: key, items: items, status: 200, contentType: response.header("Content-Type") ?? "application/json",
                             body: Array(response.body.readableBytesView), at: Date(), since: since)
        } else if response.status == 403 || response.status == 404 {
            cache.remove(key: key)
        }
        return AgentResponses.passThrough(response, cache: "MISS")
    }

    /// The cached identity behind a token hash, if it may be used now.
    func identityIfUsable(_ hash: String, online: Bool) -> ResolvedIdentity? {
        guard let id = cache.identity(tokenHash: hash) else { return nil }
        let now = Date()
        if let e = id.expiresAt, e <= now {
            cache.forget(tokenHash: hash)
            return nil
        }
        if online { return streamLive || now.timeIntervalSince(id.resolvedAt) < options.revalidate ? id : nil }
        return now.timeIntervalSince(cache.knownCurrentAt(id.resolvedAt)) <= options.maxStaleness ? id : nil
    }

    /// Authorizes the client with its central rules, queues the audit event, then answers.
    func answerFromCache(_ answer: CachedAnswer, _ call: ClientCall, token: String, stale: Bool) async -> Response {
        let hash = AccessKeyHasher.tokenHash(token)
        var identity = identityIfUsable(hash, online: !stale)
        if identity == nil, !stale {
            let accessSince = cache.accessGeneration
            do {
                guard let id = try await central.resolve(token: token) else {
                    cache.forget(tokenHash: hash)
                    metrics.denied.increment()
                    // The central server audited the refused token itself.
                    return AgentResponses.error(call.interface, status: 403, "permission denied")
                }
                if id.usesLimited == true {
                    // Each read of a use-limited token is the central server's to count.
                    return await fetch(call, key: answer.key, token: token)
                        ?? AgentResponses.error(call.interface, status: 503, "the central server is unreachable, and this token's uses are counted there")
                }
                cache.remember(id, tokenHash: hash, since: accessSince)
                identity = id
            } catch is CentralSealed {
                markSealed()
                return AgentResponses.error(call.interface, status: 503, Self.sealedMessage)
            } catch {
                markDown()
                identity = identityIfUsable(hash, online: false)
            }
        }
        guard let identity else {
            return AgentResponses.error(call.interface, status: 503,
                                        "the central server is unreachable, and this token has not been seen by the edge cache recently")
        }
        let authorizer = cache.authorizer(tokenHash: hash) ?? identity.authorizer
        let allowed = answer.items.allSatisfy { item in
            (try? ItemPath(item)).map { authorizer.check(.read, on: $0, type: .item).isAllowed } ?? false
        }
        let age = max(0, Int64(Date().timeIntervalSince(answer.fetchedAt)))
        let event = EdgeReadEvent(timeMicros: Int64(InputNumber.micros(Date())), requestId: RequestContext.newRequestId(),
                                  interface: call.interface.rawValue, authMethodType: identity.authMethodType,
                                  accessId: identity.accessId, actorName: identity.authMethodName, clientAddress: call.clientAddress,
                                  action: call.action, path: Self.clipped(answer.items.joined(separator: ","), bytes: 1024),
                                  result: allowed ? "allowed" : "denied", status: allowed ? 200 : 403,
                                  error: allowed ? "" : "permission denied", cache: stale ? "stale" : "hit", ageSeconds: age)
        do {
            try await queue.append(event)
        } catch {
            return AgentResponses.error(call.interface, status: 503, "the read cannot be audited, so it is not served")
        }
        guard allowed else {
            metrics.denied.increment()
            return AgentResponses.error(call.interface, status: 403, "permission denied")
        }
        guard let body = try? cache.body(of: answer) else {
            cache.remove(key: answer.key)
            return AgentResponses.error(call.interface, status: 503, "the cached answer cannot be opened")
        }
        if stale { metrics.staleHits.increment() } else { metrics.hits.increment() }
        return AgentResponses.cached(body, contentType: answer.contentType, age: age, stale: stale)
    }

    /// At most `bytes` UTF-8 bytes, cut at a character boundary (the central server's limit).
    static func clipped(_ s: String, bytes: Int) -> String {
        guard s.utf8.count > bytes else { return s }
        var out = ""
        for c in s {
            if out.utf8.count + String(c).utf8.count > bytes { break }
            out.append(c)
        }
        return out
    }

    func metricsResponse() async -> Response {
        let depth = await queue.depth
        let staleness: Double
        if streamLive { staleness = 0 } else {
            let last = cache.currentAt ?? link.withLock { $0.lastContact } ?? Date()
            staleness = max(0, Date().timeIntervalSince(last))
        }
        let text = metrics.render(entries: cache.count, queued: depth, reachable: isReachable, streamLive: streamLive, staleness: staleness,
                                  sealed: link.withLock { $0.sealed })
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// The change stream must be reopened after the cache's cursor was reset.
struct Resync: Error {}

/// A background loop as a service: cancelled when the group shuts down.
struct AgentWork: Service {
    let body: @Sendable () async -> Void
    func run() async throws {
        await cancelWhenGracefulShutdown { await body() }
    }
}
