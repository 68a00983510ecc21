"""Fixtures for the cluster suite: three non-dev Tessera nodes sharing one throwaway PostgreSQL
(scripts/test-postgres, TLS verify-full against its own CA) behind HAProxy. Node 1 is started on
an unseal key file that does not exist yet and initialized (sys/init with one share, which
writes the key file and unseals it); nodes 2 and 3 start with 0600 copies of that key file and
auto-unseal. The whole cluster is module-scoped (one per test module): the tests in a module
run in order against the same nodes. Teardown stops HAProxy and every node by PID, then
PostgreSQL (scripts/test-postgres stop DIR).

Helpers live in clusterlib.py (never `from conftest import`).
"""

from __future__ import annotations

import sys
import tempfile
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import clusterlib as C  # noqa: E402


@dataclass
class Cluster:
    workdir: Path
    pg: dict
    nodes: list[C.ClusterNode]
    haproxy: C.HAProxy
    admin_id: str
    admin_key: str
    admin_token: str              # a t-… token from a native login on node 1
    extra: dict = field(default_factory=dict)

    @property
    def vault_token(self) -> str:
        """The form bao and hvac send as VAULT_TOKEN: `<access id>..<access key>`."""
        return f"{self.admin_id}..{self.admin_key}"

    def node(self, n: int) -> C.ClusterNode:
        """node(1), node(2), node(3)."""
        return self.nodes[n - 1]


@pytest.fixture(scope="module")
def postgres():
    yield from C.postgres_cluster("tessera-cluster-pg-")


@pytest.fixture(scope="module")
def cluster(request, tessera_bin, postgres):
    workdir = Path(tempfile.mkdtemp(prefix="tessera-cluster-"))
    nodes: list[C.ClusterNode] = []
    proxy: C.HAProxy | None = None
    try:
        key = workdir / "node1" / "unseal.key"
        assert not key.exists()
        n1 = C.ClusterNode(workdir, "node1", postgres, key)
        nodes.append(n1)
        n1.start(want=501)                       # uninitialized
        r = n1.sys("PUT", "init", {"secret_shares": 1, "secret_threshold": 1})
        assert r.status_code == 200, f"init: {C.short(r)}"
        init = r.json()
        admin_id, admin_key = init["admin_access_id"], init["admin_access_key"]
        assert key.exists() and (key.stat().st_mode & 0o777) == 0o600, "sys/init did not write the key file 0600"
        C.wait_until(lambda: n1.health() == 200, timeout=10, what="node1 unsealed after init")

        for name in ("node2", "node3"):
            copy = C.copy_key_file(key, workdir / name / "unseal.key")
            node = C.ClusterNode(workdir, name, postgres, copy)
            nodes.append(node)
            node.start(want=200)                 # auto-unsealed with the key file copy
        for node in nodes:
            assert node.health() == 200, node.name

        token = n1.login(admin_id, admin_key)
        vault_token = f"{admin_id}..{admin_key}"
        # the KV v2 mount the Vault clients use (a non-dev server starts with none)
        r = requests.post(n1.url + "/v1/sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}},
                          headers={"X-Vault-Token": vault_token}, timeout=30)
        assert r.status_code in (200, 204), f"enable secret/: {C.short(r)}"
        for node in nodes:
            C.wait_until(lambda: requests.post(node.url + "/v1/secret/data/setup/probe", json={"data": {"v": node.name}},
                                               headers={"X-Vault-Token": vault_token}, timeout=10).status_code == 200,
                         timeout=10, what=f"secret/ usable on {node.name}")

        proxy = C.HAProxy(workdir, nodes).start()
        C.wait_until(lambda: all(s.startswith("UP") for s in proxy.server_states().values()) and len(proxy.server_states()) == 3,
                     timeout=10, what="all HAProxy backends UP")
        yield Cluster(workdir, postgres, nodes, proxy, admin_id, admin_key, token)
    finally:
        if proxy is not None:
            proxy.stop()
        for node in nodes:
            node.kill()
        if request.session.testsfailed:
            print(f"\ncluster logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
