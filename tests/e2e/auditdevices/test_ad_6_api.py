"""Managing audit devices over the Vault API (`sys/audit/<name>`): refused by default (400,
nothing created, the refusal audited), allowed with `unsafe_allow_api_audit_creation`, where an
http device and (through the real `bao` CLI) a file device can be enabled and disabled, while
a file path inside the data directory, with `..`, not ending .log/.jsonl or reaching the data
directory through a symlinked folder is refused, and a config-file device cannot be disabled.
`bao audit list` shows config and API devices alike."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import adlib
from adlib import wait_for


def _put(srv, name: str, body: dict):
    return srv.vault("PUT", f"sys/audit/{name}", body)


def _listed(srv) -> set[str]:
    return set(srv.audit_list())


def _bao_list(srv, home: Path) -> list[list[str]]:
    out = srv.bao("audit", "list", "-detailed", home=home)
    assert out.returncode == 0, f"bao audit list: {out.stderr}"
    return [line.split() for line in out.stdout.splitlines()[2:] if line.strip()]


def test_api_creation_refused_by_default(audit_server_factory, receiver, tmp_path):
    cfg_file = tmp_path / "cfg.jsonl"
    srv = audit_server_factory({"audit_devices": [{"name": "cfgfile", "type": "file", "path": str(cfg_file)}]})
    api_file = tmp_path / "api.log"

    r = _put(srv, "apifile", {"type": "file", "options": {"file_path": str(api_file)}})
    assert r.status_code == 400 and "unsafe_allow_api_audit_creation" in r.text, r.text
    r = _put(srv, "apihook", {"type": "http", "options": {"url": receiver.url}})
    assert r.status_code == 400, r.text
    out = srv.bao("audit", "enable", "-path=apibao", "file", f"file_path={tmp_path / 'bao.log'}", home=tmp_path / "bao")
    assert out.returncode != 0 and "400" in out.stderr, (out.returncode, out.stderr)

    assert _listed(srv) == {"cfgfile/"}
    srv.ok("list-items", {"path": "/"})
    wait_for(lambda: cfg_file.exists() and adlib.file_events(cfg_file), 10, "the config device to write")
    assert not api_file.exists() and not (tmp_path / "bao.log").exists()
    assert not receiver.seqs() and not receiver.hung

    # The config device cannot be removed over the API either.
    r = srv.vault("DELETE", "sys/audit/cfgfile")
    assert r.status_code == 400, r.text
    assert _listed(srv) == {"cfgfile/"}
    rows = _bao_list(srv, tmp_path / "bao")
    assert [row[:2] for row in rows] == [["cfgfile/", "file"]], rows

    refusals = [e for e in srv.audit_dump().values() if e["action"] == "enable_audit_device"]
    assert len(refusals) == 3 and all(e["status"] == 400 and e["result"] == "error" for e in refusals), refusals
    assert {e["path"] for e in refusals} == {"/sys/audit/apifile", "/sys/audit/apihook", "/sys/audit/apibao"}


@pytest.fixture
def unsafe(audit_server_factory, tmp_path):
    cfg_file = tmp_path / "cfg.jsonl"
    srv = audit_server_factory({"unsafe_allow_api_audit_creation": True,
                          "audit_devices": [{"name": "cfgfile", "type": "file", "path": str(cfg_file)}]})
    return srv


def test_api_creation_allowed_with_the_flag(unsafe, receiver, tmp_path):
    srv = unsafe
    r = _put(srv, "apihook", {"type": "http", "description": "over the API", "options": {"url": receiver.url}})
    assert r.status_code == 204, r.text
    dev = srv.device("apihook")
    assert dev["type"] == "http" and dev["description"] == "over the API" and dev["options"] == {"url": receiver.url}, dev
    assert dev["status"]["source"] == "api"
    srv.ok("list-items", {"path": "/"})
    head = srv.head()
    wait_for(lambda: receiver.seqs() and max(receiver.seqs()) >= head, 15, "the API-created webhook to receive events")

    r = _put(srv, "apihook", {"type": "http", "options": {"url": receiver.url}})
    assert r.status_code == 400 and "exists" in r.text, r.text
    r = _put(srv, "cfgfile", {"type": "file", "options": {"file_path": str(tmp_path / "shadow.log")}})
    assert r.status_code == 400 and "exists" in r.text, r.text
    assert srv.device("cfgfile")["status"]["source"] == "config"

    # A file device through the real bao CLI.
    bao_log = tmp_path / "bao-audit.log"
    out = srv.bao("audit", "enable", "-path=apibao", "-description=from bao", "file", f"file_path={bao_log}", home=tmp_path / "bao")
    assert out.returncode == 0, out.stderr
    srv.ok("list-items", {"path": "/"})
    head = srv.head()
    wait_for(lambda: (ev := adlib.file_events(bao_log)) and ev[-1]["seq_num"] >= head, 10, "the bao-enabled file device to write")
    assert bao_log.stat().st_mode & 0o777 == 0o600

    rows = {row[0]: row for row in _bao_list(srv, tmp_path / "bao")}
    assert set(rows) == {"cfgfile/", "apihook/", "apibao/"}, rows
    assert rows["cfgfile/"][1] == "file" and rows["apihook/"][1] == "http" and rows["apibao/"][1] == "file", rows
    assert any(f"file_path={bao_log}" in c for c in rows["apibao/"]), rows

    # Disable: the API devices go, the config one stays.
    assert srv.vault("DELETE", "sys/audit/cfgfile").status_code == 400
    assert srv.vault("DELETE", "sys/audit/apihook").status_code == 204
    # As in Vault (OpenBao answers 204), disabling a device that is not enabled succeeds.
    assert srv.vault("DELETE", "sys/audit/nosuchdevice").status_code == 204
    out = srv.bao("audit", "disable", "apibao", home=tmp_path / "bao")
    assert out.returncode == 0, out.stderr
    assert _listed(srv) == {"cfgfile/"}
    # The removed webhook gets nothing more.
    got = len(receiver.seqs())
    srv.ok("list-items", {"path": "/"})
    cfg = tmp_path / "cfg.jsonl"
    last = srv.head()
    wait_for(lambda: adlib.file_events(cfg) and adlib.file_events(cfg)[-1]["seq_num"] >= last, 10, "the config device to go on")
    assert len(receiver.seqs()) == got, "a disabled device still receives events"


@pytest.mark.parametrize("case", ["inside-data-dir", "dotdot", "suffix", "relative", "dotdot-into-data-dir"])
def test_api_file_paths_refused(unsafe, tmp_path, case):
    srv = unsafe
    data = Path(srv.data_dir)
    assert (data / "tessera.db").exists(), f"{data} is not the data directory"
    path = {
        "inside-data-dir": str(data / "evil.log"),
        "dotdot": str(tmp_path / "a" / ".." / "b.log"),
        "suffix": str(tmp_path / "audit.txt"),
        "relative": "relative/audit.log",
        "dotdot-into-data-dir": str(tmp_path) + "/.." * len(tmp_path.parts) + str(data / "evil.log"),
    }[case]
    r = _put(srv, "apifile", {"type": "file", "options": {"file_path": path}})
    assert r.status_code == 400, f"{case}: {path} → HTTP {r.status_code} {r.text}"
    assert "apifile/" not in _listed(srv)
    assert not (data / "evil.log").exists()


def test_api_file_path_through_a_symlinked_folder_cannot_reach_the_data_dir(unsafe, tmp_path):
    """The path /tmp/…/link/evil.log names no data-dir folder, but `link` points at the data
    directory: the device must not write there (refused, or at least nothing written)."""
    srv = unsafe
    data = Path(srv.data_dir)
    link = tmp_path / "link"
    os.symlink(data, link)
    r = _put(srv, "apifile", {"type": "file", "options": {"file_path": str(link / "evil.log")}})
    if r.status_code == 204:
        srv.ok("list-items", {"path": "/"})
        head = srv.head()
        wait_for(lambda: srv.status("apifile")["cursor"] >= head or srv.status("apifile")["failures"], 10,
                 "the device to write or fail")
    assert not (data / "evil.log").exists(), (
        f"PUT sys/audit/apifile file_path={link / 'evil.log'} (link → data dir) answered {r.status_code} and the server "
        f"wrote {data / 'evil.log'} inside its data directory")
