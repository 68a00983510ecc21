// The PostgreSQL schema and its migrations. The tables and columns are the SQLite engine's, with
// PostgreSQL's types; text that is compared or ordered (paths, names, ids) is COLLATE "C", so
// that both engines order and match by bytes. Migrations run under an advisory lock: several
// nodes starting at once apply each migration exactly once.
import Foundation
import PostgresNIO
import TesseraCore

enum PostgresSchema {
    /// The advisory lock key that serializes migrations ("tessera" in ASCII).
    static let migrationLock: Int64 = 0x7465_7373_6572_61

    /// Each entry migrates from version (index) to version (index + 1) of the "data" component.
    static let dataMigrations: [String] = [
        """
        CREATE TABLE seal_config (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            shares BIGINT NOT NULL,
            threshold BIGINT NOT NULL,
            encrypted_keyring BYTEA NOT NULL,
            created_at BIGINT NOT NULL
        );
        CREATE TABLE items (
            id BIGINT PRIMARY KEY,
            path TEXT COLLATE "C" NOT NULL UNIQUE,
            type TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '[]',
            max_versions BIGINT NOT NULL,
            delete_protection BOOLEAN NOT NULL DEFAULT false,
            last_version BIGINT NOT NULL DEFAULT 0,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            custom_metadata TEXT NOT NULL DEFAULT '{}',
            cas_required BOOLEAN NOT NULL DEFAULT false,
            delete_version_after TEXT NOT NULL DEFAULT '0s'
        );
        CREATE TABLE item_versions (
            item_id BIGINT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            version BIGINT NOT NULL,
            ciphertext BYTEA,
            key_term BIGINT NOT NULL,
            created_by TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            deleted_at BIGINT,
            destroyed BOOLEAN NOT NULL DEFAULT false,
            PRIMARY KEY (item_id, version)
        );
        CREATE INDEX item_versions_key_term ON item_versions(key_term);
        CREATE TABLE auth_methods (
            access_id TEXT COLLATE "C" PRIMARY KEY,
            name TEXT COLLATE "C" NOT NULL UNIQUE,
            type TEXT NOT NULL,
            key_hash BYTEA NOT NULL,
            key_salt BYTEA NOT NULL,
            token_ttl_minutes BIGINT NOT NULL,
            bound_cidrs TEXT NOT NULL DEFAULT '[]',
            access_expires BIGINT,
            created_at BIGINT NOT NULL
        );
        CREATE TABLE roles (
            name TEXT COLLATE "C" PRIMARY KEY,
            description TEXT NOT NULL DEFAULT '',
            rules TEXT NOT NULL DEFAULT '[]',
            audit_access TEXT NOT NULL DEFAULT 'none',
            created_at BIGINT NOT NULL
        );
        CREATE TABLE role_auth_methods (
            id TEXT COLLATE "C" PRIMARY KEY,
            role_name TEXT COLLATE "C" NOT NULL REFERENCES roles(name) ON DELETE CASCADE,
            access_id TEXT COLLATE "C" NOT NULL REFERENCES auth_methods(access_id) ON DELETE CASCADE,
            sub_claims TEXT NOT NULL DEFAULT '{}',
            UNIQUE (role_name, access_id)
        );
        CREATE INDEX role_auth_methods_access ON role_auth_methods(access_id);
        CREATE TABLE tokens (
            token_hash TEXT COLLATE "C" PRIMARY KEY,
            access_id TEXT COLLATE "C" NOT NULL,
            issued_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            revoked BOOLEAN NOT NULL DEFAULT false,
            client_address TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX tokens_expires ON tokens(expires_at);
        CREATE INDEX tokens_access ON tokens(access_id);
        CREATE TABLE access_generation (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            generation BIGINT NOT NULL
        );
        INSERT INTO access_generation (id, generation) VALUES (1, 1);
        CREATE TABLE vault_mounts (
            path TEXT COLLATE "C" PRIMARY KEY,
            kind TEXT NOT NULL,
            folder TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            max_versions BIGINT NOT NULL DEFAULT 0,
            cas_required BOOLEAN NOT NULL DEFAULT false,
            delete_version_after TEXT NOT NULL DEFAULT '0s',
            accessor TEXT NOT NULL,
            uuid TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            usc_name TEXT COLLATE "C"
        );
        CREATE TABLE targets (
            id BIGSERIAL UNIQUE,
            name TEXT COLLATE "C" PRIMARY KEY,
            kind TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}',
            credential BYTEA NOT NULL,
            key_term BIGINT NOT NULL,
            created_at BIGINT NOT NULL
        );
        CREATE TABLE uscs (
            name TEXT COLLATE "C" PRIMARY KEY,
            target_name TEXT COLLATE "C" NOT NULL REFERENCES targets(name),
            prefix TEXT NOT NULL DEFAULT '',
            description TEXT NOT NULL DEFAULT '',
            created_at BIGINT NOT NULL
        );
        CREATE INDEX uscs_target ON uscs(target_name);
        CREATE TABLE producers (
            path TEXT COLLATE "C" PRIMARY KEY,
            target_name TEXT COLLATE "C" NOT NULL REFERENCES targets(name),
            creation_statements TEXT NOT NULL,
            revocation_statements TEXT NOT NULL DEFAULT '',
            user_ttl BIGINT NOT NULL,
            max_ttl BIGINT NOT NULL,
            password_length BIGINT NOT NULL,
            username_prefix TEXT NOT NULL,
            max_leases BIGINT NOT NULL DEFAULT 0,
            created_at BIGINT NOT NULL
        );
        CREATE INDEX producers_target ON producers(target_name);
        CREATE TABLE leases (
            id TEXT COLLATE "C" PRIMARY KEY,
            producer TEXT COLLATE "C" NOT NULL,
            username TEXT NOT NULL,
            access_id TEXT NOT NULL,
            issued_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            max_expires_at BIGINT NOT NULL,
            last_renewal BIGINT,
            state TEXT NOT NULL,
            attempts BIGINT NOT NULL DEFAULT 0,
            next_attempt_at BIGINT,
            last_error TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX leases_due ON leases(state, expires_at);
        CREATE INDEX leases_retry ON leases(state, next_attempt_at);
        CREATE INDEX leases_producer ON leases(producer, state);
        CREATE TABLE rotators (
            item_id BIGINT PRIMARY KEY,
            path TEXT COLLATE "C" NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            target_name TEXT COLLATE "C" NOT NULL REFERENCES targets(name),
            username TEXT NOT NULL,
            credentials TEXT NOT NULL,
            policy TEXT NOT NULL,
            custom_command TEXT NOT NULL DEFAULT '',
            verify_port BIGINT NOT NULL DEFAULT 0,
            auto_rotate BOOLEAN NOT NULL,
            interval_minutes BIGINT NOT NULL,
            rotation_hour BIGINT,
            next_rotation_at BIGINT,
            status TEXT NOT NULL,
            last_rotation_at BIGINT,
            last_error TEXT NOT NULL DEFAULT '',
            failures BIGINT NOT NULL DEFAULT 0,
            pending_ciphertext BYTEA,
            pending_key_term BIGINT,
            pending_started_at BIGINT,
            pending_actor TEXT,
            created_at BIGINT NOT NULL
        );
        CREATE INDEX rotators_due ON rotators(next_rotation_at);
        CREATE INDEX rotators_target ON rotators(target_name);
        CREATE TABLE audit_anchor (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            sequence BIGINT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE TABLE audit_device_cursors (
            name TEXT COLLATE "C" PRIMARY KEY,
            sequence BIGINT NOT NULL
        );
        CREATE TABLE audit_devices (
            name TEXT COLLATE "C" PRIMARY KEY,
            config TEXT NOT NULL,
            created_at BIGINT NOT NULL
        );
        """,
        // 2: the nodes sharing the database and claims on background work.
        """
        CREATE TABLE nodes (
            id TEXT COLLATE "C" PRIMARY KEY,
            hostname TEXT NOT NULL,
            api_address TEXT COLLATE "C" NOT NULL,
            version TEXT NOT NULL,
            started_at BIGINT NOT NULL,
            heartbeat_at BIGINT NOT NULL
        );
        CREATE TABLE work_claims (
            kind TEXT COLLATE "C" NOT NULL,
            key TEXT COLLATE "C" NOT NULL,
            node_id TEXT COLLATE "C" NOT NULL,
            claimed_until BIGINT NOT NULL,
            PRIMARY KEY (kind, key)
        );
        """,
        // 3: workload-identity auth methods: their settings, their login roles, and what a
        // login granted to its token.
        """
        ALTER TABLE auth_methods ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE tokens ADD COLUMN grant_info TEXT NOT NULL DEFAULT '';
        CREATE TABLE auth_method_roles (
            access_id TEXT COLLATE "C" NOT NULL REFERENCES auth_methods(access_id) ON DELETE CASCADE,
            name TEXT COLLATE "C" NOT NULL,
            config TEXT NOT NULL,
            PRIMARY KEY (access_id, name)
        );
        """,
        // 4: Vault ACL policies kept as written with the role they became, and the parent of a
        // token created by another token (revoking a parent revokes its children).
        """
        ALTER TABLE roles ADD COLUMN policy TEXT NOT NULL DEFAULT '';
        ALTER TABLE roles ADD COLUMN policy_version BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE tokens ADD COLUMN parent_hash TEXT COLLATE "C" NOT NULL DEFAULT '';
        CREATE INDEX tokens_parent ON tokens(parent_hash) WHERE parent_hash <> '';
        """,
        // 5: AppRole secret ids (an AppRole role is an auth method of type approle).
        """
        CREATE TABLE approle_secret_ids (
            access_id TEXT COLLATE "C" NOT NULL REFERENCES auth_methods(access_id) ON DELETE CASCADE,
            secret_hash TEXT COLLATE "C" NOT NULL,
            accessor TEXT COLLATE "C" NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            expires_at BIGINT,
            uses_left BIGINT,
            metadata TEXT NOT NULL DEFAULT '{}',
            cidrs TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (access_id, secret_hash)
        );
        """,
        // 6: mounts that own their items (enabled through sys/mounts over an empty folder), and
        // their tuned lease TTLs.
        """
        ALTER TABLE vault_mounts ADD COLUMN owns_data BOOLEAN NOT NULL DEFAULT false;
        ALTER TABLE vault_mounts ADD COLUMN default_lease_ttl BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE vault_mounts ADD COLUMN max_lease_ttl BIGINT NOT NULL DEFAULT 0;
        """,
        // 7: wrapped responses (Vault's response wrapping), sealed, each unwrapped at most once.
        """
        CREATE TABLE wrapped_responses (
            token_hash TEXT COLLATE "C" PRIMARY KEY,
            creation_path TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            ttl_seconds BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            ciphertext BYTEA NOT NULL,
            key_term BIGINT NOT NULL,
            wrapped_accessor TEXT NOT NULL,
            creator_access_id TEXT NOT NULL
        );
        CREATE INDEX wrapped_responses_expiry ON wrapped_responses(expires_at);
        CREATE INDEX wrapped_responses_creator ON wrapped_responses(creator_access_id);
        """,
        // 8: token roles (Vault's auth/token/roles), their settings as JSON.
        """
        CREATE TABLE token_roles (
            name TEXT COLLATE "C" PRIMARY KEY,
            config TEXT NOT NULL
        );
        """,
        // 9: Vault KV v2 metadata counters: metadata writes, and max_versions as written.
        """
        ALTER TABLE items ADD COLUMN metadata_version BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE items ADD COLUMN vault_max_versions BIGINT NOT NULL DEFAULT 0;
        """,
        // 10: tokens limited by use count (Vault's num_uses): the uses left, NULL for no limit.
        """
        ALTER TABLE tokens ADD COLUMN uses_left BIGINT;
        """,
    ]

    /// Migrations of the "audit" component (the trail, in the same database).
    static let auditMigrations: [String] = [
        """
        CREATE TABLE audit_events (
            seq BIGINT PRIMARY KEY,
            time BIGINT NOT NULL,
            request_id TEXT NOT NULL,
            interface TEXT NOT NULL,
            auth_method_type TEXT NOT NULL,
            access_id TEXT COLLATE "C" NOT NULL,
            actor_name TEXT NOT NULL,
            client_address TEXT NOT NULL,
            action TEXT NOT NULL,
            path TEXT COLLATE "C" NOT NULL,
            result TEXT NOT NULL,
            status BIGINT NOT NULL,
            duration_us BIGINT NOT NULL,
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

    /// Applies the migrations of `component` that the database has not seen yet, each in its own
    /// transaction, under the advisory lock (held on one connection for the whole run).
    static func migrate(_ db: PostgresDatabase, component: String, _ migrations: [String]) async throws {
        let logger = db.logger
        try await db.withConnection { connection in
            _ = try await connection.query("SELECT pg_advisory_lock(\(migrationLock))", logger: logger).collect()
            do {
                _ = try await connection.query("""
                    CREATE TABLE IF NOT EXISTS tessera_schema (component TEXT PRIMARY KEY, version BIGINT NOT NULL)
                    """, logger: logger).collect()
                let rows = try await connection.query("SELECT version FROM tessera_schema WHERE component = \(component)",
                                                      logger: logger).collect()
                let current = try rows.first.map { try PGColumns($0).int("version") } ?? 0
                guard current <= migrations.count else {
                    throw TesseraError.unavailable("the database schema (\(component) \(current)) is newer than this build knows")
                }
                for index in current..<migrations.count {
                    let next = Int64(index + 1)
                    try await connection.withTransaction(logger: logger) { tx in
                        for sql in statements(migrations[index]) {
                            _ = try await tx.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect()
                        }
                        _ = try await tx.query("""
                            INSERT INTO tessera_schema (component, version) VALUES (\(component), \(next))
                            ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version
                            """, logger: logger).collect()
                    }
                }
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger).collect()
                throw error
            }
            _ = try await connection.query("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger).collect()
        }
    }

    /// The statements of a migration (the extended protocol takes one at a time); the DDL here
    /// has no semicolons inside statements.
    static func statements(_ migration: String) -> [String] {
        migration.split(separator: ";").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    }
}
