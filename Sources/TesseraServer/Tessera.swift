// Tessera: one running installation — its stores, seal state, engines and audit trail — and the
// lifecycle that opens and closes them.
import Foundation
import Logging
import Synchronization
import TesseraCore
import TesseraCrypto
import TesseraEngines
import TesseraStore

public final class Tessera: Sendable {
    public let options: ServerOptions
    public let store: any Store
    public let auditStore: any AuditStore
    public let seal: SealManager
    public let secrets: StaticSecretEngine
    public let access: AccessEngine
    /// JWT/OIDC, Kubernetes and certificate logins.
    public let identity: WorkloadIdentityEngine
    public let mounts: MountTable
    public let connectors: ConnectorEngine
    public let dynamic: DynamicSecretEngine
    public let rotation: RotationEngine
    public let audit: AuditTrail
    /// Moves stored values to the newest key term after a rotation.
    public let rewrap: KeyRewrap
    public let wrapping: ResponseWrapping
    let rewrapWake = RewrapWake()
    /// The service-level metrics (`/metrics`, `sys/metrics`).
    public let telemetry: Telemetry
    /// Audit devices fed from the trail (file, syslog, http).
    public let auditDevices: AuditDevices
    public let logger: Logger
    public let now: @Sendable () -> Date
    /// The listener's TLS certificate, key and client CA; nil serves plain HTTP.
    public let tls: TLSContextHolder?
    /// Set while a snapshot is being taken (one at a time).
    let snapshotRunning = Mutex(false)
    /// Follows changes made by other nodes on a shared store (PostgreSQL); nil on SQLite.
    let changeFollower: ChangeFollower?
    /// This process's node: its record in the store, its heartbeat, its claims on background work.
    public let node: NodeRecord
    let claims: WorkClaims

    /// Opens the data directory (creating it with mode 0700), migrates, and loads the seal state.
    /// With an auto-unseal key file, checks its mode and unseals.
    public static func open(options: ServerOptions, logger: Logger, now: @escaping @Sendable () -> Date = Date.init) async throws -> Tessera {
        let fm = FileManager.default
        try fm.createDirectory(atPath: options.dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if let keyFile = options.unsealKeyFile { try UnsealKeyFile.checkMode(keyFile) }
        // A certificate that does not load, or a bad audit device, stops the start before any
        // storage is opened.
        let tls = try options.tls.map { try TLSContextHolder(settings: $0) }
        for device in options.auditDeviceConfigs {
            do {
                try device.validate(dataDirectory: options.dataDirectory, fromAPI: false)
            } catch let e as TesseraError {
                throw TesseraError.badRequest("config audit_devices \(device.name): \(e.message)")
            }
        }
        var storeLogger = Logger(label: "tessera.store")
        storeLogger.logLevel = max(.info, options.logLevel)
        let (store, auditStore) = try await openStores(options, logger: storeLogger)
        removeLeftoverSnapshots(in: options.dataDirectory)
        let seal = SealManager(store: store)
        let t = Tessera(options: options, store: store, auditStore: auditStore, seal: seal, logger: logger, now: now, tls: tls)
        do {
            try await t.registerNode()
            try await seal.load()
            if try await t.access.upgradeAdminRole() { logger.notice("the admin role now holds sys-rule and the target 'use' capability") }
            try await t.mounts.load()
            let interrupted = try await t.dynamic.reconcile()
            if interrupted > 0 { logger.notice("leases interrupted mid-issue will be revoked", metadata: ["count": "\(interrupted)"]) }
            for m in options.mounts where !t.mounts.all.contains(where: { $0.path == (try? VaultMount.normalizePath(m.path)) }) {
                do {
                    _ = try await t.mounts.create(path: m.path, kind: m.kind, folder: m.folder)
                } catch TesseraError.conflict {
                    // Another node sharing the store created it at the same moment.
                    try await t.mounts.load()
                }
            }
            if let keyFile = options.unsealKeyFile, seal.status.initialized {
                do {
                    try seal.unseal(rootKey: try UnsealKeyFile.read(keyFile))
                } catch {
                    // A rekey that stored the new root key but died before renaming its staged
                    // key file: the staged file unseals, and becomes the key file.
                    let staged = keyFile + ".rekey"
                    guard FileManager.default.fileExists(atPath: staged), (try? seal.unseal(rootKey: try UnsealKeyFile.read(staged))) != nil else {
                        throw TesseraError.badRequest("the unseal key file \(keyFile) does not unseal this installation")
                    }
                    guard rename(staged, keyFile) == 0 else {
                        throw TesseraError.unavailable("\(staged) unseals this installation but cannot replace \(keyFile)")
                    }
                    logger.notice("unsealed with the key file staged by an interrupted rekey; it is now the key file")
                }
                logger.info("unsealed with the auto-unseal key file")
            }
        } catch {
            await t.shutdown()
            throw error
        }
        return t
    }

    /// The data and audit stores of the configured engine: SQLite files in the data directory,
    /// or a PostgreSQL database (two pools, so that audit writes never wait behind data reads).
    static func openStores(_ options: ServerOptions, logger: Logger) async throws -> (any Store, any AuditStore) {
        let store: any Store
        let auditStore: any AuditStore
        if options.storage == "postgresql" {
            let settings = try options.postgresSettings()
            logger.info("storage: PostgreSQL", metadata: ["database": "\(settings.redacted)", "pool": "\(settings.poolSize)"])
            store = try await PostgresStore.open(settings, logger: logger)
            do {
                auditStore = try await PostgresAuditStore.open(settings, logger: logger)
            } catch {
                try? await store.close()
                throw error
            }
            return (store, auditStore)
        }
        store = try await SQLiteStore.open(path: options.dataDirectory + "/tessera.db", durability: options.durability, logger: logger)
        do {
            auditStore = try await SQLiteAuditStore.open(path: options.dataDirectory + "/audit.db",
                                                         busyTimeoutMillis: options.busyTimeoutMillis, durability: options.durability,
                                                         logger: logger)
        } catch {
            try? await store.close()
            throw error
        }
        return (store, auditStore)
    }

    init(options: ServerOptions, store: any Store, auditStore: any AuditStore, seal: SealManager, logger: Logger,
         now: @escaping @Sendable () -> Date, tls: TLSContextHolder? = nil) {
        let started = now()
        node = NodeRecord(id: UUID().uuidString.lowercased(), hostname: ProcessInfo.processInfo.hostName,
                          apiAddress: options.apiAddress, version: SystemAPI.version, startedAt: started, heartbeatAt: started)
        claims = WorkClaims(nodeId: node.id, store: store, now: now)
        self.options = options
        self.tls = tls
        self.store = store
        self.auditStore = auditStore
        self.seal = seal
        self.logger = logger
        self.now = now
        let telemetry = Telemetry()
        self.telemetry = telemetry
        secrets = StaticSecretEngine(store: store, seal: seal, now: now)
        access = AccessEngine(store: store, now: now, loginLimits: options.loginLimits)
        identity = WorkloadIdentityEngine(access: access, store: store, seal: seal, http: IdentityHTTP(), now: now)
        mounts = MountTable(store: store, now: now)
        connectors = ConnectorEngine(store: store, seal: seal, upstream: VaultUpstream(timeout: options.upstreamTimeout), now: now)
        dynamic = DynamicSecretEngine(store: store, connectors: connectors, now: now, maxRevokeAttempts: options.leaseRevokeAttempts,
                                      observer: telemetry, claims: claims)
        rotation = RotationEngine(store: store, seal: seal, connectors: connectors, secrets: secrets, now: now,
                                  pauseAfterApply: options.rotationPauseAfterApply, observer: telemetry, claims: claims)
        auditDevices = AuditDevices(auditStore: auditStore, cursors: store, logger: Logger(label: "tessera.audit-devices"))
        rewrap = KeyRewrap(store: store, seal: seal, rowsPerSecond: options.rewrapRowsPerSecond, now: now)
        wrapping = ResponseWrapping(store: store, seal: seal, now: now)
        audit = AuditTrail(store: auditStore, anchors: store, keyring: { [seal] in try seal.keyring() },
                           writeTimeout: options.auditWriteTimeout, logger: Logger(label: "tessera.audit"))
        changeFollower = store.changeFeed.map { [access, mounts] in
            ChangeFollower(feed: $0, access: access, mounts: mounts, seal: seal, logger: Logger(label: "tessera.cluster"))
        }
    }

    /// Initializes a new installation and creates the first admin. Returns the shares, the root
    /// key (only for an auto-unseal key file) and the admin's access id and key.
    public func initialize(shares: Int, threshold: Int, adminAccessId: String? = nil, adminAccessKey: String? = nil) async throws -> (barrier: Barrier.Initialization, admin: IssuedAuthMethod) {
        // Check everything that could fail before anything is written.
        if let keyFile = options.unsealKeyFile, FileManager.default.fileExists(atPath: keyFile) {
            throw TesseraError.conflict("the unseal key file \(keyFile) exists already; remove it or choose another path before init")
        }
        if let id = adminAccessId, !AccessEngine.isValidAccessId(id) {
            throw TesseraError.badRequest("access id must be 'p-' followed by 1 to 64 letters or digits")
        }
        if let key = adminAccessKey, key.utf8.count < 8 || key.contains("..") {
            throw TesseraError.badRequest("access key must be at least 8 characters and must not contain '..'")
        }
        let initialization = try await seal.initialize(shares: shares, threshold: threshold)
        let admin = try await access.bootstrapAdmin(accessId: adminAccessId, accessKey: adminAccessKey)
        if options.dev, !mounts.all.contains(where: { $0.path == "secret/" }) {
            // As `vault server -dev` does: a KV v2 engine at secret/.
            _ = try await mounts.create(path: "secret/", kind: .kvV2, folder: "/secret", description: "key/value secret storage")
        }
        if let keyFile = options.unsealKeyFile {
            try UnsealKeyFile.write(initialization.rootKey, to: keyFile)
        }
        logger.info("initialized", metadata: ["shares": "\(shares)", "threshold": "\(threshold)"])
        return (initialization, admin)
    }

    /// Revokes due leases and retries failed revocations until cancelled (runs while serving).
    public func runLeaseWorker(interval: Duration = .milliseconds(250)) async {
        var lastSweep = ContinuousClock.now
        while !Task.isCancelled {
            if !seal.isSealed {
                do {
                    // Issues interrupted on a node that died (its claims lapse with its heartbeat).
                    if ContinuousClock.now - lastSweep > .seconds(5) {
                        lastSweep = ContinuousClock.now
                        let interrupted = try await dynamic.reconcile()
                        if interrupted > 0 { logger.notice("leases interrupted mid-issue will be revoked", metadata: ["count": "\(interrupted)"]) }
                    }
                    for (lease, error) in try await dynamic.processDue() {
                        await auditLeaseExpiry(lease, error: error)
                    }
                } catch {
                    logger.warning("lease worker pass failed", metadata: ["reason": "\(Tessera.classify(error, logger: logger).message)"])
                }
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Resolves rotations interrupted by a crash, then runs due rotations, until cancelled.
    /// Each rotation is audited with the actor `scheduler` (or the actor of the interrupted one).
    public func runRotationWorker(interval: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            if !seal.isSealed {
                do {
                    for r in try await rotation.recoverInterrupted() { await auditBackground("recover_rotation", r.path, r.outcome) }
                    for r in try await rotation.processDue() { await auditBackground("rotate_secret", r.path, r.outcome) }
                } catch {
                    logger.warning("rotation worker pass failed", metadata: ["reason": "\(Tessera.classify(error, logger: logger).message)"])
                }
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Removes what expired and can never be used again: tokens, AppRole secret ids and wrapped
    /// answers past their expiry (tokens an hour past it, so that a lookup just after expiry still
    /// finds the record). Each pass that removed something is audited as the `scheduler`.
    public func runTidyWorker(interval: Duration = .seconds(600)) async {
        try? await Task.sleep(for: .seconds(60))
        while !Task.isCancelled {
            if !seal.isSealed {
                do {
                    let t = now()
                    let removed = try await store.purgeExpiredTokens(before: t.addingTimeInterval(-3600))
                        + store.purgeExpiredSecretIDs(before: t) + store.purgeExpiredWrappedResponses(before: t)
                    if removed > 0 {
                        logger.info("tidy: removed expired tokens, secret ids and wrapped answers", metadata: ["removed": "\(removed)"])
                        await auditBackground("tidy", SystemPath.tidy, .success(removed), parameter: "removed")
                    }
                } catch {
                    logger.warning("tidy pass failed; it is retried", metadata: ["reason": "\(Tessera.classify(error, logger: logger).message)"])
                }
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Runs the rewrap whenever values are sealed under an older key term than the active one:
    /// after a rotation (woken at once), and after a restart that cut a rewrap short.
    public func runRewrapWorker(interval: Duration = .seconds(5)) async {
        while !Task.isCancelled {
            if !seal.isSealed {
                do {
                    if let moved = try await rewrap.runOnce() {
                        logger.notice("rewrap done: every stored value uses the active key term", metadata: ["moved": "\(moved)"])
                        await auditBackground("rewrap", SystemPath.rewrap, .success(moved), parameter: "moved")
                    }
                } catch {
                    logger.warning("rewrap pass failed; it is retried", metadata: ["reason": "\(Tessera.classify(error, logger: logger).message)"])
                }
            }
            await rewrapWake.wait(upTo: interval)
        }
    }

    /// Starts the rewrap now instead of at its next check.
    func pokeRewrap() { rewrapWake.wake() }

    /// Records a background action (no request, no caller) in the audit trail as the `scheduler`.
    func auditBackground(_ action: String, _ path: ItemPath, _ outcome: Result<Int, TesseraError>, parameter: String = "version") async {
        var event = AuditEvent(time: now(), requestId: UUID().uuidString.lowercased(), interface: .system, authMethodType: "internal",
                               accessId: "scheduler", actorName: "scheduler", action: action, path: path.value, result: .allowed, status: 200)
        switch outcome {
        case .success(let version):
            event.parameters = [parameter: String(version)]
        case .failure(let error):
            event.result = .error
            event.status = error.status
            event.error = error.message
            logger.warning("rotation failed", metadata: ["path": "\(path.value)", "reason": "\(error.message)"])
        }
        do {
            try await audit.record(event)
        } catch {
            logger.error("the audit trail refused a background event", metadata: ["action": "\(action)"])
        }
    }

    /// Records the expiry worker's revocation of a lease (or its failed attempt) as the `scheduler`.
    func auditLeaseExpiry(_ lease: Lease, error: String?) async {
        var event = AuditEvent(time: now(), requestId: UUID().uuidString.lowercased(), interface: .system, authMethodType: "internal",
                               accessId: "scheduler", actorName: "scheduler", action: "revoke_lease", path: lease.producer,
                               result: error == nil ? .allowed : .error, status: error == nil ? 200 : 502, error: error ?? "",
                               parameters: ["lease_id": lease.id, "state": lease.state.rawValue])
        event.durationMicros = 0
        do {
            try await audit.record(event)
        } catch {
            logger.error("the audit trail refused a background event", metadata: ["action": "revoke_lease"])
        }
    }

    /// A stable identifier of this installation (derived from its seal configuration), as Vault's cluster_id.
    public var clusterId: String {
        guard seal.status.initialized else { return "" }
        return Self.installationId
    }

    static let installationId = UUID().uuidString.lowercased()

    /// Starts the audit devices of the config file and those created over the API.
    public func startAuditDevices() async throws {
        for device in options.auditDeviceConfigs { try await auditDevices.start(device, fromConfig: true, dataDirectory: options.dataDirectory) }
        for stored in try await store.storedAuditDevices() {
            guard let config = try? JSONDecoder().decode(AuditDeviceConfig.self, from: Data(stored.config.utf8)) else {
                logger.error("a stored audit device cannot be read; it is skipped", metadata: ["device": "\(stored.name)"])
                continue
            }
            do {
                try await auditDevices.start(config, fromConfig: false, dataDirectory: options.dataDirectory)
            } catch {
                logger.error("a stored audit device did not start", metadata: ["device": "\(stored.name)"])
            }
        }
    }

    /// Flushes pending audit events and closes the stores.
    public func shutdown() async {
        changeFollower?.stop()
        await auditDevices.stopAll()
        await audit.close()
        await connectors.upstream.shutdown()
        await identity.http.shutdown()
        await connectors.postgresPool.closeAll()
        try? await auditStore.close()
        try? await store.close()
    }
}

/// Wakes the rewrap worker early (after a rotation).
final class RewrapWake: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    func wake() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let w = s.waiter else {
                s.pending = true
                return nil
            }
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }

    /// Returns after `duration`, or sooner when woken (also by a wake that came first) or
    /// cancelled (shutdown).
    func wait(upTo duration: Duration) async {
        let timer = Task { [weak self] in
            do {
                try await Task.sleep(for: duration)
                self?.wake()
            } catch {}
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.pending {
                        s.pending = false
                        return true
                    }
                    s.waiter = c
                    return false
                }
                if resumeNow {
                    c.resume()
                } else if Task.isCancelled {
                    wake()
                }
            }
        } onCancel: {
            self.wake()
        }
        timer.cancel()
    }
}

/// The auto-unseal key file: the base64 root key, readable by the server's user only.
public enum UnsealKeyFile {
    public static func checkMode(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
        guard mode & 0o777 == 0o600 else {
            throw TesseraError.badRequest("refusing the unseal key file \(path): its mode is \(String(mode & 0o777, radix: 8)), it must be 600")
        }
    }

    public static func read(_ path: String) throws -> [UInt8] {
        try checkMode(path)
        guard let data = FileManager.default.contents(atPath: path),
              let text = String(data: data, encoding: .utf8),
              let key = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), key.count == 32 else {
            throw TesseraError.badRequest("the unseal key file \(path) does not hold a base64 32-byte key")
        }
        return Array(key)
    }

    public static func write(_ key: [UInt8], to path: String) throws {
        do {
            try SecretFile.create(path, Array((Data(key).base64EncodedString() + "\n").utf8))
        } catch TesseraError.conflict {
            throw TesseraError.conflict("the unseal key file \(path) exists already")
        } catch {
            throw TesseraError.unavailable("cannot write the unseal key file \(path)")
        }
    }
}
