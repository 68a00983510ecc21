"""Fixtures for the audit-device suite (file, syslog and http devices fed from the audit trail).

  rsyslogd_bin          session: the rsyslogd binary; Debian's rsyslog package is installed
                        when it is missing (apt-get; a quick no-op when rsyslogd exists);
  rsyslog               a fresh rsyslogd of our own (imudp + imtcp on free loopback ports, raw
                        messages to files in tmp), stopped by PID at teardown (module_rsyslog:
                        one per module);
  receiver              a started WebhookReceiver (http device target), stopped at teardown
                        (receiver_factory: several; module_receiver: one per module);
  audit_server_factory  make(config) → a started dev-mode Tessera with that config file,
                        stopped by PID (SIGTERM, then SIGKILL) at teardown (module_… likewise).
The helpers themselves are in adlib.py (never `from conftest import`).

Run (about a minute, the 30 s outage included):  cd tests/e2e && python3 -m pytest -q auditdevices
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import adlib  # noqa: E402


@pytest.fixture(scope="session")
def rsyslogd_bin() -> str:
    return adlib.ensure_rsyslogd()


def _rsyslog(rsyslogd_bin: str, workdir: Path):
    rs = adlib.Rsyslog(rsyslogd_bin, workdir)
    rs.start()
    try:
        yield rs
    finally:
        rs.stop()


@pytest.fixture
def rsyslog(rsyslogd_bin, tmp_path):
    yield from _rsyslog(rsyslogd_bin, tmp_path / "rsyslog")


@pytest.fixture(scope="module")
def module_rsyslog(rsyslogd_bin, tmp_path_factory):
    yield from _rsyslog(rsyslogd_bin, tmp_path_factory.mktemp("rsyslog"))


def _receivers():
    made: list[adlib.WebhookReceiver] = []

    def make(port: int | None = None) -> adlib.WebhookReceiver:
        r = adlib.WebhookReceiver(port)
        made.append(r)
        return r.start()

    return made, make


@pytest.fixture
def receiver_factory():
    made, make = _receivers()
    yield make
    for r in made:
        r.stop()


@pytest.fixture
def receiver(receiver_factory) -> adlib.WebhookReceiver:
    return receiver_factory()


@pytest.fixture(scope="module")
def module_receiver():
    made, make = _receivers()
    yield make()
    for r in made:
        r.stop()


def _servers(workdir_of):
    made: list[adlib.AuditServer] = []

    def make(config: dict, name: str | None = None) -> adlib.AuditServer:
        srv = adlib.AuditServer(workdir_of(name or f"srv{len(made)}"), config)
        made.append(srv)
        srv.start()
        return srv

    return made, make


@pytest.fixture
def audit_server_factory(tmp_path):
    made, make = _servers(lambda n: tmp_path / n)
    yield make
    for srv in made:
        srv.stop()


@pytest.fixture(scope="module")
def module_audit_server_factory(tmp_path_factory):
    made, make = _servers(lambda n: tmp_path_factory.mktemp(n))
    yield make
    for srv in made:
        srv.stop()
