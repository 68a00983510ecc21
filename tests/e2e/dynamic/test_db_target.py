"""Database targets against a real PostgreSQL started for the session: the login is verified on
create, errors say why, and the password never comes back."""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

REPO = pathlib.Path(__file__).resolve().parents[3]
BIN = os.environ.get("TESSERA_BIN", str(REPO / ".build/debug/tessera"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    d = tempfile.mkdtemp(prefix="tessera-pg-")
    os.chmod(d, 0o755)
    out = subprocess.run([str(REPO / "scripts/test-postgres"), "start", d], check=True, capture_output=True, text=True).stdout.split()
    yield {"port": int(out[0]), "password": out[1]}
    subprocess.run([str(REPO / "scripts/test-postgres"), "stop", d], check=False)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
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
    yield {"base": base, "token": token}
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=10)


def call(server, verb, **fields):
    body = {k.replace("_", "-"): v for k, v in fields.items()}
    body["token"] = server["token"]
    return requests.post(server["base"] + "/api/v2/" + verb, json=body, timeout=30)


def test_create_verifies_login_and_hides_password(server, postgres):
    r = call(server, "target-create-db", name="pg1", db_type="postgres", host="127.0.0.1", port=postgres["port"],
             db_name="postgres", user_name="postgres", pwd=postgres["password"])
    assert r.status_code == 200, r.text
    got = call(server, "target-get", name="pg1")
    assert got.status_code == 200 and got.json()["db_type"] == "postgres"
    listed = call(server, "target-list")
    for resp in (got, listed):
        assert postgres["password"] not in resp.text


def test_create_errors_say_why(server, postgres):
    bad_pw = call(server, "target-create-db", name="pg-badpw", db_type="postgres", host="127.0.0.1", port=postgres["port"],
                  user_name="postgres", pwd="wrong-password")
    assert bad_pw.status_code == 400 and "authentication failed" in bad_pw.json()["message"]
    assert "wrong-password" not in bad_pw.text
    no_db = call(server, "target-create-db", name="pg-nodb", db_type="postgres", host="127.0.0.1", port=postgres["port"],
                 db_name="nosuchdb", user_name="postgres", pwd=postgres["password"])
    assert no_db.status_code == 400 and "does not exist" in no_db.json()["message"]
    down = call(server, "target-create-db", name="pg-down", db_type="postgres", host="127.0.0.1", port=_free_port(),
                user_name="postgres", pwd="x")
    assert down.status_code == 400 and "cannot reach" in down.json()["message"]
    other = call(server, "target-create-db", name="pg-my", db_type="mysql", host="127.0.0.1", port=3306, user_name="u", pwd="x")
    assert other.status_code == 400 and "unsupported db-type" in other.json()["message"]
    names = [t["target_name"] for t in call(server, "target-list").json()["targets"]]
    assert not any(n.startswith("pg-") for n in names)
