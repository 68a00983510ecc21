// AuditTrail: the one audit writer. Events are chained (each carries the HMAC of its canonical
// bytes, which include the previous hash) and written with group commit: while one batch is
// being written, new events queue and go out together in the next batch. A caller waits until
// its event is durable; if the store fails or stalls past `writeTimeout`, the caller gets a 503.
// The chain head is also anchored in the data store (at most every 50 ms, off the request path),
// so that deleting the newest events is detected even after a restart.
import Foundation
import Logging
import Synchronization
import TesseraCore
import TesseraCrypto
import TesseraStore

public actor AuditTrail {
    private let store: any AuditStore
    private let keyring: @Sendable () throws -> Keyring
    private let writeTimeout: Duration
    private let logger: Logger

    /// Events waiting for the next batch; taken without a hop onto the actor.
    private let queue = Mutex(AuditQueue())
    private var chainLoaded = false
    private var lastSequence: Int64 = 0
    private var lastHash = ""
    private let deadlines = AuditDeadlines()
    private let anchors: (any AuditAnchorRepository)?
    private var anchorWriting = false
    private var anchoredSequence: Int64 = 0

    public init(store: any AuditStore, anchors: (any AuditAnchorRepository)? = nil, keyring: @escaping @Sendable () throws -> Keyring,
                writeTimeout: Duration = .seconds(5), logger: Logger) {
        self.store = store
        self.anchors = anchors
        self.keyring = keyring
        self.writeTimeout = writeTimeout
        self.logger = logger
    }

    /// Appends an event and returns once it is durable. Throws `unavailable` if it cannot be written.
    public nonisolated func record(_ event: AuditEvent) async throws {
        let waiter = Waiter()
        let startFlush: Bool = try queue.withLock { q in
            if q.closed { throw TesseraError.unavailable("the audit trail is closed; the request was not served") }
            q.pending.append((event, waiter))
            if q.flushing { return false }
            q.flushing = true
            return true
        }
        if startFlush { Task { await self.flushLoop() } }
        // Bound the wait whether the event is queued or its batch is being written: one shared
        // watchdog fails waiters past their deadline (no timer per request).
        if deadlines.add(waiter, deadline: .now + writeTimeout) { deadlines.startWatchdog() }
        defer { deadlines.remove(waiter) }
        try await waiter.wait()
    }

    private func flushLoop() async {
        while true {
            let batch: [(AuditEvent, Waiter)] = queue.withLock { q in
                let batch = q.pending
                q.pending = []
                if batch.isEmpty { q.flushing = false }
                return batch
            }
            if batch.isEmpty { return }
            await write(batch)
        }
    }

    private func write(_ batch: [(AuditEvent, Waiter)]) async {
        let failure = TesseraError.unavailable("the audit trail cannot be written; the request was not served")
        let key: Keyring
        do {
            key = try keyring()
            if !chainLoaded {
                if let last = try await store.lastEvent() {
                    lastSequence = last.sequence
                    lastHash = last.hash
                }
                // Events past the end of the file were deleted: continue after the anchor, so the
                // gap stays in the chain and `verify` names it.
                if let anchor = try await anchors?.auditAnchor(), anchor.sequence > lastSequence {
                    logger.critical("the audit trail ends before its anchor: events were deleted",
                                    metadata: ["last": "\(lastSequence)", "anchor": "\(anchor.sequence)"])
                    lastSequence = anchor.sequence
                    lastHash = anchor.hash
                }
                anchoredSequence = lastSequence
                chainLoaded = true
            }
        } catch {
            logger.error("audit trail unavailable", metadata: ["reason": "\(Self.describe(error))"])
            for (_, w) in batch { w.fail(failure) }
            return
        }
        let waiters = batch.map(\.1)
        // The store numbers the batch after the chain's head, which another node may have moved
        // on; what this process wrote last is the floor (a lost tail stays a visible gap).
        let known = lastSequence > 0 || !lastHash.isEmpty ? AuditAnchor(sequence: lastSequence, hash: lastHash) : nil
        do {
            let written = try await store.appendChained(batch.map(\.0), known: known) { head, events in
                var seq = head?.sequence ?? 0
                var prev = head?.hash ?? ""
                return events.map { event in
                    var e = event
                    seq += 1
                    e.sequence = seq
                    e.prevHash = prev
                    e.hash = key.auditChainHash(e.canonicalBytes)
                    prev = e.hash
                    return e
                }
            }
            if let last = written.last {
                lastSequence = last.sequence
                lastHash = last.hash
            }
            for w in waiters { w.succeed() }
            anchorSoon()
        } catch {
            logger.error("audit write failed", metadata: ["reason": "\(Self.describe(error))", "events": "\(batch.count)"])
            // The append is one atomic transaction, so nothing of it landed: the head stays what
            // this process knows was written, the floor for the next batch.
            for w in waiters { w.fail(failure) }
        }
    }

    /// Writes the chain head to the anchor store, coalescing: at most one write in flight and one
    /// every 50 ms.
    private func anchorSoon() {
        guard let anchors, !anchorWriting, lastSequence > anchoredSequence else { return }
        anchorWriting = true
        Task {
            try? await Task.sleep(for: .milliseconds(50))
            await self.writeAnchor(anchors)
        }
    }

    private func writeAnchor(_ anchors: any AuditAnchorRepository) async {
        let anchor = AuditAnchor(sequence: lastSequence, hash: lastHash)
        do {
            try await anchors.setAuditAnchor(anchor)
            anchoredSequence = max(anchoredSequence, anchor.sequence)
        } catch {
            logger.error("audit anchor write failed", metadata: ["reason": "\(Self.describe(error))"])
        }
        anchorWriting = false
        if lastSequence > anchoredSequence { anchorSoon() }
    }

    /// Waits for queued events to be written and refuses new ones (graceful shutdown).
    public func close() async {
        queue.withLock { $0.closed = true }
        while queue.withLock({ $0.flushing || !$0.pending.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(5))
        }
        if let anchors, chainLoaded, lastSequence > anchoredSequence {
            try? await anchors.setAuditAnchor(AuditAnchor(sequence: lastSequence, hash: lastHash))
            anchoredSequence = lastSequence
        }
    }

    public func query(_ q: AuditQuery) async throws -> [AuditEvent] {
        try await store.query(q)
    }

    /// Recomputes the chain from the first event and reports the first sequence number that is
    /// missing, out of order, or whose hash does not match (an edited, deleted or reordered event).
    public func verify() async throws -> AuditVerification {
        let key = try keyring()
        var expected: Int64 = 1
        var prev = ""
        var checked: Int64 = 0
        let anchor = try await anchors?.auditAnchor()
        func broken(_ seq: Int64, _ reason: String) -> AuditVerification {
            var v = AuditVerification(ok: false, eventsChecked: checked, firstBadSequence: seq, reason: reason)
            v.lastVerifiedSequence = expected - 1
            return v
        }
        while true {
            let events = try await store.scan(afterSequence: expected - 1, limit: 1000)
            if events.isEmpty { break }
            for e in events {
                if e.sequence != expected {
                    return broken(expected, "event \(expected) is missing (next present event is \(e.sequence))")
                }
                if e.prevHash != prev {
                    return broken(e.sequence, "event \(e.sequence) does not link to the previous event")
                }
                if !ConstantTime.equal(Array(key.auditChainHash(e.canonicalBytes).utf8), Array(e.hash.utf8)) {
                    return broken(e.sequence, "event \(e.sequence) was altered (its hash does not match its contents)")
                }
                if let anchor, e.sequence == anchor.sequence, !ConstantTime.equal(Array(anchor.hash.utf8), Array(e.hash.utf8)) {
                    return broken(e.sequence, "event \(e.sequence) is not the event the anchor recorded")
                }
                prev = e.hash
                expected += 1
                checked += 1
            }
        }
        // Deleting the newest events leaves a valid but shorter chain; the writer's own head catches that.
        if chainLoaded, lastSequence >= expected {
            return broken(expected, "event \(expected) is missing (the trail ends before the last written event \(lastSequence))")
        }
        if let anchor, anchor.sequence >= expected {
            return broken(expected, "event \(expected) is missing (the trail ends before its anchor, event \(anchor.sequence))")
        }
        var ok = AuditVerification(ok: true, eventsChecked: checked)
        ok.lastVerifiedSequence = expected - 1
        return ok
    }

    static func describe(_ error: any Error) -> String {
        (error as? TesseraError)?.description ?? String(describing: type(of: error))
    }
}

/// The events waiting to be written and whether a flush is running.
struct AuditQueue {
    var pending: [(AuditEvent, Waiter)] = []
    var flushing = false
    var closed = false
}

/// The deadlines of requests waiting for their audit event, and the one watchdog that fails
/// those that wait too long (the trail itself may be stuck in a write, so this lives outside it).
final class AuditDeadlines: Sendable {
    private struct State {
        var waiting: [ObjectIdentifier: (Waiter, ContinuousClock.Instant)] = [:]
        var watchdogRunning = false
    }
    private let state = Mutex(State())

    /// Registers a waiter; returns true if the caller must start the watchdog.
    func add(_ w: Waiter, deadline: ContinuousClock.Instant) -> Bool {
        state.withLock { s in
            s.waiting[ObjectIdentifier(w)] = (w, deadline)
            if s.watchdogRunning { return false }
            s.watchdogRunning = true
            return true
        }
    }

    func remove(_ w: Waiter) {
        _ = state.withLock { $0.waiting.removeValue(forKey: ObjectIdentifier(w)) }
    }

    func startWatchdog() {
        Task.detached { [self] in
            while true {
                try? await Task.sleep(for: .milliseconds(100))
                let now = ContinuousClock.now
                let (expired, stop): ([Waiter], Bool) = state.withLock { s in
                    let expired = s.waiting.values.filter { $0.1 <= now }.map(\.0)
                    for w in expired { s.waiting.removeValue(forKey: ObjectIdentifier(w)) }
                    if s.waiting.isEmpty { s.watchdogRunning = false }
                    return (expired, s.waiting.isEmpty)
                }
                for w in expired {
                    w.fail(TesseraError.unavailable("the audit trail did not confirm the write in time; the request was not served"))
                }
                if stop { return }
            }
        }
    }
}

/// A one-shot rendezvous between an audit write and the request waiting for it.
final class Waiter: Sendable {
    private enum State {
        case waiting(CheckedContinuation<Void, any Error>?)
        case done(Result<Void, TesseraError>)
    }
    private let state = Mutex(State.waiting(nil))

    func wait() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let result: Result<Void, TesseraError>? = state.withLock { s in
                switch s {
                case .waiting: s = .waiting(c); return nil
                case .done(let r): return r
                }
            }
            if let result { c.resume(with: result) }
        }
    }

    func succeed() { finish(.success(())) }
    func fail(_ error: TesseraError) { finish(.failure(error)) }

    private func finish(_ result: Result<Void, TesseraError>) {
        let c: CheckedContinuation<Void, any Error>? = state.withLock { s in
            guard case .waiting(let c) = s else { return nil }
            s = .done(result)
            return c
        }
        c?.resume(with: result.mapError { $0 as any Error })
    }
}
