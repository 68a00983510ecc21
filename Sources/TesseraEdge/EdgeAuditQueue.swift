// EdgeAuditQueue: the durable queue of the audit events of reads the agent answered itself. An
// event is on disk (written and fsynced, with group commit: one sync for every event that arrived
// meanwhile) before its answer is sent, so a read the central trail will not hear of is never
// served. Events go to the central server in batches, in order, and leave the queue only once it
// has recorded them; a crash in between delivers them again (at least once, same request id).
import Foundation
import Logging
import NIOPosix
import TesseraCore
import TesseraCrypto

/// The queue of `EdgeReadEvent`s, the reads answered by the agent, as they are reported to the
/// central trail.
actor EdgeAuditQueue {
    private let log: String
    private let ackFile: String
    private let sealer: CacheSealer
    private let logger: Logger
    private var fd: Int32 = -1
    /// Undelivered events, oldest first (what the log holds after the first `acked` lines).
    private var events: [EdgeReadEvent] = []
    private var acked = 0
    private var lines = 0
    private var waiting: [(line: [UInt8], event: EdgeReadEvent, done: CheckedContinuation<Void, any Error>)] = []
    private var flushing = false
    /// The log's size after the last durable batch: a failed write is cut back to it, so a torn
    /// line never swallows the next event.
    private var goodSize: off_t = 0
    private let pool: NIOThreadPool
    /// Past this many undelivered events the agent stops answering from its cache (fail closed)
    /// instead of growing without bound through a long outage.
    static let maxQueued = 200_000

    init(directory: String, sealer: CacheSealer, logger: Logger) {
        log = (directory as NSString).appendingPathComponent("audit-queue.log")
        ackFile = (directory as NSString).appendingPathComponent("audit-queue.acked")
        self.sealer = sealer
        self.logger = logger
        pool = NIOThreadPool.singleton
    }

    /// Reopens the queue left by an earlier run: the lines after the acknowledged ones are owed.
    func open() throws {
        let ack = FileManager.default.contents(atPath: ackFile).flatMap { Int(String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        var owed: [EdgeReadEvent] = []
        var count = 0
        if let data = FileManager.default.contents(atPath: log) {
            for line in data.split(separator: UInt8(ascii: "\n")) {
                count += 1
                guard count > ack else { continue }
                guard let sealed = Data(base64Encoded: Data(line)),
                      let plain = try? sealer.open(Array(sealed), context: "audit-event"),
                      let event = try? JSONDecoder().decode(EdgeReadEvent.self, from: Data(plain)) else {
                    // A line this key cannot open: written under another key, or torn by a crash
                    // mid-write (its read was then never answered).
                    logger.warning("an audit queue line cannot be read and is skipped", metadata: ["line": "\(count)"])
                    continue
                }
                owed.append(event)
            }
        }
        events = owed
        lines = count
        acked = ack
        if ack > count {
            // The log was emptied after a count was written: the count starts over with it.
            acked = 0
            try DurableFile.replace(ackFile, with: Array("0".utf8))
        }
        fd = Foundation.open(log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard fd >= 0 else { throw AgentFailure(status: 500, message: "cannot open the audit queue") }
        goodSize = lseek(fd, 0, SEEK_END)
        DurableFile.syncFolder(of: log)
        if !owed.isEmpty { logger.notice("audit events from an earlier run are owed to the central server", metadata: ["events": "\(owed.count)"]) }
    }

    var depth: Int { events.count + waiting.count }

    /// Returns once the event is durable; throws if it cannot be written (the read is then refused).
    func append(_ event: EdgeReadEvent) async throws {
        guard events.count + waiting.count < Self.maxQueued else {
            throw AgentFailure(status: 503, message: "the audit queue is full")
        }
        let plain = try JSONEncoder().encode(event)
        var line = Array(Data(try sealer.seal(Array(plain), context: "audit-event")).base64EncodedString().utf8)
        line.append(UInt8(ascii: "\n"))
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            waiting.append((line, event, c))
            if !flushing {
                flushing = true
                Task { await self.flush() }
            }
        }
    }

    private func flush() async {
        while !waiting.isEmpty {
            let batch = waiting
            waiting = []
            let bytes = batch.flatMap(\.line)
            let fd = self.fd
            let good = goodSize
            do {
                goodSize = try await pool.runIfActive {
                    do {
                        try DurableFile.writeAll(fd, bytes)
                        guard fsync(fd) == 0 else { throw AgentFailure(status: 500, message: "fsync failed") }
                    } catch {
                        _ = ftruncate(fd, good)
                        throw error
                    }
                    return lseek(fd, 0, SEEK_END)
                }
                lines += batch.count
                events += batch.map(\.event)
                for w in batch { w.done.resume() }
            } catch {
                logger.error("the audit queue cannot be written; cached reads are refused")
                for w in batch { w.done.resume(throwing: error) }
            }
        }
        flushing = false
    }

    /// The oldest undelivered events, at most `limit`.
    func next(_ limit: Int) -> [EdgeReadEvent] { Array(events.prefix(limit)) }

    /// The first `count` events were recorded centrally. The count of delivered lines is written
    /// before they leave memory; once everything is delivered the log starts over.
    func delivered(_ count: Int) throws {
        let n = min(count, events.count)
        guard n > 0 else { return }
        try DurableFile.replace(ackFile, with: Array(String(acked + n).utf8))
        acked += n
        events.removeFirst(n)
        if events.isEmpty, waiting.isEmpty, !flushing, acked == lines {
            // The count goes to 0 first: a crash before the log is emptied delivers its lines
            // again (at least once), never skips any.
            try DurableFile.replace(ackFile, with: Array("0".utf8))
            guard ftruncate(fd, 0) == 0 else {
                // The log stays, all of it delivered.
                try DurableFile.replace(ackFile, with: Array(String(lines).utf8))
                return
            }
            _ = fsync(fd)
            acked = 0
            lines = 0
            goodSize = 0
        }
    }
}
