// Online backup and offline restore. A snapshot copies the data file and then the audit trail
// (each consistent as of its own moment, so the trail reaches at least as far as the anchor kept
// with the data), while requests go on being served. Restore fills an empty data directory and
// refuses a snapshot whose checksums, audit chain links or anchor do not verify.
import Foundation
import Logging
import Synchronization
import TesseraCore
import TesseraStore

extension Tessera {
    /// Writes a snapshot archive under `<data>/snapshots/` and returns its path and size; the
    /// caller streams it, then calls `endSnapshot`. One snapshot runs at a time, from the copy
    /// until the stream ends, so stalled downloads cannot pile archives up on the disk.
    public func takeSnapshot() async throws -> (path: String, size: Int64) {
        guard snapshotRunning.withLock({ running in
            if running { return false }
            running = true
            return true
        }) else {
            throw TesseraError.conflict("a snapshot is already being taken; try again when it is done")
        }
        var handedOver = false
        defer { if !handedOver { snapshotRunning.withLock { $0 = false } } }
        try checkSpaceForSnapshot()
        let directory = options.dataDirectory + "/snapshots"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let id = UUID().uuidString.lowercased()
        let data = "\(directory)/\(id)-tessera.db"
        let trail = "\(directory)/\(id)-audit.db"
        let archive = "\(directory)/\(id).snap"
        defer {
            try? FileManager.default.removeItem(atPath: data)
            try? FileManager.default.removeItem(atPath: trail)
        }
        do {
            try await store.snapshot(to: data)
            try await auditStore.snapshot(to: trail)
            let size = try SnapshotArchive.write([("tessera.db", data), ("audit.db", trail)], to: archive, serverVersion: SystemAPI.version,
                                                 sealKey: try seal.keyring().snapshotSealKey)
            handedOver = true
            return (archive, size)
        } catch {
            try? FileManager.default.removeItem(atPath: archive)
            throw error
        }
    }

    /// Ends a snapshot handed over by `takeSnapshot`: removes its file and lets the next one start.
    public func endSnapshot(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
        snapshotRunning.withLock { $0 = false }
    }

    /// A snapshot needs room for a copy of both databases and the archive made from them.
    func checkSpaceForSnapshot() throws {
        let fm = FileManager.default
        var used: Int64 = 0
        for name in ["tessera.db", "tessera.db-wal", "audit.db", "audit.db-wal"] {
            used += ((try? fm.attributesOfItem(atPath: options.dataDirectory + "/" + name))?[.size] as? NSNumber)?.int64Value ?? 0
        }
        var fs = statvfs()
        guard statvfs(options.dataDirectory, &fs) == 0 else { return }
        let free = Int64(clamping: UInt64(fs.f_bavail).multipliedReportingOverflow(by: UInt64(fs.f_frsize)).partialValue)
        let needed = used.multipliedReportingOverflow(by: 2).partialValue + 64 << 20
        guard free >= needed else {
            throw TesseraError.unavailable("not enough free space for a snapshot: it needs about \(needed >> 20) MiB in the data directory, \(free >> 20) MiB are free")
        }
    }

    /// Removes snapshot files left by a server that stopped while streaming one.
    static func removeLeftoverSnapshots(in dataDirectory: String) {
        let directory = dataDirectory + "/snapshots"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
    }
}

/// What a restore found.
public struct RestoreReport: Sendable {
    public var manifest: SnapshotArchive.Manifest
    public var auditEvents: Int64
    public var anchorSequence: Int64?
}

public enum SnapshotRestore {
    /// Restores `archive` into `directory`, which must be missing or empty. On any failure the
    /// files written are removed and the error says why.
    public static func restore(_ archive: String, into directory: String, progress: (Int64, Int64) -> Void = { _, _ in }) async throws -> RestoreReport {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw TesseraError.badRequest("\(directory) exists and is not a directory") }
            let entries = try fm.contentsOfDirectory(atPath: directory)
            guard entries.isEmpty else { throw TesseraError.conflict("refusing to restore into \(directory): it is not empty") }
        }
        // The whole archive is checked before anything is written.
        _ = try SnapshotArchive.check(archive)
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        do {
            let manifest = try SnapshotArchive.extract(archive, into: directory, progress: progress)
            let (events, anchor) = try await verify(directory)
            return RestoreReport(manifest: manifest, auditEvents: events, anchorSequence: anchor)
        } catch {
            for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] { try? fm.removeItem(atPath: directory + "/" + name) }
            throw error
        }
    }

    /// Checks a restored directory: the data holds an initialized installation, and the audit
    /// trail is a gap-free linked chain that reaches its anchor with the anchored hash. The keyed
    /// hashes are checked by `audit verify` once the server is unsealed.
    static func verify(_ directory: String) async throws -> (events: Int64, anchor: Int64?) {
        var logger = Logger(label: "tessera.restore")
        logger.logLevel = .warning
        let store = try await SQLiteStore.open(path: directory + "/tessera.db", logger: logger)
        let anchor: AuditAnchor?
        do {
            guard try await store.sealConfig() != nil else {
                throw TesseraError.badRequest("the snapshot holds no initialized installation")
            }
            anchor = try await store.auditAnchor()
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
        let trail = try await SQLiteAuditStore.open(path: directory + "/audit.db", logger: logger)
        do {
            var expected: Int64 = 1
            var previous = ""
            while true {
                let events = try await trail.scan(afterSequence: expected - 1, limit: 1000)
                if events.isEmpty { break }
                for e in events {
                    guard e.sequence == expected else {
                        throw TesseraError.badRequest("refusing the snapshot: audit event \(expected) is missing")
                    }
                    guard e.prevHash == previous else {
                        throw TesseraError.badRequest("refusing the snapshot: audit event \(e.sequence) does not link to the one before")
                    }
                    if let anchor, anchor.sequence == e.sequence, anchor.hash != e.hash {
                        throw TesseraError.badRequest("refusing the snapshot: audit event \(e.sequence) is not the event its anchor recorded")
                    }
                    previous = e.hash
                    expected += 1
                }
            }
            if let anchor, anchor.sequence >= expected {
                throw TesseraError.badRequest("refusing the snapshot: the audit trail ends at event \(expected - 1), before its anchor \(anchor.sequence)")
            }
            try await trail.close()
            return (expected - 1, anchor?.sequence)
        } catch {
            try? await trail.close()
            throw error
        }
    }
}
