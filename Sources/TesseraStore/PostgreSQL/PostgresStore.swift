// The PostgreSQL engine of the Store protocol: one database that several Tessera nodes share.
// Every rule of `Store` is kept by the statements themselves (row locks, unique keys, one
// statement or one transaction per write), never by a lock held in this process, so that
// writes from other nodes are subject to the same rules. Nothing is cached here: every read
// sees what any node committed.
import Foundation
import Logging
import PostgresNIO
import TesseraCore
import TesseraCrypto

public final class PostgresStore: Store {
    let db: PostgresDatabase
    let feed: PostgresChangeFeed
    /// Always zero: this engine keeps no item cache of its own.
    public let itemCacheCounter = HitCounter()
    public var changeFeed: (any ChangeFeed)? { feed.broadcaster }

    /// Connects and applies the migrations (data and audit) under the advisory lock.
    public static func open(_ settings: PostgresSettings, logger: Logger) async throws -> PostgresStore {
        let db = try await PostgresDatabase.open(settings, logger: logger)
        do {
            try await PostgresSchema.migrate(db, component: "data", PostgresSchema.dataMigrations)
        } catch {
            await db.close()
            throw error
        }
        let feed = PostgresChangeFeed(settings: settings, logger: logger)
        await feed.start()
        return PostgresStore(db: db, feed: feed)
    }

    init(db: PostgresDatabase, feed: PostgresChangeFeed) {
        self.db = db
        self.feed = feed
    }

    public func close() async throws {
        await feed.stop()
        await db.close()
    }

    /// Announces a change to every node, in the transaction that makes it (sent on commit).
    static func announce(_ change: StoreChange, _ tx: PGTransaction) async throws {
        try await tx.query("SELECT pg_notify($1, $2)", [.text(PostgresChangeFeed.channel), .text(change.rawValue)])
    }

    /// Runs one write statement and announces the change with it, atomically.
    @discardableResult
    func write(_ change: StoreChange, _ sql: String, _ values: [PGValue]) async throws -> Int {
        try await db.transaction { tx in
            let n = try await tx.count(sql, values)
            try await Self.announce(change, tx)
            return n
        }
    }

    /// Backups of a PostgreSQL store are the database's own (pg_dump, base backups, WAL archiving).
    public func snapshot(to path: String) async throws {
        throw TesseraError.badRequest("this server stores its data in PostgreSQL: back it up with pg_dump or the database's own backups")
    }

    // MARK: Seal

    public func sealConfig() async throws -> SealConfig? {
        guard let row = try await db.query("SELECT * FROM seal_config WHERE id = 1").first else { return nil }
        let c = PGColumns(row)
        return SealConfig(shares: try c.int("shares"), threshold: try c.int("threshold"),
                          encryptedKeyring: try c.bytes("encrypted_keyring"), createdAt: try c.date("created_at"))
    }

    public func createSealConfig(_ config: SealConfig) async throws {
        do {
            try await write(.seal, "INSERT INTO seal_config (id, shares, threshold, encrypted_keyring, created_at) VALUES (1, $1, $2, $3, $4) RETURNING 1",
                               [.int(config.shares), .int(config.threshold), .bytes(config.encryptedKeyring), .date(config.createdAt)])
        } catch TesseraError.conflict {
            throw TesseraError.conflict("Tessera is already initialized")
        }
    }

    public func updateEncryptedKeyring(_ encrypted: [UInt8]) async throws {
        try await write(.seal, "UPDATE seal_config SET encrypted_keyring = $1 WHERE id = 1 RETURNING 1", [.bytes(encrypted)])
    }

    public func replaceEncryptedKeyring(_ encrypted: [UInt8], expected: [UInt8]) async throws -> Bool {
        try await write(.seal, "UPDATE seal_config SET encrypted_keyring = $1 WHERE id = 1 AND encrypted_keyring = $2 RETURNING 1",
                        [.bytes(encrypted), .bytes(expected)]) == 1
    }

    public func replaceSealConfig(_ config: SealConfig) async throws {
        let n = try await write(.seal, "UPDATE seal_config SET shares = $1, threshold = $2, encrypted_keyring = $3 WHERE id = 1 RETURNING 1",
                                   [.int(config.shares), .int(config.threshold), .bytes(config.encryptedKeyring)])
        guard n == 1 else { throw TesseraError.conflict("Tessera is not initialized") }
    }

    // MARK: Items

    static let itemColumns = """
        id, path, type, description, tags, max_versions, delete_protection, last_version, created_at, updated_at,
        custom_metadata, cas_required, delete_version_after
        """

    static func itemValues(_ item: Item) throws -> [PGValue] {
        [.int(item.id), .text(item.path.value), .text(item.type.rawValue), .text(item.description), try .json(item.tags),
         .int(item.maxVersions), .bool(item.deleteProtection), .int(item.lastVersion), .date(item.createdAt), .date(item.updatedAt),
         try .json(item.customMetadata), .bool(item.casRequired), .text(item.deleteVersionAfter)]
    }

    static func versionValues(_ v: ItemVersion) -> [PGValue] {
        [.int(v.version), .bytes(v.ciphertext), .int(Int64(v.keyTerm)), .text(v.createdBy), .date(v.createdAt),
         .optionalDate(v.deletedAt), .bool(v.destroyed)]
    }

    /// The statement that creates an item with its optional first version, atomically (one statement).
    static func itemCreation(_ item: Item, firstVersion v: ItemVersion?) throws -> (sql: String, values: [PGValue]) {
        let itemSQL = "INSERT INTO items (\(itemColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        guard let v else { return (itemSQL, try itemValues(item)) }
        return ("""
            WITH item AS (\(itemSQL) RETURNING id)
            INSERT INTO item_versions (item_id, version, ciphertext, key_term, created_by, created_at, deleted_at, destroyed)
            SELECT id, $14, $15::bytea, $16, $17, $18, $19::bigint, $20 FROM item
            """, try itemValues(item) + versionValues(v))
    }

    public func createItem(_ item: Item, firstVersion: ItemVersion?) async throws {
        do {
            let statement = try Self.itemCreation(item, firstVersion: firstVersion)
            try await db.query(statement.sql, statement.values)
        } catch TesseraError.conflict {
            throw TesseraError.conflict("item \(item.path) already exists")
        }
    }

    public func item(at path: ItemPath) async throws -> Item? {
        try await db.query("SELECT * FROM items WHERE path = $1", [.text(path.value)]).first.map(Self.item)
    }

    static func item(_ row: PostgresRow) throws -> Item {
        let c = PGColumns(row)
        guard let type = ItemType(rawValue: try c.string("type")) else { throw TesseraError.integrity("unknown item type") }
        return Item(id: try c.int64("id"), path: try ItemPath(try c.string("path")), type: type,
                    description: try c.string("description"), tags: try c.json([String].self, "tags"),
                    maxVersions: try c.int("max_versions"), deleteProtection: try c.bool("delete_protection"),
                    lastVersion: try c.int("last_version"), createdAt: try c.date("created_at"), updatedAt: try c.date("updated_at"),
                    customMetadata: try c.json([String: String].self, "custom_metadata"), casRequired: try c.bool("cas_required"),
                    deleteVersionAfter: try c.string("delete_version_after"), metadataVersion: try c.int("metadata_version"),
                    vaultMaxVersions: try c.int("vault_max_versions"))
    }

    /// The statement that appends a version: the UPDATE of the item's last version is the
    /// check-and-set (it takes the item's row lock; a concurrent append waits for it, then finds
    /// the last version moved and changes nothing), the INSERT and the pruning follow in the
    /// same statement. Returns one row, `n`, 1 if the version was appended.
    static func versionAppend(_ v: ItemVersion, expectedLastVersion: Int, updatedAt: Date) -> (sql: String, values: [PGValue]) {
        ("""
         WITH item AS (
             UPDATE items SET last_version = $2, updated_at = $4 WHERE id = $1 AND last_version = $3
             RETURNING id, max_versions, delete_protection),
         added AS (
             INSERT INTO item_versions (item_id, version, ciphertext, key_term, created_by, created_at, deleted_at, destroyed)
             SELECT id, $2, $5::bytea, $6, $7, $8, $9::bigint, $10 FROM item RETURNING 1),
         pruned AS (
             DELETE FROM item_versions v USING item
             WHERE v.item_id = item.id AND NOT item.delete_protection AND v.version <= $2 - item.max_versions RETURNING 1)
         SELECT (SELECT count(*) FROM item) AS n
         """,
         [.int(v.itemId), .int(v.version), .int(expectedLastVersion), .date(updatedAt), .bytes(v.ciphertext),
          .int(Int64(v.keyTerm)), .text(v.createdBy), .date(v.createdAt), .optionalDate(v.deletedAt), .bool(v.destroyed)])
    }

    static func appended(_ rows: [PostgresRow]) throws -> Bool {
        try rows.first.map { try PGColumns($0).int("n") } == 1
    }

    public func appendVersion(_ version: ItemVersion, expectedLastVersion: Int, updatedAt: Date) async throws {
        let statement = Self.versionAppend(version, expectedLastVersion: expectedLastVersion, updatedAt: updatedAt)
        let rows: [PostgresRow]
        do {
            rows = try await db.query(statement.sql, statement.values)
        } catch TesseraError.conflict {
            throw TesseraError.conflict("the item changed concurrently; retry")
        }
        guard try Self.appended(rows) else { throw TesseraError.conflict("the item changed concurrently; retry") }
    }

    public func version(itemId: Int64, number: Int) async throws -> ItemVersion? {
        try await db.query("SELECT * FROM item_versions WHERE item_id = $1 AND version = $2", [.int(itemId), .int(number)])
            .first.map(Self.version)
    }

    public func itemAndVersion(at path: ItemPath, number: Int) async throws -> (item: Item, version: ItemVersion?)? {
        let rows = try await db.query("""
            SELECT i.*, v.item_id AS v_item_id, v.version AS v_version, v.ciphertext AS v_ciphertext, v.key_term AS v_key_term,
                   v.created_by AS v_created_by, v.created_at AS v_created_at, v.deleted_at AS v_deleted_at, v.destroyed AS v_destroyed
            FROM items i
            LEFT JOIN item_versions v ON v.item_id = i.id AND v.version = (CASE WHEN $2 > 0 THEN $2 ELSE i.last_version END)
            WHERE i.path = $1
            """, [.text(path.value), .int(Int64(number))])
        guard let row = rows.first else { return nil }
        let item = try Self.item(row)
        let hasVersion = try PGColumns(row).optionalInt64("v_version") != nil
        return (item, hasVersion ? try Self.version(row, prefix: "v_") : nil)
    }

    public func versions(itemId: Int64) async throws -> [ItemVersion] {
        try await db.query("SELECT * FROM item_versions WHERE item_id = $1 ORDER BY version", [.int(itemId)]).map(Self.version)
    }

    static func version(_ row: PostgresRow) throws -> ItemVersion { try version(row, prefix: "") }

    static func version(_ row: PostgresRow, prefix: String) throws -> ItemVersion {
        let c = PGColumns(row, prefix: prefix)
        return ItemVersion(itemId: try c.int64("item_id"), version: try c.int("version"), ciphertext: try c.optionalBytes("ciphertext"),
                           keyTerm: try c.term("key_term"), createdBy: try c.string("created_by"),
                           createdAt: try c.date("created_at"), deletedAt: try c.optionalDate("deleted_at"), destroyed: try c.bool("destroyed"))
    }

    public func items(withPrefix prefix: String, limit: Int) async throws -> [Item] {
        // A range scan on the unique path index (COLLATE "C": byte order): every path with this
        // prefix sorts in [prefix, prefix + U+10FFFF). No LIKE, so % and _ are plain characters.
        try await db.query("SELECT * FROM items WHERE path >= $1 AND path < $2 ORDER BY path LIMIT $3",
                           [.text(prefix), .text(prefix + "\u{10FFFF}"), .int(limit)]).map(Self.item)
    }

    public func deleteItem(id: Int64) async throws -> Bool {
        // The item's versions go with it (ON DELETE CASCADE), its rotator in the same statement.
        try await db.count("""
            WITH rotator AS (DELETE FROM rotators WHERE item_id = $1)
            DELETE FROM items WHERE id = $1 RETURNING 1
            """, [.int(id)]) > 0
    }

    public func deleteVersion(itemId: Int64, number: Int, at: Date) async throws -> Bool {
        try await db.count("""
            UPDATE item_versions SET ciphertext = NULL, destroyed = true, deleted_at = COALESCE(deleted_at, $1)
            WHERE item_id = $2 AND version = $3 AND NOT destroyed RETURNING 1
            """, [.date(at), .int(itemId), .int(number)]) > 0
    }

    public func setVersionsDeleted(itemId: Int64, numbers: [Int], at: Date?) async throws {
        guard !numbers.isEmpty else { return }
        let list = PGValue.ints(numbers.map(Int64.init))
        if let at {
            try await db.query("""
                UPDATE item_versions SET deleted_at = $1
                WHERE item_id = $2 AND version = ANY($3) AND NOT destroyed AND deleted_at IS NULL
                """, [.date(at), .int(itemId), list])
        } else {
            try await db.query("UPDATE item_versions SET deleted_at = NULL WHERE item_id = $1 AND version = ANY($2) AND NOT destroyed",
                               [.int(itemId), list])
        }
    }

    public func destroyVersions(itemId: Int64, numbers: [Int], at: Date) async throws {
        guard !numbers.isEmpty else { return }
        try await db.query("UPDATE item_versions SET ciphertext = NULL, destroyed = true WHERE item_id = $1 AND version = ANY($2)",
                           [.int(itemId), .ints(numbers.map(Int64.init))])
    }

    public func updateItemMetadata(_ item: Item) async throws {
        // The UPDATE takes the item's row lock and returns the stored last version, which the
        // pruning counts from (a version appended since the caller read the item counts too).
        let rows = try await db.query("""
            WITH item AS (
                UPDATE items SET max_versions = $1, cas_required = $2, delete_version_after = $3, custom_metadata = $4,
                                 description = $5, tags = $6, delete_protection = $7, updated_at = $8, metadata_version = $10,
                                 vault_max_versions = $11
                WHERE id = $9 RETURNING id, last_version, max_versions, delete_protection),
            pruned AS (
                DELETE FROM item_versions v USING item
                WHERE v.item_id = item.id AND NOT item.delete_protection AND v.version <= item.last_version - item.max_versions
                RETURNING 1)
            SELECT (SELECT count(*) FROM item) AS n
            """, [.int(item.maxVersions), .bool(item.casRequired), .text(item.deleteVersionAfter), try .json(item.customMetadata),
                  .text(item.description), try .json(item.tags), .bool(item.deleteProtection), .date(item.updatedAt), .int(item.id),
                  .int(Int64(item.metadataVersion)), .int(Int64(item.vaultMaxVersions))])
        guard try Self.appended(rows) else { throw TesseraError.notFound("item \(item.path) not found") }
    }

    // MARK: Vault mounts

    public func createMount(_ m: VaultMount) async throws {
        do {
            try await write(.mounts, """
                INSERT INTO vault_mounts (path, kind, folder, description, max_versions, cas_required, delete_version_after, accessor, uuid,
                                          created_at, usc_name, owns_data)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING 1
                """, [.text(m.path), .text(m.kind.rawValue), .text(m.folder.value), .text(m.description), .int(m.maxVersions),
                      .bool(m.casRequired), .text(m.deleteVersionAfter), .text(m.accessor), .text(m.uuid), .date(m.createdAt),
                      .text(m.uscName), .bool(m.ownsData)])
        } catch TesseraError.conflict {
            throw TesseraError.conflict("path is already in use at \(m.path)")
        }
    }

    public func mounts() async throws -> [VaultMount] {
        try await db.query("SELECT * FROM vault_mounts ORDER BY path").map { row in
            let c = PGColumns(row)
            guard let kind = VaultMount.Kind(rawValue: try c.string("kind")) else { throw TesseraError.integrity("unknown mount kind") }
            var m = VaultMount(path: try c.string("path"), kind: kind, folder: try ItemPath(folder: try c.string("folder")),
                               description: try c.string("description"), maxVersions: try c.int("max_versions"),
                               casRequired: try c.bool("cas_required"), deleteVersionAfter: try c.string("delete_version_after"),
                               accessor: try c.string("accessor"), uuid: try c.string("uuid"), createdAt: try c.date("created_at"),
                               uscName: try c.optionalString("usc_name"))
            m.ownsData = try c.bool("owns_data")
            m.defaultLeaseTTL = try c.int("default_lease_ttl")
            m.maxLeaseTTL = try c.int("max_lease_ttl")
            return m
        }
    }

    public func updateMount(_ m: VaultMount) async throws {
        try await write(.mounts, "UPDATE vault_mounts SET description = $1, max_versions = $2, cas_required = $3, delete_version_after = $4, default_lease_ttl = $5, max_lease_ttl = $6, kind = $7 WHERE path = $8 RETURNING 1",
                           [.text(m.description), .int(m.maxVersions), .bool(m.casRequired), .text(m.deleteVersionAfter),
                            .int(m.defaultLeaseTTL), .int(m.maxLeaseTTL), .text(m.kind.rawValue), .text(m.path)])
    }

    public func deleteMount(path: String) async throws -> Bool {
        try await write(.mounts, "DELETE FROM vault_mounts WHERE path = $1 RETURNING 1", [.text(path)]) > 0
    }

    public func moveMount(from path: String, to m: VaultMount, itemsFrom folder: ItemPath?, expectedItems: Int) async throws {
        do {
            try await db.transaction { tx in
                guard try await tx.count("UPDATE vault_mounts SET path = $1, folder = $2 WHERE path = $3 RETURNING 1",
                                         [.text(m.path), .text(m.folder.value), .text(path)]) > 0 else {
                    throw TesseraError.notFound("no mount at \(path)")
                }
                if let folder {
                    let old = folder.folderPrefix, new = m.folder.folderPrefix
                    let occupied = try await tx.query("SELECT 1 FROM items WHERE path = $1 OR (path >= $2 AND path < $3) LIMIT 1",
                                                      [.text(m.folder.value), .text(new), .text(new + "\u{10FFFF}")])
                    guard occupied.isEmpty else { throw TesseraError.conflict("items are stored under \(m.folder.value)") }
                    // substr counts characters from 1: the rest of the path after the old prefix.
                    var moved = try await tx.count("UPDATE items SET path = $1 || substr(path, $2::int) WHERE path >= $3 AND path < $4 RETURNING 1",
                                                   [.text(new), .int(old.unicodeScalars.count + 1), .text(old), .text(old + "\u{10FFFF}")])
                    moved += try await tx.count("UPDATE items SET path = $1 WHERE path = $2 RETURNING 1", [.text(m.folder.value), .text(folder.value)])
                    guard moved == expectedItems else { throw TesseraError.conflict("the mount's items changed while it was being moved") }
                }
                try await Self.announce(.mounts, tx)
            }
        } catch TesseraError.conflict {
            throw TesseraError.conflict("path is already in use at \(m.path)")
        }
    }

    // MARK: Auth methods

    /// Moves the access generation on, in the transaction that changed access data. The row lock
    /// serializes concurrent changes, so no increment is lost.
    static func bumpGeneration(_ tx: PGTransaction) async throws {
        try await tx.query("UPDATE access_generation SET generation = generation + 1 WHERE id = 1")
        try await announce(.access, tx)
    }

    public func createAuthMethod(_ m: AuthMethod) async throws {
        let values: [PGValue] = [.text(m.accessId), .text(m.name), .text(m.type), .bytes(m.keyHash), .bytes(m.keySalt),
                                 .int(m.tokenTTLMinutes), try .json(m.boundCIDRs), .optionalDate(m.accessExpires), .date(m.createdAt), .text(m.config.serialized)]
        do {
            try await db.transaction { tx in
                try await tx.query("""
                    INSERT INTO auth_methods (access_id, name, type, key_hash, key_salt, token_ttl_minutes, bound_cidrs, access_expires, created_at, config)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                    """, values)
                try await Self.bumpGeneration(tx)
            }
        } catch TesseraError.conflict {
            throw TesseraError.conflict("an auth method named \(m.name) already exists")
        }
    }

    public func authMethod(accessId: String) async throws -> AuthMethod? {
        try await db.query("SELECT * FROM auth_methods WHERE access_id = $1", [.text(accessId)]).first.map(Self.authMethod)
    }

    public func authMethod(name: String) async throws -> AuthMethod? {
        try await db.query("SELECT * FROM auth_methods WHERE name = $1", [.text(name)]).first.map(Self.authMethod)
    }

    public func authMethods() async throws -> [AuthMethod] {
        try await db.query("SELECT * FROM auth_methods ORDER BY name").map(Self.authMethod)
    }

    static func authMethod(_ row: PostgresRow) throws -> AuthMethod {
        let c = PGColumns(row)
        return AuthMethod(accessId: try c.string("access_id"), name: try c.string("name"), type: try c.string("type"),
                          keyHash: try c.bytes("key_hash"), keySalt: try c.bytes("key_salt"),
                          tokenTTLMinutes: try c.int("token_ttl_minutes"), boundCIDRs: try c.json([String].self, "bound_cidrs"),
                          accessExpires: try c.optionalDate("access_expires"), createdAt: try c.date("created_at"),
                          config: try JSON.parse(Array(try c.string("config").utf8)))
    }

    public func deleteAuthMethod(accessId: String) async throws -> Bool {
        try await db.transaction { tx in
            try await tx.query("DELETE FROM tokens WHERE access_id = $1", [.text(accessId)])
            try await tx.query("DELETE FROM auth_method_roles WHERE access_id = $1", [.text(accessId)])
            try await tx.query("DELETE FROM approle_secret_ids WHERE access_id = $1", [.text(accessId)])
            try await tx.query("DELETE FROM role_auth_methods WHERE access_id = $1", [.text(accessId)])
            let n = try await tx.count("DELETE FROM auth_methods WHERE access_id = $1 RETURNING 1", [.text(accessId)])
            try await Self.bumpGeneration(tx)
            return n > 0
        }
    }

    public func replaceAuthMethodKey(accessId: String, keyHash: [UInt8], keySalt: [UInt8]) async throws -> Bool {
        try await db.transaction { tx in
            let n = try await tx.count("UPDATE auth_methods SET key_hash = $1, key_salt = $2 WHERE access_id = $3 RETURNING 1",
                                       [.bytes(keyHash), .bytes(keySalt), .text(accessId)])
            try await Self.bumpGeneration(tx)
            return n > 0
        }
    }

    public func updateAuthMethod(_ m: AuthMethod) async throws -> Bool {
        let values: [PGValue] = [.text(m.config.serialized), .int(m.tokenTTLMinutes), try .json(m.boundCIDRs), .optionalDate(m.accessExpires),
                                 .text(m.accessId)]
        return try await db.transaction { tx in
            let n = try await tx.count("""
                UPDATE auth_methods SET config = $1, token_ttl_minutes = $2, bound_cidrs = $3, access_expires = $4 WHERE access_id = $5 RETURNING 1
                """, values)
            try await Self.bumpGeneration(tx)
            return n > 0
        }
    }

    public func putAuthMethodRole(_ r: AuthMethodRole) async throws {
        let values: [PGValue] = [.text(r.accessId), .text(r.name), .text(r.config.serialized)]
        try await db.transaction { tx in
            // The method's row lock orders this write against the method's deletion.
            guard try await tx.count("SELECT 1 FROM auth_methods WHERE access_id = $1 FOR UPDATE", [values[0]]) > 0 else {
                throw TesseraError.notFound("auth method not found")
            }
            try await tx.query("""
                INSERT INTO auth_method_roles (access_id, name, config) VALUES ($1, $2, $3)
                ON CONFLICT (access_id, name) DO UPDATE SET config = EXCLUDED.config
                """, values)
            try await Self.bumpGeneration(tx)
        }
    }

    public func authMethodRole(accessId: String, name: String) async throws -> AuthMethodRole? {
        try await db.query("SELECT * FROM auth_method_roles WHERE access_id = $1 AND name = $2", [.text(accessId), .text(name)])
            .first.map(Self.authMethodRole)
    }

    public func authMethodRoles(accessId: String) async throws -> [AuthMethodRole] {
        try await db.query("SELECT * FROM auth_method_roles WHERE access_id = $1 ORDER BY name", [.text(accessId)]).map(Self.authMethodRole)
    }

    public func deleteAuthMethodRole(accessId: String, name: String) async throws -> Bool {
        try await db.transaction { tx in
            let n = try await tx.count("DELETE FROM auth_method_roles WHERE access_id = $1 AND name = $2 RETURNING 1",
                                       [.text(accessId), .text(name)])
            try await Self.bumpGeneration(tx)
            return n > 0
        }
    }

    static func authMethodRole(_ row: PostgresRow) throws -> AuthMethodRole {
        let c = PGColumns(row)
        return AuthMethodRole(accessId: try c.string("access_id"), name: try c.string("name"),
                              config: try JSON.parse(Array(try c.string("config").utf8)))
    }

    // MARK: Roles

    public func createRole(_ role: Role) async throws {
        let values: [PGValue] = [.text(role.name), .text(role.description), try .json(role.rules),
                                 .text(role.auditAccess.rawValue), .date(role.createdAt), .text(role.policyText), .int(role.policyVersion)]
        do {
            try await db.transaction { tx in
                try await tx.query("INSERT INTO roles (name, description, rules, audit_access, created_at, policy, policy_version) VALUES ($1, $2, $3, $4, $5, $6, $7)", values)
                try await Self.bumpGeneration(tx)
            }
        } catch TesseraError.conflict {
            throw TesseraError.conflict("a role named \(role.name) already exists")
        }
    }

    public func role(named name: String) async throws -> Role? {
        try await db.query("SELECT * FROM roles WHERE name = $1", [.text(name)]).first.map(Self.role)
    }

    public func roles() async throws -> [Role] {
        try await db.query("SELECT * FROM roles ORDER BY name").map(Self.role)
    }

    static func role(_ row: PostgresRow) throws -> Role {
        let c = PGColumns(row)
        return Role(name: try c.string("name"), description: try c.string("description"),
                    rules: try c.json([Rule].self, "rules"),
                    auditAccess: AuditAccess(rawValue: try c.string("audit_access")) ?? .none,
                    createdAt: try c.date("created_at"), policyText: try c.string("policy"), policyVersion: try c.int("policy_version"))
    }

    public func deleteRole(named name: String) async throws -> Bool {
        try await db.transaction { tx in
            try await tx.query("DELETE FROM role_auth_methods WHERE role_name = $1", [.text(name)])
            let n = try await tx.count("DELETE FROM roles WHERE name = $1 RETURNING 1", [.text(name)])
            try await Self.bumpGeneration(tx)
            return n > 0
        }
    }

    public func updateRole(_ role: Role) async throws {
        let values: [PGValue] = [.text(role.description), try .json(role.rules), .text(role.auditAccess.rawValue),
                                 .text(role.policyText), .int(role.policyVersion), .text(role.name)]
        try await db.transaction { tx in
            let n = try await tx.count("UPDATE roles SET description = $1, rules = $2, audit_access = $3, policy = $4, policy_version = $5 WHERE name = $6 RETURNING 1", values)
            guard n == 1 else { throw TesseraError.notFound("role \(role.name) not found") }
            try await Self.bumpGeneration(tx)
        }
    }

    // MARK: Associations

    public func createAssociation(_ a: RoleAssociation) async throws {
        let values: [PGValue] = [.text(a.id), .text(a.roleName), .text(a.accessId), try .json(a.subClaims)]
        do {
            try await db.transaction { tx in
                try await tx.query("INSERT INTO role_auth_methods (id, role_name, access_id, sub_claims) VALUES ($1, $2, $3, $4)", values)
                try await Self.bumpGeneration(tx)
            }
        } catch TesseraError.conflict {
            throw TesseraError.conflict("role \(a.roleName) is already associated with this auth method")
        }
    }

    public func associations(accessId: String) async throws -> [RoleAssociation] {
        try await db.query("SELECT * FROM role_auth_methods WHERE access_id = $1 ORDER BY role_name", [.text(accessId)]).map(Self.association)
    }

    public func associations(roleName: String) async throws -> [RoleAssociation] {
        try await db.query("SELECT * FROM role_auth_methods WHERE role_name = $1 ORDER BY access_id", [.text(roleName)]).map(Self.association)
    }

    static func association(_ row: PostgresRow) throws -> RoleAssociation {
        let c = PGColumns(row)
        return RoleAssociation(id: try c.string("id"), roleName: try c.string("role_name"), accessId: try c.string("access_id"),
                               subClaims: try c.json([String: [String]].self, "sub_claims"))
    }

    public func deleteAssociation(id: String) async throws -> Bool {
        try await db.transaction { tx in
            let n = try await tx.count("DELETE FROM role_auth_methods WHERE id = $1 RETURNING 1", [.text(id)])
            try await Self.bumpGeneration(tx)
            return n > 0
        }
    }

    public func accessGeneration() async throws -> Int64 {
        try await db.query("SELECT generation FROM access_generation WHERE id = 1").first.map { try PGColumns($0).int64("generation") } ?? 0
    }

    // MARK: AppRole secret ids

    public func createSecretID(_ r: SecretIDRecord) async throws {
        try await db.query("INSERT INTO approle_secret_ids (access_id, secret_hash, accessor, created_at, expires_at, uses_left, metadata, cidrs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                           [.text(r.accessId), .text(r.secretHash), .text(r.accessor), .date(r.createdAt), .optionalDate(r.expiresAt),
                            .int(r.usesLeft.map { Int64($0) }), try .json(r.metadata), try .json(r.cidrs)])
    }

    public func secretID(accessId: String, hash: String) async throws -> SecretIDRecord? {
        try await db.query("SELECT * FROM approle_secret_ids WHERE access_id = $1 AND secret_hash = $2", [.text(accessId), .text(hash)]).first.map(Self.secretID)
    }

    public func secretID(accessId: String, accessor: String) async throws -> SecretIDRecord? {
        try await db.query("SELECT * FROM approle_secret_ids WHERE access_id = $1 AND accessor = $2", [.text(accessId), .text(accessor)]).first.map(Self.secretID)
    }

    public func secretIDs(accessId: String) async throws -> [SecretIDRecord] {
        try await db.query("SELECT * FROM approle_secret_ids WHERE access_id = $1 ORDER BY accessor", [.text(accessId)]).map(Self.secretID)
    }

    public func useSecretID(accessId: String, hash: String, now: Date) async throws -> SecretIDRecord? {
        try await db.transaction { tx in
            let binds: [PGValue] = [.text(accessId), .text(hash)]
            // The row lock of the UPDATE serializes concurrent logins with the same secret id.
            guard let row = try await tx.query("""
                UPDATE approle_secret_ids SET uses_left = uses_left - 1
                WHERE access_id = $1 AND secret_hash = $2 AND (expires_at IS NULL OR expires_at > $3) AND (uses_left IS NULL OR uses_left > 0)
                RETURNING *
                """, binds + [.date(now)]).first else { return nil }
            let used = try Self.secretID(row)
            if used.usesLeft == 0 { try await tx.query("DELETE FROM approle_secret_ids WHERE access_id = $1 AND secret_hash = $2", binds) }
            return used
        }
    }

    public func deleteSecretID(accessId: String, accessor: String) async throws -> Bool {
        try await db.count("DELETE FROM approle_secret_ids WHERE access_id = $1 AND accessor = $2 RETURNING 1", [.text(accessId), .text(accessor)]) > 0
    }

    static func secretID(_ row: PostgresRow) throws -> SecretIDRecord {
        let c = PGColumns(row)
        return SecretIDRecord(accessId: try c.string("access_id"), secretHash: try c.string("secret_hash"), accessor: try c.string("accessor"),
                              createdAt: try c.date("created_at"), expiresAt: try c.optionalDate("expires_at"),
                              usesLeft: try c.optionalInt("uses_left"), metadata: try c.json([String: String].self, "metadata"),
                              cidrs: try c.json([String].self, "cidrs"))
    }

    // MARK: Tokens

    public func createToken(_ t: TokenRecord) async throws {
        try await db.query("INSERT INTO tokens (token_hash, access_id, issued_at, expires_at, revoked, client_address, grant_info, parent_hash, uses_left) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                           [.text(t.tokenHash), .text(t.accessId), .date(t.issuedAt), .date(t.expiresAt), .bool(t.revoked), .text(t.clientAddress),
                            .text(try TokenGrant.storedText(t.grant)), .text(t.parentHash), .int(t.usesLeft.map { Int64($0) })])
    }

    public func token(hash: String) async throws -> TokenRecord? {
        guard let row = try await db.query("SELECT * FROM tokens WHERE token_hash = $1", [.text(hash)]).first else { return nil }
        return try Self.token(row)
    }

    public func token(hashPrefix: String) async throws -> TokenRecord? {
        guard !hashPrefix.isEmpty else { return nil }
        let rows = try await db.query("SELECT * FROM tokens WHERE token_hash >= $1 AND token_hash < $2 ORDER BY token_hash LIMIT 2",
                                      [.text(hashPrefix), .text(hashPrefix + "~")])
        guard rows.count == 1, let row = rows.first else { return nil }
        return try Self.token(row)
    }

    public func liveTokenHashes(now: Date, limit: Int) async throws -> [String] {
        try await db.query("SELECT token_hash FROM tokens WHERE NOT revoked AND expires_at > $1 ORDER BY token_hash LIMIT $2", [.date(now), .int(limit)])
            .map { try PGColumns($0).string("token_hash") }
    }

    public func childTokens(parentHash: String) async throws -> [String] {
        guard !parentHash.isEmpty else { return [] }
        return try await db.query("SELECT token_hash FROM tokens WHERE parent_hash = $1 AND NOT revoked", [.text(parentHash)])
            .map { try PGColumns($0).string("token_hash") }
    }

    static func token(_ row: PostgresRow) throws -> TokenRecord {
        let c = PGColumns(row)
        return TokenRecord(tokenHash: try c.string("token_hash"), accessId: try c.string("access_id"),
                           issuedAt: try c.date("issued_at"), expiresAt: try c.date("expires_at"),
                           revoked: try c.bool("revoked"), clientAddress: try c.string("client_address"),
                           grant: try TokenGrant.fromStoredText(try c.string("grant_info")), parentHash: try c.string("parent_hash"),
                           usesLeft: try c.optionalInt("uses_left"))
    }

    public func spendTokenUse(hash: String) async throws -> Int? {
        // The last use revokes the token in the same statement; no node caches a limited token.
        let rows = try await db.query("""
            UPDATE tokens SET uses_left = uses_left - 1, revoked = (uses_left <= 1)
            WHERE token_hash = $1 AND NOT revoked AND uses_left > 0 RETURNING uses_left
            """, [.text(hash)])
        return try rows.first.flatMap { try PGColumns($0).optionalInt("uses_left") }
    }

    public func revokeToken(hash: String) async throws -> Bool {
        try await write(.access, "UPDATE tokens SET revoked = true WHERE token_hash = $1 AND NOT revoked RETURNING 1", [.text(hash)]) > 0
    }

    public func renewToken(hash: String, expiresAt: Date) async throws -> Bool {
        try await db.count("UPDATE tokens SET expires_at = $1 WHERE token_hash = $2 AND NOT revoked RETURNING 1",
                           [.date(expiresAt), .text(hash)]) > 0
    }

    public func revokeTokens(accessId: String) async throws {
        try await write(.access, "UPDATE tokens SET revoked = true WHERE access_id = $1 RETURNING 1", [.text(accessId)])
    }

    public func purgeExpiredTokens(before cutoff: Date) async throws -> Int {
        try await db.count("DELETE FROM tokens WHERE expires_at < $1 RETURNING 1", [.date(cutoff)])
    }

    public func purgeExpiredSecretIDs(before cutoff: Date) async throws -> Int {
        try await db.count("DELETE FROM approle_secret_ids WHERE expires_at IS NOT NULL AND expires_at < $1 RETURNING 1", [.date(cutoff)])
    }

    public func purgeExpiredWrappedResponses(before cutoff: Date) async throws -> Int {
        try await db.count("DELETE FROM wrapped_responses WHERE expires_at < $1 RETURNING 1", [.date(cutoff)])
    }

    // MARK: Targets and connectors

    public func createTarget(_ t: Target) async throws {
        do {
            try await db.query("INSERT INTO targets (name, kind, settings, credential, key_term, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                               [.text(t.name), .text(t.kind.rawValue), try .json(t.settings), .bytes(t.credentialCiphertext),
                                .int(Int64(t.keyTerm)), .date(t.createdAt)])
        } catch TesseraError.conflict {
            throw TesseraError.conflict("a target named \(t.name) already exists")
        }
    }

    public func targetId(named name: String) async throws -> Int64? {
        try await db.query("SELECT id FROM targets WHERE name = $1", [.text(name)]).first.map { try PGColumns($0).int64("id") }
    }

    public func target(named name: String) async throws -> Target? {
        try await db.query("SELECT * FROM targets WHERE name = $1", [.text(name)]).first.map(Self.target)
    }

    public func targets() async throws -> [Target] {
        try await db.query("SELECT * FROM targets ORDER BY name").map(Self.target)
    }

    static func target(_ row: PostgresRow) throws -> Target {
        let c = PGColumns(row)
        guard let kind = Target.Kind(rawValue: try c.string("kind")) else { throw TesseraError.integrity("unknown target kind") }
        return Target(name: try c.string("name"), kind: kind, settings: try c.json([String: String].self, "settings"),
                      credentialCiphertext: try c.bytes("credential"), keyTerm: try c.term("key_term"),
                      createdAt: try c.date("created_at"))
    }

    public func deleteTarget(named name: String) async throws -> Bool {
        do {
            return try await db.transaction { tx in
                // The row lock makes a concurrent connector, producer or rotator creation over this
                // target wait (its foreign key check locks the target row) until this commits.
                guard try await tx.count("SELECT 1 FROM targets WHERE name = $1 FOR UPDATE", [.text(name)]) > 0 else { return false }
                let users: [(String, String)] = [("SELECT name AS user FROM uscs WHERE target_name = $1 LIMIT 1", "connector"),
                                                 ("SELECT path AS user FROM producers WHERE target_name = $1 LIMIT 1", "dynamic secret"),
                                                 ("SELECT path AS user FROM rotators WHERE target_name = $1 LIMIT 1", "rotated secret")]
                for (sql, kind) in users {
                    if let row = try await tx.query(sql, [.text(name)]).first {
                        throw TesseraError.conflict("target \(name) is used by the \(kind) \(try PGColumns(row).string("user"))")
                    }
                }
                return try await tx.count("DELETE FROM targets WHERE name = $1 RETURNING 1", [.text(name)]) > 0
            }
        } catch TesseraError.conflict(let message) where message.hasPrefix("refers to") {
            throw TesseraError.conflict("target \(name) is in use")
        }
    }

    public func createConnector(_ u: SecretConnector) async throws {
        do {
            try await db.query("INSERT INTO uscs (name, target_name, prefix, description, created_at) VALUES ($1, $2, $3, $4, $5)",
                               [.text(u.name), .text(u.targetName), .text(u.prefix), .text(u.description), .date(u.createdAt)])
        } catch TesseraError.conflict(let message) where message.hasPrefix("refers to") {
            throw TesseraError.conflict("target \(u.targetName) does not exist")
        } catch TesseraError.conflict {
            throw TesseraError.conflict("a connector named \(u.name) already exists")
        }
    }

    public func connector(named name: String) async throws -> SecretConnector? {
        try await db.query("SELECT * FROM uscs WHERE name = $1", [.text(name)]).first.map(Self.connector)
    }

    public func connectors() async throws -> [SecretConnector] {
        try await db.query("SELECT * FROM uscs ORDER BY name").map(Self.connector)
    }

    static func connector(_ row: PostgresRow) throws -> SecretConnector {
        let c = PGColumns(row)
        return SecretConnector(name: try c.string("name"), targetName: try c.string("target_name"), prefix: try c.string("prefix"),
                               description: try c.string("description"), createdAt: try c.date("created_at"))
    }

    public func deleteConnector(named name: String) async throws -> Bool {
        try await db.transaction { tx in
            guard try await tx.count("SELECT 1 FROM uscs WHERE name = $1 FOR UPDATE", [.text(name)]) > 0 else { return false }
            if let row = try await tx.query("SELECT path FROM vault_mounts WHERE usc_name = $1 LIMIT 1", [.text(name)]).first {
                throw TesseraError.conflict("connector \(name) backs the Vault mount \(try PGColumns(row).string("path"))")
            }
            return try await tx.count("DELETE FROM uscs WHERE name = $1 RETURNING 1", [.text(name)]) > 0
        }
    }

    // MARK: Producers and leases

    public func createProducer(_ p: Producer) async throws {
        do {
            try await db.query("""
                INSERT INTO producers (path, target_name, creation_statements, revocation_statements, user_ttl, max_ttl, password_length,
                                       username_prefix, max_leases, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                """, [.text(p.path.value), .text(p.targetName), .text(p.creationStatements), .text(p.revocationStatements), .int(p.userTTL),
                      .int(p.maxTTL), .int(p.passwordLength), .text(p.usernamePrefix), .int(p.maxLeases), .date(p.createdAt)])
        } catch TesseraError.conflict(let message) where message.hasPrefix("refers to") {
            throw TesseraError.conflict("target \(p.targetName) does not exist")
        } catch TesseraError.conflict {
            throw TesseraError.conflict("a dynamic secret named \(p.path) already exists")
        }
    }

    public func producer(path: String) async throws -> Producer? {
        try await db.query("SELECT * FROM producers WHERE path = $1", [.text(path)]).first.map(Self.producer)
    }

    public func producers() async throws -> [Producer] {
        try await db.query("SELECT * FROM producers ORDER BY path").map(Self.producer)
    }

    static func producer(_ row: PostgresRow) throws -> Producer {
        let c = PGColumns(row)
        return Producer(path: try ItemPath(try c.string("path")), targetName: try c.string("target_name"),
                        creationStatements: try c.string("creation_statements"), revocationStatements: try c.string("revocation_statements"),
                        userTTL: try c.int("user_ttl"), maxTTL: try c.int("max_ttl"), passwordLength: try c.int("password_length"),
                        usernamePrefix: try c.string("username_prefix"), maxLeases: try c.int("max_leases"), createdAt: try c.date("created_at"))
    }

    public func deleteProducer(path: String) async throws -> Bool {
        try await db.transaction { tx in
            // The producer's row lock serializes this with lease inserts (which take it too).
            guard try await tx.count("SELECT 1 FROM producers WHERE path = $1 FOR UPDATE", [.text(path)]) > 0 else { return false }
            let live = try await tx.query("""
                SELECT count(*) AS n FROM leases WHERE producer = $1 AND state IN ('pending','active','revoking','irrevocable')
                """, [.text(path)])
            if let n = try live.first.map({ try PGColumns($0).int("n") }), n > 0 {
                throw TesseraError.conflict("dynamic secret \(path) still has \(n) leases that are not revoked")
            }
            return try await tx.count("DELETE FROM producers WHERE path = $1 RETURNING 1", [.text(path)]) > 0
        }
    }

    static let leaseColumns = """
        id, producer, username, access_id, issued_at, expires_at, max_expires_at, last_renewal, state, attempts, next_attempt_at, last_error
        """

    static func leaseValues(_ l: Lease) -> [PGValue] {
        [.text(l.id), .text(l.producer), .text(l.username), .text(l.accessId), .date(l.issuedAt), .date(l.expiresAt), .date(l.maxExpiresAt),
         .optionalDate(l.lastRenewal), .text(l.state.rawValue), .int(l.attempts), .optionalDate(l.nextAttemptAt), .text(l.lastError)]
    }

    /// Inserts a lease unless its producer already has `limit` live leases (0: no limit). The
    /// producer's row lock, taken first, serializes concurrent inserts for one producer, and the
    /// count runs after it (a statement of its own sees every lease committed before the lock).
    public func insertLease(_ l: Lease, limit: Int) async throws -> Bool {
        let values = Self.leaseValues(l)
        let producer = l.producer
        let inserted = try await db.transaction { tx -> Bool? in
            // With a limit, issues for one producer take its row in turn (FOR UPDATE); without
            // one they proceed together (FOR SHARE). Either lock keeps the producer from being
            // deleted before the lease is committed.
            let lock = limit > 0 ? "FOR UPDATE" : "FOR SHARE"
            guard try await tx.count("SELECT 1 FROM producers WHERE path = $1 \(lock)", [.text(producer)]) > 0 else { return nil }
            if limit > 0 {
                let rows = try await tx.query("SELECT count(*) AS n FROM leases WHERE producer = $1 AND state IN ('pending','active')",
                                              [.text(producer)])
                if try rows.first.map({ try PGColumns($0).int("n") }) ?? 0 >= limit { return false }
            }
            try await tx.query("INSERT INTO leases (\(Self.leaseColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)", values)
            return true
        }
        guard let inserted else { throw TesseraError.notFound("dynamic secret \(l.producer) not found") }
        return inserted
    }

    public func lease(id: String) async throws -> Lease? {
        try await db.query("SELECT * FROM leases WHERE id = $1", [.text(id)]).first.map(Self.lease)
    }

    public func updateLease(_ l: Lease) async throws {
        try await db.query("""
            UPDATE leases SET expires_at = $1, max_expires_at = $2, last_renewal = $3, state = $4, attempts = $5, next_attempt_at = $6,
                              last_error = $7
            WHERE id = $8
            """, [.date(l.expiresAt), .date(l.maxExpiresAt), .optionalDate(l.lastRenewal), .text(l.state.rawValue), .int(l.attempts),
                  .optionalDate(l.nextAttemptAt), .text(l.lastError), .text(l.id)])
    }

    public func leases(prefix: String, state: Lease.State?, limit: Int) async throws -> [Lease] {
        var sql = "SELECT * FROM leases WHERE id >= $1 AND id < $2"
        var values: [PGValue] = [.text(prefix), .text(prefix + "\u{10FFFF}")]
        if let state { sql += " AND state = $3"; values.append(.text(state.rawValue)) }
        sql += " ORDER BY id LIMIT $\(values.count + 1)"
        values.append(.int(limit))
        return try await db.query(sql, values).map(Self.lease)
    }

    public func dueLeases(now: Date, limit: Int) async throws -> [Lease] {
        try await db.query("""
            SELECT * FROM (
                SELECT * FROM leases WHERE state = 'active' AND expires_at <= $1
                UNION ALL
                SELECT * FROM leases WHERE state = 'revoking' AND next_attempt_at <= $1
            ) due ORDER BY expires_at, id LIMIT $2
            """, [.date(now), .int(limit)]).map(Self.lease)
    }

    public func countLeases(state: Lease.State) async throws -> Int {
        try await db.query("SELECT count(*) AS n FROM leases WHERE state = $1", [.text(state.rawValue)]).first.map { try PGColumns($0).int("n") } ?? 0
    }

    static func lease(_ row: PostgresRow) throws -> Lease {
        let c = PGColumns(row)
        return Lease(id: try c.string("id"), producer: try c.string("producer"), username: try c.string("username"),
                     accessId: try c.string("access_id"), issuedAt: try c.date("issued_at"), expiresAt: try c.date("expires_at"),
                     maxExpiresAt: try c.date("max_expires_at"), lastRenewal: try c.optionalDate("last_renewal"),
                     state: Lease.State(rawValue: try c.string("state")) ?? .active, attempts: try c.int("attempts"),
                     nextAttemptAt: try c.optionalDate("next_attempt_at"), lastError: try c.string("last_error"))
    }

    // MARK: Audit anchor

    public func auditAnchor() async throws -> AuditAnchor? {
        guard let row = try await db.query("SELECT sequence, hash FROM audit_anchor WHERE id = 1").first else { return nil }
        let c = PGColumns(row)
        return AuditAnchor(sequence: try c.int64("sequence"), hash: try c.string("hash"))
    }

    public func setAuditAnchor(_ anchor: AuditAnchor) async throws {
        try await db.query("""
            INSERT INTO audit_anchor AS a (id, sequence, hash) VALUES (1, $1, $2)
            ON CONFLICT (id) DO UPDATE SET sequence = EXCLUDED.sequence, hash = EXCLUDED.hash WHERE EXCLUDED.sequence > a.sequence
            """, [.int(anchor.sequence), .text(anchor.hash)])
    }
}
