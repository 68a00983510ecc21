"""Init, restart, seal/unseal, the auto-unseal key file, and token revocation."""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import subprocess

import pytest
import requests

from e2e_support import unique


def _unseal(srv, key: str) -> requests.Response:
    return srv.sys("PUT", "unseal", {"key": key})


def _assert_sealed_503(srv, token_or_none=None):
    body = {"token": token_or_none or "t-" + "0" * 64, "names": ["/app/a"]}
    r = srv.post("get-secret-value", body)
    assert r.status_code == 503, r.text
    err = r.json()
    assert err["error"] and "sealed" in err["message"].lower(), err
    return err


def test_init_restart_unseal(server_factory, cli_factory, tmp_path):
    data_dir = tmp_path / "data"
    srv = server_factory(data_dir=data_dir, name="life")
    srv.start()
    cli = cli_factory(srv.url)

    # fresh server: uninitialized and sealed
    st = srv.seal_status()
    assert st["initialized"] is False and st["sealed"] is True
    r = srv.post("list-items", {"token": "t-x", "path": "/"})
    assert r.status_code == 503, r.text

    init = cli.json("operator", "init", "--shares", "3", "--threshold", "2")
    assert len(init["keys"]) == 3 and len(init["keys_base64"]) == 3
    assert init["admin_access_id"].startswith("p-") and init["admin_access_key"]
    assert ".." in init["root_token"]
    st = srv.seal_status()
    assert st["initialized"] is True and st["sealed"] is False and st["t"] == 2 and st["n"] == 3

    # a second init is refused
    r = srv.sys("PUT", "init", {"secret_shares": 1, "secret_threshold": 1})
    assert 400 <= r.status_code < 500, r.text
    p = cli.run("operator", "init", "--shares", "1", "--threshold", "1")
    assert p.returncode != 0 and p.stderr.startswith("Error:")

    tok = srv.login(init["admin_access_id"], init["admin_access_key"])
    versions = [unique("a-v1"), unique("a-v2"), unique("a-v3")]
    srv.call("create-secret", {"token": tok, "name": "/app/a", "value": versions[0]})
    for v in versions[1:]:
        srv.call("update-secret-val", {"token": tok, "name": "/app/a", "value": v})
    b_val = unique("b")
    srv.call("create-secret", {"token": tok, "name": "/app/nested/b", "value": b_val})

    # graceful stop, restart on the same data dir -> sealed
    rc = srv.stop()
    assert rc == 0, srv.read_log()[-2000:]
    srv.start()

    p = cli.run("operator", "status")
    assert "Sealed:       true" in p.stdout or "sealed" in p.stdout.lower(), p.stdout
    p = cli.run("operator", "status", "--json")
    st = json.loads(p.stdout)
    assert st["initialized"] is True and st["sealed"] is True and st["progress"] == 0
    r = requests.get(f"{srv.url}/v1/sys/health", timeout=5)
    assert r.status_code != 200 and r.json()["sealed"] is True

    _assert_sealed_503(srv, tok)
    r = srv.post("auth", {"access-id": init["admin_access_id"], "access-key": init["admin_access_key"]})
    assert r.status_code == 503, r.text

    # --- wrong shares are rejected -------------------------------------------------------------
    zero_index = base64.b64encode(b"\x00" + b"\x05" * 32).decode()  # x = 0 is never a valid share
    for bad in ("", "not a share!", "AAAA", "zz" * 33, zero_index, "01" + "g" * 64):
        r = _unseal(srv, bad)
        assert 400 <= r.status_code < 500, (bad, r.status_code, r.text)
        assert r.json().get("errors") or r.json().get("error") or r.json().get("message"), r.text
    assert srv.seal_status()["progress"] == 0

    # --- unseal: one share -> still sealed, progress 1; second share -> unsealed -------------
    r = _unseal(srv, init["keys_base64"][0])
    assert r.status_code == 200, r.text
    st = r.json()
    assert st["sealed"] is True and st["progress"] == 1 and st["t"] == 2
    # the same share again does not count twice
    r = _unseal(srv, init["keys_base64"][0])
    assert r.status_code in (200, 400), r.text
    st = srv.seal_status()
    assert st["sealed"] is True and st["progress"] <= 1
    _assert_sealed_503(srv, tok)

    # make sure exactly one share is pending, then give the second one through the CLI (hex form)
    srv.sys("PUT", "unseal", {"reset": True})
    assert srv.seal_status()["progress"] == 0
    out = cli.json("operator", "unseal", init["keys"][2])
    assert out["sealed"] is True and out["progress"] == 1
    out = cli.json("operator", "unseal", init["keys_base64"][1])
    assert out["sealed"] is False, out
    st = srv.seal_status()
    assert st["sealed"] is False and st["progress"] == 0
    assert requests.get(f"{srv.url}/v1/sys/health", timeout=5).status_code == 200
    p = cli.ok("operator", "status")
    assert "false" in p.stdout

    # secrets intact, all versions
    tok = srv.login(init["admin_access_id"], init["admin_access_key"])
    for i, v in enumerate(versions, start=1):
        got = srv.call("get-secret-value", {"token": tok, "names": ["/app/a"], "version": i})
        assert got == {"/app/a": v}
    assert srv.call("get-secret-value", {"token": tok, "names": ["/app/a", "/app/nested/b"]}) == \
        {"/app/a": versions[-1], "/app/nested/b": b_val}
    desc = srv.call("describe-item", {"token": tok, "name": "/app/a"})
    assert desc["last_version"] == 3
    assert srv.call("audit-verify", {"token": tok})["ok"] is True

    # --- seal over the API ----------------------------------------------------------------------
    r = srv.sys("PUT", "seal")  # no token
    assert r.status_code in (400, 401, 403), r.text
    assert srv.seal_status()["sealed"] is False
    am = srv.call("create-auth-method", {"token": tok, "name": "/nobody"})
    nobody = srv.login(am["access_id"], am["access_key"])
    r = srv.sys("PUT", "seal", token=nobody)
    assert r.status_code == 403, r.text
    assert srv.seal_status()["sealed"] is False

    r = srv.sys("PUT", "seal", token=init["root_token"])
    assert r.status_code == 204, r.text
    assert srv.seal_status()["sealed"] is True
    _assert_sealed_503(srv, tok)

    # a foreign (well-formed) share with a real one does not unseal, and the server stays usable
    other = server_factory(name="other").start()
    foreign = other.init(shares=3, threshold=2)["keys_base64"]
    other.stop()
    assert _unseal(srv, init["keys_base64"][0]).status_code == 200
    r = _unseal(srv, foreign[1])
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    st = srv.seal_status()
    assert st["sealed"] is True and st["progress"] == 0
    assert srv.is_running()

    cli.ok("operator", "unseal", init["keys_base64"][0], init["keys_base64"][2])
    assert srv.seal_status()["sealed"] is False
    # tokens issued before the seal still work after unseal
    assert srv.call("get-secret-value", {"token": tok, "names": ["/app/a"]}) == {"/app/a": versions[-1]}

    assert srv.stop() == 0


def test_wrong_length_share_is_rejected_immediately(server_factory, tmp_path):
    srv = server_factory(data_dir=tmp_path / "data", name="short").start()
    init = srv.init(shares=3, threshold=2)
    assert srv.sys("PUT", "seal", token=init["root_token"]).status_code == 204
    short = base64.b64encode(b"\x01" * 5).decode()
    r = _unseal(srv, short)
    assert srv.seal_status()["progress"] == 0 and 400 <= r.status_code < 500, (r.status_code, r.text)


def test_sigint_is_graceful(server_factory):
    import signal
    srv = server_factory(dev=True, name="sigint").start()
    assert srv.stop(sig=signal.SIGINT) == 0


def _write_key_file(path, mode):
    path.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    os.chmod(path, mode)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o400, 0o700])
def test_unseal_key_file_with_bad_mode_is_refused(server_factory, tmp_path, mode):
    key_file = tmp_path / "unseal.key"
    _write_key_file(key_file, mode)
    srv = server_factory(data_dir=tmp_path / "data", unseal_key_file=key_file, name="badmode")
    proc = srv.spawn()
    try:
        rc = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"server with a mode {oct(mode)} unseal key file kept running")
    assert rc != 0
    log = srv.read_log()
    assert "600" in log or "mode" in log.lower(), log
    assert "Error" in log or "error" in log, log


def test_unseal_key_file_with_bad_mode_via_config_is_refused(server_factory, tmp_path):
    key_file = tmp_path / "unseal.key"
    _write_key_file(key_file, 0o644)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"data_dir": str(tmp_path / "data"),
                               "unseal_key_file": str(key_file)}))
    srv = server_factory(config=cfg, name="cfg")  # --listen still comes from the flag
    proc = srv.spawn()
    try:
        rc = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("server with a mode 0644 unseal key file (from --config) kept running")
    assert rc != 0
    assert "600" in srv.read_log(), srv.read_log()


def test_unseal_key_file_auto_unseal(server_factory, tmp_path):
    key_file = tmp_path / "keys" / "unseal.key"
    key_file.parent.mkdir()
    data_dir = tmp_path / "data"
    srv = server_factory(data_dir=data_dir, unseal_key_file=key_file, name="auto")
    srv.start()
    assert not key_file.exists()
    init = srv.init(shares=3, threshold=2)
    assert key_file.exists(), "the server did not write the unseal key file at init"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(base64.b64decode(key_file.read_text().strip())) == 32
    # the key file must not hold any share or the admin key
    content = key_file.read_text()
    assert init["admin_access_key"] not in content
    assert not any(k in content for k in init["keys_base64"])

    tok = srv.login(init["admin_access_id"], init["admin_access_key"])
    val = unique("auto")
    srv.call("create-secret", {"token": tok, "name": "/auto/s", "value": val})

    assert srv.stop() == 0
    srv.start()
    st = srv.seal_status()
    assert st["initialized"] is True and st["sealed"] is False, st
    tok = srv.login(init["admin_access_id"], init["admin_access_key"])
    assert srv.call("get-secret-value", {"token": tok, "names": ["/auto/s"]}) == {"/auto/s": val}
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert srv.stop() == 0

    # without the flag the same data dir starts sealed, and the shares still work
    plain = server_factory(data_dir=data_dir, name="plain").start()
    assert plain.seal_status()["sealed"] is True
    _unseal(plain, init["keys_base64"][0])
    assert _unseal(plain, init["keys_base64"][1]).json()["sealed"] is False
    assert plain.stop() == 0

    # a key file that was loosened after init is refused at the next start
    os.chmod(key_file, 0o644)
    srv.port = None
    proc = srv.spawn()
    assert proc.wait(timeout=20) != 0
    assert "600" in srv.read_log()


def _initialized_with_key_file(server_factory, tmp_path, name):
    key_file = tmp_path / "unseal.key"
    srv = server_factory(data_dir=tmp_path / "data", unseal_key_file=key_file, name=name)
    srv.start()
    srv.init(shares=1, threshold=1)
    assert srv.stop() == 0
    return srv, key_file


def test_unseal_key_file_with_wrong_key_does_not_unseal(server_factory, tmp_path):
    srv, key_file = _initialized_with_key_file(server_factory, tmp_path, "wrongkey")
    key_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")  # keeps 0600
    proc = srv.spawn()
    # either the server refuses to start, or it starts sealed; it must never be unsealed
    try:
        srv.wait_ready(timeout=20)
    except Exception:
        assert proc.poll() is not None and proc.returncode != 0
        return
    assert srv.seal_status()["sealed"] is True


def test_unseal_key_file_with_garbage_fails_cleanly(server_factory, tmp_path):
    srv, key_file = _initialized_with_key_file(server_factory, tmp_path, "garbagekey")
    key_file.write_text("this is not a key\n")
    proc = srv.spawn()
    try:
        srv.wait_ready(timeout=20)
    except Exception:
        pass
    else:
        assert srv.seal_status()["sealed"] is True  # starting sealed would be fine too
        return
    log = srv.read_log()
    assert proc.returncode is not None and proc.returncode > 0, (proc.returncode, log[:500])
    assert "crashed" not in log.lower() and "assertion failed" not in log.lower(), log[:500]
    assert "key" in log.lower(), log[:500]


def test_init_with_existing_unseal_key_file_does_not_brick(server_factory, tmp_path):
    key_file = tmp_path / "unseal.key"
    _write_key_file(key_file, 0o600)  # a stale key file from an earlier installation
    srv = server_factory(data_dir=tmp_path / "data", unseal_key_file=key_file, name="stale")
    try:
        srv.start()
    except Exception:
        return  # refusing to start with a stale key file is also acceptable
    r = srv.sys("PUT", "init", {"secret_shares": 3, "secret_threshold": 2})
    if r.status_code == 200:
        assert len(r.json()["keys_base64"]) == 3
        return
    # the init failed: then the server must still be uninitialized so it can be retried
    assert 400 <= r.status_code < 500, r.text
    st = srv.seal_status()
    assert st["initialized"] is False, (
        f"init answered {r.status_code} {r.text} but the server is now initialized: {st}")


def test_revoked_token_is_rejected(dev_server):
    srv = dev_server
    tok = srv.login(srv.admin_id, srv.admin_key)
    other = srv.login(srv.admin_id, srv.admin_key)
    srv.call("create-secret", {"token": tok, "name": "/r/s", "value": "v"})
    vt = srv.call("validate-token", {"token": tok})
    assert vt["is_valid"] is True and vt["ttl"] > 0

    srv.call("revoke-creds", {"token": tok})
    r = srv.post("get-secret-value", {"token": tok, "names": ["/r/s"]})
    assert r.status_code == 401, r.text
    assert r.json()["error"] and r.json()["message"]
    r = srv.post("validate-token", {"token": tok})
    assert r.status_code == 200, r.text
    vt = r.json()
    assert vt["is_valid"] is False
    assert vt["reason"]
    # revoking again does not resurrect or crash
    r = srv.post("revoke-creds", {"token": tok})
    assert r.status_code in (200, 401), r.text
    # other tokens of the same identity are unaffected
    assert srv.call("get-secret-value", {"token": other, "names": ["/r/s"]}) == {"/r/s": "v"}

    # unknown / malformed tokens
    for bad in ("t-" + "0" * 64, "t-short", "garbage", "p-e2eadmin0001.." + srv.admin_key + "x"):
        r = srv.post("list-items", {"token": bad, "path": "/"})
        assert r.status_code == 401, (bad, r.text)
        vt = srv.post("validate-token", {"token": bad})
        assert vt.status_code in (200, 401), vt.text
        if vt.status_code == 200:
            assert vt.json()["is_valid"] is False


def test_deleting_auth_method_revokes_its_tokens(dev_server, admin_token):
    srv = dev_server
    am = srv.call("create-auth-method", {"token": admin_token, "name": "/temp"})
    tok = srv.login(am["access_id"], am["access_key"])
    assert srv.call("validate-token", {"token": tok})["is_valid"] is True
    srv.call("delete-auth-method", {"token": admin_token, "name": "/temp"})
    assert srv.post("list-items", {"token": tok, "path": "/"}).status_code == 401
    r = srv.post("auth", {"access-id": am["access_id"], "access-key": am["access_key"]})
    assert r.status_code == 401, r.text


def test_uninitialized_and_sealed_servers_stop_cleanly(server_factory, tmp_path):
    srv = server_factory(data_dir=tmp_path / "data", name="fresh").start()
    assert srv.stop() == 0
    srv.start()
    init = srv.init(shares=1, threshold=1)
    assert srv.sys("PUT", "seal", token=init["root_token"]).status_code == 204
    assert srv.stop() == 0
    srv.start()
    assert srv.seal_status()["sealed"] is True
    assert _unseal(srv, init["keys_base64"][0]).json()["sealed"] is False
    assert srv.stop() == 0


def test_concurrent_requests(dev_server, admin_token):
    """Parallel writes and reads: no 5xx, no lost versions, the audit chain stays intact.

    Concurrent updates of the *same* item may be refused with 409 ("... retry"), by design
    (optimistic concurrency); every accepted update must be a distinct version."""
    from concurrent.futures import ThreadPoolExecutor

    srv = dev_server
    srv.call("create-secret", {"token": admin_token, "name": "/conc/shared", "value": "v0"})

    def work(i):
        s = requests.Session()
        out = []
        for j in range(5):
            r = s.post(f"{srv.api_url}/create-secret", json={
                "token": admin_token, "name": f"/conc/w{i}/s{j}", "value": f"val-{i}-{j}"}, timeout=30)
            out.append(("create", r.status_code))
            r = s.post(f"{srv.api_url}/update-secret-val", json={
                "token": admin_token, "name": "/conc/shared", "value": f"u-{i}-{j}"}, timeout=30)
            if r.status_code == 409:
                assert "retry" in r.json()["message"], r.text
            out.append(("update", r.status_code))
            r = s.post(f"{srv.api_url}/get-secret-value", json={
                "token": admin_token, "names": [f"/conc/w{i}/s{j}"]}, timeout=30)
            out.append(("read", r.status_code))
        s.close()
        return out

    with ThreadPoolExecutor(8) as ex:
        statuses = [c for res in ex.map(work, range(8)) for c in res]
    bad = [(k, c) for k, c in statuses if c != 200 and not (k == "update" and c == 409)]
    assert not bad, bad
    accepted_updates = sum(1 for k, c in statuses if k == "update" and c == 200)
    assert accepted_updates > 0
    items = srv.call("list-items", {"token": admin_token, "path": "/conc"})["items"]
    assert len(items) == 8 * 5 + 1
    desc = srv.call("describe-item", {"token": admin_token, "name": "/conc/shared"})
    assert desc["last_version"] == 1 + accepted_updates
    ver = srv.call("audit-verify", {"token": admin_token})
    assert ver["ok"] is True, ver
