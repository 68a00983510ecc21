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
    }

    let options: EdgeAgentOptions
    let central: CentralClient
    let cache: EdgeCache
    let queue: EdgeAuditQueue
    let metrics = EdgeMetrics()
    let logger: Logger
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
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let sealer = try options.keyFile.map { try CacheSealer.load(keyFile: $0) } ?? CacheSealer.ephemeral()
        self.options = options
        self.logger = logger
        central = try CentralClient(base: options.central, caCert: options.caCert)
        cache = EdgeCache(sealer: sealer, directory: dir, logger: logger)
        queue = EdgeAuditQueue(directory: dir, sealer: sealer, logger: logger)
    }

    /// Serves until SIGTERM or SIGINT; the cache is written to disk on the way out.
    public func run(onListening: @escaping @Sendable (String) async -> Void = { _ in }) async throws {
        cache.load()
        try await queue.open()
        let router = Router(context: AgentRequestContext.self)
        for method in [HTTPRequest.Method.get, .put, .post, .delete, .patch, .head, .options] {
            router.on("/**", method: method) { request, context in await self.handle(request, context) }
            router.on("/", method: method) { request, context in await self.handle(request, context) }
        }
        let address: BindAddress
        if options.listen.hasPrefix("unix:") {
            let path = String(options.listen.dropFirst(5))
            try? FileManager.default.removeItem(atPath: path)
            address = .unixDomainSocket(path: path)
        } else {
            let parts = options.listen.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let port = Int(parts[1]), (0...65535).contains(port) else {
                throw AgentFailure(status: 400, message: "--listen must be HOST:PORT or unix:/path")
            }
            address = .hostname(String(parts[0]), port: port)
        }
        let listen = options.listen
        let app = Application(router: router, configuration: .init(address: address, serverName: nil),
                              onServerRunning: { channel in
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
        defer { cache.persist() }
        try await group.run()
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

    func markUp() {
        let wasDown = link.withLock { l -> Bool in
            defer { l.reachable = true; l.lastContact = Date() }
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
                    if let c = self.cache.cursor, head < c {
                        self.logger.warning("the central audit trail is behind this cache; the cache is emptied")
                        self.cache.reset(cursor: head)
                    } else if self.cache.cursor == nil {
                        self.cache.advance(cursor: head, currentAt: Date())
                    }
                }, onChange: { change in
                    self.cache.advance(cursor: change.sequence, currentAt: Date())
                    if change.kind == "access" { self.cache.forgetIdentities() } else { _ = self.cache.invalidate(path: change.path) }
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
            } catch is Unreachable {
                markDown()
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
            let batch = await queue.next(500)
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
            } catch let e as AgentFailure {
                if e.status == 401 || e.status == 403 {
                    _ = try? await agentToken(renew: true)
                    link.withLock { $0.reportsRefused = true }
                }
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
            try? await Task.sleep(for: .seconds(1))
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
        let cacheable = request.method == .get && token != nil && !path.hasPrefix("/v1/sys/") && !path.hasPrefix("/v1/auth/")
            && !query.contains("list=")
        let call = ClientCall(interface: .vault, method: request.method.rawValue, pathAndQuery: request.uri.description,
                              headers: request.headers.map { ($0.name.rawName, $0.value) }, body: body, token: token,
                              key: cacheable ? "vault GET " + path + "?" + query : nil, action: "get_secret_value",
                              dynamic: path.contains("/creds/"), clientAddress: context.clientAddress)
        return await serve(call)
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
        if action != nil, token != nil, (json["ignore-cache"] as? String) != "true" {
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

    static let noDynamicOffline = "the central server is unreachable: dynamic credentials are never issued by the edge cache"

    func serve(_ call: ClientCall) async -> Response {
        guard let key = call.key, let token = call.token, !link.withLock({ $0.reportsRefused }) else {
            // Forwarded as it is; nothing here is ever answered offline.
            if shouldTryCentral {
                do {
                    let r = try await central.send(method: call.method, pathAndQuery: call.pathAndQuery, headers: call.headers, body: call.body)
                    markUp()
                    return AgentResponses.passThrough(r, cache: nil)
                } catch {
                    markDown()
                }
            }
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
        let response: CentralResponse
        do {
            response = try await central.send(method: call.method, pathAndQuery: call.pathAndQuery,
                                              headers: call.headers + [(EdgeReadHint.requestHeader, "1")], body: call.body)
            markUp()
        } catch {
            markDown()
            return nil
        }
        let items = response.header(EdgeReadHint.itemsHeader).map(EdgeReadHint.parse(headerValue:)) ?? []
        if response.status == 200, !items.isEmpty {
            let hash = AccessKeyHasher.tokenHash(token)
            if identityIfUsable(hash, online: true) == nil {
                if let id = try? await central.resolve(token: token) { cache.remember(id, tokenHash: hash) }
            }
            try? cache.store(key: key, items: items, status: 200, contentType: response.header("Content-Type") ?? "application/json",
                             body: Array(response.body.readableBytesView), at: Date())
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
            do {
                guard let id = try await central.resolve(token: token) else {
                    cache.forget(tokenHash: hash)
                    metrics.denied.increment()
                    // The central server audited the refused token itself.
                    return AgentResponses.error(call.interface, status: 403, "permission denied")
                }
                cache.remember(id, tokenHash: hash)
                identity = id
            } catch {
                markDown()
                identity = identityIfUsable(hash, online: false)
            }
        }
        guard let identity else {
            return AgentResponses.error(call.interface, status: 503,
                                        "the central server is unreachable, and this token has not been seen by the edge cache recently")
        }
        let authorizer = identity.authorizer
        let allowed = answer.items.allSatisfy { item in
            (try? ItemPath(item)).map { authorizer.check(.read, on: $0, type: .item).isAllowed } ?? false
        }
        let age = max(0, Int64(Date().timeIntervalSince(answer.fetchedAt)))
        let event = EdgeAuditEvent(time_us: Int64(InputNumber.micros(Date())), request_id: RequestContext.newRequestId(),
                                   interface: call.interface.rawValue, auth_method_type: identity.authMethodType,
                                   access_id: identity.accessId, actor_name: identity.authMethodName, client_address: call.clientAddress,
                                   action: call.action, path: String(answer.items.joined(separator: ",").prefix(1024)),
                                   result: allowed ? "allowed" : "denied", status: allowed ? 200 : 403,
                                   error: allowed ? "" : "permission denied", cache: stale ? "stale" : "hit", age_seconds: age)
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

    func metricsResponse() async -> Response {
        let depth = await queue.depth
        let staleness: Double
        if streamLive { staleness = 0 } else {
            let last = cache.currentAt ?? link.withLock { $0.lastContact } ?? Date()
            staleness = max(0, Date().timeIntervalSince(last))
        }
        let text = metrics.render(entries: cache.count, queued: depth, reachable: isReachable, streamLive: streamLive, staleness: staleness)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// A background loop as a service: cancelled when the group shuts down.
struct AgentWork: Service {
    let body: @Sendable () async -> Void
    func run() async throws {
        await cancelWhenGracefulShutdown { await body() }
    }
}
