// The embedded SQLite engine of the Store protocol: one database file in the data directory.
import Foundation
import Logging
import SQLiteNIO
import TesseraCore
import TesseraCrypto

public final class SQLiteStore: Store {
    let db: SQLiteDatabaseFile
    let cache = SQLiteItemCache()
    /// Hits and misses of the item cache (items and versions), for the metrics.
    public let itemCacheCounter = HitCounter()
    /// One process owns the file: nothing changes behind its back.
    public var changeFeed: (any ChangeFeed)? { nil }

    /// Opens (creating if needed) the database file and applies migrations.
    public static func open(path: String, durability: Durability = .process, logger: Logger) async throws -> SQLiteStore {
        let db = try await SQLiteDatabaseFile.open(path: path, durability: durability, logger: logger)
        do {
            try await SQLiteSchema.migrate(db, SQLiteSchema.dataMigrations)
        } catch {
            await db.close()
            throw error
        }
        return SQLiteStore(db: db)
    }

    init(db: SQLiteDatabaseFile) { self.db = db }

    public func close() async throws { await db.close() }
    public func snapshot(to path: String) async throws { try await db.snapshot(to: path) }

    // MARK: Seal

    public func sealConfig() async throws -> SealConfig? {
        guard let row = try await db.read("SELECT * FROM seal_config WHERE id = 1").first else { return nil }
        let c = Columns(row: row)
        return SealConfig(shares: try c.int("shares"), threshold: try c.int("threshold"),
                          encryptedKeyring: try c.bytes("encrypted_keyring"), createdAt: try c.date("created_at"))
    }

    public func createSealConfig(_ config: SealConfig) async throws {
        do {
            try await db.write("INSERT INTO seal_config (id, shares, threshold, encrypted_keyring, created_at) VALUES (1, ?, ?, ?, ?)",
                               [.int(config.shares), .int(config.threshold), .bytes(config.encryptedKeyring), .date(config.createdAt)])
        } catch TesseraError.conflict {
            throw TesseraError.conflict("Tessera is already initialized")
        }
    }

    public func updateEncryptedKeyring(_ encrypted: [UInt8]) async throws {
        try await db.write("UPDATE seal_config SET encrypted_keyring = ? WHERE id = 1", [.bytes(encrypted)])
    }

    public func replaceEncryptedKeyring(_ encrypted: [UInt8], expected: [UInt8]) async throws -> Bool {
        try await db.write("UPDATE seal_config SET encrypted_keyring = ? WHERE id = 1 AND encrypted_keyring = ?",
                           [.bytes(encrypted), .bytes(expected)]) == 1
    }

    public func replaceSealConfig(_ config: SealConfig) async throws {
        let n = try await db.write("UPDATE seal_config SET shares = ?, threshold = ?, encrypted_keyring = ? WHERE id = 1",
                                   [.int(config.shares), .int(config.threshold), .bytes(config.encryptedKeyring)])
        guard n == 1 else { throw TesseraError.conflict("Tessera is not initialized") }
    }

    // MARK: Items

    /// Inserts the item and its first version in one statement (the `item_creations` trigger).
    public func createItem(_ item: Item, firstVersion: ItemVersion?) async throws {
        defer { cache.invalidate(path: item.path.value) }
        do {
            let statement = try Self.itemCreation(item, firstVersion: firstVersion)
            try await db.run(statement.sql, statement.binds)
        } catch TesseraError.conflict {
            throw TesseraError.conflict("item \(item.path) already exists")
        }
    }

    /// The statement that creates an item with its optional first version, atomically: an
    /// INSERT into the write-only view `item_creations`, whose trigger writes both tables.
    static func itemCreation(_ item: Item, firstVersion v: ItemVersion?) throws -> (sql: String, binds: [SQLiteData]) {
        ("""
         INSERT INTO item_creations (id, path, type, description, tags, max_versions, delete_protection, last_version,
                                     created_at, updated_at, custom_metadata, cas_required, delete_version_after,
                                     version, ciphertext, key_term, created_by, version_created_at, deleted_at, destroyed)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         """,
         [.int64(item.id), .text(item.path.value), .text(item.type.rawValue), .text(item.description),
          try .json(item.tags), .int(item.maxVersions), .bool(item.deleteProtection),
          .int(item.lastVersion), .date(item.createdAt), .date(item.updatedAt),
          try .json(item.customMetadata), .bool(item.casRequired), .text(item.deleteVersionAfter),
          v.map { .int($0.version) } ?? .null, v.flatMap { .optionalBytes($0.ciphertext) } ?? .null,
          v.map { .int(Int($0.keyTerm)) } ?? .null, v.map { .text($0.createdBy) } ?? .null,
          v.map { .date($0.createdAt) } ?? .null, v.flatMap { .optionalDate($0.deletedAt) } ?? .null,
          v.map { .bool($0.destroyed) } ?? .null])
    }

    public func item(at path: ItemPath) async throws -> Item? {
        switch cache.lookup(path.value) {
        case .item(let cached):
            itemCacheCounter.hit()
            return cached
        case .missing:
            itemCacheCounter.hit()
            return nil
        case .unknown: itemCacheCounter.miss()
        }
        let generation = cache.generation
        let item = try await db.read("SELECT * FROM items WHERE path = ?", [.text(path.value)]).first.map(Self.item)
        if let item { cache.store(item, generation: generation) } else { cache.storeMissing(path.value, generation: generation) }
        return item
    }

    static func item(_ row: SQLiteRow) throws -> Item {
        let c = Columns(row: row)
        guard let type = ItemType(rawValue: try c.string("type")) else { throw TesseraError.integrity("unknown item type") }
        return Item(id: try c.int64("id"), path: try ItemPath(try c.string("path")), type: type,
                    description: try c.string("description"), tags: try c.json([String].self, "tags"),
                    maxVersions: try c.int("max_versions"), deleteProtection: try c.bool("delete_protection"),
                    lastVersion: try c.int("last_version"), createdAt: try c.date("created_at"), updatedAt: try c.date("updated_at"),
                    customMetadata: try c.json([String: String].self, "custom_metadata"), casRequired: try c.bool("cas_required"),
                    deleteVersionAfter: try c.string("delete_version_after"), metadataVersion: try c.int("metadata_version"),
                    vaultMaxVersions: try c.int("vault_max_versions"))
    }

    /// Appends a version in one statement (the `version_appends` trigger): fails with a conflict
    /// unless the item's last version is still `expectedLastVersion`; prunes beyond max_versions.
    public func appendVersion(_ version: ItemVersion, expectedLastVersion: Int, updatedAt: Date) async throws {
        defer { cache.invalidate(itemId: version.itemId) }
        do {
            let statement = Self.versionAppend(version, expectedLastVersion: expectedLastVersion, updatedAt: updatedAt)
            try await db.run(statement.sql, statement.binds)
        } catch TesseraError.conflict {
            throw TesseraError.conflict("the item changed concurrently; retry")
        }
    }

    /// The statement that appends a version: an INSERT into the write-only view `version_appends`,
    /// whose trigger checks the last version, updates the item, inserts and prunes.
    static func versionAppend(_ v: ItemVersion, expectedLastVersion: Int, updatedAt: Date) -> (sql: String, binds: [SQLiteData]) {
        ("""
         INSERT INTO version_appends (item_id, version, expected_last_version, updated_at, ciphertext, key_term, created_by,
                                      created_at, deleted_at, destroyed)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         """,
         [.int64(v.itemId), .int(v.version), .int(expectedLastVersion), .date(updatedAt),
          .optionalBytes(v.ciphertext), .int(Int(v.keyTerm)), .text(v.createdBy),
          .date(v.createdAt), .optionalDate(v.deletedAt), .bool(v.destroyed)])
    }

    public func version(itemId: Int64, number: Int) async throws -> ItemVersion? {
        if let cached = cache.version(itemId, number) {
            itemCacheCounter.hit()
            return cached
        }
        itemCacheCounter.miss()
        let generation = cache.generation
        let version = try await db.read("SELECT * FROM item_versions WHERE item_id = ? AND version = ?", [.int64(itemId), .int(number)])
            .first.map(Self.version)
        if let version { cache.store(version, generation: generation) }
        return version
    }

    public func versions(itemId: Int64) async throws -> [ItemVersion] {
        try await db.read("SELECT * FROM item_versions WHERE item_id = ? ORDER BY version", [.int64(itemId)]).map(Self.version)
    }

    static func version(_ row: SQLiteRow) throws -> ItemVersion {
        let c = Columns(row: row)
        return ItemVersion(itemId: try c.int64("item_id"), version: try c.int("version"), ciphertext: c.optionalBytes("ciphertext"),
                           keyTerm: UInt32(truncatingIfNeeded: try c.int("key_term")), createdBy: try c.string("created_by"),
                           createdAt: try c.date("created_at"), deletedAt: c.optionalDate("deleted_at"), destroyed: try c.bool("destroyed"))
    }

    public func items(withPrefix prefix: String, limit: Int) async throws -> [Item] {
        // A range scan on the unique path index: every path with this prefix sorts in [prefix, prefix + U+10FFFF).
        try await db.read("SELECT * FROM items WHERE path >= ? AND path < ? ORDER BY path LIMIT ?",
                          [.text(prefix), .text(prefix + "\u{10FFFF}"), .int(limit)]).map(Self.item)
    }

    public func deleteItem(id: Int64) async throws -> Bool {
        defer { cache.invalidate(itemId: id) }
        return try await db.transaction { tx in
            try await tx.execute("DELETE FROM item_versions WHERE item_id = ?", [.int64(id)])
            try await tx.execute("DELETE FROM rotators WHERE item_id = ?", [.int64(id)])
            return try await tx.execute("DELETE FROM items WHERE id = ?", [.int64(id)]) > 0
        }
    }

    public func deleteVersion(itemId: Int64, number: Int, at: Date) async throws -> Bool {
        defer { cache.invalidate(itemId: itemId) }
        return try await db.write("""
            UPDATE item_versions SET ciphertext = NULL, destroyed = 1, deleted_at = COALESCE(deleted_at, ?)
            WHERE item_id = ? AND version = ? AND destroyed = 0
            """, [.date(at), .int64(itemId), .int(number)]) > 0
    }

    public func setVersionsDeleted(itemId: Int64, numbers: [Int], at: Date?) async throws {
        defer { cache.invalidate(itemId: itemId) }
        guard !numbers.isEmpty else { return }
        try await db.transaction { tx in
            for n in numbers {
                if let at {
                    try await tx.execute("UPDATE item_versions SET deleted_at = ? WHERE item_id = ? AND version = ? AND destroyed = 0 AND deleted_at IS NULL",
                                         [.date(at), .int64(itemId), .int(n)])
                } else {
                    try await tx.execute("UPDATE item_versions SET deleted_at = NULL WHERE item_id = ? AND version = ? AND destroyed = 0",
                                         [.int64(itemId), .int(n)])
                }
            }
        }
    }

    public func destroyVersions(itemId: Int64, numbers: [Int], at: Date) async throws {
        defer { cache.invalidate(itemId: itemId) }
        guard !numbers.isEmpty else { return }
        try await db.transaction { tx in
            for n in numbers {
                _ = at
                try await tx.execute("UPDATE item_versions SET ciphertext = NULL, destroyed = 1 WHERE item_id = ? AND version = ?",
                                     [.int64(itemId), .int(n)])
            }
        }
    }

    public func updateItemMetadata(_ item: Item) async throws {
        defer { cache.invalidate(itemId: item.id) }
        try await db.transaction { tx in
            let n = try await tx.execute("""
                UPDATE items SET max_versions = ?, cas_required = ?, delete_version_after = ?, custom_metadata = ?, description = ?,
                                 tags = ?, delete_protection = ?, updated_at = ?, metadata_version = ?, vault_max_versions = ?
                WHERE id = ?
                """, [.int(item.maxVersions), .bool(item.casRequired), .text(item.deleteVersionAfter), try .json(item.customMetadata),
                      .text(item.description), try .json(item.tags), .bool(item.deleteProtection), .date(item.updatedAt),
                      .int(item.metadataVersion), .int(item.vaultMaxVersions), .int64(item.id)])
            guard n == 1 else { throw TesseraError.notFound("item \(item.path) not found") }
            // Delete protection keeps every version (see `Store`). Pruning counts from the stored
            // last version: a version appended since the caller read the item counts too.
            try await tx.execute("""
                DELETE FROM item_versions WHERE item_id = ? AND version <= (SELECT last_version FROM items WHERE id = ?) - ? AND ? = 0
                """, [.int64(item.id), .int64(item.id), .int(item.maxVersions), .bool(item.deleteProtection)])
        }
    }

    // MARK: Vault mounts

    public func createMount(_ m: VaultMount) async throws {
        do {
            try await db.write("""
                INSERT INTO vault_mounts (path, kind, folder, description, max_versions, cas_required, delete_version_after, accessor, uuid, created_at, usc_name, owns_data)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(m.path), .text(m.kind.rawValue), .text(m.folder.value), .text(m.description), .int(m.maxVersions),
                      .bool(m.casRequired), .text(m.deleteVersionAfter), .text(m.accessor), .text(m.uuid), .date(m.createdAt),
                      m.uscName.map { .text($0) } ?? .null, .bool(m.ownsData)])
        } catch TesseraError.conflict {
            throw TesseraError.conflict("path is already in use at \(m.path)")
        }
    }

    public func mounts() async throws -> [VaultMount] {
        try await db.read("SELECT * FROM vault_mounts ORDER BY path").map { row in
            let c = Columns(row: row)
            guard let kind = VaultMount.Kind(rawValue: try c.string("kind")) else { throw TesseraError.integrity("unknown mount kind") }
            var m = VaultMount(path: try c.string("path"), kind: kind, folder: try ItemPath(folder: try c.string("folder")),
                               description: try c.string("description"), maxVersions: try c.int("max_versions"),
                               casRequired: try c.bool("cas_required"), deleteVersionAfter: try c.string("delete_version_after"),
                               accessor: try c.string("accessor"), uuid: try c.string("uuid"), createdAt: try c.date("created_at"),
                               uscName: row.column("usc_name")?.string)
            m.ownsData = try c.bool("owns_data")
            m.defaultLeaseTTL = try c.int("default_lease_ttl")
            m.maxLeaseTTL = try c.int("max_lease_ttl")
            return m
        }
    }

    public func updateMount(_ m: VaultMount) async throws {
        try await db.write("UPDATE vault_mounts SET description = ?, max_versions = ?, cas_required = ?, delete_version_after = ?, default_lease_ttl = ?, max_lease_ttl = ?, kind = ? WHERE path = ?",
                           [.text(m.description), .int(m.maxVersions), .bool(m.casRequired), .text(m.deleteVersionAfter),
                            .int(m.defaultLeaseTTL), .int(m.maxLeaseTTL), .text(m.kind.rawValue), .text(m.path)])
    }

    public func deleteMount(path: String) async throws -> Bool {
        try await db.write("DELETE FROM vault_mounts WHERE path = ?", [.text(path)]) > 0
    }

    public func moveMount(from path: String, to m: VaultMount, itemsFrom folder: ItemPath?, expectedItems: Int) async throws {
        defer { if folder != nil { cache.invalidateAll() } }
        do {
            try await db.transaction { tx in
                guard try await tx.execute("UPDATE vault_mounts SET path = ?, folder = ? WHERE path = ?",
                                           [.text(m.path), .text(m.folder.value), .text(path)]) > 0 else {
                    throw TesseraError.notFound("no mount at \(path)")
                }
                guard let folder else { return }
                let old = folder.folderPrefix, new = m.folder.folderPrefix
                let occupied = try await tx.query("SELECT 1 FROM items WHERE path = ? OR (path >= ? AND path < ?) LIMIT 1",
                                                  [.text(m.folder.value), .text(new), .text(new + "\u{10FFFF}")])
                guard occupied.isEmpty else { throw TesseraError.conflict("items are stored under \(m.folder.value)") }
                // substr counts characters from 1: the rest of the path after the old prefix.
                var moved = try await tx.execute("UPDATE items SET path = ? || substr(path, ?) WHERE path >= ? AND path < ?",
                                                 [.text(new), .int(old.unicodeScalars.count + 1), .text(old), .text(old + "\u{10FFFF}")])
                moved += try await tx.execute("UPDATE items SET path = ? WHERE path = ?", [.text(m.folder.value), .text(folder.value)])
                guard moved == expectedItems else { throw TesseraError.conflict("the mount's items changed while it was being moved") }
            }
        } catch TesseraError.conflict {
            throw TesseraError.conflict("path is already in use at \(m.path)")
        }
    }

    // MARK: Auth methods

    public func createAuthMethod(_ m: AuthMethod) async throws {
        do {
            try await db.transaction { tx in
                try await tx.execute("""
                    INSERT INTO auth_methods (access_id, name, type, key_hash, key_salt, token_ttl_minutes, bound_cidrs, access_expires, created_at, config)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.text(m.accessId), .text(m.name), .text(m.type), .bytes(m.keyHash), .bytes(m.keySalt),
                          .int(m.tokenTTLMinutes), try .json(m.boundCIDRs), .optionalDate(m.accessExpires), .date(m.createdAt), .text(m.config.serialized)])
                try await Self.bumpGeneration(tx)
            }
        } catch TesseraError.conflict {
            throw TesseraError.conflict("an auth method named \(m.name) already exists")
        }
    }

    public func authMethod(accessId: String) async throws -> AuthMethod? {
        try await db.read("SELECT * FROM auth_methods WHERE access_id = ?", [.text(accessId)]).first.map(Self.authMethod)
    }

    public func authMethod(name: String) async throws -> AuthMethod? {
        try await db.read("SELECT * FROM auth_methods WHERE name = ?", [.text(name)]).first.map(Self.authMethod)
    }

    public func authMethods() async throws -> [AuthMethod] {
        try await db.read("SELECT * FROM auth_methods ORDER BY name").map(Self.authMethod)
    }

    static func authMethod(_ row: SQLiteRow) throws -> AuthMethod {
        let c = Columns(row: row)
        return AuthMethod(accessId: try c.string("access_id"), name: try c.string("name"), type: try c.string("type"),
                          keyHash: try c.bytes("key_hash"), keySalt: try c.bytes("key_salt"),
                          tokenTTLMinutes: try c.int("token_ttl_minutes"), boundCIDRs: try c.json([String].self, "bound_cidrs"),
                          accessExpires: c.optionalDate("access_expires"), createdAt: try c.date("created_at"),
                          config: try JSON.parse(Array(try c.string("config").utf8)))
    }

    public func deleteAuthMethod(accessId: String) async throws -> Bool {
        try await db.transaction { tx in
            try await tx.execute("DELETE FROM tokens WHERE access_id = ?", [.text(accessId)])
            try await tx.execute("DELETE FROM auth_method_roles WHERE access_id = ?", [.text(accessId)])
            try await tx.execute("DELETE FROM approle_secret_ids WHERE access_id = ?", [.text(accessId)])
            try await tx.execute("DELETE FROM role_auth_methods WHERE access_id = ?", [.text(accessId)])
            let n = try await tx.execute("DELETE FROM auth_methods WHERE access_id = ?", [.text(accessId)])
            try await Self.bumpGeneration(tx)
            return n > 0
        }
    }

    public func replaceAuthMethodKey(accessId: String, keyHash: [UInt8], keySalt: [UInt8]) async throws -> Bool {
        try await db.transaction { tx in
            let n = try await tx.execute("UPDATE auth_methods SET key_hash = ?, key_salt = ? WHERE access_id = ?",
                                         [.bytes(keyHash), .bytes(keySalt), .text(accessId)])
            try await Self.bumpGeneration(tx)
            return n > 0
        }
    }

    public func updateAuthMethod(_ m: AuthMethod) async throws -> Bool {
        try await db.transaction { tx in
            let n = try await tx.execute("""
                UPDATE auth_methods SET config = ?, token_ttl_minutes = ?, bound_cidrs = ?, access_expires = ? WHERE access_id = ?
                """, [.text(m.config.serialized), .int(m.tokenTTLMinutes), try .json(m.boundCIDRs), .optionalDate(m.accessExpires),
                      .text(m.accessId)])
            try await Self.bumpGeneration(tx)
            return n > 0
        }
    }

    public func putAuthMethodRole(_ r: AuthMethodRole) async throws {
        try await db.transaction { tx in
            guard try await tx.execute("UPDATE auth_methods SET type = type WHERE access_id = ?", [.text(r.accessId)]) > 0 else {
                throw TesseraError.notFound("auth method not found")
            }
            try await tx.execute("""
                INSERT INTO auth_method_roles (access_id, name, config) VALUES (?, ?, ?)
                ON CONFLICT (access_id, name) DO UPDATE SET config = excluded.config
                """, [.text(r.accessId), .text(r.name), .text(r.config.serialized)])
            try await Self.bumpGeneration(tx)
        }
    }

    public func authMethodRole(accessId: String, name: String) async throws -> AuthMethodRole? {
        try await db.read("SELECT * FROM auth_method_roles WHERE access_id = ? AND name = ?", [.text(accessId), .text(name)])
            .first.map(Self.authMethodRole)
    }

    public func authMethodRoles(accessId: String) async throws -> [AuthMethodRole] {
        try await db.read("SELECT * FROM auth_method_roles WHERE access_id = ? ORDER BY name", [.text(accessId)]).map(Self.authMethodRole)
    }

    public func deleteAuthMethodRole(accessId: String, name: String) async throws -> Bool {
        try await db.transaction { tx in
            let n = try await tx.execute("DELETE FROM auth_method_roles WHERE access_id = ? AND name = ?", [.text(accessId), .text(name)])
            try await Self.bumpGeneration(tx)
            return n > 0
        }
    }

    static func authMethodRole(_ row: SQLiteRow) throws -> AuthMethodRole {
        let c = Columns(row: row)
        return AuthMethodRole(accessId: try c.string("access_id"), name: try c.string("name"),
                              config: try JSON.parse(Array(try c.string("config").utf8)))
    }

    // MARK: Roles

    public func createRole(_ role: Role) async throws {
        do {
            try await db.transaction { tx in
                try await tx.execute("INSERT INTO roles (name, description, rules, audit_access, created_at, policy, policy_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                     [.text(role.name), .text(role.description), try .json(role.rules),
                                      .text(role.auditAccess.rawValue), .date(role.createdAt), .text(role.policyText), .int(role.policyVersion)])
                try await Self.bumpGeneration(tx)
            }
        } catch TesseraError.conflict {
            throw TesseraError.conflict("a role named \(role.name) already exists")
        }
    }

    public func role(named name: String) async throws -> Role? {
        try await db.read("SELECT * FROM roles WHERE name = ?", [.text(name)]).first.map(Self.role)
    }

    public func roles() async throws -> [Role] {
        try await db.read("SELECT * FROM roles ORDER BY name").map(Self.role)
    }

    static func role(_ row: SQLiteRow) throws -> Role {
        let c = Columns(row: row)
        return Role(name: try c.string("name"), description: try c.string("description"),
                    rules: try c.json([Rule].self, "rules"),
                    auditAccess: AuditAccess(rawValue: try c.string("audit_access")) ?? .none,
                    createdAt: try c.date("created_at"), policyText: try c.string("policy"), policyVersion: try c.int("policy_version"))
    }

    public func deleteRole(named name: String) async throws -> Bool {
        try await db.transaction { tx in
            try await tx.execute("DELETE FROM role_auth_methods WHERE role_name = ?", [.text(name)])
            let n = try await tx.execute("DELETE FROM roles WHERE name = ?", [.text(name)])
            try await Self.bumpGeneration(tx)
            return n > 0
        }
    }

    public func updateRole(_ role: Role) async throws {
        try await db.transaction { tx in
            let n = try await tx.execute("UPDATE roles SET description = ?, rules = ?, audit_access = ?, policy = ?, policy_version = ? WHERE name = ?",
                                         [.text(role.description), try .json(role.rules), .text(role.auditAccess.rawValue),
                                          .text(role.policyText), .int(role.policyVersion), .text(role.name)])
            guard n == 1 else { throw TesseraError.notFound("role \(role.name) not found") }
            try await Self.bumpGeneration(tx)
        }
    }

    // MARK: Associations

    public func createAssociation(_ a: RoleAssociation) async throws {
        do {
            try await db.transaction { tx in
                try await tx.execute("INSERT INTO role_auth_methods (id, role_name, access_id, sub_claims) VALUES (?, ?, ?, ?)",
                                     [.text(a.id), .text(a.roleName), .text(a.accessId), try .json(a.subClaims)])
                try await Self.bumpGeneration(tx)
            }
        } catch TesseraError.conflict {
            throw TesseraError.conflict("role \(a.roleName) is already associated with this auth method")
        }
    }

    public func associations(accessId: String) async throws -> [RoleAssociation] {
        try await db.read("SELECT * FROM role_auth_methods WHERE access_id = ? ORDER BY role_name", [.text(accessId)]).map(Self.association)
    }

    public func associations(roleName: String) async throws -> [RoleAssociation] {
        try await db.read("SELECT * FROM role_auth_methods WHERE role_name = ? ORDER BY access_id", [.text(roleName)]).map(Self.association)
    }

    static func association(_ row: SQLiteRow) throws -> RoleAssociation {
        let c = Columns(row: row)
        return RoleAssociation(id: try c.string("id"), roleName: try c.string("role_name"), accessId: try c.string("access_id"),
                               subClaims: try c.json([String: [String]].self, "sub_claims"))
    }

    public func deleteAssociation(id: String) async throws -> Bool {
        try await db.transaction { tx in
            let n = try await tx.execute("DELETE FROM role_auth_methods WHERE id = ?", [.text(id)])
            try await Self.bumpGeneration(tx)
            return n > 0
        }
    }

    static func bumpGeneration(_ tx: SQLiteTransaction) async throws {
        try await tx.execute("UPDATE access_generation SET generation = generation + 1 WHERE id = 1")
    }

    public func accessGeneration() async throws -> Int64 {
        let rows = try await db.read("SELECT generation FROM access_generation WHERE id = 1")
        return Int64(rows.first?.column("generation")?.integer ?? 0)
    }

    // MARK: AppRole secret ids

    public func createSecretID(_ r: SecretIDRecord) async throws {
        try await db.write("INSERT INTO approle_secret_ids (access_id, secret_hash, accessor, created_at, expires_at, uses_left, metadata, cidrs) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [.text(r.accessId), .text(r.secretHash), .text(r.accessor), .date(r.createdAt), .optionalDate(r.expiresAt),
                            r.usesLeft.map { .int($0) } ?? .null, try .json(r.metadata), try .json(r.cidrs)])
    }

    public func secretID(accessId: String, hash: String) async throws -> SecretIDRecord? {
        try await db.read("SELECT * FROM approle_secret_ids WHERE access_id = ? AND secret_hash = ?", [.text(accessId), .text(hash)]).first.map(Self.secretID)
    }

    public func secretID(accessId: String, accessor: String) async throws -> SecretIDRecord? {
        try await db.read("SELECT * FROM approle_secret_ids WHERE access_id = ? AND accessor = ?", [.text(accessId), .text(accessor)]).first.map(Self.secretID)
    }

    public func secretIDs(accessId: String) async throws -> [SecretIDRecord] {
        try await db.read("SELECT * FROM approle_secret_ids WHERE access_id = ? ORDER BY accessor", [.text(accessId)]).map(Self.secretID)
    }

    public func useSecretID(accessId: String, hash: String, now: Date) async throws -> SecretIDRecord? {
        try await db.transaction { tx in
            let binds: [SQLiteData] = [.text(accessId), .text(hash)]
            let n = try await tx.execute("""
                UPDATE approle_secret_ids SET uses_left = uses_left - 1
                WHERE access_id = ? AND secret_hash = ? AND (expires_at IS NULL OR expires_at > ?) AND (uses_left IS NULL OR uses_left > 0)
                """, binds + [.date(now)])
            guard n == 1, let row = try await tx.query("SELECT * FROM approle_secret_ids WHERE access_id = ? AND secret_hash = ?", binds).first else {
                return nil
            }
            let used = try Self.secretID(row)
            if used.usesLeft == 0 { try await tx.execute("DELETE FROM approle_secret_ids WHERE access_id = ? AND secret_hash = ?", binds) }
            return used
        }
    }

    public func deleteSecretID(accessId: String, accessor: String) async throws -> Bool {
        try await db.write("DELETE FROM approle_secret_ids WHERE access_id = ? AND accessor = ?", [.text(accessId), .text(accessor)]) > 0
    }

    static func secretID(_ row: SQLiteRow) throws -> SecretIDRecord {
        let c = Columns(row: row)
        return SecretIDRecord(accessId: try c.string("access_id"), secretHash: try c.string("secret_hash"), accessor: try c.string("accessor"),
                              createdAt: try c.date("created_at"), expiresAt: c.optionalDate("expires_at"),
                              usesLeft: row.column("uses_left")?.integer, metadata: try c.json([String: String].self, "metadata"),
                              cidrs: try c.json([String].self, "cidrs"))
    }

    // MARK: Tokens

    public func createToken(_ t: TokenRecord) async throws {
        try await db.write("INSERT INTO tokens (token_hash, access_id, issued_at, expires_at, revoked, client_address, grant_info, parent_hash, uses_left) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [.text(t.tokenHash), .text(t.accessId), .date(t.issuedAt), .date(t.expiresAt), .bool(t.revoked), .text(t.clientAddress),
                            .text(try TokenGrant.storedText(t.grant)), .text(t.parentHash), t.usesLeft.map { .int($0) } ?? .null])
    }

    public func token(hash: String) async throws -> TokenRecord? {
        guard let row = try await db.read("SELECT * FROM tokens WHERE token_hash = ?", [.text(hash)]).first else { return nil }
        return try Self.token(row)
    }

    public func token(hashPrefix: String) async throws -> TokenRecord? {
        guard !hashPrefix.isEmpty else { return nil }
        let rows = try await db.read("SELECT * FROM tokens WHERE token_hash >= ? AND token_hash < ? ORDER BY token_hash LIMIT 2",
                                     [.text(hashPrefix), .text(hashPrefix + "~")])
        guard rows.count == 1, let row = rows.first else { return nil }
        return try Self.token(row)
    }

    public func liveTokenHashes(now: Date, limit: Int) async throws -> [String] {
        try await db.read("SELECT token_hash FROM tokens WHERE revoked = 0 AND expires_at > ? ORDER BY token_hash LIMIT ?", [.date(now), .int(limit)])
            .map { try Columns(row: $0).string("token_hash") }
    }

    public func childTokens(parentHash: String) async throws -> [String] {
        guard !parentHash.isEmpty else { return [] }
        return try await db.read("SELECT token_hash FROM tokens WHERE parent_hash = ? AND revoked = 0", [.text(parentHash)])
            .map { try Columns(row: $0).string("token_hash") }
    }

    static func token(_ row: SQLiteRow) throws -> TokenRecord {
        let c = Columns(row: row)
        return TokenRecord(tokenHash: try c.string("token_hash"), accessId: try c.string("access_id"),
                           issuedAt: try c.date("issued_at"), expiresAt: try c.date("expires_at"),
                           revoked: try c.bool("revoked"), clientAddress: try c.string("client_address"),
                           grant: try TokenGrant.fromStoredText(try c.string("grant_info")), parentHash: try c.string("parent_hash"),
                           usesLeft: row.column("uses_left")?.integer)
    }

    public func revokeToken(hash: String) async throws -> Bool {
        try await db.write("UPDATE tokens SET revoked = 1 WHERE token_hash = ? AND revoked = 0", [.text(hash)]) > 0
    }

    public func spendTokenUse(hash: String) async throws -> Int? {
        try await db.transaction { tx in
            guard try await tx.execute("""
                UPDATE tokens SET uses_left = uses_left - 1, revoked = CASE WHEN uses_left <= 1 THEN 1 ELSE revoked END
                WHERE token_hash = ? AND revoked = 0 AND uses_left > 0
                """, [.text(hash)]) > 0 else { return nil }
            return try await tx.query("SELECT uses_left FROM tokens WHERE token_hash = ?", [.text(hash)]).first?.column("uses_left")?.integer
        }
    }

    public func renewToken(hash: String, expiresAt: Date) async throws -> Bool {
        try await db.write("UPDATE tokens SET expires_at = ? WHERE token_hash = ? AND revoked = 0", [.date(expiresAt), .text(hash)]) > 0
    }

    public func revokeTokens(accessId: String) async throws {
        try await db.write("UPDATE tokens SET revoked = 1 WHERE access_id = ?", [.text(accessId)])
    }

    public func purgeExpiredTokens(before cutoff: Date) async throws -> Int {
        try await db.write("DELETE FROM tokens WHERE expires_at < ?", [.date(cutoff)])
    }

    public func purgeExpiredSecretIDs(before cutoff: Date) async throws -> Int {
        try await db.write("DELETE FROM approle_secret_ids WHERE expires_at IS NOT NULL AND expires_at < ?", [.date(cutoff)])
    }

    public func purgeExpiredWrappedResponses(before cutoff: Date) async throws -> Int {
        try await db.write("DELETE FROM wrapped_responses WHERE expires_at < ?", [.date(cutoff)])
    }

    // MARK: Targets and connectors

    public func createTarget(_ t: Target) async throws {
        do {
            try await db.write("INSERT INTO targets (name, kind, settings, credential, key_term, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                               [.text(t.name), .text(t.kind.rawValue), try .json(t.settings), .bytes(t.credentialCiphertext),
                                .int(Int(t.keyTerm)), .date(t.createdAt)])
        } catch TesseraError.conflict {
            throw TesseraError.conflict("a target named \(t.name) already exists")
        }
    }

    public func targetId(named name: String) async throws -> Int64? {
        guard let row = try await db.read("SELECT rowid AS id FROM targets WHERE name = ?", [.text(name)]).first else { return nil }
        return try Columns(row: row).int64("id")
    }

    public func target(named name: String) async throws -> Target? {
        try await db.read("SELECT * FROM targets WHERE name = ?", [.text(name)]).first.map(Self.target)
    }

    public func targets() async throws -> [Target] {
        try await db.read("SELECT * FROM targets ORDER BY name").map(Self.target)
    }

    static func target(_ row: SQLiteRow) throws -> Target {
        let c = Columns(row: row)
        guard let kind = Target.Kind(rawValue: try c.string("kind")) else { throw TesseraError.integrity("unknown target kind") }
        return Target(name: try c.string("name"), kind: kind, settings: try c.json([String: String].self, "settings"),
                      credentialCiphertext: try c.bytes("credential"), keyTerm: UInt32(truncatingIfNeeded: try c.int("key_term")),
                      createdAt: try c.date("created_at"))
    }

    public func deleteTarget(named name: String) async throws -> Bool {
        try await db.transaction { tx in
            let users = try await tx.query("SELECT name FROM uscs WHERE target_name = ? LIMIT 1", [.text(name)])
            if let user = users.first?.column("name")?.string {
                throw TesseraError.conflict("target \(name) is used by the connector \(user)")
            }
            let producers = try await tx.query("SELECT path FROM producers WHERE target_name = ? LIMIT 1", [.text(name)])
            if let user = producers.first?.column("path")?.string {
                throw TesseraError.conflict("target \(name) is used by the dynamic secret \(user)")
            }
            let rotators = try await tx.query("SELECT path FROM rotators WHERE target_name = ? LIMIT 1", [.text(name)])
            if let user = rotators.first?.column("path")?.string {
                throw TesseraError.conflict("target \(name) is used by the rotated secret \(user)")
            }
            return try await tx.execute("DELETE FROM targets WHERE name = ?", [.text(name)]) > 0
        }
    }

    public func createConnector(_ u: SecretConnector) async throws {
        do {
            try await db.write("INSERT INTO uscs (name, target_name, prefix, description, created_at) VALUES (?, ?, ?, ?, ?)",
                               [.text(u.name), .text(u.targetName), .text(u.prefix), .text(u.description), .date(u.createdAt)])
        } catch TesseraError.conflict {
            throw TesseraError.conflict("a connector named \(u.name) already exists")
        }
    }

    public func connector(named name: String) async throws -> SecretConnector? {
        try await db.read("SELECT * FROM uscs WHERE name = ?", [.text(name)]).first.map(Self.connector)
    }

    public func connectors() async throws -> [SecretConnector] {
        try await db.read("SELECT * FROM uscs ORDER BY name").map(Self.connector)
    }

    static func connector(_ row: SQLiteRow) throws -> SecretConnector {
        let c = Columns(row: row)
        return SecretConnector(name: try c.string("name"), targetName: try c.string("target_name"), prefix: try c.string("prefix"),
                               description: try c.string("description"), createdAt: try c.date("created_at"))
    }

    public func deleteConnector(named name: String) async throws -> Bool {
        try await db.transaction { tx in
            let users = try await tx.query("SELECT path FROM vault_mounts WHERE usc_name = ? LIMIT 1", [.text(name)])
            if let user = users.first?.column("path")?.string {
                throw TesseraError.conflict("connector \(name) backs the Vault mount \(user)")
            }
            return try await tx.execute("DELETE FROM uscs WHERE name = ?", [.text(name)]) > 0
        }
    }

    // MARK: Producers and leases

    public func createProducer(_ p: Producer) async throws {
        do {
            try await db.write("""
                INSERT INTO producers (path, target_name, creation_statements, revocation_statements, user_ttl, max_ttl, password_length,
                                       username_prefix, max_leases, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(p.path.value), .text(p.targetName), .text(p.creationStatements), .text(p.revocationStatements), .int(p.userTTL),
                      .int(p.maxTTL), .int(p.passwordLength), .text(p.usernamePrefix), .int(p.maxLeases), .date(p.createdAt)])
        } catch TesseraError.conflict {
            throw TesseraError.conflict("a dynamic secret named \(p.path) already exists")
        }
    }

    public func producer(path: String) async throws -> Producer? {
        try await db.read("SELECT * FROM producers WHERE path = ?", [.text(path)]).first.map(Self.producer)
    }

    public func producers() async throws -> [Producer] {
        try await db.read("SELECT * FROM producers ORDER BY path").map(Self.producer)
    }

    static func producer(_ row: SQLiteRow) throws -> Producer {
        let c = Columns(row: row)
        return Producer(path: try ItemPath(try c.string("path")), targetName: try c.string("target_name"),
                        creationStatements: try c.string("creation_statements"), revocationStatements: try c.string("revocation_statements"),
                        userTTL: try c.int("user_ttl"), maxTTL: try c.int("max_ttl"), passwordLength: try c.int("password_length"),
                        usernamePrefix: try c.string("username_prefix"), maxLeases: try c.int("max_leases"), createdAt: try c.date("created_at"))
    }

    public func deleteProducer(path: String) async throws -> Bool {
        try await db.transaction { tx in
            let live = try await tx.query("SELECT COUNT(*) AS n FROM leases WHERE producer = ? AND state IN ('pending','active','revoking','irrevocable')",
                                          [.text(path)])
            if let n = live.first?.column("n")?.integer, n > 0 {
                throw TesseraError.conflict("dynamic secret \(path) still has \(n) leases that are not revoked")
            }
            return try await tx.execute("DELETE FROM producers WHERE path = ?", [.text(path)]) > 0
        }
    }

    /// Inserts a lease unless its producer already has `limit` live leases (0: no limit); the
    /// count and the insert are one statement, so concurrent issues cannot overshoot the limit.
    public func insertLease(_ l: Lease, limit: Int) async throws -> Bool {
        let columns = "id, producer, username, access_id, issued_at, expires_at, max_expires_at, last_renewal, state, attempts, next_attempt_at, last_error"
        // The producer must still exist, in the same statement: a lease recorded for a producer
        // deleted meanwhile could never be revoked (its target would be unknown).
        let inserted = try await db.write("""
            INSERT INTO leases (\(columns)) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
            WHERE EXISTS (SELECT 1 FROM producers WHERE path = ?)
              AND (? <= 0 OR (SELECT COUNT(*) FROM leases WHERE producer = ? AND state IN ('pending','active')) < ?)
            """, Self.leaseBinds(l) + [.text(l.producer), .int(limit), .text(l.producer), .int(limit)])
        if inserted == 1 { return true }
        if try await db.read("SELECT 1 FROM producers WHERE path = ?", [.text(l.producer)]).isEmpty {
            throw TesseraError.notFound("dynamic secret \(l.producer) not found")
        }
        return false
    }

    static func leaseBinds(_ l: Lease) -> [SQLiteData] {
        [.text(l.id), .text(l.producer), .text(l.username), .text(l.accessId), .date(l.issuedAt), .date(l.expiresAt), .date(l.maxExpiresAt),
         .optionalDate(l.lastRenewal), .text(l.state.rawValue), .int(l.attempts), .optionalDate(l.nextAttemptAt), .text(l.lastError)]
    }

    public func lease(id: String) async throws -> Lease? {
        try await db.read("SELECT * FROM leases WHERE id = ?", [.text(id)]).first.map(Self.lease)
    }

    public func updateLease(_ l: Lease) async throws {
        try await db.write("""
            UPDATE leases SET expires_at = ?, max_expires_at = ?, last_renewal = ?, state = ?, attempts = ?, next_attempt_at = ?, last_error = ?
            WHERE id = ?
            """, [.date(l.expiresAt), .date(l.maxExpiresAt), .optionalDate(l.lastRenewal), .text(l.state.rawValue), .int(l.attempts),
                  .optionalDate(l.nextAttemptAt), .text(l.lastError), .text(l.id)])
    }

    public func leases(prefix: String, state: Lease.State?, limit: Int) async throws -> [Lease] {
        var sql = "SELECT * FROM leases WHERE id >= ? AND id < ?"
        var binds: [SQLiteData] = [.text(prefix), .text(prefix + "\u{10FFFF}")]
        if let state { sql += " AND state = ?"; binds.append(.text(state.rawValue)) }
        sql += " ORDER BY id LIMIT ?"
        binds.append(.int(limit))
        return try await db.read(sql, binds).map(Self.lease)
    }

    public func dueLeases(now: Date, limit: Int) async throws -> [Lease] {
        try await db.read("""
            SELECT * FROM (
                SELECT * FROM leases WHERE state = 'active' AND expires_at <= ?
                UNION ALL
                SELECT * FROM leases WHERE state = 'revoking' AND next_attempt_at <= ?
            ) ORDER BY expires_at LIMIT ?
            """, [.date(now), .date(now), .int(limit)]).map(Self.lease)
    }

    // MARK: Audit anchor

    public func auditAnchor() async throws -> AuditAnchor? {
        guard let row = try await db.read("SELECT sequence, hash FROM audit_anchor WHERE id = 1").first else { return nil }
        let c = Columns(row: row)
        return AuditAnchor(sequence: try c.int64("sequence"), hash: try c.string("hash"))
    }

    public func setAuditAnchor(_ anchor: AuditAnchor) async throws {
        _ = try await db.write("""
            INSERT INTO audit_anchor (id, sequence, hash) VALUES (1, ?, ?)
            ON CONFLICT (id) DO UPDATE SET sequence = excluded.sequence, hash = excluded.hash WHERE excluded.sequence > audit_anchor.sequence
            """, [.int64(anchor.sequence), .text(anchor.hash)])
    }

    public func countLeases(state: Lease.State) async throws -> Int {
        try await db.read("SELECT COUNT(*) AS n FROM leases WHERE state = ?", [.text(state.rawValue)]).first?.column("n")?.integer ?? 0
    }

    static func lease(_ row: SQLiteRow) throws -> Lease {
        let c = Columns(row: row)
        return Lease(id: try c.string("id"), producer: try c.string("producer"), username: try c.string("username"),
                     accessId: try c.string("access_id"), issuedAt: try c.date("issued_at"), expiresAt: try c.date("expires_at"),
                     maxExpiresAt: try c.date("max_expires_at"), lastRenewal: c.optionalDate("last_renewal"),
                     state: Lease.State(rawValue: try c.string("state")) ?? .active, attempts: try c.int("attempts"),
                     nextAttemptAt: c.optionalDate("next_attempt_at"), lastError: try c.string("last_error"))
    }
}
