"""Class 8: the smaller defects.

* `/metrics` needs a token (401/403 without one, 200 with the admin's), unless the config sets
  `"unauthenticated_metrics_access": true`.
* The LIST filter of a connector-backed Vault mount (over a real OpenBao) fails closed: when
  the upstream answers a LIST with a body the filter cannot read, the caller gets an error,
  never the upstream's keys (which include one the caller is denied), and never a 500.
* The audit chain: deleting the newest events from audit.db of a stopped server is detected by
  `tessera audit verify` after the restart.
* CLI secrets: `--value -` reads standard input, `--value @file` reads a file, and a secret
  given as a plain argument (visible in the process list) prints a warning on stderr.
"""
from __future__ import annotations

import json
import sqlite3

import pytest
import requests

import usclib
from seclib import CLI, DurableNode, Node, assert_alive, body_text, send, uid

# ------------------------------------------------------------------------------------------
# /metrics
# ------------------------------------------------------------------------------------------


def metrics(node: Node, headers: dict | None = None) -> requests.Response:
    return requests.get(f"{node.url}/metrics", headers=headers or {}, timeout=10)


def test_metrics_without_a_token_is_refused(node):
    r = send(lambda: metrics(node))
    assert_alive(node, "GET /metrics without a token")
    assert r.status_code in (401, 403), body_text(r)
    assert "tessera_sealed" not in r.text


def test_metrics_with_a_bad_token_is_refused(node):
    r = send(lambda: metrics(node, {"X-Vault-Token": "t-" + "0" * 64}))
    assert_alive(node, "GET /metrics with a bad token")
    assert r.status_code in (401, 403), body_text(r)
    assert "tessera_sealed" not in r.text


@pytest.mark.parametrize("style", ["X-Vault-Token", "Authorization: Bearer"])
def test_metrics_with_the_admin_token_answers_200(node, style):
    h = {"X-Vault-Token": node.token} if style == "X-Vault-Token" else {"Authorization": f"Bearer {node.token}"}
    r = metrics(node, h)
    assert r.status_code == 200, body_text(r)
    assert "tessera_sealed 0" in r.text


def test_metrics_answer_without_a_token_when_the_config_allows_it(make_node):
    open_node = make_node(name="open-metrics", config={"unauthenticated_metrics_access": True})
    r = metrics(open_node)
    assert r.status_code == 200, body_text(r)
    assert "tessera_sealed 0" in r.text


# ------------------------------------------------------------------------------------------
# the Vault proxy's LIST filter fails closed
# ------------------------------------------------------------------------------------------

class _GarblingHandler(usclib._ProxyHandler):
    """Forwards like the usc suite's counting proxy, except that LIST requests get `proxy.garble`."""

    def _handle(self) -> None:
        garble = getattr(self.server.proxy, "garble", None)
        if garble is not None and "list=true" in self.path:
            self._read_body()
            self._answer(200, garble, [("Content-Type", "application/json")])
            return
        super()._handle()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_LIST = _handle


class GarblingProxy(usclib.CountingProxy):
    garble: bytes | None = None

    def start(self) -> "GarblingProxy":
        super().start()
        self._server.RequestHandlerClass = _GarblingHandler
        return self


# Bodies an upstream (or something between it and Tessera) might send, each naming the denied key.
GARBLED = {
    "truncated-json": b'{"data":{"keys":["api-key","db-password"]}',
    "keys-not-a-list": b'{"data":{"keys":"db-password api-key"}}',
    "data-not-an-object": b'{"data":["api-key","db-password"]}',
    "not-json": b"keys: api-key db-password",
}


@pytest.fixture(scope="module")
def garbling_proxy(openbao):
    p = GarblingProxy(openbao.addr).start()
    yield p
    p.stop()


@pytest.fixture
def proxied(node, openbao, garbling_proxy):
    """A connector-backed mount up/ over OpenBao (through the garbling proxy), and an identity
    with read+list on the connector but deny on myapp/db-password."""
    garbling_proxy.garble = None

    def build():
        node.ok("target-create-hashi-vault", {"name": "misc-vault", "hashi-url": garbling_proxy.url,
                                              "vault-token": openbao.root_token})
        node.ok("create-usc", {"name": "misc-usc", "target-to-associate": "misc-vault"})
        node.ok("vault-mount-create", {"path": "up/", "type": "kv-v2", "usc-name": "misc-usc"})
        return node.identity([("/misc-usc/*", ["read", "list"]), ("/misc-usc/myapp/db-password", ["deny"])])
    ident = node.once("misc-proxy", build)
    yield ident
    garbling_proxy.garble = None


def test_the_proxy_list_filter_hides_a_denied_key(node, proxied):
    """The control: with a well-formed upstream answer the denied key is filtered out."""
    r = proxied.vault("LIST", "up/metadata/myapp/")
    assert r.status_code == 200, body_text(r)
    assert r.json()["data"]["keys"] == ["api-key"], r.json()


@pytest.mark.parametrize("kind", list(GARBLED), ids=list(GARBLED))
def test_the_proxy_list_filter_fails_closed_on_an_unreadable_upstream_body(node, openbao, proxied, garbling_proxy, kind):
    garbling_proxy.garble = GARBLED[kind]
    r = send(lambda: proxied.vault("LIST", "up/metadata/myapp/"))
    garbling_proxy.garble = None
    assert_alive(node, f"LIST through the proxy with an upstream body that is {kind}")
    assert isinstance(r, requests.Response), r
    assert "db-password" not in r.text, f"the denied key leaked: {body_text(r)}"
    assert r.status_code != 200, f"an unfiltered answer was relayed: {body_text(r)}"
    assert r.status_code == 502 or 400 <= r.status_code < 500, f"expected a 502 or a 4xx, got {body_text(r)}"
    got = openbao.bao("kv", "get", "-format=json", "secret/myapp/db-password")
    assert got.rc == 0 and openbao.db_password in got.stdout, "the upstream secret changed"


# ------------------------------------------------------------------------------------------
# the audit chain: a deleted tail is detected after a restart
# ------------------------------------------------------------------------------------------

def audit_verify(cli: CLI) -> tuple[int, dict | None, str]:
    p = cli.run("audit", "verify", "--json")
    try:
        out = json.loads(p.stdout)
    except ValueError:
        out = None
    return p.returncode, out, p.stdout + p.stderr


def test_deleting_the_newest_audit_events_of_a_stopped_server_is_detected_after_restart(tmp_path, tessera_bin):
    (tmp_path / "node").mkdir()
    n = DurableNode(tmp_path / "node")
    try:
        n.start()
        n.initialize()
        for i in range(5):
            assert n.call("create-secret", name=f"/audit/{i}", value=f"v{i}").status_code == 200
        cli = CLI(tessera_bin, tmp_path / "cli", n.base)
        cli.ok("auth", "--access-id", n.admin_id, "--access-key", n.admin_key)
        rc, out, text = audit_verify(cli)
        assert rc == 0 and out and out["ok"] is True, text

        # the control: a clean restart still verifies
        n.stop()
        n.start()
        rc, out, text = audit_verify(cli)
        assert rc == 0 and out and out["ok"] is True, f"a clean restart does not verify: {text}"

        n.stop()
        db = sqlite3.connect(str(n.dir / "audit.db"))
        try:
            newest = db.execute("SELECT max(seq) FROM audit_events").fetchone()[0]
            db.execute("DELETE FROM audit_events WHERE seq > ?", (newest - 3,))
            db.commit()
        finally:
            db.close()
        n.start()
        r = requests.get(n.base + "/v1/sys/health", timeout=5)
        assert r.status_code == 200, f"the restarted server is not unsealed: {r.status_code}"
        rc, out, text = audit_verify(cli)
        assert requests.get(n.base + "/v1/sys/health", timeout=5).status_code == 200
        assert out is not None, f"audit verify gave no JSON: {text}"
        assert out["ok"] is False, f"the deleted tail (events {newest - 2}..{newest}) went undetected: {text}"
        assert rc != 0, f"audit verify exited 0 on a broken chain: {text}"
    finally:
        n.stop()


# ------------------------------------------------------------------------------------------
# CLI secrets
# ------------------------------------------------------------------------------------------

def read_back(cli: CLI, name: str) -> str:
    return cli.json("get-secret-value", "--name", name)[name]


def test_create_secret_value_dash_reads_standard_input(admin_cli):
    name, value = f"/cli/{uid()}", "from-stdin-" + uid()
    p = admin_cli.ok("create-secret", "--name", name, "--value", "-", input=value)
    assert read_back(admin_cli, name) == value
    assert "warning" not in p.stderr.lower(), p.stderr


def test_create_secret_value_at_file_reads_the_file(admin_cli, tmp_path):
    name, value = f"/cli/{uid()}", "from-file-" + uid()
    f = tmp_path / "secret.txt"
    f.write_text(value)
    f.chmod(0o600)
    p = admin_cli.ok("create-secret", "--name", name, "--value", f"@{f}")
    assert read_back(admin_cli, name) == value
    assert "warning" not in p.stderr.lower(), p.stderr


def test_create_secret_with_a_plain_value_argument_warns_on_stderr(admin_cli):
    name, value = f"/cli/{uid()}", "plain-" + uid()
    p = admin_cli.ok("create-secret", "--name", name, "--value", value)
    assert "warning" in p.stderr.lower(), f"no warning on stderr: {p.stderr!r}"
    assert value not in p.stderr, "the warning repeats the secret"
    assert read_back(admin_cli, name) == value
