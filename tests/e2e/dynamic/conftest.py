"""Fixtures for the dynamic-secret tests: a throwaway PostgreSQL and a Tessera dev server."""
import os
import pathlib
import signal
import sys
import socket
import subprocess
import time

import pytest
import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from e2e_servers import postgres_cluster  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[3]
BIN = os.environ.get("TESSERA_BIN", str(REPO / ".build/debug/tessera"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres():
    yield from postgres_cluster()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("dbt") / "server.log"
    key = "k-" + os.urandom(12).hex()
    with open(log, "wb") as f:
        p = subprocess.Popen([BIN, "server", "--dev", "--listen", f"127.0.0.1:{port}", "--dev-access-id", "p-dbtadmin0001",
                              "--dev-access-key", key], stdout=f, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.get(base + "/v1/sys/health", timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.05)
    token = requests.post(base + "/api/v2/auth", json={"access-id": "p-dbtadmin0001", "access-key": key}).json()["token"]
    yield {"base": base, "token": token, "vault_token": "p-dbtadmin0001.." + key}
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=10)


@pytest.fixture(scope="session")
def call():
    return _call


def _call(server, verb, **fields):
    body = {k.replace("_", "-"): v for k, v in fields.items()}
    body["token"] = server["token"]
    return requests.post(server["base"] + "/api/v2/" + verb, json=body, timeout=30)


