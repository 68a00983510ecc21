"""Fixtures for the endpoint fuzz run (issue 12, "Fuzzing in CI"); see test_fuzz_endpoints.py.

`fuzz_server` is one dev-mode Tessera per module, started with the root conftest's
TesseraServer (tests/e2e/conftest.py) and a config file that switches failed-login throttling
out of the way (the fuzzer sends thousands of bad logins from 127.0.0.1) and declares the two
Vault mounts the OpenAPI document shows besides the dev `secret/` (KV v1 at `kv/`, database at
`database/`), so that their paths reach a real engine, plus two KV views (`fuzz-view1/`,
`fuzz-view2/`) of the folder `/fuzz-admin` for the read-back after the run.

The root conftest is loaded under a private module name, because `import conftest` picks
whichever conftest module pytest loaded last (the same approach as tests/e2e/security/seclib.py).
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
E2E = HERE.parent


def _load(name: str, path: Path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


_root = _load("_fuzz_e2e_root_conftest", E2E / "conftest.py")
TesseraServer = _root.TesseraServer

FUZZ_ADMIN_ID = "p-fuzzadmin0001"

FUZZ_CONFIG = {
    # Throttling of failed logins is a feature under test elsewhere (security suite); here a
    # 429 would only hide what the fuzzer sends after it, and a lock-out of the admin's or the
    # limited identity's access id would end the run.
    "login_failures_per_access_id": 1_000_000,
    "login_failures_per_address": 1_000_000,
    "mounts": [
        {"path": "kv/", "type": "kv-v1", "folder": "/kv"},
        {"path": "database/", "type": "database", "folder": "/database"},
        # Two views of what the admin mode stores natively under /fuzz-admin, so that the read-back
        # after the run also reads it through the Vault KV engines.
        {"path": "fuzz-view1/", "type": "kv-v1", "folder": "/fuzz-admin"},
        {"path": "fuzz-view2/", "type": "kv-v2", "folder": "/fuzz-admin"},
    ],
}


@pytest.fixture(scope="module")
def fuzz_server(tessera_bin, tmp_path_factory):
    """A running dev server (admin FUZZ_ADMIN_ID / .admin_key); killed at the end of the module."""
    work = tmp_path_factory.mktemp("fuzz")
    cfg = work / "fuzz-config.json"
    cfg.write_text(json.dumps(FUZZ_CONFIG))
    key = "fuzzkey-" + secrets.token_urlsafe(24)
    srv = TesseraServer(tessera_bin, work / "srv", dev=True, dev_access_id=FUZZ_ADMIN_ID,
                        dev_access_key=key, config=cfg, name="fuzz")
    srv.admin_id = FUZZ_ADMIN_ID
    srv.admin_key = key
    srv.start()
    yield srv
    srv.kill()
    srv.session.close()
