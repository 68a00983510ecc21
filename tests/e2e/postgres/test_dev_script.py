# `scripts/dev --storage postgresql`, the README's dev command on PostgreSQL: it starts a
# throwaway PostgreSQL (scripts/test-postgres), a dev server on it that is initialized and
# unsealed and serves KV v2 at secret/, and removes that PostgreSQL when it is stopped.
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from e2e_servers import REPO, clean_env, free_port


def test_scripts_dev_on_postgresql_serves_and_cleans_up():
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="tessera-dev-pg-", suffix=".log")[1])
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(REPO / "scripts/dev"), "--storage", "postgresql", "--listen", f"127.0.0.1:{port}"],
                                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=clean_env(), start_new_session=True)
    try:
        deadline = time.time() + 300          # scripts/dev builds first (a no-op after scripts/test's build)
        text = ""
        while time.time() < deadline and "Access Key:" not in text:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
            text = log.read_text()
        assert "Access Key:" in text, text
        pg_dir = re.search(r"PostgreSQL for dev: 127\.0\.0\.1:\d+ \(data in (\S+),", text).group(1)
        assert os.path.isdir(pg_dir)
        address = re.search(r"Address:\s+(\S+)", text).group(1)
        access_id = re.search(r"Access ID:\s+(\S+)", text).group(1)
        access_key = re.search(r"Access Key:\s+(\S+)", text).group(1)
        ca = re.search(r"CA Certificate: (\S+)", text)
        verify = ca.group(1) if ca else True
        headers = {"X-Vault-Token": f"{access_id}..{access_key}"}
        r = requests.post(f"{address}/v1/secret/data/dev/pg", json={"data": {"v": "on-postgres"}}, headers=headers,
                          timeout=30, verify=verify)
        assert r.status_code == 200, r.text
        r = requests.get(f"{address}/v1/secret/data/dev/pg", headers=headers, timeout=30, verify=verify)
        assert r.json()["data"]["data"] == {"v": "on-postgres"}
        r = requests.get(f"{address}/v1/sys/leader", timeout=30, verify=verify)
        assert r.status_code == 200 and r.json()["ha_enabled"] is True, r.text
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)     # the script's own PID; it stops the server and PostgreSQL
        code = proc.wait(timeout=60)
    text = log.read_text()
    assert code == 0, text
    assert not os.path.exists(pg_dir), f"{pg_dir} left behind\n{text}"
    log.unlink()
