# Seeds dynamic-secret leases straight into a stopped Tessera's SQLite store (issuing a million
# leases through the API would take hours). The rows match what DynamicSecretEngine.issue writes
# (Sources/TesseraEngines/Dynamic, Sources/TesseraStore/SQLite): id "<producer without the leading
# slash>/<24 letters or digits>", an existing producer, state "active", times in microseconds since
# the epoch; the expiry is ten years ahead so the lease worker never picks them up. No lease
# column is encrypted. The PostgreSQL roles the usernames name are not created.
import sqlite3
import time

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _b62(i, width):
    out = []
    for _ in range(width):
        i, r = divmod(i, 62)
        out.append(ALNUM[r])
    return "".join(reversed(out))


def first_seed_id():
    """The part after the producer of the first seeded lease's id."""
    return "SEED" + _b62(0, 20)


def seed_leases(db_path, producer, access_id, total, username_prefix="tsb"):
    """Adds seeded active leases of `producer` until it has `total` live leases; returns rows added."""
    con = sqlite3.connect(db_path, timeout=30)
    try:
        if not con.execute("SELECT 1 FROM producers WHERE path = ?", (producer,)).fetchone():
            raise RuntimeError(f"producer {producer} does not exist in {db_path}")
        have = con.execute("SELECT count(*) FROM leases WHERE producer = ? AND state = 'active'", (producer,)).fetchone()[0]
        add = total - have
        if add <= 0:
            return 0
        seeded = con.execute("SELECT count(*) FROM leases WHERE id GLOB ?", (producer[1:] + "/SEED*",)).fetchone()[0]
        t = int(time.time() * 1_000_000)
        expires = t + 10 * 365 * 86400 * 1_000_000
        epoch = str(int(time.time()))
        id_base = producer[1:] + "/"

        def rows():
            for i in range(seeded, seeded + add):
                # 24 characters after the slash, as the engine's ids: "SEED" + 20 base-62 digits.
                yield (id_base + "SEED" + _b62(i, 20), producer, f"{username_prefix}_seed{i:012d}_{epoch}", access_id,
                       t, expires, expires, None, "active", 0, None, "")
        with con:
            con.executemany(
                "INSERT INTO leases (id, producer, username, access_id, issued_at, expires_at, max_expires_at, "
                "last_renewal, state, attempts, next_attempt_at, last_error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows())
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return add
    finally:
        con.close()
