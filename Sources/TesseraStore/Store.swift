// The storage contract. Engines and the server depend only on these protocols; the SQLite
// engine (embedded default) and a PostgreSQL engine (shared by several nodes) implement them.
// Nothing here assumes one process or one file: conflicts are reported, not prevented by locks
// held across calls, so that several server nodes can share one database.
import Foundation
import TesseraCore
import TesseraCrypto

/// How far an acknowledged write is guaranteed to survive.
public enum Durability: String, Sendable {
    /// Survives the server process being killed (kill -9, crash): the commit is written to the
    /// OS before it is acknowledged. An OS crash or power loss can lose the last commits.
    case process
    /// Also survives an OS crash or power loss: every commit is fsynced before it is acknowledged.
    case fsync
}

/// The seal configuration (one per installation).
public protocol SealRepository: Sendable {
    func sealConfig() async throws -> SealConfig?
    /// Stores the seal configuration; throws `conflict` if one exists already.
    func createSealConfig(_ config: SealConfig) async throws
    /// Replaces the encrypted keyring (after a key rotation).
    func updateEncryptedKeyring(_ encrypted: [UInt8]) async throws
    /// Replaces the encrypted keyring only if it is still `expected` (check-and-set: two nodes
    /// rotating at once must not lose a term); false if it changed.
    func replaceEncryptedKeyring(_ encrypted: [UInt8], expected: [UInt8]) async throws -> Bool
    /// Replaces the share count, threshold and keyring encryption together (after a rekey).
    func replaceSealConfig(_ config: SealConfig) async throws
}

/// A stored encrypted value, as the rewrap sees it.
public struct SealedValue: Sendable {
    public enum Owner: Sendable, Equatable {
        /// An item version; its AAD names the item, version and term.
        case itemVersion(itemId: Int64, version: Int)
        /// A target's credential; its AAD names the target.
        case target(name: String)
        /// A password being rotated; its AAD names the item.
        case pendingRotation(itemId: Int64)
    }
    public var owner: Owner
    public var ciphertext: [UInt8]
    public var term: UInt32

    public init(owner: Owner, ciphertext: [UInt8], term: UInt32) {
        self.owner = owner
        self.ciphertext = ciphertext
        self.term = term
    }
}

/// How many stored values each key term seals (item versions, target credentials, pending rotations).
public struct KeyTermUsage: Sendable, Equatable {
    public var byTerm: [UInt32: Int] = [:]
    public init(byTerm: [UInt32: Int] = [:]) { self.byTerm = byTerm }
    public var total: Int { byTerm.values.reduce(0, +) }
    public func below(_ term: UInt32) -> Int { byTerm.filter { $0.key < term }.values.reduce(0, +) }
}

/// How far each audit device has been fed (the last sequence it acknowledged), and the devices
/// created through the API (their JSON settings), which config-declared devices never need.
public protocol AuditDeviceRepository: Sendable {
    func auditDeviceCursor(_ name: String) async throws -> Int64?
    func setAuditDeviceCursor(_ name: String, _ sequence: Int64) async throws
    func storedAuditDevices() async throws -> [(name: String, config: String)]
    func storeAuditDevice(name: String, config: String, at: Date) async throws
    /// Removes an API-created device and its cursor (a new device of that name starts afresh).
    func removeStoredAuditDevice(_ name: String) async throws -> Bool
}

/// Moving stored values to the newest key term.
public protocol KeyTermRepository: Sendable {
    func keyTermUsage() async throws -> KeyTermUsage
    /// Re-seals up to `limit` values sealed under a term older than `term`, in one transaction:
    /// `reseal` returns the new ciphertext (under `term`). A value changed meanwhile is skipped
    /// and found again by the next batch. Returns how many values moved.
    func rewrapBatch(below term: UInt32, limit: Int, _ reseal: @escaping @Sendable (SealedValue) throws -> [UInt8]) async throws -> Int
}

/// Items and their versions.
public protocol ItemRepository: Sendable {
    /// Inserts an item with its first version; throws `conflict` if the path exists.
    func createItem(_ item: Item, firstVersion: ItemVersion?) async throws
    func item(at path: ItemPath) async throws -> Item?
    /// Appends a version if the item's last version is still `expectedLastVersion` (else `conflict`),
    /// and removes the oldest versions beyond the item's `maxVersions` — unless the item has delete
    /// protection, which keeps every version.
    func appendVersion(_ version: ItemVersion, expectedLastVersion: Int, updatedAt: Date) async throws
    func version(itemId: Int64, number: Int) async throws -> ItemVersion?
    /// The item at `path` and its version `number` (0: the item's last version) in one read; the
    /// version is nil if it is not kept. Nil if there is no item at `path`.
    func itemAndVersion(at path: ItemPath, number: Int) async throws -> (item: Item, version: ItemVersion?)?
    /// All kept versions, oldest first.
    func versions(itemId: Int64) async throws -> [ItemVersion]
    /// Items whose path starts with `prefix` ("/" for all), ordered by path.
    func items(withPrefix prefix: String, limit: Int) async throws -> [Item]
    /// Deletes an item and all of its versions; returns false if it did not exist.
    func deleteItem(id: Int64) async throws -> Bool
    /// Destroys one version: marks it deleted and destroyed and erases its ciphertext.
    func deleteVersion(itemId: Int64, number: Int, at: Date) async throws -> Bool
    /// Soft-deletes (`at` set) or undeletes (`at` nil) versions that are not destroyed.
    func setVersionsDeleted(itemId: Int64, numbers: [Int], at: Date?) async throws
    /// Destroys versions: erases their ciphertext for good.
    func destroyVersions(itemId: Int64, numbers: [Int], at: Date) async throws
    /// Updates an item's metadata (max versions, CAS requirement, automatic deletion, custom metadata,
    /// delete protection) and prunes beyond the new max versions unless delete protection is on.
    func updateItemMetadata(_ item: Item) async throws
}

extension ItemRepository {
    /// Two reads; an engine where a round trip costs more answers in one (PostgreSQL).
    public func itemAndVersion(at path: ItemPath, number: Int) async throws -> (item: Item, version: ItemVersion?)? {
        guard let item = try await item(at: path) else { return nil }
        return (item, try await version(itemId: item.id, number: number > 0 ? number : item.lastVersion))
    }
}

/// The Vault-compatible mount table.
public protocol MountRepository: Sendable {
    func createMount(_ mount: VaultMount) async throws
    func mounts() async throws -> [VaultMount]
    /// Changes a mount's description, KV settings, lease TTLs and kind (a KV v1 mount upgraded
    /// to v2); its path, folder and ownership stay.
    func updateMount(_ mount: VaultMount) async throws
    func deleteMount(path: String) async throws -> Bool
    /// Moves the mount at `path` to `mount.path` and `mount.folder`, keeping its settings. With
    /// `itemsFrom`, every item at that folder or under it moves to the same place under
    /// `mount.folder`, in the same transaction: all of it happens, or none. It is a conflict when
    /// `mount.folder` holds anything, or the items that move are not `expectedItems` many (they
    /// changed after the caller authorized them).
    func moveMount(from path: String, to mount: VaultMount, itemsFrom folder: ItemPath?, expectedItems: Int) async throws
}

/// Auth methods, roles, associations and tokens.
public protocol AccessRepository: Sendable {
    func createAuthMethod(_ method: AuthMethod) async throws
    func authMethod(accessId: String) async throws -> AuthMethod?
    func authMethod(name: String) async throws -> AuthMethod?
    func authMethods() async throws -> [AuthMethod]
    /// Deletes the method with its tokens, associations and login roles.
    func deleteAuthMethod(accessId: String) async throws -> Bool
    /// Replaces the method's settings (config, token TTL, bound CIDRs, access expiry); false if
    /// there is no method with this access id. Name, type, key and creation time never change.
    func updateAuthMethod(_ method: AuthMethod) async throws -> Bool
    /// Replaces the method's key hash and salt (a userpass password change); its tokens live on.
    func replaceAuthMethodKey(accessId: String, keyHash: [UInt8], keySalt: [UInt8]) async throws -> Bool

    /// Creates or replaces a login role of an auth method.
    func putAuthMethodRole(_ role: AuthMethodRole) async throws
    func authMethodRole(accessId: String, name: String) async throws -> AuthMethodRole?
    /// The method's login roles, ordered by name (bytes).
    func authMethodRoles(accessId: String) async throws -> [AuthMethodRole]
    func deleteAuthMethodRole(accessId: String, name: String) async throws -> Bool

    func createRole(_ role: Role) async throws
    func role(named name: String) async throws -> Role?
    func roles() async throws -> [Role]
    func deleteRole(named name: String) async throws -> Bool
    /// Replaces the role's rules (and admin scopes) as a whole.
    func updateRole(_ role: Role) async throws

    func createAssociation(_ association: RoleAssociation) async throws
    func associations(accessId: String) async throws -> [RoleAssociation]
    func associations(roleName: String) async throws -> [RoleAssociation]
    func deleteAssociation(id: String) async throws -> Bool

    /// AppRole secret ids, by role (auth method) and the hash of the secret id.
    func createSecretID(_ secretID: SecretIDRecord) async throws
    func secretID(accessId: String, hash: String) async throws -> SecretIDRecord?
    func secretID(accessId: String, accessor: String) async throws -> SecretIDRecord?
    /// The role's secret ids, by accessor.
    func secretIDs(accessId: String) async throws -> [SecretIDRecord]
    /// Spends one login of a live secret id, atomically: nil when it is unknown, expired or
    /// used up (concurrent logins never spend the same last use twice). Returns it after the use.
    func useSecretID(accessId: String, hash: String, now: Date) async throws -> SecretIDRecord?
    func deleteSecretID(accessId: String, accessor: String) async throws -> Bool
    /// Removes secret ids that expired before `cutoff`; returns how many.
    func purgeExpiredSecretIDs(before cutoff: Date) async throws -> Int

    func createToken(_ token: TokenRecord) async throws
    func token(hash: String) async throws -> TokenRecord?
    /// The token whose hash starts with `hashPrefix` (a token's accessor is the first 24 hex
    /// digits of its hash); nil when none or more than one does.
    func token(hashPrefix: String) async throws -> TokenRecord?
    /// The hashes of the live tokens created by the token with this hash.
    func childTokens(parentHash: String) async throws -> [String]
    /// The hashes of tokens neither revoked nor expired at `now`, in hash order, at most `limit`.
    func liveTokenHashes(now: Date, limit: Int) async throws -> [String]
    func revokeToken(hash: String) async throws -> Bool
    /// Moves a live token's expiry; returns false if it is unknown or revoked.
    /// Spends one use of a token limited by use count, atomically: the uses left after it, or nil
    /// when the token has none left, is revoked, or has no limit. Spending the last use revokes it.
    func spendTokenUse(hash: String) async throws -> Int?
    func renewToken(hash: String, expiresAt: Date) async throws -> Bool
    func revokeTokens(accessId: String) async throws
    /// Removes tokens that expired before `cutoff`; returns how many.
    func purgeExpiredTokens(before cutoff: Date) async throws -> Int

    /// A number that changes whenever roles, rules, associations or auth methods change, so that
    /// caches of authorization data can tell when they are stale (also across server nodes).
    func accessGeneration() async throws -> Int64
}

/// Targets and the connectors that use them.
public protocol ConnectorRepository: Sendable {
    func createTarget(_ target: Target) async throws
    func target(named name: String) async throws -> Target?
    /// A target's number (Akeyless's `target_id`), stable for the target's life.
    func targetId(named name: String) async throws -> Int64?
    func targets() async throws -> [Target]
    /// Deletes a target; throws `conflict` while a connector uses it.
    func deleteTarget(named name: String) async throws -> Bool

    func createConnector(_ usc: SecretConnector) async throws
    func connector(named name: String) async throws -> SecretConnector?
    func connectors() async throws -> [SecretConnector]
    /// Deletes a connector; throws `conflict` while a Vault mount uses it.
    func deleteConnector(named name: String) async throws -> Bool
}

/// Dynamic-secret producers and their leases. Due leases are found by indexed queries, never by
/// loading leases into memory.
public protocol LeaseRepository: Sendable {
    func createProducer(_ producer: Producer) async throws
    func producer(path: String) async throws -> Producer?
    func producers() async throws -> [Producer]
    /// Deletes a producer; throws `conflict` while it has leases that are not revoked.
    func deleteProducer(path: String) async throws -> Bool

    /// Inserts a lease if the producer has fewer than `limit` live leases (0 = no limit); returns false at the limit.
    func insertLease(_ lease: Lease, limit: Int) async throws -> Bool
    func lease(id: String) async throws -> Lease?
    func updateLease(_ lease: Lease) async throws
    /// Leases whose id starts with `prefix`, optionally in one state, ordered by id.
    func leases(prefix: String, state: Lease.State?, limit: Int) async throws -> [Lease]
    /// Active leases past their expiry and revoking leases whose retry time has come.
    func dueLeases(now: Date, limit: Int) async throws -> [Lease]
    func countLeases(state: Lease.State) async throws -> Int
}

/// Rotated secrets: their settings and state (their values are item versions). Due rotations are
/// found by an indexed query on the next rotation time.
public protocol RotationRepository: Sendable {
    /// Inserts the item, its first version and its rotator atomically.
    func createRotatedSecret(_ item: Item, firstVersion: ItemVersion, rotator: Rotator) async throws
    func rotator(itemId: Int64) async throws -> Rotator?
    func rotators() async throws -> [Rotator]
    /// Replaces the rotator's settings and state.
    func updateRotator(_ rotator: Rotator) async throws
    /// Records the pending rotation if none is pending; returns false if one is.
    func beginRotation(itemId: Int64, pending: PendingRotation) async throws -> Bool
    /// Atomically appends `version` (if any; `expectedLastVersion` must still be the item's last)
    /// and stores the rotator's new state, which clears the pending record.
    func finishRotation(_ rotator: Rotator, version: ItemVersion?, expectedLastVersion: Int) async throws
    /// Auto-rotated secrets whose next rotation time has come and that have no pending rotation.
    func dueRotations(now: Date, limit: Int) async throws -> [Rotator]
    /// Rotators with a pending record (a rotation in flight, or interrupted by a crash).
    func pendingRotations() async throws -> [Rotator]
    func countRotators(status: Rotator.Status) async throws -> Int
}

/// A server node sharing the store, as it last reported itself.
public struct NodeRecord: Sendable, Equatable {
    /// Fresh for every start of a server process.
    public var id: String
    public var hostname: String
    /// The address clients use (Vault's `api_address`).
    public var apiAddress: String
    public var version: String
    public var startedAt: Date
    public var heartbeatAt: Date

    public init(id: String, hostname: String, apiAddress: String, version: String, startedAt: Date, heartbeatAt: Date) {
        self.id = id
        self.hostname = hostname
        self.apiAddress = apiAddress
        self.version = version
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
    }
}

/// The nodes sharing the store, and claims on background work: a piece of work (`kind`, `key`:
/// revoking one lease, one rotation) is done by the node that holds its claim. A claim is
/// free again when its holder releases it, when it expires, or when its holder stops sending
/// heartbeats, so a dead node's work is taken over within a bounded time.
public protocol ClusterRepository: Sendable {
    /// Inserts or replaces the node's record.
    func registerNode(_ node: NodeRecord) async throws
    /// Moves the node's heartbeat; false if its record is gone (it was removed as dead).
    func heartbeat(nodeId: String, at: Date) async throws -> Bool
    /// Every registered node, ordered by API address.
    func nodes() async throws -> [NodeRecord]
    /// Removes the records of nodes whose last heartbeat is before `cutoff`; returns how many.
    func removeNodes(heartbeatBefore cutoff: Date) async throws -> Int
    /// Removes one node's record (its claims are then free).
    func removeNode(id: String) async throws
    /// Takes the claim on (`kind`, `key`) for `node` until `until`. It succeeds if nobody holds
    /// it, if `node` holds it already (the claim is extended), if the holder's claim ended
    /// before `now`, or if the holder's last heartbeat is before `deadBefore` (or it has no
    /// record). Of concurrent claimers exactly one succeeds.
    func claim(kind: String, key: String, node: String, until: Date, now: Date, deadBefore: Date) async throws -> Bool
    /// Gives a claim up (only the holder's release counts).
    func releaseClaim(kind: String, key: String, node: String) async throws
}

/// Wrapped responses (Vault's response wrapping), each unwrapped at most once.
public protocol WrappingRepository: Sendable {
    /// Stores a wrapped response, and removes those that expired before `now`. Throws
    /// `tooManyRequests` when its creator already has `maxPerCreator` live ones.
    func createWrappedResponse(_ wrapped: WrappedResponse, now: Date, maxPerCreator: Int) async throws
    /// The live wrapped response with this token hash (not expired at `now`), or nil.
    func wrappedResponse(hash: String, now: Date) async throws -> WrappedResponse?
    /// Removes and returns the live wrapped response, atomically: of concurrent takes of the same
    /// token, exactly one gets it.
    func takeWrappedResponse(hash: String, now: Date) async throws -> WrappedResponse?
    /// Replaces a live wrapped response by `replacement` in one transaction (a rewrap); false when
    /// the old one was already unwrapped or expired, and then nothing is stored.
    func replaceWrappedResponse(hash: String, with replacement: WrappedResponse, now: Date) async throws -> Bool
    /// Puts back a wrapped response that was taken by a request that then failed (its audit
    /// event could not be written); nothing happens when one with that hash is stored. Not capped.
    func restoreWrappedResponse(_ wrapped: WrappedResponse) async throws
    /// How many live wrapped responses this creator holds at `now`.
    func liveWrappedResponses(creator: String, now: Date) async throws -> Int
    /// Removes wrapped responses that expired before `cutoff`; returns how many.
    func purgeExpiredWrappedResponses(before cutoff: Date) async throws -> Int
}

/// Token roles (Vault's `auth/token/roles`), by name (case-sensitive, as in Vault).
public protocol TokenRoleRepository: Sendable {
    /// Creates or replaces the role of that name; with `onlyIfAbsent`, only creates, and returns
    /// false (storing nothing) when a role of that name exists.
    func putTokenRole(_ role: TokenRole, onlyIfAbsent: Bool) async throws -> Bool
    func tokenRole(named name: String) async throws -> TokenRole?
    /// Every token role, ordered by name (bytewise).
    func tokenRoles() async throws -> [TokenRole]
    /// False when there was no such role.
    func deleteTokenRole(named name: String) async throws -> Bool
}

/// The whole data store of one installation.
public protocol Store: SealRepository, ClusterRepository, ItemRepository, AccessRepository, MountRepository, ConnectorRepository, LeaseRepository,
                       RotationRepository, AuditAnchorRepository, KeyTermRepository, AuditDeviceRepository, WrappingRepository,
                       TokenRoleRepository {
    /// Writes a consistent copy of all data as of one moment to a new file (online: writes go on).
    func snapshot(to path: String) async throws
    /// Hits and misses of the store's item cache.
    var itemCacheCounter: HitCounter { get }
    /// Changes committed by other nodes sharing this store; nil when one process owns the store
    /// (SQLite), whose own writes already keep its caches current.
    var changeFeed: (any ChangeFeed)? { get }
    func close() async throws
}

/// The audit chain's head, kept with the data rather than beside the events: deleting the newest
/// events from the audit trail then leaves the anchor pointing past the end, which `verify` reports.
public protocol AuditAnchorRepository: Sendable {
    func auditAnchor() async throws -> AuditAnchor?
    /// Moves the anchor forward; an older sequence than the stored one is ignored.
    func setAuditAnchor(_ anchor: AuditAnchor) async throws
}

/// The audit trail's storage. Events are appended in batches (group commit) in sequence order.
public protocol AuditStore: Sendable {
    /// Appends events whose sequence numbers and hashes are already assigned, atomically.
    func append(_ events: [AuditEvent]) async throws
    /// Appends a batch to the one chain that every writer shares (every node of a cluster),
    /// atomically and serialized with every other writer's batches: the head is the last event
    /// stored, or `known` if that is further on (events past the stored end were lost; the gap
    /// stays visible to `verify`). `chain` numbers and hashes the batch after the head (nil for
    /// an empty trail). Returns the events as written.
    func appendChained(_ events: [AuditEvent], known: AuditAnchor?,
                       chain: @escaping @Sendable (AuditAnchor?, [AuditEvent]) throws -> [AuditEvent]) async throws -> [AuditEvent]
    /// The last event written (to continue the hash chain after a restart).
    func lastEvent() async throws -> AuditEvent?
    func query(_ query: AuditQuery) async throws -> [AuditEvent]
    /// Events in sequence order starting after `afterSequence`, at most `limit`.
    func scan(afterSequence: Int64, limit: Int) async throws -> [AuditEvent]
    /// Writes a consistent copy of the trail as of one moment to a new file (online: appends go on).
    func snapshot(to path: String) async throws
    func close() async throws
}
