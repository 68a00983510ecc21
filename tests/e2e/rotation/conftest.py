"""Fixtures for the rotated-secret tests: a throwaway PostgreSQL, a throwaway sshd (root logs
in by key; test users by password), and a durable Tessera node per test module."""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rotlib import REPO, DurableNode  # noqa: E402
from e2e_servers import postgres_cluster  # noqa: E402


@pytest.fixture(scope="session")
def postgres():
    yield from postgres_cluster("tessera-rot-pg-")


@pytest.fixture(scope="session")
def sshd():
    d = tempfile.mkdtemp(prefix="tessera-sshd-")
    out = subprocess.run([str(REPO / "scripts/test-sshd"), "start", d], check=True, capture_output=True, text=True).stdout.split()
    yield {"port": int(out[0]), "dir": d, "admin_key": (Path(d) / "admin_key").read_text(),
           "host_key": (Path(d) / "ssh_host_ed25519_key.pub").read_text().strip()}
    subprocess.run([str(REPO / "scripts/test-sshd"), "stop", d], check=False)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = DurableNode(tmp_path_factory.mktemp("rotnode"))
    n.start()
    n.initialize()
    yield n
    n.stop()


@pytest.fixture(scope="module")
def pg_target(node, postgres):
    r = node.call("target-create-db", name="rot-pg", db_type="postgres", host="127.0.0.1", port=postgres["port"],
                  user_name="postgres", pwd=postgres["password"])
    assert r.status_code == 200, r.text
    return "rot-pg"


@pytest.fixture(scope="module")
def ssh_target(node, sshd):
    r = node.call("target-create-ssh", name="rot-ssh", host="127.0.0.1", port=sshd["port"], ssh_username="root",
                  private_key=sshd["admin_key"])
    assert r.status_code == 200, r.text
    return "rot-ssh"


@pytest.fixture(scope="session")
def schedule_node(tmp_path_factory, postgres):
    """A node of its own for the one-minute schedule (test_rotation_0_… creates, …_zz_… checks)."""
    n = DurableNode(tmp_path_factory.mktemp("schednode"))
    n.start()
    n.initialize()
    yield n
    n.stop()
