# Two Tessera nodes on one PostgreSQL database, with dynamic PostgreSQL credentials: a node
# killed with SIGKILL in the middle of a burst of issues leaves no untracked role, the other
# node cleans up its interrupted issues without revoking any live lease, the killed node
# rejoins, and the audit trail written by both nodes verifies as one chain. (Leases falling due
# and a one-minute rotation schedule across a kill are in tests/e2e/cluster, under load.)
import concurrent.futures
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from e2e_servers import clean_env, pg_roles as roles, postgres_cluster, tessera_binary
from pgnodes import Node


@pytest.fixture(scope="module")
def pg():
    yield from postgres_cluster("tessera-pg-takeover-")


@pytest.fixture(scope="module")
def nodes(pg):
    tmp = Path(tempfile.mkdtemp(prefix="tessera-pg-takeover-nodes-"))
    a = Node(pg, tmp / "a", "takeover", create=True)
    a.start()
    a.initialize()
    b = Node(pg, tmp / "b", "takeover")
    b.join(a)
    b.start()
    assert requests.get(b.base + "/v1/sys/health", timeout=5).status_code == 200
    assert a.call("target-create-db", name="pg", db_type="postgres", host="127.0.0.1", port=pg["port"], user_name="postgres",
                  pwd=pg["password"]).status_code == 200
    yield a, b
    for n in (a, b):
        n.kill()
    shutil.rmtree(tmp, ignore_errors=True)


def lease_states(node, prefix):
    r = node.call("lease-list", prefix=prefix)
    assert r.status_code == 200, r.text
    return r.json()["leases"]


def test_kill_during_issue_burst_is_cleaned_up_by_the_other_node(nodes, pg):
    a, b = nodes
    assert a.call("dynamic-secret-create-postgresql", name="/takeover/burst", target_name="pg", user_ttl="1h",
                  username_template="tkb").status_code == 200
    # Leases issued on the surviving node before the kill must stay live.
    kept = [a.call("get-dynamic-secret-value", name="/takeover/burst").json() for _ in range(3)]
    kept_users = {k["user"] for k in kept}
    assert len(kept_users) == 3

    def issue(_):
        try:
            return b.call("get-dynamic-secret-value", name="/takeover/burst").status_code
        except requests.RequestException:
            return None

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(issue, i) for i in range(200)]
        time.sleep(0.5)
        b.kill()
        concurrent.futures.wait(futures)
    created = roles(pg, "tkb")
    assert len(created) > len(kept_users), "the burst created no role before the kill; the test proves nothing"

    # The dead node's heartbeat lapses (15 s) and the survivor's sweep (every 5 s) takes its
    # interrupted issues; their roles are dropped through the normal revocation path.
    deadline = time.time() + 45
    settled = False
    while time.time() < deadline:
        leases = lease_states(a, "takeover/burst/")
        live = {l["username"] for l in leases if l["state"] == "active"}
        unsettled = [l for l in leases if l["state"] in ("pending", "revoking")]
        if not unsettled and roles(pg, "tkb") == live:
            settled = True
            break
        time.sleep(0.5)
    leases = lease_states(a, "takeover/burst/")
    assert settled, f"not settled: {[(l['username'], l['state'], l.get('last_error')) for l in leases if l['state'] not in ('active', 'revoked')][:5]}"
    tracked = {l["username"] for l in leases}
    assert created <= tracked, f"untracked roles: {created - tracked}"
    # No live lease was revoked by mistake: the survivor's own leases are active, roles present.
    states = {l["username"]: l["state"] for l in leases}
    assert all(states[u] == "active" for u in kept_users)
    assert kept_users <= roles(pg, "tkb")
    # The killed node restarts, rejoins and serves.
    b.start()
    r = b.call("get-dynamic-secret-value", name="/takeover/burst")
    assert r.status_code == 200, r.text
    assert r.json()["user"] in roles(pg, "tkb")
    assert a.call("dynamic-secret-tmp-creds-delete", name="/takeover/burst", revoke_all=True).status_code == 200
    assert roles(pg, "tkb") == set()


def test_the_audit_trail_of_both_nodes_verifies_as_one_chain(nodes):
    a, b = nodes
    if b.proc.poll() is not None:
        b.start()
    for n in (a, b):
        assert n.call("list-items", path="/").status_code == 200
    out = subprocess.run([tessera_binary(), "audit", "verify", "--address", a.base, "--token", a.native_token, "--json"],
                         capture_output=True, text=True, timeout=120, env=clean_env())
    assert out.returncode == 0, out.stdout + out.stderr
    assert '"ok"' in out.stdout or "true" in out.stdout, out.stdout

