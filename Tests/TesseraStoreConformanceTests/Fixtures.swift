// Builders of the domain records that the suite stores, and the small tools its tests share:
// fixed times (whole microseconds, so that they survive every engine's time type), unique ids,
// the outcome of a call as a comparable value, and running one operation many times at once.
import Foundation
import Synchronization
import TesseraCore
import TesseraCrypto
import TesseraStore

/// Fixed moments: `T.at(s)` is `s` seconds after a whole-second origin, exact to the microsecond.
enum T {
    static let origin = Date(timeIntervalSince1970: 1_750_000_000)
    static func at(_ seconds: Double) -> Date { origin.addingTimeInterval(seconds) }
}

/// Item ids are chosen by the caller (as the engines do); these never repeat within a run.
enum IDs {
    private static let counter = Atomic<Int64>(1000)
    static func next() -> Int64 { counter.add(1, ordering: .relaxed).newValue }
}

/// What a call did, in a form `#expect` can compare: `.ok`, or the kind of error it threw.
enum Outcome: Equatable, CustomStringConvertible {
    case ok
    /// `TesseraError.code` ("Conflict", "NotFound", …), or the type of another error.
    case failed(String)

    static let conflict = Outcome.failed("Conflict")
    static let notFound = Outcome.failed("NotFound")

    var description: String {
        switch self {
        case .ok: "ok"
        case .failed(let kind): kind
        }
    }

    var isFailure: Bool { self != .ok }
}

func outcome(_ body: () async throws -> Void) async -> Outcome {
    do {
        try await body()
        return .ok
    } catch let error as TesseraError {
        return .failed(error.code)
    } catch {
        return .failed(String(describing: type(of: error)))
    }
}

/// Runs `operation(i)` for `i` in `0..<count`, all at once, and returns each outcome by `i`.
func concurrently<R: Sendable>(_ count: Int,
                               _ operation: @escaping @Sendable (Int) async throws -> R) async -> [Result<R, any Error>] {
    await withTaskGroup(of: (Int, Result<R, any Error>).self) { group in
        for i in 0..<count {
            group.addTask {
                do { return (i, .success(try await operation(i))) } catch { return (i, .failure(error)) }
            }
        }
        var results = [Result<R, any Error>?](repeating: nil, count: count)
        for await (i, result) in group { results[i] = result }
        return results.compactMap { $0 }
    }
}

func isConflict(_ result: Result<some Sendable, any Error>) -> Bool {
    if case .failure(let error) = result, case TesseraError.conflict = error { return true }
    return false
}

/// A value shared between a test and the closures it hands to the store.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func get() -> Value { value.withLock { $0 } }
    func update<R: Sendable>(_ change: @Sendable (inout Value) -> R) -> R { value.withLock { change(&$0) } }
}

/// The bytes stored as a version's "ciphertext": the store never opens it, so any marker will do.
func sealed(_ text: String) -> [UInt8] { Array(text.utf8) }

enum Make {
    static func item(_ path: String, id: Int64 = IDs.next(), maxVersions: Int = 10, deleteProtection: Bool = false,
                     lastVersion: Int = 1, type: ItemType = .staticSecret, at time: Date = T.origin) throws -> Item {
        Item(id: id, path: try ItemPath(path), type: type, description: "d:" + path, tags: ["t1", "t2"],
             maxVersions: maxVersions, deleteProtection: deleteProtection, lastVersion: lastVersion,
             createdAt: time, updatedAt: time, customMetadata: ["owner": "team"], casRequired: false,
             deleteVersionAfter: "0s")
    }

    static func version(_ item: Item, _ number: Int, value: String? = nil, term: UInt32 = 1,
                        at time: Date = T.origin) -> ItemVersion {
        ItemVersion(itemId: item.id, version: number, ciphertext: sealed(value ?? "\(item.path)#\(number)"), keyTerm: term,
                    createdBy: "p-writer", createdAt: time)
    }

    static func target(_ name: String, kind: Target.Kind = .database, term: UInt32 = 1) -> Target {
        Target(name: name, kind: kind, settings: ["host": "db.example", "port": "5432"],
               credentialCiphertext: sealed("cred:" + name), keyTerm: term, createdAt: T.origin)
    }

    static func producer(_ path: String, target: String, maxLeases: Int = 0) throws -> Producer {
        Producer(path: try ItemPath(path), targetName: target, creationStatements: "CREATE ROLE {{name}}",
                 revocationStatements: "", userTTL: 3600, maxTTL: 86400, passwordLength: 24, usernamePrefix: "tessera_",
                 maxLeases: maxLeases, createdAt: T.origin)
    }

    static func lease(_ id: String, producer: String, state: Lease.State = .pending, expiresAt: Date = T.at(3600),
                      nextAttemptAt: Date? = nil) -> Lease {
        Lease(id: id, producer: producer, username: "u_" + id.replacingOccurrences(of: "/", with: "_"), accessId: "p-issuer",
              issuedAt: T.origin, expiresAt: expiresAt, maxExpiresAt: T.at(86400), state: state,
              nextAttemptAt: nextAttemptAt)
    }

    static func rotator(_ item: Item, target: String, autoRotate: Bool = true, next: Date? = T.at(60),
                        status: Rotator.Status = .notRotated) -> Rotator {
        Rotator(itemId: item.id, path: item.path, kind: .postgres, targetName: target, username: "app",
                credentials: .target, policy: PasswordPolicy(length: 20, special: false), customCommand: "",
                verifyPort: 0, autoRotate: autoRotate, intervalMinutes: 60, rotationHour: nil, nextRotationAt: next,
                status: status, createdAt: T.origin)
    }

    static func pending(_ text: String = "new-password", term: UInt32 = 1, at time: Date = T.at(10)) -> PendingRotation {
        PendingRotation(ciphertext: sealed(text), keyTerm: term, startedAt: time, actor: "p-rotator")
    }

    static func authMethod(_ name: String, accessId: String, at time: Date = T.origin) -> AuthMethod {
        AuthMethod(accessId: accessId, name: name, type: "api_key", keyHash: Array(repeating: 7, count: 32),
                   keySalt: Array(repeating: 9, count: 16), tokenTTLMinutes: 60, boundCIDRs: ["10.0.0.0/8"],
                   accessExpires: T.at(86400), createdAt: time)
    }

    static func role(_ name: String, rules: [(String, Set<Capability>, RuleType)] = []) throws -> Role {
        Role(name: name, description: "role " + name,
             rules: try rules.map { Rule(pattern: try PathPattern($0.0), capabilities: $0.1, type: $0.2) },
             auditAccess: .own, createdAt: T.origin)
    }

    static func token(_ hash: String, accessId: String, expiresAt: Date = T.at(3600)) -> TokenRecord {
        TokenRecord(tokenHash: hash, accessId: accessId, issuedAt: T.origin, expiresAt: expiresAt, clientAddress: "10.1.2.3")
    }

    static func mount(_ path: String, folder: String, kind: VaultMount.Kind = .kvV2, usc: String? = nil) throws -> VaultMount {
        VaultMount(path: path, kind: kind, folder: try ItemPath(folder: folder), description: "mount " + path, maxVersions: 5,
                   casRequired: true, deleteVersionAfter: "1h", accessor: "kv_" + path.dropLast(), uuid: "uuid-" + path,
                   createdAt: T.origin, uscName: usc)
    }

    static func event(_ sequence: Int64, time: Date? = nil, accessId: String = "p-alice", action: String = "get_secret_value",
                      path: String = "/prod/db", result: AuditResult = .allowed) -> AuditEvent {
        var e = AuditEvent(time: time ?? T.at(Double(sequence)), requestId: "req-\(sequence)", interface: .native,
                           authMethodType: "api_key", accessId: accessId, actorName: "alice", clientAddress: "10.0.0.1",
                           action: action, path: path, result: result, status: result == .allowed ? 200 : 403,
                           durationMicros: 1234 + sequence, error: result == .allowed ? "" : "denied",
                           parameters: ["version": "\(sequence)", "value_hmac": "hmac-\(sequence)"])
        e.sequence = sequence
        e.prevHash = "h\(sequence - 1)"
        e.hash = "h\(sequence)"
        return e
    }

    static func sealConfig(_ keyring: String = "keyring-1") -> SealConfig {
        SealConfig(shares: 5, threshold: 3, encryptedKeyring: sealed(keyring), createdAt: T.origin)
    }
}

extension Store {
    /// Creates an item with its first version and returns it.
    func createItem(_ path: String, maxVersions: Int = 10, deleteProtection: Bool = false) async throws -> Item {
        let item = try Make.item(path, maxVersions: maxVersions, deleteProtection: deleteProtection)
        try await createItem(item, firstVersion: Make.version(item, 1))
        return item
    }

    /// Appends versions to `item`, one at a time, up to number `last`; returns the item as stored afterwards.
    @discardableResult
    func appendVersions(_ item: Item, through last: Int) async throws -> Item {
        var current = try await self.item(at: item.path) ?? item
        while current.lastVersion < last {
            let next = current.lastVersion + 1
            try await appendVersion(Make.version(current, next, at: T.at(Double(next))), expectedLastVersion: current.lastVersion,
                                    updatedAt: T.at(Double(next)))
            current.lastVersion = next
        }
        return try await self.item(at: item.path) ?? current
    }

    func versionNumbers(_ item: Item) async throws -> [Int] {
        try await versions(itemId: item.id).map(\.version)
    }
}

/// What the engines do to write a new version (StaticSecretEngine.update): read the item,
/// append after its last version, and read again on a conflict. Returns the number written.
@discardableResult
func appendWithRetry(_ store: any Store, path: ItemPath, value: String) async throws -> Int {
    for _ in 0..<10_000 {
        guard let item = try await store.item(at: path) else { throw TesseraError.notFound("\(path)") }
        let next = item.lastVersion + 1
        do {
            try await store.appendVersion(Make.version(item, next, value: value), expectedLastVersion: item.lastVersion,
                                          updatedAt: T.at(Double(next)))
            return next
        } catch TesseraError.conflict {
            await Task.yield()
        }
    }
    throw TesseraError.conflict("no append succeeded after 10000 attempts")
}
