"""Key rotation and the background rewrap, cut short by SIGKILL and resumed.

10,000 secrets (created by 16 threads) and three Vault targets (their tokens sealed in
`targets`, upstream a real `bao server -dev`) are stored under key term 1. With
`rewrap_rows_per_second` = 1000 the rewrap after `tessera operator rotate` takes about ten
seconds; while `remaining` is strictly between 0 and the total, the server is SIGKILLed. The
data file then holds values under both terms. After a restart and an unseal with the key shares
the rewrap resumes by itself (it keeps no progress: it finds the rows under older terms) until
`remaining` is 0. Then every secret reads back, the targets' tokens still work, no row of
item_versions, targets or pending rotations in tessera.db uses a term below the active one
(read with python sqlite3, read-only), the audit trail has rotate_key (the admin) and rewrap
(the scheduler) and still verifies.
"""

from __future__ import annotations

import base64
import json
import random
import time

from opslib import BaoDev, bulk_create, db_terms, read_values, wait_until

ITEMS = 10_000
RATE = 1000
TARGETS = ["ops-vault-1", "ops-vault-2", "ops-vault-3"]


def _value(name: str) -> str:
    return "val:" + name[::-1]


def test_rewrap_resumes_after_sigkill_and_moves_every_value(make_node, cli_for, bao_bin, tmp_path):
    upstream = BaoDev(bao_bin, tmp_path / "bao")
    upstream.start()
    try:
        _run(make_node, cli_for, upstream)
    finally:
        upstream.stop()


def _run(make_node, cli_for, upstream):
    node = make_node("rewrap", config={"rewrap_rows_per_second": RATE})
    node.init(3, 2)
    cli = cli_for(node, "admin")
    cli.login(node.admin_id, node.admin_key)

    names = [f"/ops/rewrap/d{i // 500:02d}/s{i:05d}" for i in range(ITEMS)]
    started = time.monotonic()
    bulk_create(node, names, _value, threads=16)
    created_in = time.monotonic() - started
    upstream.kv_put("ops/db", password="upstream-pw-1")
    for t in TARGETS:
        node.ok("target-create-hashi-vault", {"name": t, "hashi-url": upstream.addr, "vault-token": upstream.root_token})

    terms = db_terms(node.data_dir)
    assert terms["item_versions"] == {1: ITEMS}, terms
    assert terms["targets"] == {1: len(TARGETS)}, terms
    status = node.key_status()
    assert status["term"] == 1 and status["data"]["term"] == 1
    assert status["rewrap"]["remaining"] == 0 and status["rewrap"]["total"] == ITEMS + len(TARGETS), status["rewrap"]

    # Rotate with the CLI; the rewrap starts at once and is paced.
    rotated_at = time.monotonic()
    out = cli.ok("operator", "rotate")
    assert "term 2" in out.stdout, out.stdout
    total = ITEMS + len(TARGETS)

    def midway():
        r = node.key_status()["rewrap"]
        return r if r["active_term"] == 2 and total // 10 <= r["remaining"] <= total * 8 // 10 else None

    mid = wait_until(midway, timeout=30, interval=0.1, what="the rewrap to be under way")
    assert mid["running"] is True and mid["total"] == total, mid
    # Still serving while it runs; a write now uses the new term.
    node.ok("create-secret", {"name": "/ops/rewrap/during", "value": "written-during"})
    progress = cli.ok("operator", "rewrap-status")
    assert "Active term:  2" in progress.stdout and "running" in progress.stdout, progress.stdout
    elapsed = time.monotonic() - rotated_at
    node.kill()   # SIGKILL mid-rewrap

    # Both terms are in the file now: the kill really cut the rewrap short.
    terms = db_terms(node.data_dir)
    assert set(terms["item_versions"]) == {1, 2}, terms
    assert terms["item_versions"][1] > 0 and sum(terms["item_versions"].values()) == ITEMS + 1, terms
    left_at_kill = terms["item_versions"][1] + terms["targets"].get(1, 0)
    # Paced at about RATE values per second (200-row batches): it had not moved far more than that.
    moved_at_kill = total - left_at_kill
    assert moved_at_kill <= RATE * (elapsed + 1) + 200, (moved_at_kill, elapsed)

    # Restart: sealed, so nothing moves until the shares are given.
    node.start()
    assert node.seal_status()["sealed"] is True
    assert node.sys("GET", "key-status", token=node.vault_token).status_code == 503
    node.unseal(node.keys[:2])
    resumed = time.monotonic()

    def done():
        r = node.key_status()["rewrap"]
        return r if r["remaining"] == 0 else None

    final = wait_until(done, timeout=left_at_kill / RATE + 30, interval=0.25, what="the resumed rewrap to finish")
    took = time.monotonic() - resumed
    # The run ends (and records its completion) after it finds nothing more to move.
    final = wait_until(lambda: (lambda r: r if r["last_completed_at"] and not r["running"] else None)(node.key_status()["rewrap"]),
                       timeout=10, what="the rewrap to record its completion")
    assert final["active_term"] == 2 and final["values_by_term"] == {"2": ITEMS + 1 + len(TARGETS)}, final
    assert final["moved"] == left_at_kill, (final, left_at_kill)    # only what was left, counted since the restart
    assert final["last_completed_at"] and final["last_error"] is None, final
    assert took >= left_at_kill / RATE * 0.5, f"moved {left_at_kill} in {took:.1f}s: not paced at {RATE}/s"
    assert "done" in cli.ok("operator", "rewrap-status").stdout

    # Every value reads back (all of them, and a random sample one by one).
    read_started = time.monotonic()
    values = read_values(node, names)
    assert len(values) == ITEMS and all(values[n] == _value(n) for n in names)
    for n in random.Random(7).sample(names, 300):
        r = node.native("get-secret-value", {"names": [n]})
        assert r.status_code == 200 and r.json() == {n: _value(n)}, (n, r.text[:200])
    assert node.ok("get-secret-value", {"names": ["/ops/rewrap/during"]}) == {"/ops/rewrap/during": "written-during"}
    read_in = time.monotonic() - read_started

    # The targets' tokens were rewrapped, not broken: a connector still reads through them.
    for t in TARGETS:
        usc = f"usc-{t}"
        node.ok("create-usc", {"name": usc, "target-to-associate": t})
        got = node.ok("usc-get", {"usc-name": usc, "secret-id": "ops/db"})
        assert json.loads(base64.b64decode(got["value"])) == {"password": "upstream-pw-1"}, got

    # No stored value under an older term (the server is running, in WAL mode: read-only reads).
    terms = db_terms(node.data_dir)
    assert terms["item_versions"] == {2: ITEMS + 1}, terms
    assert terms["targets"] == {2: len(TARGETS)}, terms
    assert all(t >= 2 for t in terms["rotators"]), terms

    # Audited: the rotation by the admin, the completed rewrap by the scheduler; the chain holds.
    rot = node.audit_events("rotate_key")
    assert [(e["access_id"], e["result"], e["request_parameters"].get("term")) for e in rot] == [(node.admin_id, "allowed", "2")], rot
    rew = node.audit_events("rewrap")
    assert len(rew) == 1 and all(e["access_id"] == "scheduler" and e["result"] == "allowed" for e in rew), rew
    assert rew[0]["request_parameters"].get("moved") == str(left_at_kill), rew
    assert node.audit_events("key_status"), "key-status reads are audited"
    assert node.audit_verify()["ok"] is True

    # After a clean stop the file says the same.
    node.stop()
    assert db_terms(node.data_dir)["item_versions"] == {2: ITEMS + 1}
    print(f"created {ITEMS} in {created_in:.1f}s, killed after {elapsed:.1f}s with {left_at_kill} left, "
          f"resumed rewrap took {took:.1f}s, read back in {read_in:.1f}s")
