# A Tessera node on PostgreSQL while PostgreSQL restarts under load: requests fail fast with a
# clear 503 (never a hang past postgresql_timeout_seconds), succeed again on their own once it is
# back, and every acknowledged write is still there. Also: the password never comes from an
# argument, a bad URL is refused at start, and a PostgreSQL store refuses file snapshots.
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from e2e_servers import REPO, clean_env, free_port, postgres_cluster, tessera_binary
from pgnodes import TIMEOUT_S, Node


@pytest.fixture(scope="module")
def pg():
    yield from postgres_cluster("tessera-pg-outage-")


@pytest.fixture(scope="module")
def node(pg):
    tmp = Path(tempfile.mkdtemp(prefix="tessera-pg-node-"))
    n = Node(pg, tmp, "outage", create=True)
    n.start()
    init = requests.put(n.base + "/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}, timeout=30).json()
    n.token = init["admin_access_id"] + ".." + init["admin_access_key"]
    r = requests.post(n.base + "/v1/sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}},
                      headers={"X-Vault-Token": n.token}, timeout=30)
    assert r.status_code in (200, 204), r.text
    yield n
    n.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def test_postgres_restart_under_load(node, pg):
    h = {"X-Vault-Token": node.token}
    acked: dict[str, int] = {}
    errors: list[tuple[float, int, float]] = []   # (time, status, seconds the request took)
    stop = threading.Event()
    lock = threading.Lock()

    def writer(w):
        s = requests.Session()
        k = 0
        while not stop.is_set():
            k += 1
            key = f"w{w}-{k}"
            started = time.time()
            try:
                r = s.post(f"{node.base}/v1/secret/data/load/{key}", json={"data": {"v": str(k)}}, headers=h, timeout=TIMEOUT_S * 4)
                status = r.status_code
            except requests.RequestException:
                status = 0
            took = time.time() - started
            with lock:
                if 200 <= status < 300:
                    acked[key] = k
                else:
                    errors.append((started, status, took))
            if status >= 300 or status == 0:
                time.sleep(0.05)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    time.sleep(2)
    before = len(acked)
    assert before > 0, "no write succeeded before the outage"
    subprocess.run([str(REPO / "scripts/test-postgres"), "stop", pg["dir"]], check=True)
    down_at = time.time()
    time.sleep(TIMEOUT_S * 2)
    subprocess.run([str(REPO / "scripts/test-postgres"), "resume", pg["dir"], str(pg["port"])], check=True)
    up_at = time.time()
    # Writes succeed again on their own.
    deadline = up_at + 30
    recovered = None
    last = None
    while time.time() < deadline:
        r = requests.post(f"{node.base}/v1/secret/data/probe", json={"data": {"v": "1"}}, headers=h, timeout=TIMEOUT_S * 4)
        if r.status_code < 300:
            recovered = time.time() - up_at
            break
        last = (r.status_code, r.text[:200])
        time.sleep(0.2)
    time.sleep(1)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert recovered is not None, f"writes did not recover after PostgreSQL came back: {last}"
    print(f"\nPostgreSQL down {up_at - down_at:.1f} s; writes recovered {recovered:.2f} s after it was back; "
          f"{len(acked)} writes acknowledged, {len(errors)} refused")
    # While it was down, requests failed with 503 and within the time-out (plus the audit's).
    during = [e for e in errors if down_at <= e[0] <= up_at]
    assert during, "no request failed while PostgreSQL was down"
    assert all(status == 503 for _, status, _ in during), sorted({s for _, s, _ in during})
    assert max(took for _, _, took in during) < TIMEOUT_S * 2 + 1, "a request hung past the time-out"
    # No acknowledged write is lost.
    s = requests.Session()
    for key, value in acked.items():
        r = s.get(f"{node.base}/v1/secret/data/load/{key}", headers=h, timeout=30)
        assert r.status_code == 200, (key, r.status_code)
        assert r.json()["data"]["data"]["v"] == str(value)
    # The audit trail verifies across the outage.
    r = requests.get(f"{node.base}/v1/sys/health", timeout=5)
    assert r.status_code == 200


def test_password_never_from_an_argument(pg, tmp_path):
    url = f"postgres://postgres:{pg['password']}@localhost:{pg['port']}/postgres?sslmode=disable"
    out = subprocess.run([tessera_binary(), "server", "--storage", "postgresql", "--postgresql-url", url, "--listen",
                          f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "d")], capture_output=True, text=True, timeout=30,
                         env=clean_env())
    assert out.returncode != 0
    assert "PGPASSWORD" in out.stderr and pg["password"] not in out.stderr + out.stdout


def test_bad_url_and_unreachable_server_are_refused(tmp_path):
    for url, expect in [("mysql://x@localhost/db", "postgres://"), ("postgres://x@localhost/db?sslmode=maybe", "sslmode"),
                        (f"postgres://x@127.0.0.1:{free_port()}/db?sslmode=disable&timeout=2", "PostgreSQL")]:
        started = time.time()
        out = subprocess.run([tessera_binary(), "server", "--storage", "postgresql", "--postgresql-url", url, "--listen",
                              f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "d")], capture_output=True, text=True,
                             timeout=60, env=clean_env({"PGPASSWORD": "x"}))
        assert out.returncode != 0, url
        assert expect in out.stderr + out.stdout, (url, out.stderr)
        assert time.time() - started < 30


def test_a_postgresql_url_without_the_postgresql_storage_is_refused(tmp_path):
    # Ignoring the URL would start a node on an empty SQLite store of its own.
    url = "postgres://x@127.0.0.1:5432/db?sslmode=disable"
    out = subprocess.run([tessera_binary(), "server", "--postgresql-url", url, "--listen", f"127.0.0.1:{free_port()}",
                          "--data-dir", str(tmp_path / "d")], capture_output=True, text=True, timeout=30, env=clean_env())
    assert out.returncode != 0
    assert "--storage postgresql" in out.stderr, out.stderr


def test_file_snapshots_are_refused_on_postgresql(node):
    r = requests.get(f"{node.base}/v1/sys/storage/raft/snapshot", headers={"X-Vault-Token": node.token}, timeout=30)
    assert r.status_code == 400
    assert "pg_dump" in r.text


def test_cluster_status_needs_a_token_with_the_system_rule(node):
    # sys/leader is public, as in Vault; sys/ha-status names hosts and node ids, so it is not.
    assert requests.get(f"{node.base}/v1/sys/leader", timeout=10).json()["ha_enabled"] is True
    for headers in ({}, {"X-Vault-Token": "t-not-a-token"}, {"X-Vault-Token": "p-nobody..wrong-key-123"}):
        r = requests.get(f"{node.base}/v1/sys/ha-status", headers=headers, timeout=10)
        assert r.status_code in (401, 403), (headers, r.status_code)
        assert "nodes" not in r.text
    r = requests.get(f"{node.base}/v1/sys/ha-status", headers={"X-Vault-Token": node.token}, timeout=10)
    assert r.status_code == 200 and r.json()["nodes"][0]["is_self"] is True
