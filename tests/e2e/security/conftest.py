"""Fixtures for the adversarial security suite (issue 12).

Each test_sec_<n>_<class>.py file attacks one class of defect and checks three things after
every attack: the attack got a 4xx (never a 5xx or a dropped connection), the server process
is alive (GET /v1/sys/health answers 200), and the protected thing is unchanged.

Reused, not copied (helpers are in seclib.py):
  * tests/e2e/rotation/conftest.py: the session fixtures `postgres` (scripts/test-postgres) and
    `sshd` (scripts/test-sshd);
  * tests/e2e/usc/conftest.py: the session fixtures `bao_bin`, `usc_workdir` and `openbao` (a
    real `bao server -dev`, seeded with secret/myapp/db-password and secret/myapp/api-key);
  * tests/e2e/conftest.py (the parent, active here anyway): `tessera_bin`, and through seclib
    its TesseraServer and CLI classes.
The two sibling conftest modules are loaded under private names and their fixtures re-exported.

Servers: `node` is one dev-mode Tessera per test module (fixed admin id and key, so the admin
keeps working across restarts). A test that crashes or seals it gets it back alive for the next
test (`_revive_nodes`), so tests do not depend on their order.

Run:  cd tests/e2e && python3 -m pytest security -q
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import seclib  # noqa: E402
from seclib import CLI, E2E, Node, load_module, pg_superuser_ok, restore_pg_superuser  # noqa: E402

_rotation = load_module("_security_rotation_conftest", E2E / "rotation" / "conftest.py")
_usc = load_module("_security_usc_conftest", E2E / "usc" / "conftest.py")

# Session fixtures re-exported: one PostgreSQL, one sshd, one OpenBao for the whole folder.
postgres = _rotation.postgres
sshd = _rotation.sshd
bao_bin = _usc.bao_bin
usc_workdir = _usc.usc_workdir
openbao = _usc.openbao


def pytest_terminal_summary(terminalreporter):
    for p in getattr(_usc, "_kept", []):
        terminalreporter.write_line(f"security e2e: OpenBao logs kept in {p}")


@pytest.fixture(scope="module")
def make_node(tessera_bin, tmp_path_factory):
    """make_node(config=…, extra_args=…) → a started Node, killed at the end of the module."""
    made: list[Node] = []

    def make(**kw) -> Node:
        n = Node(tessera_bin, tmp_path_factory.mktemp("secnode"), name=kw.pop("name", f"sec{len(made)}"), **kw)
        n.start()
        made.append(n)
        seclib.NODES.append(n)
        return n

    yield make
    for n in made:
        seclib.NODES.remove(n)
        n.server.kill()


@pytest.fixture(scope="module")
def node(make_node) -> Node:
    return make_node()


@pytest.fixture(autouse=True)
def _revive_nodes():
    """After each test, a node that the test killed or sealed is started again."""
    yield
    for n in list(seclib.NODES):
        if not n.alive():
            n.revive("found dead or sealed after a test")


@pytest.fixture
def superuser_guard(postgres):
    """Restores the PostgreSQL superuser's password if a test's attack changed it."""
    yield
    if not pg_superuser_ok(postgres):
        restore_pg_superuser(postgres)


@pytest.fixture
def admin_cli(node, tessera_bin, tmp_path) -> CLI:
    """The tessera CLI logged in as the node's admin (its own config home)."""
    c = CLI(tessera_bin, tmp_path / "cli", node.url)
    c.ok("auth", "--access-id", node.admin_id, "--access-key", node.admin_key)
    return c
