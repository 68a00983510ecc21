"""Rekey: new key shares (and threshold) from a quorum of the old ones.

* With the tessera CLI (`operator rekey --init`, then `--nonce N SHARE` per old share), 3/2
  becomes 5/3: after a seal the new shares unseal, the old ones no longer do (submitting them
  fails and leaves the server sealed), also after a server restart; the data stays readable.
* Refusals: an anonymous rekey init, status or cancel is refused; a wrong nonce is refused
  without progress; a second init while one runs is refused; shares of another installation
  fail at the threshold and the keys stay; cancel (HTTP and CLI) drops the progress and the
  old shares still unseal afterwards. Every step is audited (rekey_init, rekey_update, …).
* With an auto-unseal key file, the file is rewritten (atomically, still mode 0600) so that a
  restart unseals itself with the new root key, while the new shares unseal after a seal.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat

import pytest

from opslib import short, wait_until


def _new_keys(stdout: str) -> list[str]:
    return [line.split(": ", 1)[1].strip() for line in stdout.splitlines() if line.startswith("Key ")]


def _unseal_fails(node, shares: list[str]) -> str:
    """Submits `shares`; expects the last to fail as not recovering the root key. Returns its error."""
    for k in shares[:-1]:
        r = node.sys("PUT", "unseal", {"key": k})
        assert r.status_code == 200 and r.json()["sealed"] is True, short(r)
    r = node.sys("PUT", "unseal", {"key": shares[-1]})
    assert r.status_code == 400, f"old shares at the threshold: {short(r)}"
    st = node.seal_status()
    assert st["sealed"] is True and st["progress"] == 0, st
    return r.json()["errors"][0]


def test_rekey_with_the_cli_new_shares_unseal_old_ones_do_not(make_node, cli_for):
    node = make_node("rekey")
    node.init(3, 2)
    node.ok("create-secret", {"name": "/ops/rekey/kept", "value": "still-here"})
    old = list(node.keys)
    cli = cli_for(node, "admin")
    cli.login(node.admin_id, node.admin_key)

    started = json.loads(cli.ok("operator", "rekey", "--init", "--key-shares", "5", "--key-threshold", "3", "--json").stdout)
    assert started["started"] is True and started["n"] == 5 and started["t"] == 3 and started["required"] == 2, started
    nonce = started["nonce"]
    status = json.loads(cli.ok("operator", "rekey", "--status", "--json").stdout)
    assert status["nonce"] == nonce and status["progress"] == 0, status

    p1 = cli.ok("operator", "rekey", "--nonce", nonce, old[2])
    assert "1 of 2" in p1.stdout, p1.stdout
    # an old share may come from standard input too
    p2 = cli.ok("operator", "rekey", "--nonce", nonce, "-", input=old[0] + "\n")
    new = _new_keys(p2.stdout)
    assert "Rekey complete" in p2.stdout and len(new) == 5 and len(set(new)) == 5, p2.stdout
    assert not set(new) & set(old)
    st = node.seal_status()
    assert (st["n"], st["t"], st["sealed"]) == (5, 3, False), st
    # the server goes on serving with the same keyring
    assert node.ok("get-secret-value", {"names": ["/ops/rekey/kept"]}) == {"/ops/rekey/kept": "still-here"}

    cli.ok("operator", "seal")
    assert node.seal_status()["sealed"] is True
    # Three old shares (the new threshold) do not recover the root key.
    err = _unseal_fails(node, old)
    assert "do not recover" in err, err
    # Two new shares are not enough, three are (with the CLI).
    r = cli.run("operator", "unseal", new[4], new[1])
    assert r.returncode == 0 and node.seal_status()["sealed"] is True and node.seal_status()["progress"] == 2, (r.stdout, r.stderr)
    cli.ok("operator", "unseal", new[3])
    assert node.seal_status()["sealed"] is False
    node.login()
    assert node.ok("get-secret-value", {"names": ["/ops/rekey/kept"]}) == {"/ops/rekey/kept": "still-here"}

    # A restart changes nothing: old shares still fail, the new ones unseal.
    node.stop()
    node.start()
    assert node.seal_status()["sealed"] is True and node.seal_status()["n"] == 5
    _unseal_fails(node, [old[1], old[0], old[2]])
    node.unseal([new[0], new[2], new[4]])
    assert node.ok("get-secret-value", {"names": ["/ops/rekey/kept"]}) == {"/ops/rekey/kept": "still-here"}

    # Audited with the admin as actor for the init and the share count, never a share.
    inits = node.audit_events("rekey_init")
    assert [(e["access_id"], e["result"]) for e in inits] == [(node.admin_id, "allowed")], inits
    assert inits[0]["request_parameters"].get("secret_shares") == "5", inits
    updates = node.audit_events("rekey_update")
    assert len(updates) == 2 and any(e["request_parameters"].get("complete") == "true" for e in updates), updates
    trail = json.dumps(node.ok("audit-query", {"limit": 10000}))
    for share in old + new:
        assert share not in trail, "a key share is in the audit trail"
    assert node.audit_verify()["ok"] is True


def test_rekey_refusals_wrong_nonce_anonymous_and_cancel(make_node, cli_for):
    node = make_node("rekeyno")
    node.init(3, 2)
    old = list(node.keys)
    admin = node.vault_token

    # Anonymous (and a bad token): refused, nothing started.
    for token in (None, "p-nobody00000..wrong"):
        for method in ("PUT", "GET", "DELETE"):
            body = {"secret_shares": 1, "secret_threshold": 1} if method == "PUT" else None
            r = node.sys(method, "rekey/init", body, token=token)
            assert r.status_code in (401, 403), f"{method} rekey/init with {token!r}: {short(r)}"
    assert node.sys("GET", "rekey/init", token=admin).json()["started"] is False

    r = node.sys("PUT", "rekey/init", {"secret_shares": 4, "secret_threshold": 2}, token=admin)
    assert r.status_code == 200, short(r)
    nonce = r.json()["nonce"]
    assert nonce and r.json()["required"] == 2
    # a second init while one is in progress
    r = node.sys("PUT", "rekey/init", {"secret_shares": 2, "secret_threshold": 2}, token=admin)
    assert r.status_code == 400, short(r)
    # invalid parameters
    r = node.sys("DELETE", "rekey/init", token=admin)
    assert r.status_code in (200, 204), short(r)
    for bad in ({"secret_shares": 3, "secret_threshold": 4}, {"secret_shares": 3, "secret_threshold": 1}, {"secret_shares": 0, "secret_threshold": 0}):
        r = node.sys("PUT", "rekey/init", bad, token=admin)
        assert r.status_code == 400, (bad, short(r))
    nonce = node.sys("PUT", "rekey/init", {"secret_shares": 4, "secret_threshold": 2}, token=admin).json()["nonce"]

    # Wrong nonce: refused, no progress.
    r = node.sys("PUT", "rekey/update", {"key": old[0], "nonce": nonce[::-1]})
    assert r.status_code == 400 and "nonce" in r.json()["errors"][0], short(r)
    r = node.sys("PUT", "rekey/update", {"key": old[0], "nonce": ""})
    assert r.status_code == 400, short(r)
    assert node.sys("GET", "rekey/init", token=admin).json()["progress"] == 0
    # Not a share at all.
    r = node.sys("PUT", "rekey/update", {"key": "not a share!", "nonce": nonce})
    assert r.status_code == 400, short(r)

    # Shares of another installation: the first counts, the threshold fails, progress resets.
    foreign = [base64.b64encode(bytes([x]) + secrets.token_bytes(32)).decode() for x in (1, 2)]
    r = node.sys("PUT", "rekey/update", {"key": foreign[0], "nonce": nonce})
    assert r.status_code == 200 and r.json()["progress"] == 1, short(r)
    r = node.sys("PUT", "rekey/update", {"key": foreign[1], "nonce": nonce})
    assert r.status_code == 400 and "do not recover" in r.json()["errors"][0], short(r)
    assert node.sys("GET", "rekey/init", token=admin).json()["progress"] == 0

    # One good share, then cancel (with the CLI): progress gone, the nonce is dead.
    r = node.sys("PUT", "rekey/update", {"key": old[1], "nonce": nonce})
    assert r.status_code == 200 and r.json()["progress"] == 1 and "keys_base64" not in r.json(), short(r)
    cli = cli_for(node, "admin")
    cli.login(node.admin_id, node.admin_key)
    assert "cancelled" in cli.ok("operator", "rekey", "--cancel").stdout
    st = node.sys("GET", "rekey/init", token=admin).json()
    assert st["started"] is False and st["progress"] == 0 and st["nonce"] == "", st
    r = node.sys("PUT", "rekey/update", {"key": old[2], "nonce": nonce})
    assert r.status_code == 400, short(r)
    # The CLI says so too when asked to submit without a rekey.
    p = cli.run("operator", "rekey", "--nonce", nonce, old[2])
    assert p.returncode == 1 and "no rekey is in progress" in p.stderr, (p.stdout, p.stderr)

    # Nothing changed: the old shares still unseal.
    node.seal()
    node.unseal([old[2], old[0]])
    assert node.seal_status()["n"] == 3
    # A sealed server refuses to start a rekey.
    node.seal()
    r = node.sys("PUT", "rekey/init", {"secret_shares": 3, "secret_threshold": 2}, token=admin)
    assert r.status_code == 503, short(r)
    node.unseal(old[:2])
    denied = [e for e in node.audit_events("rekey_init") if e["result"] == "denied"]
    assert denied, "refused rekey inits with a bad token are audited"
    assert node.audit_events("rekey_cancel")


def test_rekey_rewrites_the_auto_unseal_key_file(make_node, tmp_path):
    keyfile = tmp_path / "unseal.key"
    node = make_node("autounseal", unseal_key_file=keyfile)
    node.init(3, 2)
    assert node.seal_status()["sealed"] is False
    node.ok("create-secret", {"name": "/ops/auto/x", "value": "auto"})
    before = keyfile.read_bytes()
    assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600
    old = list(node.keys)

    nonce = node.sys("PUT", "rekey/init", {"secret_shares": 2, "secret_threshold": 2}, token=node.vault_token).json()["nonce"]
    node.sys("PUT", "rekey/update", {"key": old[0], "nonce": nonce})
    r = node.sys("PUT", "rekey/update", {"key": old[1], "nonce": nonce})
    assert r.status_code == 200 and r.json()["complete"] is True, short(r)
    new = r.json()["keys_base64"]
    assert len(new) == 2

    after = keyfile.read_bytes()
    assert after != before and len(after) == len(before), "the key file still holds the old root key"
    assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("unseal.key")) == ["unseal.key"], "a temporary key file was left"

    # A restart unseals itself with the rewritten file …
    node.stop()
    node.start()
    wait_until(lambda: node.seal_status()["sealed"] is False, timeout=10, what="the auto-unseal after the rekey")
    node.login()
    assert node.ok("get-secret-value", {"names": ["/ops/auto/x"]}) == {"/ops/auto/x": "auto"}
    # … also after a SIGKILL, and the new shares (not the old) unseal after a seal.
    node.kill()
    node.start()
    wait_until(lambda: node.seal_status()["sealed"] is False, timeout=10, what="the auto-unseal after a SIGKILL")
    node.login()
    node.seal()
    _unseal_fails(node, old[:2])
    node.unseal(new)
    assert node.ok("get-secret-value", {"names": ["/ops/auto/x"]}) == {"/ops/auto/x": "auto"}
