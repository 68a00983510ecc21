// The dynamic-secret engine: PostgreSQL producers and leases. Issuing records the lease as
// `pending` before creating the role (so a crash can never leave an untracked role), runs the
// creation statements in one transaction, then marks the lease active. Revocation is retried
// with exponential backoff and ends `irrevocable` after a bounded number of attempts.
import Foundation
import PostgresNIO
import TesseraCore
import TesseraCrypto
import TesseraStore

public struct IssuedCredential: Sendable {
    public var lease: Lease
    public var username: String
    public var password: String
}

public struct DynamicSecretEngine: Sendable {
    let store: any Store
    let connectors: ConnectorEngine
    let now: @Sendable () -> Date
    public let maxRevokeAttempts: Int
    let observer: any EngineObserver
    /// Claims on leases in the shared store (revocations, interrupted issues); nil: no claims.
    let claims: WorkClaims?
    /// Leases this process is issuing right now (pending on purpose, not interrupted).
    let issuing = InFlightSet()

    public static let defaultCreation = "CREATE ROLE {{name}} WITH LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}};"
    /// Ends the role's sessions, hands what it owns to the admin, drops what remains, then the role.
    public static let defaultRevocation = """
        SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {{name_literal}};
        REASSIGN OWNED BY {{name}} TO CURRENT_USER;
        DROP OWNED BY {{name}};
        DROP ROLE IF EXISTS {{name}};
        """

    public init(store: any Store, connectors: ConnectorEngine, now: @escaping @Sendable () -> Date = Date.init, maxRevokeAttempts: Int = 6,
                observer: any EngineObserver = NoEngineObserver(), claims: WorkClaims? = nil) {
        self.observer = observer
        self.claims = claims
        self.store = store
        self.connectors = connectors
        self.now = now
        self.maxRevokeAttempts = maxRevokeAttempts
    }

    // MARK: Producers

    public func createProducer(path: ItemPath, targetName: String, creation: String?, revocation: String?, userTTL: Int, maxTTL: Int,
                               passwordLength: Int, usernamePrefix: String?, maxLeases: Int) async throws -> Producer {
        let target = try await connectors.target(named: targetName)
        guard target.kind == .database else { throw TesseraError.badRequest("target \(target.name) is not a database target") }
        guard userTTL > 0, maxTTL >= userTTL else { throw TesseraError.badRequest("user-ttl must be positive and max-ttl at least user-ttl") }
        guard (12...128).contains(passwordLength) else { throw TesseraError.badRequest("password-length must be between 12 and 128") }
        guard maxLeases >= 0 else { throw TesseraError.badRequest("max-leases must not be negative") }
        let prefix = (usernamePrefix ?? "tmp").lowercased()
        guard !prefix.isEmpty, prefix.count <= 16, prefix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw TesseraError.badRequest("username-template must be 1 to 16 letters, digits or underscores")
        }
        let creationSQL = (creation?.isEmpty == false ? creation : nil) ?? Self.defaultCreation
        guard creationSQL.contains("{{name}}") else { throw TesseraError.badRequest("creation-statements must use {{name}}") }
        let p = Producer(path: path, targetName: target.name, creationStatements: creationSQL, revocationStatements: revocation ?? "",
                         userTTL: userTTL, maxTTL: maxTTL, passwordLength: passwordLength, usernamePrefix: prefix, maxLeases: maxLeases,
                         createdAt: now())
        try await store.createProducer(p)
        return p
    }

    public func producer(_ path: ItemPath) async throws -> Producer {
        guard let p = try await store.producer(path: path.value) else { throw TesseraError.notFound("dynamic secret \(path) not found") }
        return p
    }

    public func producers() async throws -> [Producer] { try await store.producers() }

    public func deleteProducer(_ path: ItemPath) async throws {
        guard try await store.deleteProducer(path: path.value) else { throw TesseraError.notFound("dynamic secret \(path) not found") }
    }

    // MARK: Issuing

    public func issue(_ path: ItemPath, actor: String) async throws -> IssuedCredential {
        let producer = try await producer(path)
        do {
            let issued = try await issue(producer, at: path, actor: actor)
            observer.credentialIssued(targetType: "postgres", success: true)
            return issued
        } catch {
            observer.credentialIssued(targetType: "postgres", success: false)
            throw error
        }
    }

    func issue(_ producer: Producer, at path: ItemPath, actor: String) async throws -> IssuedCredential {
        let target = try await connectors.target(named: producer.targetName)
        let pg = try connectors.postgres(target)
        let t = now()
        let username = producer.usernamePrefix + "_" + SecureRandom.string(length: 16) + "_" + String(InputNumber.clamped(t.timeIntervalSince1970))
        let password = SecureRandom.string(length: producer.passwordLength, alphabet: Self.passwordAlphabet)
        let expires = t.addingTimeInterval(InputNumber.interval(seconds: producer.userTTL))
        let lease = Lease(id: String(path.value.dropFirst()) + "/" + SecureRandom.string(length: 24, alphabet: Self.idAlphabet),
                          producer: path.value, username: username, accessId: actor, issuedAt: t, expiresAt: expires,
                          maxExpiresAt: t.addingTimeInterval(InputNumber.interval(seconds: producer.maxTTL)), state: .pending)
        // The intent is durable before the role exists, and this node holds the lease's claim
        // while it issues: a node cleaning up interrupted issues leaves it alone.
        issuing.insert(lease.id)
        defer { issuing.remove(lease.id) }
        guard try await store.insertLease(lease, limit: producer.maxLeases) else {
            throw TesseraError.tooManyRequests("dynamic secret \(path) has reached its limit of \(producer.maxLeases) active leases")
        }
        if let claims, try await claims.take(.lease, lease.id) == false {
            // Another node took the pending lease for cleanup in the instant before the claim.
            throw TesseraError.unavailable("the credential could not be issued; retry")
        }
        let script = try SQLQuoting.render(producer.creationStatements, identifiers: ["name": username],
                                           literals: ["password": password, "expiration": Self.pgTimestamp(expires.addingTimeInterval(5))])
        do {
            try await pg.withConnection { c in try await Self.runTransaction(SQLQuoting.split(script), on: c) }
        } catch {
            var failed = lease
            failed.state = .revoked
            failed.lastError = (error as? TesseraError)?.message ?? "creation failed"
            try? await store.updateLease(failed)
            if case TesseraError.badRequest(let m) = error { throw TesseraError.badGateway("creating the credential failed: \(m)") }
            throw error
        }
        var active = lease
        active.state = .active
        try await store.updateLease(active)
        await claims?.release(.lease, lease.id)
        return IssuedCredential(lease: active, username: username, password: password)
    }

    /// Seconds as Go prints a duration: `3h0m0s`, `2m30s`, `45s`.
    public static func goDuration(_ seconds: Int) -> String { GoDuration.format(seconds: seconds) }

    static let passwordAlphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-".utf8)
    static let idAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// `2026-11-21 20:06:27+0000`, as PostgreSQL's VALID UNTIL accepts.
    public static func pgTimestamp(_ d: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .current
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: d)
        func pad(_ v: Int?, _ n: Int = 2) -> String { let s = String(v ?? 0); return String(repeating: "0", count: max(0, n - s.count)) + s }
        return "\(pad(c.year, 4))-\(pad(c.month))-\(pad(c.day)) \(pad(c.hour)):\(pad(c.minute)):\(pad(c.second))+0000"
    }

    /// Runs the statements as one transaction (a single statement commits on its own).
    static func runTransaction(_ statements: [String], on c: PostgresConnection) async throws {
        if statements.count == 1, let only = statements.first {
            _ = try await c.query(PostgresQuery(unsafeSQL: only), logger: PostgresTarget.logger).collect()
            return
        }
        _ = try await c.query("BEGIN", logger: PostgresTarget.logger)
        do {
            for s in statements { _ = try await c.query(PostgresQuery(unsafeSQL: s), logger: PostgresTarget.logger).collect() }
            _ = try await c.query("COMMIT", logger: PostgresTarget.logger)
        } catch {
            _ = try? await c.query("ROLLBACK", logger: PostgresTarget.logger)
            throw error
        }
    }

    // MARK: Leases

    public func lease(_ id: String) async throws -> Lease {
        guard let l = try await store.lease(id: id) else { throw TesseraError.badRequest("invalid lease") }
        return l
    }

    /// Leases under a prefix of whole path segments: `db/ro` is the producer `db/ro` (or the
    /// lease with that id), never `db/ro-admin`.
    public func leases(prefix: String, state: Lease.State?, limit: Int = 10_000) async throws -> [Lease] {
        if prefix.isEmpty || prefix.hasSuffix("/") { return try await store.leases(prefix: prefix, state: state, limit: limit) }
        var out = try await store.leases(prefix: prefix + "/", state: state, limit: limit)
        if let exact = try await store.lease(id: prefix), state == nil || exact.state == state { out.insert(exact, at: 0) }
        return out
    }

    /// Extends a lease by `increment` seconds (default: the producer's TTL), capped at its max TTL.
    public func renew(_ id: String, increment: Int?) async throws -> (lease: Lease, warning: String?) {
        guard var l = try await store.lease(id: id), l.state == .active else { throw TesseraError.badRequest("lease not found") }
        let producer = try await producer(try ItemPath(l.producer))
        let t = now()
        let wanted = t.addingTimeInterval(InputNumber.interval(seconds: (increment ?? 0) > 0 ? increment ?? 0 : producer.userTTL))
        var warning: String?
        var newExpiry = wanted
        if wanted > l.maxExpiresAt {
            newExpiry = l.maxExpiresAt
            let requested = (increment ?? 0) > 0 ? increment ?? 0 : producer.userTTL
            warning = "TTL of \"\(Self.goDuration(requested))\" exceeded the effective max_ttl of \"\(Self.goDuration(producer.maxTTL))\"; TTL value is capped accordingly"
        }
        let pg = try connectors.postgres(try await connectors.target(named: producer.targetName))
        let sql = "ALTER ROLE \(try SQLQuoting.identifier(l.username)) VALID UNTIL \(try SQLQuoting.literal(Self.pgTimestamp(newExpiry.addingTimeInterval(5))))"
        try await pg.withConnection { c in _ = try await c.query(PostgresQuery(unsafeSQL: sql), logger: PostgresTarget.logger).collect() }
        l.expiresAt = newExpiry
        l.lastRenewal = t
        try await store.updateLease(l)
        return (l, warning)
    }

    /// Revokes a lease now. Idempotent: revoking a revoked or unknown lease succeeds.
    /// With `force`, a lease whose revocation keeps failing is marked revoked anyway.
    public func revoke(_ id: String, force: Bool = false) async throws {
        guard var l = try await store.lease(id: id), l.state != .revoked else { return }
        do {
            try await dropCredential(l)
            l.state = .revoked
            l.lastError = ""
            try await store.updateLease(l)
        } catch {
            if force {
                l.state = .revoked
                l.lastError = "force-revoked: " + ((error as? TesseraError)?.message ?? "revocation failed")
                try await store.updateLease(l)
                return
            }
            try await recordFailure(&l, error)
            throw error
        }
    }

    /// How many revocations run at once (each on its own pooled connection).
    public static let revocationParallelism = 8

    /// Revokes every live lease whose id starts with `prefix`; returns how many.
    /// The leases a prefix revocation would revoke (whole path segments, as `leases(prefix:)`).
    public func revocable(prefix: String) async throws -> [Lease] {
        var out: [Lease] = []
        for state in [Lease.State.active, .revoking, .pending] {
            out += try await leases(prefix: prefix, state: state, limit: 100_000)
        }
        return out
    }

    public func revokePrefix(_ prefix: String) async throws -> Int {
        try await revoke(leases: try await revocable(prefix: prefix))
    }

    /// Revokes these leases, 8 at a time; returns how many were revoked.
    public func revoke(leases: [Lease]) async throws -> Int {
        let ids = leases.map(\.id)
        let outcomes = await Self.concurrentMap(ids, width: Self.revocationParallelism) { id -> Bool in
            do {
                try await revoke(id)
                return true
            } catch {
                return false
            }
        }
        return outcomes.filter { $0 }.count
    }

    /// Runs `body` on every element with at most `width` running at once; results in any order.
    static func concurrentMap<E: Sendable, R: Sendable>(_ elements: [E], width: Int,
                                                        _ body: @escaping @Sendable (E) async -> R) async -> [R] {
        await withTaskGroup(of: R.self) { group in
            var results: [R] = []
            results.reserveCapacity(elements.count)
            var iterator = elements.makeIterator()
            for _ in 0..<max(1, width) {
                guard let e = iterator.next() else { break }
                group.addTask { await body(e) }
            }
            while let r = await group.next() {
                results.append(r)
                if let e = iterator.next() { group.addTask { await body(e) } }
            }
            return results
        }
    }

    func dropCredential(_ l: Lease) async throws {
        let producer = try await store.producer(path: l.producer)
        let targetName = producer?.targetName ?? ""
        let pg = try connectors.postgres(try await connectors.target(named: targetName))
        let template = (producer?.revocationStatements).flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultRevocation
        let script = try SQLQuoting.render(template, identifiers: ["name": l.username], literals: ["name_literal": l.username])
        let username = l.username
        try await pg.withConnection { c in
            // An issue interrupted before its role was created leaves nothing to revoke (and
            // REASSIGN OWNED would fail on the missing role).
            let existing = try await c.query("SELECT 1 FROM pg_roles WHERE rolname = \(username)", logger: PostgresTarget.logger).collect()
            guard !existing.isEmpty else { return }
            try await Self.runTransaction(SQLQuoting.split(script), on: c)
        }
    }

    func recordFailure(_ l: inout Lease, _ error: any Error) async throws {
        l.attempts += 1
        l.lastError = (error as? TesseraError)?.message ?? "revocation failed"
        if l.attempts >= maxRevokeAttempts {
            l.state = .irrevocable
            l.nextAttemptAt = nil
        } else {
            l.state = .revoking
            l.nextAttemptAt = now().addingTimeInterval(min(60, pow(2, Double(l.attempts - 1))))
        }
        try await store.updateLease(l)
    }

    /// One pass of the expiry worker: revokes due leases and retries failed revocations.
    /// Returns each lease handled with its outcome (the new state, and the error if it failed).
    @discardableResult
    public func processDue(limit: Int = 200) async throws -> [(lease: Lease, error: String?)] {
        let due = try await store.dueLeases(now: now(), limit: limit)
        let claims = self.claims
        let handled = await Self.concurrentMap(due, width: Self.revocationParallelism) { lease -> (lease: Lease, error: String?)? in
            // Exactly one node revokes each lease: the one that holds its claim.
            if let claims {
                guard (try? await claims.take(.lease, lease.id)) == true else { return nil }
            }
            defer { if let claims { Task { await claims.release(.lease, lease.id) } } }
            // Another node may have revoked it between the query and the claim.
            guard let current = try? await store.lease(id: lease.id), current.state == lease.state else { return nil }
            var l = current
            do {
                try await dropCredential(l)
                l.state = .revoked
                l.lastError = ""
                try await store.updateLease(l)
                return (l, nil)
            } catch {
                try? await recordFailure(&l, error)
                return (l, l.lastError)
            }
        }
        return handled.compactMap { $0 }
    }

    /// A `pending` lease that no live node is issuing means its issuer died mid-issue. Its role
    /// may or may not exist, and its client never got the password, so it is revoked (dropping
    /// the role if it exists) through the normal retrying path. At start-up, and on every pass
    /// of the lease worker (a dead node's interrupted issues are taken over once its claims end).
    public func reconcile() async throws -> Int {
        let pending = try await store.leases(prefix: "", state: .pending, limit: 10_000)
        var count = 0
        for lease in pending where !issuing.contains(lease.id) {
            if let claims, try await claims.take(.lease, lease.id) == false { continue }
            // Re-read under the claim: the issuer may have finished meanwhile.
            if var l = try await store.lease(id: lease.id), l.state == .pending {
                l.state = .revoking
                l.nextAttemptAt = now()
                l.lastError = "issue interrupted by a restart"
                try await store.updateLease(l)
                count += 1
            }
            await claims?.release(.lease, lease.id)
        }
        return count
    }
}
