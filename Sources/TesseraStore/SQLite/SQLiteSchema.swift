// The SQLite schema and its migrations. The PostgreSQL engine keeps the same tables and columns
import Foundation
// with its own types (BIGINT, BYTEA); times are microseconds since the epoch in both.

enum SQLiteSchema {
    /// Each entry migrates from version (index) to version (index + 1).
    static let dataMigrations: [String] = [
        """
        CREATE TABLE seal_config (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            shares INTEGER NOT NULL,
            threshold INTEGER NOT NULL,
            encrypted_keyring BLOB NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '[]',
            max_versions INTEGER NOT NULL,
            delete_protection INTEGER NOT NULL DEFAULT 0,
            last_version INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE TABLE item_versions (
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            ciphertext BLOB,
            key_term INTEGER NOT NULL,
            created_by TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            deleted_at INTEGER,
            PRIMARY KEY (item_id, version)
        );
        CREATE TABLE auth_methods (
            access_id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            key_hash BLOB NOT NULL,
            key_salt BLOB NOT NULL,
            token_ttl_minutes INTEGER NOT NULL,
            bound_cidrs TEXT NOT NULL DEFAULT '[]',
            access_expires INTEGER,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE roles (
            name TEXT PRIMARY KEY,
            description TEXT NOT NULL DEFAULT '',
            rules TEXT NOT NULL DEFAULT '[]',
            audit_access TEXT NOT NULL DEFAULT 'none',
            created_at INTEGER NOT NULL
        );
        CREATE TABLE role_auth_methods (
            id TEXT PRIMARY KEY,
            role_name TEXT NOT NULL REFERENCES roles(name) ON DELETE CASCADE,
            access_id TEXT NOT NULL REFERENCES auth_methods(access_id) ON DELETE CASCADE,
            sub_claims TEXT NOT NULL DEFAULT '{}',
            UNIQUE (role_name, access_id)
        );
        CREATE INDEX role_auth_methods_access ON role_auth_methods(access_id);
        CREATE TABLE tokens (
            token_hash TEXT PRIMARY KEY,
            access_id TEXT NOT NULL,
            issued_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            revoked INTEGER NOT NULL DEFAULT 0,
            client_address TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX tokens_expires ON tokens(expires_at);
        CREATE INDEX tokens_access ON tokens(access_id);
        CREATE TABLE access_generation (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            generation INTEGER NOT NULL
        );
        INSERT INTO access_generation (id, generation) VALUES (1, 1);
        """,
        """
        ALTER TABLE item_versions ADD COLUMN destroyed INTEGER NOT NULL DEFAULT 0;
        UPDATE item_versions SET destroyed = 1 WHERE ciphertext IS NULL;
        ALTER TABLE items ADD COLUMN custom_metadata TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE items ADD COLUMN cas_required INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE items ADD COLUMN delete_version_after TEXT NOT NULL DEFAULT '0s';
        CREATE TABLE vault_mounts (
            path TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            folder TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            max_versions INTEGER NOT NULL DEFAULT 0,
            cas_required INTEGER NOT NULL DEFAULT 0,
            delete_version_after TEXT NOT NULL DEFAULT '0s',
            accessor TEXT NOT NULL,
            uuid TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        """,
        """
        ALTER TABLE vault_mounts ADD COLUMN usc_name TEXT;
        CREATE TABLE targets (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}',
            credential BLOB NOT NULL,
            key_term INTEGER NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE uscs (
            name TEXT PRIMARY KEY,
            target_name TEXT NOT NULL REFERENCES targets(name),
            prefix TEXT NOT NULL DEFAULT '',
            description TEXT NOT NULL DEFAULT '',
            created_at INTEGER NOT NULL
        );
        """,
        """
        CREATE TABLE producers (
            path TEXT PRIMARY KEY,
            target_name TEXT NOT NULL REFERENCES targets(name),
            creation_statements TEXT NOT NULL,
            revocation_statements TEXT NOT NULL DEFAULT '',
            user_ttl INTEGER NOT NULL,
            max_ttl INTEGER NOT NULL,
            password_length INTEGER NOT NULL,
            username_prefix TEXT NOT NULL,
            max_leases INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE leases (
            id TEXT PRIMARY KEY,
            producer TEXT NOT NULL,
            username TEXT NOT NULL,
            access_id TEXT NOT NULL,
            issued_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            max_expires_at INTEGER NOT NULL,
            last_renewal INTEGER,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER,
            last_error TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX leases_due ON leases(state, expires_at);
        CREATE INDEX leases_retry ON leases(state, next_attempt_at);
        CREATE INDEX leases_producer ON leases(producer, state);
        """,
        """
        CREATE TABLE rotators (
            item_id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            target_name TEXT NOT NULL REFERENCES targets(name),
            username TEXT NOT NULL,
            credentials TEXT NOT NULL,
            policy TEXT NOT NULL,
            custom_command TEXT NOT NULL DEFAULT '',
            verify_port INTEGER NOT NULL DEFAULT 0,
            auto_rotate INTEGER NOT NULL,
            interval_minutes INTEGER NOT NULL,
            rotation_hour INTEGER,
            next_rotation_at INTEGER,
            status TEXT NOT NULL,
            last_rotation_at INTEGER,
            last_error TEXT NOT NULL DEFAULT '',
            failures INTEGER NOT NULL DEFAULT 0,
            pending_ciphertext BLOB,
            pending_key_term INTEGER,
            pending_started_at INTEGER,
            pending_actor TEXT,
            created_at INTEGER NOT NULL
        );
        CREATE INDEX rotators_due ON rotators(next_rotation_at);
        CREATE INDEX rotators_target ON rotators(target_name);
        """,
        // 6: single-statement item writes. Each view is write-only (it never has rows); inserting
        // into it runs its trigger, which does the whole write atomically in one statement, so a
        // write is one trip to the database thread instead of BEGIN, two or three statements, COMMIT.
        """
        CREATE VIEW item_creations AS
            SELECT i.id, i.path, i.type, i.description, i.tags, i.max_versions, i.delete_protection, i.last_version,
                   i.created_at, i.updated_at, i.custom_metadata, i.cas_required, i.delete_version_after,
                   v.version, v.ciphertext, v.key_term, v.created_by, v.created_at AS version_created_at, v.deleted_at, v.destroyed
            FROM items i JOIN item_versions v ON v.item_id = i.id WHERE 0;
        CREATE TRIGGER item_creations_insert INSTEAD OF INSERT ON item_creations BEGIN
            INSERT INTO items (id, path, type, description, tags, max_versions, delete_protection, last_version, created_at,
                               updated_at, custom_metadata, cas_required, delete_version_after)
            VALUES (NEW.id, NEW.path, NEW.type, NEW.description, NEW.tags, NEW.max_versions, NEW.delete_protection,
                    NEW.last_version, NEW.created_at, NEW.updated_at, NEW.custom_metadata, NEW.cas_required, NEW.delete_version_after);
            INSERT INTO item_versions (item_id, version, ciphertext, key_term, created_by, created_at, deleted_at, destroyed)
            SELECT NEW.id, NEW.version, NEW.ciphertext, NEW.key_term, NEW.created_by, NEW.version_created_at, NEW.deleted_at,
                   NEW.destroyed
            WHERE NEW.version IS NOT NULL;
        END;
        CREATE VIEW version_appends AS
            SELECT item_id, version, version AS expected_last_version, created_at AS updated_at, ciphertext, key_term,
                   created_by, created_at, deleted_at, destroyed
            FROM item_versions WHERE 0;
        CREATE TRIGGER version_appends_insert INSTEAD OF INSERT ON version_appends BEGIN
            SELECT RAISE(ABORT, 'the item changed concurrently')
            WHERE NOT EXISTS (SELECT 1 FROM items WHERE id = NEW.item_id AND last_version = NEW.expected_last_version);
            UPDATE items SET last_version = NEW.version, updated_at = NEW.updated_at WHERE id = NEW.item_id;
            INSERT INTO item_versions (item_id, version, ciphertext, key_term, created_by, created_at, deleted_at, destroyed)
            VALUES (NEW.item_id, NEW.version, NEW.ciphertext, NEW.key_term, NEW.created_by, NEW.created_at, NEW.deleted_at,
                    NEW.destroyed);
            DELETE FROM item_versions
            WHERE item_id = NEW.item_id AND version <= NEW.version - (SELECT max_versions FROM items WHERE id = NEW.item_id);
        END;
        """,
        // 7: delete protection also stops pruning: a protected item keeps every version.
        """
        DROP TRIGGER version_appends_insert;
        CREATE TRIGGER version_appends_insert INSTEAD OF INSERT ON version_appends BEGIN
            SELECT RAISE(ABORT, 'the item changed concurrently')
            WHERE NOT EXISTS (SELECT 1 FROM items WHERE id = NEW.item_id AND last_version = NEW.expected_last_version);
            UPDATE items SET last_version = NEW.version, updated_at = NEW.updated_at WHERE id = NEW.item_id;
            INSERT INTO item_versions (item_id, version, ciphertext, key_term, created_by, created_at, deleted_at, destroyed)
            VALUES (NEW.item_id, NEW.version, NEW.ciphertext, NEW.key_term, NEW.created_by, NEW.created_at, NEW.deleted_at,
                    NEW.destroyed);
            DELETE FROM item_versions
            WHERE item_id = NEW.item_id AND version <= NEW.version - (SELECT max_versions FROM items WHERE id = NEW.item_id)
              AND (SELECT delete_protection FROM items WHERE id = NEW.item_id) = 0;
        END;
        """,
        // 8: the audit chain's anchor, outside the audit file.
        """
        CREATE TABLE audit_anchor (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            sequence INTEGER NOT NULL,
            hash TEXT NOT NULL
        );
        """,
        // 9: finding the values still sealed under an older key term (rewrap).
        """
        CREATE INDEX item_versions_key_term ON item_versions(key_term);
        """,
        // 10: how far each audit device has been fed, and devices created through the API.
        """
        CREATE TABLE audit_device_cursors (
            name TEXT PRIMARY KEY,
            sequence INTEGER NOT NULL
        );
        CREATE TABLE audit_devices (
            name TEXT PRIMARY KEY,
            config TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        """,
        // 11: the nodes sharing the store (one, for SQLite) and claims on background work.
        """
        CREATE TABLE nodes (
            id TEXT PRIMARY KEY,
            hostname TEXT NOT NULL,
            api_address TEXT NOT NULL,
            version TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            heartbeat_at INTEGER NOT NULL
        );
        CREATE TABLE work_claims (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            node_id TEXT NOT NULL,
            claimed_until INTEGER NOT NULL,
            PRIMARY KEY (kind, key)
        );
        """,
        // 12: workload-identity auth methods: their settings, their login roles, and what a
        // login granted to its token.
        """
        ALTER TABLE auth_methods ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE tokens ADD COLUMN grant_info TEXT NOT NULL DEFAULT '';
        CREATE TABLE auth_method_roles (
            access_id TEXT NOT NULL REFERENCES auth_methods(access_id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            config TEXT NOT NULL,
            PRIMARY KEY (access_id, name)
        );
        """,
        // 13: Vault ACL policies kept as written with the role they became, and the parent of a
        // token created by another token (revoking a parent revokes its children).
        """
        ALTER TABLE roles ADD COLUMN policy TEXT NOT NULL DEFAULT '';
        ALTER TABLE roles ADD COLUMN policy_version INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE tokens ADD COLUMN parent_hash TEXT NOT NULL DEFAULT '';
        CREATE INDEX tokens_parent ON tokens(parent_hash) WHERE parent_hash <> '';
        """,
        // 14: AppRole secret ids (an AppRole role is an auth method of type approle).
        """
        CREATE TABLE approle_secret_ids (
            access_id TEXT NOT NULL REFERENCES auth_methods(access_id) ON DELETE CASCADE,
            secret_hash TEXT NOT NULL,
            accessor TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            expires_at INTEGER,
            uses_left INTEGER,
            metadata TEXT NOT NULL DEFAULT '{}',
            cidrs TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (access_id, secret_hash)
        );
        """,
        // 15: mounts that own their items (enabled through sys/mounts over an empty folder), and
        // their tuned lease TTLs.
        """
        ALTER TABLE vault_mounts ADD COLUMN owns_data INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE vault_mounts ADD COLUMN default_lease_ttl INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE vault_mounts ADD COLUMN max_lease_ttl INTEGER NOT NULL DEFAULT 0;
        """,
        // 16: wrapped responses (Vault's response wrapping), sealed, each unwrapped at most once.
        """
        CREATE TABLE wrapped_responses (
            token_hash TEXT PRIMARY KEY,
            creation_path TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            ttl_seconds INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            ciphertext BLOB NOT NULL,
            key_term INTEGER NOT NULL,
            wrapped_accessor TEXT NOT NULL,
            creator_access_id TEXT NOT NULL
        );
        CREATE INDEX wrapped_responses_expiry ON wrapped_responses(expires_at);
        CREATE INDEX wrapped_responses_creator ON wrapped_responses(creator_access_id);
        """,
        // 17: token roles (Vault's auth/token/roles), their settings as JSON.
        """
        CREATE TABLE token_roles (
            name TEXT PRIMARY KEY,
            config TEXT NOT NULL
        );
        """,
        // 18: Vault KV v2 metadata counters: metadata writes, and max_versions as written.
        """
        ALTER TABLE items ADD COLUMN metadata_version INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE items ADD COLUMN vault_max_versions INTEGER NOT NULL DEFAULT 0;
        """,
        // 19: tokens limited by use count (Vault's num_uses): the uses left, NULL for no limit.
        """
        ALTER TABLE tokens ADD COLUMN uses_left INTEGER;
        """,
    ]

    static let auditMigrations: [String] = [
        """
        CREATE TABLE audit_events (
            seq INTEGER PRIMARY KEY,
            time INTEGER NOT NULL,
            request_id TEXT NOT NULL,
            interface TEXT NOT NULL,
            auth_method_type TEXT NOT NULL,
            access_id TEXT NOT NULL,
            actor_name TEXT NOT NULL,
            client_address TEXT NOT NULL,
            action TEXT NOT NULL,
            path TEXT NOT NULL,
            result TEXT NOT NULL,
            status INTEGER NOT NULL,
            duration_us INTEGER NOT NULL,
            error TEXT NOT NULL,
            parameters TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX audit_events_time ON audit_events(time);
        CREATE INDEX audit_events_path ON audit_events(path);
        CREATE INDEX audit_events_actor ON audit_events(access_id, time);
        """,
    ]

    /// Applies the migrations that the file has not seen yet (tracked by `PRAGMA user_version`).
    static func migrate(_ db: SQLiteDatabaseFile, _ migrations: [String]) async throws {
        let rows = try await db.read("PRAGMA user_version")
        let current = rows.first?.column("user_version")?.integer ?? 0
        guard current < migrations.count else { return }
        for index in current..<migrations.count {
            try await db.transaction { tx in
                for sql in statements(migrations[index]) { _ = try await tx.query(sql) }
                _ = try await tx.query("PRAGMA user_version = \(index + 1)")
            }
        }
    }

    /// The statements of a migration, split at semicolons; a `CREATE TRIGGER … END` stays whole.
    static func statements(_ migration: String) -> [String] {
        var out: [String] = []
        var pending = ""
        for piece in migration.split(separator: ";", omittingEmptySubsequences: false) {
            pending += pending.isEmpty ? String(piece) : ";" + piece
            let sql = pending.trimmingCharacters(in: .whitespacesAndNewlines)
            if sql.isEmpty { pending = ""; continue }
            let trigger = sql.uppercased().hasPrefix("CREATE TRIGGER")
            if trigger && !sql.uppercased().hasSuffix("END") { continue }
            out.append(sql)
            pending = ""
        }
        let rest = pending.trimmingCharacters(in: .whitespacesAndNewlines)
        if !rest.isEmpty { out.append(rest) }
        return out
    }
}
