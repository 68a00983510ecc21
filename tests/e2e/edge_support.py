"""Helpers for tests that put `tessera agent` (the edge cache) in front of a DurableNode: an
identity with a role of given rules, a login, and the agent process with its metrics."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import requests

from e2e_servers import DurableNode, clean_env, free_port, tessera_binary
from e2e_support import unique


def ok(node: DurableNode, verb: str, **fields):
    r = node.call(verb, **fields)
    assert r.status_code == 200, (verb, r.status_code, r.text)
    return r.json()


def identity(node: DurableNode, rules: list[tuple], role: str | None = None) -> tuple[str, str]:
    name = "/" + unique("edge-id-")
    am = ok(node, "create-auth-method", name=name)
    role = role or unique("edge-role-")
    ok(node, "create-role", name=role)
    for path, caps, rule_type in rules:
        ok(node, "set-role-rule", role_name=role, path=path, capability=caps, rule_type=rule_type)
    ok(node, "assoc-role-am", role_name=role, am_name=name)
    return am["access_id"], am["access_key"]


def login(node: DurableNode, access_id: str, access_key: str) -> str:
    r = requests.post(node.base + "/api/v2/auth", json={"access-id": access_id, "access-key": access_key}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["token"]


class Agent:
    def __init__(self, tmp: Path, central: str, access_id: str, access_key: str, *extra: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.cache_dir = tmp / "edge-cache"
        self.key_file = tmp / "keys" / "edge.key"
        self.key_file.parent.mkdir(exist_ok=True)
        if not self.key_file.exists():
            self.key_file.write_text(os.urandom(32).hex())
        self.log = tmp / "agent.log"
        self.cmd = [tessera_binary(), "agent", "--address", central, "--listen", f"127.0.0.1:{self.port}",
                    "--cache-dir", str(self.cache_dir), "--cache-key-file", str(self.key_file),
                    "--access-id", access_id, "--access-key", "env:EDGE_AGENT_KEY", "--revalidate", "300", *extra]
        self.env = clean_env({"EDGE_AGENT_KEY": access_key, "HOME": str(tmp)})
        self.proc = None

    def start(self):
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen(self.cmd, stdout=f, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + 30
        while time.time() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                requests.get(self.base + "/metrics", timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.05)
        raise AssertionError("agent did not start:\n" + self.log.read_text())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)

    def metrics(self) -> dict[str, float]:
        out = {}
        for line in requests.get(self.base + "/metrics", timeout=5).text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def wait_metric(self, name: str, pred, timeout: float = 20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.metrics().get(name)
            if value is not None and pred(value):
                return value
            time.sleep(0.1)
        raise AssertionError(f"{name} never matched: {self.metrics()}\n{self.log.read_text()[-3000:]}")

    def kv(self, token: str, path: str = "kv/data/app") -> requests.Response:
        return requests.get(f"{self.base}/v1/{path}", headers={"X-Vault-Token": token}, timeout=15)

    def native(self, verb: str, **body) -> requests.Response:
        return requests.post(f"{self.base}/api/v2/{verb}", json={k.replace("_", "-"): v for k, v in body.items()}, timeout=15)


def edge_agent_identity(node: DurableNode, role: str | None = None) -> tuple[str, str]:
    """An auth method for an agent: the grant on sys-rule /sys/edge and nothing else."""
    return identity(node, [("/sys/edge", ["read", "create"], "sys-rule")], role=role)
