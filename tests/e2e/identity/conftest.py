"""Fixtures for the workload-identity suite: a local issuer/fake-Kubernetes server with four
signing keys, a dev-mode Tessera with two secrets and two access roles, and helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import idlib  # noqa: E402


@pytest.fixture
def issuer():
    srv = idlib.IdentityServer()
    srv.keys = [idlib.Key("rsa", "rsa-1"), idlib.Key("ec256", "ec-1"), idlib.Key("ec384", "ec384-1"),
                idlib.Key("ed25519", "ed-1")]
    srv.start()
    yield srv
    srv.stop()


class World:
    """A dev server with secret/app/config and secret/other/config, the access roles app-reader
    (read /secret/app/*) and other-reader (read /secret/other/*), and an admin Vault token."""

    APP_SECRET = "app-pw-7f3a9c"
    OTHER_SECRET = "other-pw-41d2e8"

    def __init__(self, srv):
        self.srv = srv
        self.admin_vault_token = f"{srv.admin_id}..{srv.admin_key}"
        self.admin_token = srv.login(srv.admin_id, srv.admin_key)
        self.vault("POST", "secret/data/app/config", {"data": {"password": self.APP_SECRET}})
        self.vault("POST", "secret/data/other/config", {"data": {"password": self.OTHER_SECRET}})
        for role, folder in (("app-reader", "/secret/app/*"), ("other-reader", "/secret/other/*")):
            self.native("create-role", {"name": role})
            self.native("set-role-rule", {"role-name": role, "path": folder, "capability": ["read"]})

    def native(self, verb: str, body: dict, expect: int = 200, token: str | None = None):
        b = dict(body)
        b["token"] = token or self.admin_token
        return self.srv.call(verb, b, expect=expect)

    def vault(self, method: str, path: str, body=None, token: str | None = None):
        r = self.srv.session.request(method, f"{self.srv.url}/v1/{path}", json=body,
                                     headers={"X-Vault-Token": token or self.admin_vault_token}, timeout=30)
        assert r.status_code in (200, 204), f"{method} {path}: {r.status_code} {r.text[:300]}"
        return r.json() if r.content else None

    def read_status(self, token: str, path: str = "secret/data/app/config") -> int:
        r = self.srv.session.get(f"{self.srv.url}/v1/{path}", headers={"X-Vault-Token": token}, timeout=30)
        return r.status_code

    def audit_events(self, action: str | None = None) -> list[dict]:
        body = {"limit": 1000}
        if action:
            body["action"] = action
        return self.native("audit-query", body)["events"]


@pytest.fixture
def world(dev_server):
    return World(dev_server)
