"""Real Vault clients on the key-management and backup endpoints: the OpenBao CLI (`bao`, with
VAULT_ADDR and VAULT_TOKEN = `<access id>..<access key>`) and hvac.

They cover `bao operator rotate` (POST sys/rotate/keyring) and `key-status` (the install time
of the active term), `bao operator rekey` and OpenBao 2's `rotate-keys` (sys/rotate/root/*),
`bao operator seal`/`unseal` with the new shares, `bao operator raft snapshot save` (a gzip'd
tar ending in SHA256SUMS.sealed, which `tessera operator restore` reads), and hvac's
rotate_encryption_key, get_encryption_key_status and rekey calls.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import hvac
import pytest

from opslib import bao, files_in


@pytest.fixture
def vnode(make_node):
    node = make_node("vault")
    node.init(3, 2)
    return node


def _ok(p, what: str):
    assert p.returncode == 0, f"{what}: exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def _hvac(node, token: str | None = None) -> hvac.Client:
    return hvac.Client(url=node.url, token=token if token is not None else node.vault_token, timeout=30)


def test_bao_key_status_and_hvac_rotate(vnode, bao_bin, tmp_path):
    home = tmp_path / "bao"
    out = _ok(bao(vnode, "operator", "key-status", home=home), "bao operator key-status")
    assert "Key Term" in out.stdout and " 1\n" in out.stdout + "\n", out.stdout
    st = json.loads(_ok(bao(vnode, "operator", "key-status", "-format=json", home=home), "key-status json").stdout)
    assert st["term"] == 1 and datetime.fromisoformat(st["install_time"].replace("Z", "+00:00")) <= datetime.now(timezone.utc), st

    client = _hvac(vnode)
    client.sys.rotate_encryption_key()                 # PUT /v1/sys/rotate, as the Vault API documents it
    assert client.sys.get_encryption_key_status()["data"]["term"] == 2
    st = json.loads(_ok(bao(vnode, "operator", "key-status", "-format=json", home=home), "key-status json").stdout)
    assert st["term"] == 2, st

    # A token without sys-rule on /sys/rotate is refused, as Vault refuses one without sudo.
    lim_id, lim_key = vnode.identity([("/*", ["read", "list"], "item-rule")], "/ops/vault-limited")
    with pytest.raises(hvac.exceptions.Forbidden):
        _hvac(vnode, f"{lim_id}..{lim_key}").sys.rotate_encryption_key()
    p = bao(vnode, "operator", "key-status", token=f"{lim_id}..{lim_key}", home=home)
    assert p.returncode == 2 and "403" in p.stderr, (p.returncode, p.stderr)
    assert vnode.key_status()["term"] == 2


def test_bao_operator_rotate(vnode, bao_bin, tmp_path):
    p = bao(vnode, "operator", "rotate", home=tmp_path / "bao")
    assert p.returncode == 0, f"bao operator rotate: exit {p.returncode}: {p.stderr.strip()}"
    assert "Success! Rotated key" in p.stdout
    assert vnode.key_status()["term"] == 2


def test_key_status_install_time_is_the_active_terms(vnode, tmp_path):
    before = vnode.key_status()["install_time"]
    rotated = datetime.now(timezone.utc)
    assert vnode.sys("PUT", "rotate", token=vnode.vault_token).status_code == 204
    after = vnode.key_status()["install_time"]
    assert after != before
    assert datetime.fromisoformat(after.replace("Z", "+00:00")) >= rotated.replace(microsecond=rotated.microsecond // 1000 * 1000)


def test_bao_operator_rekey_flow(vnode, bao_bin, tmp_path):
    home = tmp_path / "bao"
    old = list(vnode.keys)
    # Without a token bao gets Vault's 403.
    p = bao(vnode, "operator", "rekey", "-init", "-key-shares=3", "-key-threshold=2", token="", home=home)
    assert p.returncode == 2 and "permission denied" in p.stderr, (p.returncode, p.stderr)

    out = _ok(bao(vnode, "operator", "rekey", "-init", "-key-shares=4", "-key-threshold=3", "-format=json", home=home), "rekey -init")
    init = json.loads(out.stdout)
    assert init["started"] is True and (init["n"], init["t"], init["required"]) == (4, 3, 2), init
    nonce = init["nonce"]
    status = json.loads(_ok(bao(vnode, "operator", "rekey", "-status", "-format=json", home=home), "rekey -status").stdout)
    assert status["nonce"] == nonce and status["progress"] == 0, status

    # A wrong nonce: bao reports the server's error, no progress.
    p = bao(vnode, "operator", "rekey", "-nonce=" + nonce[::-1], old[0], home=home)
    assert p.returncode == 2 and "nonce" in p.stderr, (p.returncode, p.stderr)
    p1 = _ok(bao(vnode, "operator", "rekey", "-nonce=" + nonce, old[0], home=home), "rekey share 1")
    assert "1/2" in p1.stdout, p1.stdout
    done = json.loads(_ok(bao(vnode, "operator", "rekey", "-nonce=" + nonce, "-format=json", old[2], home=home), "rekey share 2").stdout)
    assert done["complete"] is True and len(done["keys_base64"]) == 4 and len(done["keys"]) == 4, done
    new = done["keys_base64"]
    # the hex form of each share is the same share
    assert all(bytes.fromhex(h) == __import__("base64").b64decode(b) for h, b in zip(done["keys"], new))
    assert vnode.seal_status()["n"] == 4 and vnode.seal_status()["t"] == 3

    _ok(bao(vnode, "operator", "seal", home=home), "bao operator seal")
    # Old shares through bao: progress, then the failure at the threshold; still sealed.
    for k in old[:2]:
        _ok(bao(vnode, "operator", "unseal", k, home=home), "old share")
    p = bao(vnode, "operator", "unseal", old[2], home=home)
    assert p.returncode == 2 and "do not recover" in p.stderr, (p.returncode, p.stderr)
    assert vnode.seal_status()["sealed"] is True
    # New shares unseal (the hex form works too).
    _ok(bao(vnode, "operator", "unseal", new[3], home=home), "new share 1")
    _ok(bao(vnode, "operator", "unseal", done["keys"][1], home=home), "new share 2 (hex)")
    out = _ok(bao(vnode, "operator", "unseal", "-format=json", new[0], home=home), "new share 3")
    assert json.loads(out.stdout)["sealed"] is False

    # -cancel
    _ok(bao(vnode, "operator", "rekey", "-init", "-key-shares=3", "-key-threshold=2", home=home), "second rekey -init")
    assert "Success" in _ok(bao(vnode, "operator", "rekey", "-cancel", home=home), "rekey -cancel").stdout
    assert vnode.sys("GET", "rekey/init", token=vnode.vault_token).json()["started"] is False


def test_hvac_rekey_flow(vnode):
    client = _hvac(vnode)
    old = list(vnode.keys)
    start = client.sys.start_rekey(secret_shares=2, secret_threshold=2)
    assert start["started"] is True and start["required"] == 2, start
    assert client.sys.read_rekey_progress()["nonce"] == start["nonce"]
    result = client.sys.rekey_multi(old[1:], nonce=start["nonce"])
    assert result["complete"] is True and len(result["keys_base64"]) == 2, result
    client.sys.seal()
    assert client.sys.is_sealed()
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.submit_unseal_keys(old[:2])
    assert client.sys.submit_unseal_keys(result["keys_base64"])["sealed"] is False
    # cancel through hvac
    client.sys.start_rekey(secret_shares=3, secret_threshold=2)
    client.sys.cancel_rekey()
    assert client.sys.read_rekey_progress()["started"] is False


def test_bao_operator_rotate_keys(vnode, bao_bin, tmp_path):
    p = bao(vnode, "operator", "rotate-keys", "-init", "-key-shares=3", "-key-threshold=2", home=tmp_path / "bao")
    assert p.returncode == 0, f"bao operator rotate-keys -init: exit {p.returncode}: {p.stderr.strip()}"


def test_bao_raft_snapshot_save_downloads_a_restorable_file(vnode, bao_bin, cli_for, tmp_path):
    """bao streams the whole snapshot to the file (Tessera's format), whatever its exit code (next test)."""
    vnode.ok("create-secret", {"name": "/ops/bao-snap", "value": "in-the-snapshot"})
    snap = tmp_path / "bao.snap"
    p = bao(vnode, "operator", "raft", "snapshot", "save", str(snap), home=tmp_path / "bao")
    assert snap.exists() and snap.read_bytes()[:2] == b"\x1f\x8b", (p.returncode, p.stderr)
    cli = cli_for(vnode, "restore")
    cli.ok("operator", "restore", str(snap), "--data-dir", str(tmp_path / "restored"))
    assert sorted(files_in(tmp_path / "restored")) == ["audit.db", "tessera.db"]


def test_bao_raft_snapshot_save_succeeds(vnode, bao_bin, tmp_path):
    p = bao(vnode, "operator", "raft", "snapshot", "save", str(tmp_path / "bao.snap"), home=tmp_path / "bao")
    assert p.returncode == 0, f"bao operator raft snapshot save: exit {p.returncode}: {p.stderr.strip()}"
