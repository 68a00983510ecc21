// AuditTrail: the one audit writer. Events are chained (each carries the HMAC of its canonical
// bytes, which include the previous hash) and written with group commit: while one batch is
// being written, new events queue and go out together in the next batch. A caller waits until
// its event is durable; if the store fails or stalls past `writeTimeout`, the caller gets a 503.
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

    public init(store: any AuditStore, keyring: @escaping @Sendable () throws -> Keyring,
                writeTimeout: Duration = .seconds(5), logger: Logger) {
        self.store = store
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
                chainLoaded = true
            }
        } catch {
            logger.error("audit trail unavailable", metadata: ["reason": "\(Self.describe(error))"])
            for (_, w) in batch { w.fail(failure) }
            return
        }
        var events: [AuditEvent] = []
        events.reserveCapacity(batch.count)
        var seq = lastSequence
        var prev = lastHash
        for (event, _) in batch {
            var e = event
            seq += 1
            e.sequence = seq
            e.prevHash = prev
            e.hash = key.auditChainHash(e.canonicalBytes)
            prev = e.hash
            events.append(e)
        }
        let waiters = batch.map(\.1)
        do {
            try await store.append(events)
            lastSequence = seq
            lastHash = prev
            for w in waiters { w.succeed() }
        } catch {
            logger.error("audit write failed", metadata: ["reason": "\(Self.describe(error))", "events": "\(events.count)"])
            // The chain head is re-read before the next write, in case part of it landed.
            chainLoaded = false
            for w in waiters { w.fail(failure) }
        }
    }

    /// Waits for queued events to be written and refuses new ones (graceful shutdown).
    public func close() async {
        queue.withLock { $0.closed = true }
        while queue.withLock({ $0.flushing || !$0.pending.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(5))
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
        while true {
            let events = try await store.scan(afterSequence: expected - 1, limit: 1000)
            if events.isEmpty { break }
            for e in events {
                if e.sequence != expected {
                    return AuditVerification(ok: false, eventsChecked: checked, firstBadSequence: expected,
                                             reason: "event \(expected) is missing (next present event is \(e.sequence))")
                }
                if e.prevHash != prev {
                    return AuditVerification(ok: false, eventsChecked: checked, firstBadSequence: e.sequence,
                                             reason: "event \(e.sequence) does not link to the previous event")
                }
                if !ConstantTime.equal(Array(key.auditChainHash(e.canonicalBytes).utf8), Array(e.hash.utf8)) {
                    return AuditVerification(ok: false, eventsChecked: checked, firstBadSequence: e.sequence,
                                             reason: "event \(e.sequence) was altered (its hash does not match its contents)")
                }
                prev = e.hash
                expected += 1
                checked += 1
            }
        }
        // Deleting the newest events leaves a valid but shorter chain; the writer's own head catches that.
        if chainLoaded, lastSequence >= expected {
            return AuditVerification(ok: false, eventsChecked: checked, firstBadSequence: expected,
                                     reason: "event \(expected) is missing (the trail ends before the last written event \(lastSequence))")
        }
        return AuditVerification(ok: true, eventsChecked: checked)
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
