"""Leases survive failures: a server killed with SIGKILL during a burst of concurrent issues
tracks every role it created and revokes it after restart; leases that expire while PostgreSQL
is down are retried and revoked once it is back, and none is lost."""
import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import time

import pathlib

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from e2e_servers import DurableNode as Node  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[3]
BIN = os.environ.get("TESSERA_BIN", str(REPO / ".build/debug/tessera"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def roles(pg, prefix):
    env = dict(os.environ, PGPASSWORD=pg["password"])
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(pg["port"]), "-U", "postgres", "-tAc",
                          f"select rolname from pg_roles where rolname like '{prefix}\\_%'"], env=env, capture_output=True, text=True)
    return set(filter(None, out.stdout.split()))


def test_sigkill_during_issue_burst_leaves_no_untracked_role(postgres, tmp_path):
    node = Node(tmp_path)
    node.start()
    try:
        node.initialize()
        assert node.call("target-create-db", name="crash-pg", db_type="postgres", host="127.0.0.1", port=postgres["port"],
                         user_name="postgres", pwd=postgres["password"]).status_code == 200
        assert node.call("dynamic-secret-create-postgresql", name="/crash/burst", target_name="crash-pg", user_ttl="1h",
                         username_template="crashb").status_code == 200

        def issue(_):
            try:
                return node.call("get-dynamic-secret-value", name="/crash/burst").status_code
            except requests.RequestException:
                return None

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(issue, i) for i in range(120)]
            time.sleep(0.4)
            node.stop(signal.SIGKILL)
            concurrent.futures.wait(futures)
        created = roles(postgres, "crashb")
        assert created, "the burst created no role before the kill; the test proves nothing"

        node.start()
        node.login()
        # After restart every role the producer created is tracked by a lease, and interrupted
        # issues (pending) are revoked: the roles left are exactly the active leases' roles.
        deadline = time.time() + 20
        while time.time() < deadline:
            leases = node.call("lease-list", prefix="crash/burst/").json()["leases"]
            live = {l["username"] for l in leases if l["state"] == "active"}
            unsettled = [l for l in leases if l["state"] in ("pending", "revoking")]
            if not unsettled and roles(postgres, "crashb") == live:
                break
            time.sleep(0.3)
        leases = node.call("lease-list", prefix="crash/burst/").json()["leases"]
        tracked = {l["username"] for l in leases}
        assert created <= tracked, f"untracked roles: {created - tracked}"
        assert roles(postgres, "crashb") == {l["username"] for l in leases if l["state"] == "active"}
        # Revoking everything leaves no role behind.
        assert node.call("dynamic-secret-tmp-creds-delete", name="/crash/burst", revoke_all=True).status_code == 200
        assert roles(postgres, "crashb") == set()
    finally:
        node.stop(signal.SIGKILL)


def test_leases_expiring_while_postgres_is_down_are_revoked_when_it_returns(postgres, tmp_path):
    node = Node(tmp_path)
    node.start()
    try:
        node.initialize()
        assert node.call("target-create-db", name="down-pg", db_type="postgres", host="127.0.0.1", port=postgres["port"],
                         user_name="postgres", pwd=postgres["password"]).status_code == 200
        assert node.call("dynamic-secret-create-postgresql", name="/down/short", target_name="down-pg", user_ttl="2s",
                         username_template="downs").status_code == 200
        issued = [node.call("get-dynamic-secret-value", name="/down/short").json() for _ in range(3)]
        assert roles(postgres, "downs") == {c["user"] for c in issued}
        subprocess.run([str(REPO / "scripts/test-postgres"), "stop", postgres["dir"]], check=True)
        try:
            time.sleep(4)
            states = {l["state"] for l in node.call("lease-list", prefix="down/short/").json()["leases"]}
            assert states == {"revoking"}, states
        finally:
            subprocess.run([str(REPO / "scripts/test-postgres"), "resume", postgres["dir"], str(postgres["port"])], check=True)
        deadline = time.time() + 30
        while time.time() < deadline and roles(postgres, "downs"):
            time.sleep(0.3)
        assert roles(postgres, "downs") == set()
        leases = node.call("lease-list", prefix="down/short/").json()["leases"]
        assert len(leases) == 3 and {l["state"] for l in leases} == {"revoked"}
    finally:
        node.stop(signal.SIGKILL)


def test_revocation_that_keeps_failing_becomes_irrevocable_then_force_revoke(postgres, tmp_path):
    node = Node(tmp_path)
    node.extra = ["--lease-revoke-attempts", "2"]
    node.start()
    try:
        node.initialize()
        assert node.call("target-create-db", name="irr-pg", db_type="postgres", host="127.0.0.1", port=postgres["port"],
                         user_name="postgres", pwd=postgres["password"]).status_code == 200
        assert node.call("dynamic-secret-create-postgresql", name="/irr/broken", target_name="irr-pg", user_ttl="1s",
                         revocation_statement="SELECT 1/0;", username_template="irrb").status_code == 200
        cred = node.call("get-dynamic-secret-value", name="/irr/broken").json()
        deadline = time.time() + 15
        state = None
        while time.time() < deadline:
            leases = node.call("lease-list", prefix="irr/broken/").json()["leases"]
            state = leases[0]["state"]
            if state == "irrevocable":
                break
            time.sleep(0.2)
        assert state == "irrevocable"
        assert leases[0]["last_error"]
        # /metrics needs a token with sys-rule read on /sys/metrics (the admin's).
        assert requests.get(node.base + "/metrics").status_code == 403
        metrics = requests.get(node.base + "/metrics", headers={"X-Vault-Token": node.token}).text
        assert 'tessera_leases{state="irrevocable"} 1' in metrics
        r = node.call("lease-revoke", lease_id=cred["lease_id"], force=True)
        assert r.status_code == 200, r.text
        assert node.call("lease-list", prefix="irr/broken/", state="irrevocable").json()["leases"] == []
    finally:
        node.stop(signal.SIGKILL)
