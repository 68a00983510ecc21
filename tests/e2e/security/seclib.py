"""Helpers for the adversarial security suite (issue 12): a restartable Tessera node with
identities, the checks every attack ends with, and PostgreSQL helpers.

What is reused rather than copied: tests/e2e/conftest.py (TesseraServer: process control and
logs; CLI: an isolated config home), tests/e2e/e2e_servers.py (DurableNode, free_port) and
tests/e2e/rotation/rotlib.py (psql and SSH logins as a given user). The root conftest is loaded
under a private module name, because `import conftest` picks whichever conftest pytest loaded
last. A uniquely named module (like usclib, rotlib, vaultlib), so tests can import it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

import requests

HERE = Path(__file__).resolve().parent
E2E = HERE.parent
REPO = E2E.parent.parent
for _p in (E2E, E2E / "rotation", E2E / "usc"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from e2e_servers import DurableNode, free_port, tessera_binary  # noqa: E402,F401  (re-exported for the tests)
import rotlib  # noqa: E402


def load_module(name: str, path: Path):
    """Loads a file as a module under `name` (for conftest files, whose own name is ambiguous)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


_root = load_module("_security_e2e_root_conftest", E2E / "conftest.py")
TesseraServer = _root.TesseraServer
CLI = _root.CLI
wait_until = _root.wait_until

ADMIN_ID = "p-secadmin00001"
HTTP_TIMEOUT = 20.0

ADMIN = object()     # token sentinel: the admin's credential
NO_TOKEN = None      # no credential at all


def uid(prefix: str = "s") -> str:
    return f"{prefix}{secrets.token_hex(5)}"


def body_text(r: Any) -> str:
    if isinstance(r, requests.Response):
        return f"HTTP {r.status_code} {r.text[:300]!r}"
    return repr(r)


# ------------------------------------------------------------------------------------------
# a Tessera node that can be revived after an attack killed or sealed it
# ------------------------------------------------------------------------------------------

class Identity:
    """An API-key auth method with its own role (created by the admin)."""

    def __init__(self, node: "Node", name: str, access_id: str, access_key: str, role: str):
        self.node = node
        self.name = name
        self.access_id = access_id
        self.access_key = access_key
        self.role = role
        self._token: str | None = None

    @property
    def vault_token(self) -> str:
        return f"{self.access_id}..{self.access_key}"

    @property
    def token(self) -> str:
        """A native `t-…` token (logged in on first use)."""
        if self._token is None:
            self._token = self.login()
        return self._token

    def login(self) -> str:
        r = self.node.native("auth", {"access-id": self.access_id, "access-key": self.access_key,
                                      "access-type": "access_key"}, token=NO_TOKEN)
        assert r.status_code == 200, f"login of {self.name} failed: {body_text(r)}"
        return r.json()["token"]

    def native(self, verb: str, body: dict | None = None) -> requests.Response:
        return self.node.native(verb, body, token=self.token)

    def vault(self, method: str, path: str, body: Any = None, **kw) -> requests.Response:
        return self.node.vault(method, path, body, token=self.vault_token, **kw)


class Node:
    """A dev-mode `tessera server` (via tests/e2e/conftest.py's TesseraServer)."""

    def __init__(self, binary: str, workdir: Path, *, name: str = "sec", config: dict | None = None,
                 extra_args: Iterable[str] = ()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.admin_id = ADMIN_ID
        self.admin_key = "seckey-" + secrets.token_urlsafe(18)
        cfg = None
        if config is not None:
            cfg = self.workdir / f"{name}-config.json"
            cfg.write_text(json.dumps(config))
        self.config = config
        self.server = TesseraServer(binary, self.workdir, dev=True, dev_access_id=self.admin_id,
                                    dev_access_key=self.admin_key, config=cfg, extra_args=extra_args,
                                    name=name)
        self.generation = 0
        self.token = ""
        self.deaths: list[str] = []
        self._cache: dict[str, tuple[int, Any]] = {}

    # -- process --------------------------------------------------------------------------
    def start(self) -> "Node":
        self.server.start()
        self.generation += 1
        self._cache.clear()
        self.token = self.login()
        return self

    def stop(self) -> None:
        if self.server.is_running():
            self.server.stop()

    def login(self) -> str:
        r = self.native("auth", {"access-id": self.admin_id, "access-key": self.admin_key,
                                 "access-type": "access_key"}, token=NO_TOKEN)
        assert r.status_code == 200, f"admin login failed: {body_text(r)}"
        return r.json()["token"]

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return int(self.server.port)

    @property
    def vault_token(self) -> str:
        return f"{self.admin_id}..{self.admin_key}"

    def health(self) -> int | None:
        try:
            return requests.get(f"{self.url}/v1/sys/health", timeout=5).status_code
        except requests.RequestException:
            return None

    def alive(self) -> bool:
        """The process runs and answers its health endpoint with 200 (initialized, unsealed)."""
        return self.server.is_running() and self.health() == 200

    def revive(self, why: str = "") -> None:
        """Restarts a dead or sealed node (a fresh dev server: the admin stays the same)."""
        tail = self.server.read_log()[-3000:]
        self.deaths.append(f"{why}\n{tail}")
        self.server.kill()
        self.start()

    def once(self, key: str, build: Callable[[], Any]) -> Any:
        """`build()` once per server generation (state is lost when a node is revived)."""
        hit = self._cache.get(key)
        if hit and hit[0] == self.generation:
            return hit[1]
        value = build()
        self._cache[key] = (self.generation, value)
        return value

    # -- HTTP -----------------------------------------------------------------------------
    def _native_token(self, token: Any) -> str | None:
        return self.token if token is ADMIN else token

    def native(self, verb: str, body: dict | None = None, *, token: Any = ADMIN,
               timeout: float = HTTP_TIMEOUT) -> requests.Response:
        """POST /api/v2/<verb>; a new connection per request (an attack never reuses one)."""
        b = dict(body or {})
        tok = self._native_token(token)
        if tok is not None:
            b["token"] = tok
        return requests.post(f"{self.url}/api/v2/{verb}", data=json.dumps(b),
                             headers={"Content-Type": "application/json", "Connection": "close"},
                             timeout=timeout)

    def ok(self, verb: str, body: dict | None = None, *, token: Any = ADMIN) -> Any:
        r = self.native(verb, body, token=token)
        assert r.status_code == 200, f"{verb}: expected 200, got {body_text(r)}"
        return r.json() if r.content else None

    def vault(self, method: str, path: str, body: Any = None, *, token: Any = ADMIN, raw: bytes | None = None,
              headers: dict | None = None, params: dict | None = None, timeout: float = HTTP_TIMEOUT) -> requests.Response:
        """A request to /v1/<path>; `token=ADMIN` sends the admin's `<access-id>..<access-key>`."""
        h = {"Connection": "close"}
        tok = self.vault_token if token is ADMIN else token
        if tok is not None:
            h["X-Vault-Token"] = tok
        data = raw
        if raw is None and body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        m = "GET" if method == "LIST" else method
        p = dict(params or {})
        if method == "LIST":
            p["list"] = "true"
        return requests.request(m, f"{self.url}/v1/{path.lstrip('/')}", data=data, headers=h, params=p or None,
                                timeout=timeout)

    def seal_status(self) -> dict:
        r = requests.get(f"{self.url}/v1/sys/seal-status", timeout=5)
        assert r.status_code == 200, body_text(r)
        return r.json()

    def mount_table(self) -> dict:
        """Vault `GET sys/mounts` as the admin: {path: type}."""
        r = self.vault("GET", "sys/mounts")
        assert r.status_code == 200, body_text(r)
        data = r.json().get("data") or r.json()
        return {k: v.get("type") for k, v in data.items() if isinstance(v, dict)}

    # -- identities -------------------------------------------------------------------------
    def identity(self, rules: Iterable[tuple], *, name: str | None = None, audit_access: str | None = None,
                 role: str | None = None, **method_fields) -> Identity:
        """An auth method and a role holding `rules`: (path, [capabilities]) or
        (path, [capabilities], rule-type). Extra fields go to create-auth-method."""
        name = name or "/" + uid("id-")
        body = {"name": name}
        body.update({k.replace("_", "-"): v for k, v in method_fields.items()})
        am = self.ok("create-auth-method", body)
        role = role or uid("role-")
        rb = {"name": role}
        if audit_access:
            rb["audit-access"] = audit_access
        self.ok("create-role", rb)
        for rule in rules:
            path, caps = rule[0], rule[1]
            rt = rule[2] if len(rule) > 2 else "item-rule"
            self.ok("set-role-rule", {"role-name": role, "path": path, "capability": list(caps), "rule-type": rt})
        self.ok("assoc-role-am", {"role-name": role, "am-name": name})
        return Identity(self, name, am["access_id"], am["access_key"], role)



NODES: list[Node] = []  # every started Node of the running test module (conftest revives them)


def assert_alive(node: Node, what: str) -> None:
    """The server process runs and /v1/sys/health answers 200 (alive and unsealed)."""
    running = node.server.is_running()
    status = node.health()
    if running and status == 200:
        return
    tail = node.server.read_log()[-2500:]
    node.revive(what)
    raise AssertionError(f"after {what}: server running={running}, health={status}\nserver log tail:\n{tail}")


def assert_4xx(r: Any, what: str, allowed: Iterable[int] | None = None) -> None:
    assert isinstance(r, requests.Response), f"{what}: no HTTP answer ({r!r})"
    if allowed is not None:
        assert r.status_code in set(allowed), f"{what}: expected one of {sorted(allowed)}, got {body_text(r)}"
    assert 400 <= r.status_code < 500, f"{what}: expected a 4xx, got {body_text(r)}"


def send(fn: Callable[[], requests.Response]) -> requests.Response | Exception:
    """Runs one request; a dropped connection or time-out is returned, not raised."""
    try:
        return fn()
    except requests.RequestException as e:
        return e


# ------------------------------------------------------------------------------------------
# PostgreSQL helpers
# ------------------------------------------------------------------------------------------

def pg_superuser_ok(pg: dict) -> bool:
    """The PostgreSQL superuser still logs in with the password the cluster was created with."""
    return rotlib.pg_login_ok(pg, "postgres", pg["password"])


def restore_pg_superuser(pg: dict) -> None:
    """Puts the superuser's password back over the Unix socket (trust auth, as the postgres OS user)."""
    pw = pg["password"].replace("'", "''")
    cmd = ["psql", "-h", pg["dir"], "-p", str(pg["port"]), "-U", "postgres", "-d", "postgres", "-tAc",
           f"ALTER ROLE postgres PASSWORD '{pw}'"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def make_pg_role(pg: dict) -> tuple[str, str]:
    role, pw = rotlib.unique("sec"), "Init-" + secrets.token_hex(8)
    rotlib.superuser(pg, f"CREATE ROLE {role} LOGIN PASSWORD '{pw}'")
    return role, pw


def pg_role_exists(pg: dict, role: str) -> bool:
    return rotlib.superuser(pg, f"select 1 from pg_roles where rolname = '{role}'") == "1"


def pg_target(node: Node, pg: dict, name: str = "sec-pg") -> str:
    """A database target over the session PostgreSQL (its admin is the superuser)."""
    def build():
        node.ok("target-create-db", {"name": name, "db-type": "postgres", "host": "127.0.0.1", "port": pg["port"],
                                     "user-name": "postgres", "pwd": pg["password"]})
        return name
    return node.once(f"pg-target:{name}", build)

