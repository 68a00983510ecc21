// The rotation engine: rotated secrets (an item whose versions hold {"username","password"},
// plus a rotator row with the schedule and state) and the rotation protocol:
//   1. generate a new password and record it, sealed, as the pending rotation;
//   2. apply it on the target;  3. verify it with a new login;  4. store it as a new version.
// If 2 or 3 fails, the previous password is restored and verified, the error is recorded and
// the current version stays as it was. A pending record left by a crash is resolved by
// `recoverInterrupted`: whichever password logs in is what Tessera keeps.
import Foundation
import Synchronization
import TesseraCore
import TesseraCrypto
import TesseraStore

/// The value of a rotated secret at one version.
public struct RotatedValue: Sendable {
    public var username: String
    public var password: String
    public var version: Int
}

/// What to create or change. nil fields keep their current (or default) value.
public struct RotatorSettings: Sendable {
    public var username: String?
    public var password: String?
    public var credentials: Rotator.Credentials?
    public var policy: PasswordPolicy?
    public var customCommand: String?
    public var verifyPort: Int?
    public var autoRotate: Bool?
    public var intervalDays: Int?
    public var intervalMinutes: Int?
    public var rotationHour: Int?
    public var description: String?
    public var tags: [String]?
    public var maxVersions: Int?
    public var deleteProtection: Bool?
    public var skipDryRun = false

    public init() {}

    /// Whether these settings change what the rotated secret acts on: the account, who changes
    /// its password, the rules of its passwords, the port that verifies it, or the command that
    /// changes it. Such a change
    /// needs the rights of creating the rotated secret, not only of updating it.
    public func changesWhatRotates(_ r: Rotator) -> Bool {
        (username.map { !$0.utf8.elementsEqual(r.username.utf8) } ?? false)
            || (policy.map { $0 != r.policy } ?? false)
            || (credentials.map { $0 != r.credentials } ?? false)
            || (verifyPort.map { $0 != r.verifyPort } ?? false)
            || (customCommand.map { $0 != r.customCommand } ?? false)
    }
}

public struct RotationEngine: Sendable {
    let store: any Store
    let seal: SealManager
    let connectors: ConnectorEngine
    let secrets: StaticSecretEngine
    let now: @Sendable () -> Date
    let inFlight = InFlightRotations()
    let observer: any EngineObserver
    /// Claims on rotations in the shared store; nil: no claims.
    let claims: WorkClaims?
    /// A pause between applying a password and storing it. Only for crash tests.
    let pauseAfterApply: Duration?

    public init(store: any Store, seal: SealManager, connectors: ConnectorEngine, secrets: StaticSecretEngine,
                now: @escaping @Sendable () -> Date = Date.init, pauseAfterApply: Duration? = nil,
                observer: any EngineObserver = NoEngineObserver(), claims: WorkClaims? = nil) {
        self.observer = observer
        self.claims = claims
        self.store = store
        self.seal = seal
        self.connectors = connectors
        self.secrets = secrets
        self.now = now
        self.pauseAfterApply = pauseAfterApply
    }

    public static func pendingAAD(_ itemId: Int64) -> [UInt8] { Array("tessera/rotation-pending/v1/\(itemId)".utf8) }

    // MARK: Creating and changing

    public func create(path: ItemPath, kind: Rotator.Kind, targetName: String, settings s: RotatorSettings, actor: String) async throws -> Rotator {
        let keyring = try seal.keyring()
        let target = try await connectors.target(named: targetName)
        try Self.checkTarget(target, for: kind)
        guard let username = s.username, !username.isEmpty, username.count <= 128, !username.contains(":"), !username.contains("\n") else {
            throw TesseraError.badRequest("rotated-username is required (at most 128 characters, no ':' or newline)")
        }
        let credentials = s.credentials ?? .target
        let password = s.password ?? ""
        if credentials == .user, password.isEmpty {
            throw TesseraError.badRequest("rotated-password is required with use-user-creds")
        }
        if kind == .ssh, credentials == .user, (s.customCommand ?? "").isEmpty {
            throw TesseraError.badRequest("use-user-creds over SSH needs rotator-custom-cmd: chpasswd must run as a privileged user")
        }
        let t = now()
        let id = Int64.random(in: 1..<(1 << 53))
        var rotator = Rotator(itemId: id, path: path, kind: kind, targetName: target.name, username: username, credentials: credentials,
                              policy: s.policy ?? PasswordPolicy(), customCommand: s.customCommand ?? "", verifyPort: s.verifyPort ?? 0,
                              autoRotate: s.autoRotate ?? false, intervalMinutes: 0, rotationHour: nil, nextRotationAt: nil, createdAt: t)
        try Self.applySchedule(s, to: &rotator)
        try rotator.policy.validate()
        rotator.nextRotationAt = rotator.nextRotation(after: t)
        if !s.skipDryRun {
            do {
                try await AccountPasswordChanger(rotator: rotator, target: target, connectors: connectors).dryRun(current: password)
            } catch let e as TesseraError {
                throw TesseraError.badRequest("the dry run failed: \(e.message)")
            }
        }
        let item = Item(id: id, path: path, type: .rotatedSecret, description: s.description ?? "", tags: s.tags ?? [],
                        maxVersions: try StaticSecretEngine.validMaxVersions(s.maxVersions), deleteProtection: s.deleteProtection ?? false,
                        lastVersion: 1, createdAt: t, updatedAt: t)
        let first = try secrets.seal(Self.valueJSON(username, password), itemId: id, version: 1, keyring: keyring, actor: actor, at: t)
        try await store.createRotatedSecret(item, firstVersion: first, rotator: rotator)
        return rotator
    }

    /// Changes settings. A new `password` is stored as a new version (the account's password
    /// changed outside Tessera); it is not applied on the target.
    public func update(path: ItemPath, settings s: RotatorSettings, actor: String) async throws -> Rotator {
        let keyring = try seal.keyring()
        var (item, rotator) = try await get(path)
        if let u = s.username {
            guard !u.isEmpty, u.count <= 128, !u.contains(":"), !u.contains("\n") else { throw TesseraError.badRequest("invalid rotated-username") }
            rotator.username = u
        }
        if let c = s.credentials { rotator.credentials = c }
        if let p = s.policy { rotator.policy = p }
        if let c = s.customCommand { rotator.customCommand = c }
        if let v = s.verifyPort { rotator.verifyPort = v }
        if let a = s.autoRotate { rotator.autoRotate = a }
        try Self.applySchedule(s, to: &rotator)
        try rotator.policy.validate()
        if s.autoRotate != nil || s.intervalDays != nil || s.intervalMinutes != nil || s.rotationHour != nil {
            rotator.nextRotationAt = rotator.nextRotation(after: now())
        }
        if s.description != nil || s.tags != nil || s.maxVersions != nil || s.deleteProtection != nil {
            if let d = s.description { item.description = d }
            if let t = s.tags { item.tags = t }
            if let m = s.maxVersions { item.maxVersions = try StaticSecretEngine.validMaxVersions(m) }
            if let p = s.deleteProtection { item.deleteProtection = p }
            try await store.updateItemMetadata(item)
        }
        var version: ItemVersion?
        if s.password != nil || s.username != nil {
            let current = try await currentValue(item, keyring: keyring)
            let t = now()
            version = try secrets.seal(Self.valueJSON(rotator.username, s.password ?? current.password), itemId: item.id,
                                       version: item.lastVersion + 1, keyring: keyring, actor: actor, at: t)
        }
        try await store.finishRotation(rotator, version: version, expectedLastVersion: item.lastVersion)
        return rotator
    }

    static func applySchedule(_ s: RotatorSettings, to r: inout Rotator) throws {
        if let minutes = s.intervalMinutes, minutes > 0 {
            guard minutes <= 525_600 else { throw TesseraError.badRequest("rotation-interval-minutes must be at most 525600") }
            r.intervalMinutes = minutes
            r.rotationHour = nil
        } else if let days = s.intervalDays, days > 0 {
            guard (1...365).contains(days) else { throw TesseraError.badRequest("rotation-interval must be between 1 and 365 days") }
            r.intervalMinutes = try InputNumber.product(days, 1440, field: "rotation-interval", in: 0...52_560_000)
            r.rotationHour = s.rotationHour ?? r.rotationHour ?? 14
        } else if let hour = s.rotationHour, r.rotationHour != nil || r.intervalMinutes == 0 {
            r.rotationHour = hour
        }
        if let hour = r.rotationHour, !(0...23).contains(hour) { throw TesseraError.badRequest("rotation-hour must be between 0 and 23") }
        if r.autoRotate, r.intervalMinutes == 0 {
            throw TesseraError.badRequest("auto-rotate needs rotation-interval (days) or rotation-interval-minutes")
        }
        if r.intervalMinutes > 0, r.rotationHour == nil, r.intervalMinutes % 1440 == 0, s.intervalMinutes == nil, s.intervalDays == nil {
            r.rotationHour = 14
        }
    }

    static func checkTarget(_ target: Target, for kind: Rotator.Kind) throws {
        switch (kind, target.kind) {
        case (.postgres, .database), (.ssh, .ssh): return
        default: throw TesseraError.badRequest("target \(target.name) is not a \(kind == .postgres ? "database" : "SSH") target")
        }
    }

    static func valueJSON(_ username: String, _ password: String) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: ["username": username, "password": password], options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: Reading

    public func get(_ path: ItemPath) async throws -> (Item, Rotator) {
        let item = try await secrets.item(path)
        guard item.type == .rotatedSecret, let r = try await store.rotator(itemId: item.id) else {
            throw TesseraError.badRequest("item \(path) is not a rotated secret")
        }
        return (item, r)
    }

    public func list() async throws -> [Rotator] { try await store.rotators() }

    /// The value at `version` (nil or 0: the current one).
    public func read(_ path: ItemPath, version: Int?) async throws -> RotatedValue {
        let keyring = try seal.keyring()
        let (item, _) = try await get(path)
        if let version, version > 0 {
            guard let v = try await store.version(itemId: item.id, number: version), v.isLive else {
                throw TesseraError.notFound("version \(version) of \(path) not found")
            }
            return try Self.decode(try await secrets.open(v, item: item, keyring: keyring), version: version)
        }
        return try await currentValue(item, keyring: keyring)
    }

    func currentValue(_ item: Item, keyring: Keyring) async throws -> RotatedValue {
        guard let v = try await store.version(itemId: item.id, number: item.lastVersion), v.isLive else {
            throw TesseraError.notFound("item \(item.path) has no current version")
        }
        return try Self.decode(try await secrets.open(v, item: item, keyring: keyring), version: v.version)
    }

    static func decode(_ text: String, version: Int) throws -> RotatedValue {
        guard let o = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let u = o["username"] as? String, let p = o["password"] as? String else {
            throw TesseraError.integrity("a rotated value is malformed")
        }
        return RotatedValue(username: u, password: p, version: version)
    }

    // MARK: Rotating

    /// Rotates now. Returns the new version; on failure the previous password is restored, the
    /// error recorded, and the error thrown.
    @discardableResult
    public func rotate(_ path: ItemPath, actor: String) async throws -> Int {
        let (_, rotator) = try await get(path)
        return try await rotate(rotator, actor: actor)
    }

    func rotate(_ start: Rotator, actor: String) async throws -> Int {
        guard inFlight.begin(start.itemId) else { throw TesseraError.conflict("a rotation of \(start.path) is in progress") }
        defer { inFlight.end(start.itemId) }
        // One node at a time rotates a secret: the one holding its claim.
        if let claims, try await claims.take(.rotation, String(start.itemId)) == false {
            throw TesseraError.conflict("a rotation of \(start.path) is in progress on another node")
        }
        do {
            let version = try await rotateHolding(start, actor: actor)
            await claims?.release(.rotation, String(start.itemId))
            observer.rotationFinished(targetType: start.kind.rawValue, success: true)
            return version
        } catch {
            await claims?.release(.rotation, String(start.itemId))
            observer.rotationFinished(targetType: start.kind.rawValue, success: false)
            throw error
        }
    }

    private func rotateHolding(_ start: Rotator, actor: String) async throws -> Int {
        let keyring = try seal.keyring()
        let (item, r) = try await get(start.path)
        guard r.pending == nil else { throw TesseraError.conflict("a rotation of \(r.path) is in progress") }
        let target = try await connectors.target(named: r.targetName)
        let changer = AccountPasswordChanger(rotator: r, target: target, connectors: connectors)
        let current = try await currentValue(item, keyring: keyring)
        let new = SecureRandom.password(r.policy)
        let t = now()
        let sealed = try keyring.seal(Array(new.utf8), aad: Self.pendingAAD(r.itemId))
        // The pending record is durable before the target changes.
        guard try await store.beginRotation(itemId: r.itemId, pending: PendingRotation(ciphertext: sealed.ciphertext, keyTerm: sealed.term,
                                                                                        startedAt: t, actor: actor)) else {
            throw TesseraError.conflict("a rotation of \(r.path) is in progress")
        }
        var failure: String?
        do {
            try await changer.apply(current: current.password, new: new)
        } catch {
            failure = "applying the new password failed: " + Self.describe(error)
        }
        if failure == nil {
            if let pauseAfterApply { try? await Task.sleep(for: pauseAfterApply) }
            do {
                try await changer.verify(password: new)
            } catch {
                failure = "verifying the new password failed: " + Self.describe(error)
            }
        }
        var done = r
        done.pending = nil
        if let failure {
            let (kept, note) = await rollBack(changer, current: current, attempted: new)
            done.status = .failed
            // A custom command could echo its input: never keep either password in the error.
            done.lastError = Self.redact(failure + note, [new, current.password])
            done.failures += 1
            done.nextRotationAt = done.autoRotate ? now().addingTimeInterval(done.retryDelay()) : r.nextRotationAt
            var version: ItemVersion?
            if kept == .attempted {
                // The old password could not be restored but the new one logs in: keep what works.
                version = try secrets.seal(Self.valueJSON(r.username, new), itemId: item.id, version: item.lastVersion + 1,
                                           keyring: keyring, actor: actor, at: now())
            }
            try await store.finishRotation(done, version: version, expectedLastVersion: item.lastVersion)
            throw TesseraError.badGateway("rotation of \(r.path) failed: \(done.lastError)")
        }
        let version = try secrets.seal(Self.valueJSON(r.username, new), itemId: item.id, version: item.lastVersion + 1,
                                       keyring: keyring, actor: actor, at: now())
        done.status = .succeeded
        done.lastError = ""
        done.failures = 0
        done.lastRotationAt = now()
        done.nextRotationAt = done.nextRotation(after: now())
        try await store.finishRotation(done, version: version, expectedLastVersion: item.lastVersion)
        return version.version
    }

    enum Kept { case previous, attempted, unknown }

    /// Restores the previous password and checks that it logs in. If it cannot be restored but
    /// the new one logs in, says so, so that the caller stores the new one.
    func rollBack(_ changer: AccountPasswordChanger, current: RotatedValue, attempted: String) async -> (Kept, String) {
        var restoreError: String?
        do {
            // With the account's own credentials, whichever password is in effect must log in to change it.
            do {
                try await changer.apply(current: attempted, new: current.password)
            } catch where changer.rotator.credentials == .user {
                try await changer.apply(current: current.password, new: current.password)
            }
        } catch {
            restoreError = Self.describe(error)
        }
        if restoreError == nil {
            do {
                try await changer.verify(password: current.password)
                return (.previous, "; the previous password was restored and verified")
            } catch {
                return (.previous, "; the previous password was restored, but logging in with it failed too: " + Self.describe(error))
            }
        }
        if (try? await changer.verify(password: attempted)) != nil {
            return (.attempted, "; restoring the previous password failed (\(restoreError ?? "")), the new password logs in and is kept")
        }
        return (.unknown, "; restoring the previous password failed: \(restoreError ?? "")")
    }

    static func describe(_ error: any Error) -> String {
        (error as? TesseraError)?.message ?? "unexpected error"
    }

    static func redact(_ text: String, _ secrets: [String]) -> String {
        secrets.filter { !$0.isEmpty }.reduce(text) { $0.replacingOccurrences(of: $1, with: "[redacted]") }
    }

    // MARK: Background work

    /// Rotates auto-rotated secrets whose time has come. Returns (path, actor, result) per rotation.
    public func processDue(limit: Int = 20) async throws -> [(path: ItemPath, outcome: Result<Int, TesseraError>)] {
        var out: [(ItemPath, Result<Int, TesseraError>)] = []
        for r in try await store.dueRotations(now: now(), limit: limit) where !inFlight.contains(r.itemId) {
            do {
                out.append((r.path, .success(try await rotate(r, actor: "scheduler"))))
            } catch let e as TesseraError {
                if case .conflict = e { continue }
                out.append((r.path, .failure(e)))
            }
        }
        return out
    }

    /// Resolves pending records that no rotation in this process owns (left by a crash): if the
    /// pending password logs in, it becomes the current version; if the previous one does, the
    /// rotation is recorded as failed. Otherwise the record stays for a later pass.
    public func recoverInterrupted() async throws -> [(path: ItemPath, outcome: Result<Int, TesseraError>)] {
        var out: [(ItemPath, Result<Int, TesseraError>)] = []
        for r in try await store.pendingRotations() where inFlight.begin(r.itemId) {
            defer { inFlight.end(r.itemId) }
            guard let pending = r.pending, inFlight.dueForRecovery(r.itemId, now: now()) else { continue }
            // A rotation in flight on another live node is that node's to finish.
            if let claims, try await claims.take(.rotation, String(r.itemId)) == false { continue }
            defer { if let claims { Task { await claims.release(.rotation, String(r.itemId)) } } }
            // Re-read under the claim: the rotation may have finished meanwhile.
            guard let fresh = try await store.rotator(itemId: r.itemId), fresh.pending == pending else { continue }
            let keyring = try seal.keyring()
            let item = try await secrets.item(r.path)
            let current = try await currentValue(item, keyring: keyring)
            let new = String(decoding: try keyring.open(pending.ciphertext, term: pending.keyTerm, aad: Self.pendingAAD(r.itemId)), as: UTF8.self)
            let changer = AccountPasswordChanger(rotator: r, target: try await connectors.target(named: r.targetName), connectors: connectors)
            var done = r
            done.pending = nil
            if new == current.password {
                done.status = .succeeded
                try await store.finishRotation(done, version: nil, expectedLastVersion: item.lastVersion)
                out.append((r.path, .success(item.lastVersion)))
            } else if (try? await changer.verify(password: new)) != nil {
                let version = try secrets.seal(Self.valueJSON(r.username, new), itemId: item.id, version: item.lastVersion + 1,
                                               keyring: keyring, actor: pending.actor, at: now())
                done.status = .succeeded
                done.lastError = ""
                done.failures = 0
                done.lastRotationAt = now()
                done.nextRotationAt = done.nextRotation(after: now())
                try await store.finishRotation(done, version: version, expectedLastVersion: item.lastVersion)
                out.append((r.path, .success(version.version)))
            } else if (try? await changer.verify(password: current.password)) != nil {
                done.status = .failed
                done.lastError = "the rotation was interrupted by a restart before the new password took effect; the previous password is in effect"
                done.failures += 1
                done.nextRotationAt = done.autoRotate ? now().addingTimeInterval(done.retryDelay()) : r.nextRotationAt
                try await store.finishRotation(done, version: nil, expectedLastVersion: item.lastVersion)
                out.append((r.path, .failure(.badGateway(done.lastError))))
            } else {
                done = r
                done.status = .failed
                done.lastError = "the rotation was interrupted by a restart and neither the previous nor the new password logs in yet; retrying"
                try await store.updateRotator(done)
                out.append((r.path, .failure(.badGateway(done.lastError))))
            }
        }
        return out
    }

    public func count(status: Rotator.Status) async throws -> Int { try await store.countRotators(status: status) }
}

/// Rotations running in this process (one at a time per secret), and when an interrupted
/// rotation was last examined (so an unreachable target is retried every 30 s, not in a loop).
final class InFlightRotations: Sendable {
    private let running = Mutex<Set<Int64>>([])
    private let examined = Mutex<[Int64: Date]>([:])

    func begin(_ id: Int64) -> Bool { running.withLock { $0.insert(id).inserted } }
    func end(_ id: Int64) { _ = running.withLock { $0.remove(id) } }
    func contains(_ id: Int64) -> Bool { running.withLock { $0.contains(id) } }

    func dueForRecovery(_ id: Int64, now: Date) -> Bool {
        examined.withLock { seen in
            if let last = seen[id], now.timeIntervalSince(last) < 30 { return false }
            seen[id] = now
            return true
        }
    }
}
