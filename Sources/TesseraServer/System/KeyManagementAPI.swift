// Key management in Vault's shape: `sys/rotate` (a new keyring term, then the background
// rewrap), `sys/key-status` (the active term and the rewrap's progress), and the rekey of the
// root key's shares (`sys/rekey/init`, `sys/rekey/update`). Every change is audited. Starting,
// reading and cancelling a rekey need a token with sys-rule on /sys/rekey (Vault lets anyone do
// this); submitting an old share needs the nonce, as in Vault, since the shares are the proof.
import Foundation
import Hummingbird
import Synchronization
import TesseraCore
import TesseraCrypto
import TesseraEngines

extension VaultSysAPI {
    func rotate(_ vr: VaultRequest) async throws -> Response {
        try await tessera.run(vr.pipelineCall(action: "rotate_key", auditPath: SystemPath.rotate.value,
                                              checks: [AccessCheck(.update, .system, SystemPath.rotate)])) { caller in
            let term = try await tessera.seal.rotate()
            caller.notes.set("term", String(term))
            tessera.logger.notice("key rotated: new writes use the new term; the rewrap moves stored values to it",
                                  metadata: ["term": "\(term)"])
            tessera.pokeRewrap()
        }
        return VaultResponses.noContent()
    }

    func keyStatus(_ vr: VaultRequest) async throws -> Response {
        let status = try await tessera.run(vr.pipelineCall(action: "key_status", auditPath: SystemPath.keyStatus.value,
                                                           checks: [AccessCheck(.read, .system, SystemPath.keyStatus)])) { _ in
            try await tessera.rewrap.status()
        }
        let terms = status.usage.byTerm.sorted { $0.key < $1.key }.map { (String($0.key), JSON.int(Int64($0.value))) }
        let rewrap = JSON.obj(("active_term", .int(Int64(status.activeTerm))), ("remaining", .int(Int64(status.remaining))),
                              ("total", .int(Int64(status.usage.total))), ("running", .bool(status.running)),
                              ("moved", .int(Int64(status.moved))), ("values_by_term", .object(terms)),
                              ("last_completed_at", status.lastCompletedAt.map { .date($0) } ?? .null),
                              ("last_error", status.lastError.map { .string($0) } ?? .null))
        return VaultResponses.doubled(.obj(("term", .int(Int64(status.activeTerm))), ("install_time", .date(tessera.keyTermInstallTime)),
                                           ("encryptions", .int(0)), ("rewrap", rewrap)), requestId: vr.context.requestId)
    }

    func rekeyStatusJSON(_ p: SealManager.RekeyProgress?) -> JSON {
        let oldThreshold = tessera.seal.status.threshold
        return .obj(("nonce", .string(p?.nonce ?? "")), ("started", .bool(p != nil)), ("t", .int(Int64(p?.threshold ?? 0))),
                    ("n", .int(Int64(p?.shares ?? 0))), ("progress", .int(Int64(p?.given.count ?? 0))),
                    ("required", .int(Int64(oldThreshold))), ("pgp_fingerprints", .null), ("backup", .bool(false)),
                    ("verification_required", .bool(false)))
    }

    func rekeyInit(_ vr: VaultRequest) async throws -> Response {
        switch vr.operation {
        case .read:
            try await tessera.run(vr.pipelineCall(action: "rekey_status", auditPath: SystemPath.rekey.value,
                                                  checks: [AccessCheck(.read, .system, SystemPath.rekey)])) { _ in () }
            return VaultResponses.doubled(rekeyStatusJSON(tessera.seal.rekeyProgress), requestId: vr.context.requestId)
        case .delete:
            try await tessera.run(vr.pipelineCall(action: "rekey_cancel", auditPath: SystemPath.rekey.value,
                                                  checks: [AccessCheck(.update, .system, SystemPath.rekey)])) { _ in
                tessera.seal.rekeyCancel()
            }
            return VaultResponses.noContent()
        default:
            let f = try vr.fields()
            let shares = try f.int("secret_shares", in: 1...255) ?? 0
            let threshold = try f.int("secret_threshold", in: 1...255) ?? 0
            if try f.stringList("pgp_keys")?.isEmpty == false {
                throw TesseraError.badRequest("pgp_keys is not supported: the new shares are returned in clear, once")
            }
            // Refused rather than ignored: a caller that asked to verify the new shares before they
            // take effect must not find them in effect unverified.
            if try f.bool("require_verification") == true {
                throw TesseraError.badRequest("require_verification is not supported: the new shares take effect when the last old share is given")
            }
            let progress = try await tessera.run(vr.pipelineCall(action: "rekey_init", auditPath: SystemPath.rekey.value,
                                                                 checks: [AccessCheck(.update, .system, SystemPath.rekey)])) { caller in
                caller.notes.set("secret_shares", String(shares))
                caller.notes.set("secret_threshold", String(threshold))
                return try tessera.seal.rekeyInit(shares: shares, threshold: threshold)
            }
            return VaultResponses.doubled(rekeyStatusJSON(progress), requestId: vr.context.requestId)
        }
    }

    /// One old share; at the threshold the new shares are returned, once.
    func rekeyUpdate(_ vr: VaultRequest) async throws -> Response {
        let f = try vr.fields()
        let nonce = try f.requiredString("nonce")
        let key = try f.requiredString("key")
        let share: Shamir.Share
        do {
            share = try Shamir.Share(encoded: key)
        } catch {
            throw TesseraError.badRequest("invalid key share: expected a share as printed by operator init or rekey")
        }
        // Once the new root key is stored, the new shares exist nowhere but in this answer: the
        // rekey is audited before it is stored (`rekey_commit`), and the shares are returned even
        // if the request's own audit event then cannot be written.
        let committed = Mutex<(progress: SealManager.RekeyProgress, shares: [Shamir.Share])?>(nil)
        let context = vr.context
        let outcome: (progress: SealManager.RekeyProgress, newShares: [Shamir.Share]?)
        do {
            outcome = try await tessera.run(vr.pipelineCall(action: "rekey_update", auditPath: SystemPath.rekey.value,
                                                            needsIdentity: false)) { caller in
                let result = try await tessera.seal.rekeyUpdate(share: share, nonce: nonce) { newRoot in
                    try tessera.stageUnsealKeyFile(newRoot)
                    var event = AuditEvent(time: tessera.now(), requestId: context.requestId, interface: context.interface,
                                           clientAddress: context.clientAddress, action: "rekey_commit", path: SystemPath.rekey.value,
                                           result: .allowed, status: 200)
                    event.parameters = ["note": "the new root key is stored next"]
                    try await tessera.audit.record(event)
                }
                if let shares = result.newShares {
                    committed.withLock { $0 = (result.progress, shares) }
                    tessera.commitStagedUnsealKeyFile()
                }
                caller.notes.set("progress", String(result.progress.given.count))
                if result.newShares != nil {
                    caller.notes.set("complete", "true")
                    caller.notes.set("secret_shares", String(result.progress.shares))
                    caller.notes.set("secret_threshold", String(result.progress.threshold))
                }
                return result
            }
        } catch {
            guard let done = committed.withLock({ $0 }) else { throw error }
            tessera.logger.error("the rekey is stored but its final audit event was not written; the new shares are returned",
                                 metadata: ["request_id": "\(context.requestId)"])
            outcome = (done.progress, done.shares)
        }
        guard let shares = outcome.newShares else { return VaultResponses.doubled(rekeyStatusJSON(outcome.progress), requestId: vr.context.requestId) }
        tessera.logger.notice("rekeyed: the old key shares no longer unseal", metadata: ["shares": "\(shares.count)"])
        let encoded = shares.map { JSON.string($0.encoded) }
        let hex = shares.map { JSON.string(([$0.x] + $0.y).hexString) }
        // Top-level fields for `sys/rekey` clients, and the same under `data` for `sys/rotate/root`.
        return VaultResponses.doubled(.obj(("complete", .bool(true)), ("nonce", .string(outcome.progress.nonce)), ("keys", .array(hex)),
                                           ("keys_base64", .array(encoded)), ("pgp_fingerprints", .null), ("backup", .bool(false)),
                                           ("verification_required", .bool(false)), ("verification_nonce", .string(""))),
                                      requestId: vr.context.requestId)
    }
}

extension Tessera {
    /// Before a rekey is stored: the new root key is written next to the auto-unseal key file
    /// (`<file>.rekey`, mode 0600). A failure here stops the rekey with nothing changed.
    func stageUnsealKeyFile(_ root: [UInt8]) throws {
        guard let keyFile = options.unsealKeyFile else { return }
        let staged = keyFile + ".rekey"
        try? FileManager.default.removeItem(atPath: staged)
        do {
            try UnsealKeyFile.write(root, to: staged)
        } catch {
            throw TesseraError.unavailable("the rekey was not made: the new unseal key cannot be written next to \(keyFile)")
        }
    }

    /// After a rekey is stored: the staged file replaces the key file atomically (rename(2)).
    /// Should that fail, the new key stays in `<file>.rekey` and the log says so.
    func commitStagedUnsealKeyFile() {
        guard let keyFile = options.unsealKeyFile else { return }
        if rename(keyFile + ".rekey", keyFile) != 0 {
            logger.critical("the rekey is stored but the unseal key file was not replaced: move \(keyFile).rekey to \(keyFile) before the next start",
                            metadata: ["errno": "\(errno)"])
        }
    }

    /// The key term's install time (Vault's `install_time`): when the active term was added, or
    /// the installation's time for a keyring written before terms recorded it.
    var keyTermInstallTime: Date {
        (try? seal.keyring()).flatMap { $0.installedAt[$0.activeTerm] } ?? seal.installTime
    }
}
