"""The walkthrough through the `tessera` CLI only."""

from __future__ import annotations

import json
import stat
import subprocess

import pytest

from e2e_support import DEV_ADMIN_ID, unique


def _one_error_line(p):
    assert p.returncode != 0, f"expected failure, got 0: {p.stdout!r}"
    # A secret given as a plain argument adds its process-list warning; the error is one line.
    lines = [l for l in p.stderr.splitlines() if not l.startswith("warning: ")]
    assert len(lines) == 1, f"expected exactly one stderr line, got {p.stderr!r}"
    assert lines[0].startswith("Error:"), lines
    return lines[0]


def test_cli_walkthrough(cli, dev_server, dev_admin_key):
    # --- admin login: the token lands in a 0600 profile ------------------------------------
    p = cli.ok("auth", "--access-id", DEV_ADMIN_ID, "--access-key", dev_admin_key)
    prof = cli.profile_path()
    assert prof.is_file(), list(cli.config_home.rglob("*"))
    assert stat.S_IMODE(prof.stat().st_mode) == 0o600
    assert not stat.S_IMODE(prof.parent.stat().st_mode) & 0o077, oct(prof.parent.stat().st_mode)
    saved = json.loads(prof.read_text())
    assert saved["token"].startswith("t-")
    assert dev_admin_key not in prof.read_text()
    assert saved["token"] not in p.stdout  # the token is not echoed

    # --- secrets ------------------------------------------------------------------------------
    pw1, pw2, devx = unique("pw1"), unique("pw2"), "dev value with spaces " + unique()
    cli.ok("create-secret", "--name", "/prod/db/password", "--value", pw1)
    cli.ok("create-secret", "--name", "/dev/x", "--value", devx)
    p = cli.ok("get-secret-value", "--name", "/prod/db/password")
    assert p.stdout == pw1 + "\n", repr(p.stdout)
    assert p.stderr == ""
    cli.ok("update-secret-val", "--name", "/prod/db/password", "--value", pw2)
    assert cli.ok("get-secret-value", "--name", "/prod/db/password").stdout == pw2 + "\n"
    assert cli.ok("get-secret-value", "--name", "/prod/db/password", "--version", "1").stdout == pw1 + "\n"
    both = cli.json("get-secret-value", "--name", "/prod/db/password", "--name", "/dev/x")
    assert both == {"/prod/db/password": pw2, "/dev/x": devx}

    listing = cli.json("list-items", "--path", "/")
    assert {"/prod/db/password", "/dev/x"} <= {i["item_name"] for i in listing["items"]}
    p = cli.ok("list-items", "--path", "/")
    assert "/prod/db/password" in p.stdout
    desc = cli.json("describe-item", "--name", "/prod/db/password")
    assert desc["item_name"] == "/prod/db/password" and desc["last_version"] == 2
    p = cli.ok("describe-item", "--name", "/prod/db/password")
    assert pw1 not in p.stdout and pw2 not in p.stdout and pw1 not in json.dumps(desc)

    # --- a colleague: read+list on /dev/* -------------------------------------------------
    am = cli.json("create-auth-method", "--name", "/colleague")
    assert am["access_id"].startswith("p-") and am["access_key"]
    cli.ok("create-role", "--name", "dev-readers")
    cli.ok("set-role-rule", "--role-name", "dev-readers", "--path", "/dev/*",
           "--capability", "read", "--capability", "list")
    cli.ok("assoc-role-am", "--role-name", "dev-readers", "--am-name", "/colleague")
    role = cli.json("get-role", "--name", "dev-readers")
    assert role["rules"]["path_rules"][0]["path"] == "/dev/*"

    # the colleague logs in under a second profile, with the key on stdin (not in argv)
    cli.ok("auth", "--profile", "colleague", "--access-id", am["access_id"],
           input=am["access_key"] + "\n")
    assert stat.S_IMODE(cli.profile_path("colleague").stat().st_mode) == 0o600
    p = cli.ok("get-secret-value", "--profile", "colleague", "--name", "/dev/x")
    assert p.stdout == devx + "\n"

    p = cli.run("get-secret-value", "--profile", "colleague", "--name", "/prod/db/password")
    line = _one_error_line(p)
    assert "/prod/db/password" in line and "read" in line, line
    assert p.stdout == ""
    assert pw1 not in p.stderr and pw2 not in p.stderr

    p = cli.run("create-secret", "--profile", "colleague", "--name", "/dev/new", "--value", "x")
    _one_error_line(p)

    # a failed login shows up too
    p = cli.run("auth", "--profile", "nope", "--access-id", am["access_id"],
                "--access-key", "wrong-key")
    _one_error_line(p)
    assert not cli.profile_path("nope").exists()

    # --- the admin reads the audit trail -----------------------------------------------------
    out = cli.json("audit", "--result", "denied")
    evs = [e for e in out["events"] if e["access_id"] == am["access_id"]
           and e["path"] == "/prod/db/password" and e["action"] == "get_secret_value"]
    assert evs, out
    assert evs[-1]["result"] == "denied" and evs[-1]["status"] == 403

    out = cli.json("audit", "query", "--path", "/prod/db/*", "--actor", am["access_id"],
                   "--result", "denied", "--since", "90d")
    assert out["events"] and all(e["access_id"] == am["access_id"] for e in out["events"])
    assert all(e["path"].startswith("/prod/db/") for e in out["events"])

    logins = cli.json("audit", "--action", "auth", "--result", "denied")["events"]
    assert any(e["access_id"] == am["access_id"] for e in logins), logins

    p = cli.ok("audit", "--result", "denied", "--actor", am["access_id"])
    assert "/prod/db/password" in p.stdout

    # future window -> nothing
    assert cli.json("audit", "--result", "denied", "--since", "2999-01-01T00:00:00Z")["events"] == []

    v = cli.ok("audit", "verify")
    assert v.stdout.strip()
    assert cli.json("audit", "verify")["ok"] is True

    # the colleague cannot read the audit trail
    _one_error_line(cli.run("audit", "--profile", "colleague", "--result", "denied"))

    # --- logout ------------------------------------------------------------------------------
    assert cli.json("validate-token", "--profile", "colleague")["is_valid"] is True
    cli.ok("revoke-token", "--profile", "colleague")
    p = cli.run("validate-token", "--profile", "colleague", "--json")
    assert p.returncode != 0 or json.loads(p.stdout)["is_valid"] is False
    _one_error_line(cli.run("get-secret-value", "--profile", "colleague", "--name", "/dev/x"))


def test_cli_json_outputs_parse(cli, dev_server, dev_admin_key):
    auth = cli.json("auth", "--access-id", DEV_ADMIN_ID, "--access-key", dev_admin_key)
    assert auth["token"].startswith("t-")
    assert cli.json("create-secret", "--name", "/j/a", "--value", "1")["name"] == "/j/a"
    cli.json("update-secret-val", "--name", "/j/a", "--value", "2")
    assert cli.json("get-secret-value", "--name", "/j/a") == {"/j/a": "2"}
    cli.json("list-items", "--path", "/j")
    cli.json("describe-item", "--name", "/j/a")
    cli.json("create-role", "--name", "jr", "--audit-access", "own")
    cli.json("set-role-rule", "--role-name", "jr", "--path", "/j/*", "--capability", "read")
    assert "jr" in {r["role_name"] for r in cli.json("list-roles")["roles"]}
    am = cli.json("create-auth-method", "--name", "/jam", "--jwt-ttl", "5")
    cli.json("assoc-role-am", "--role-name", "jr", "--am-name", "/jam")
    assert "/jam" in {a["auth_method_name"] for a in cli.json("list-auth-methods")["auth_methods"]}
    got = cli.json("get-auth-method", "--name", "/jam")
    assert got["auth_method_access_id"] == am["access_id"]
    assert isinstance(cli.json("validate-token")["is_valid"], bool)
    assert isinstance(cli.json("operator", "status")["sealed"], bool)
    cli.json("audit", "--limit", "5")
    cli.json("audit", "verify")
    cli.json("delete-role-rule", "--role-name", "jr", "--path", "/j/*")
    cli.json("delete-item", "--name", "/j/a", "--version", "1")
    cli.json("delete-item", "--name", "/j/a")
    cli.json("delete-role", "--name", "jr")
    cli.json("delete-auth-method", "--name", "/jam")
    p = cli.run("get-secret-value", "--name", "/j/a", "--json")
    _one_error_line(p)


def test_cli_tessera_addr_env(cli_factory, dev_server, dev_admin_key):
    # a config home with no profile at all: the address comes only from TESSERA_ADDR
    c = cli_factory(None)
    env = {"TESSERA_ADDR": dev_server.url}
    c.ok("auth", "--access-id", DEV_ADMIN_ID, "--access-key", dev_admin_key, env=env)
    saved = json.loads(c.profile_path().read_text())
    c.ok("create-secret", "--name", "/env/a", "--value", "via-env", env=env)
    assert c.ok("get-secret-value", "--name", "/env/a", env=env).stdout == "via-env\n"

    # TESSERA_TOKEN + TESSERA_ADDR in a fresh home without any profile
    c2 = cli_factory(None)
    env2 = {"TESSERA_ADDR": dev_server.url, "TESSERA_TOKEN": saved["token"]}
    assert c2.ok("get-secret-value", "--name", "/env/a", env=env2).stdout == "via-env\n"
    assert not c2.profile_path().exists()
    # --token overrides, --address overrides TESSERA_ADDR
    bad_env = {"TESSERA_ADDR": "http://127.0.0.1:1", "TESSERA_TOKEN": "t-bogus"}
    assert c2.ok("get-secret-value", "--name", "/env/a", "--token", saved["token"],
                 "--address", dev_server.url, env=bad_env).stdout == "via-env\n"
    # access key from TESSERA_ACCESS_KEY
    c3 = cli_factory(None)
    c3.ok("auth", "--access-id", DEV_ADMIN_ID,
          env={"TESSERA_ADDR": dev_server.url, "TESSERA_ACCESS_KEY": dev_admin_key})
    assert c3.profile_path().exists()


def test_cli_profile_falls_back_to_home_config(cli_factory, dev_server, dev_admin_key, tmp_path):
    c = cli_factory(dev_server.url)
    env = c.env()
    env.pop("XDG_CONFIG_HOME")
    p = subprocess.run([c.binary, "auth", "--address", dev_server.url, "--access-id", DEV_ADMIN_ID,
                        "--access-key", dev_admin_key], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    prof = c.home / ".config" / "tessera" / "profiles" / "default.json"
    assert prof.is_file()
    assert stat.S_IMODE(prof.stat().st_mode) == 0o600


def test_cli_errors_are_one_line(cli_factory, dev_server, dev_admin_key, tmp_path):
    c = cli_factory(dev_server.url)
    # not logged in
    _one_error_line(c.run("get-secret-value", "--name", "/x"))
    # wrong key
    _one_error_line(c.run("auth", "--access-id", DEV_ADMIN_ID, "--access-key", "nope"))
    c.ok("auth", "--access-id", DEV_ADMIN_ID, "--access-key", dev_admin_key)
    # missing item, bad path, duplicate
    _one_error_line(c.run("get-secret-value", "--name", "/missing"))
    _one_error_line(c.run("create-secret", "--name", "/a/../b", "--value", "x"))
    c.ok("create-secret", "--name", "/dup", "--value", "x")
    _one_error_line(c.run("create-secret", "--name", "/dup", "--value", "x"))
    _one_error_line(c.run("set-role-rule", "--role-name", "no-such-role", "--path", "/x/*",
                          "--capability", "read"))


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_unreachable_server_fails_fast(cli_factory):
    args = ("get-secret-value", "--name", "/x", "--token", "t-abc")
    c = cli_factory(None)
    dead = f"http://127.0.0.1:{_free_port()}"
    try:
        p = c.run(*args, "--address", dead, timeout=6)
    except subprocess.TimeoutExpired:
        pytest.fail(f"tessera {' '.join(args)} against a closed port still running after 6 s")
    line = _one_error_line(p)
    assert dead in line or "reach" in line, line
