"""Class 2: a limited identity must not escalate.

(a) `update` on a rotated secret does not let its holder point it at another account (the
    PostgreSQL superuser), change how it logs in or where it verifies, or set a custom SSH
    command (which runs as the target's privileged user). Changing what a rotated secret acts on
    needs the rights that creating it needs; custom commands need the sys-rule
    `/sys/rotators/custom-command`.
(b) `read` on a target shows its metadata only: using the target's stored credentials (a
    connector, a producer, a rotated secret) needs the capability `use` under target-rule.
(c) A delegated role manager (role-rule on /team/*) can grant only rules it holds itself
    (type, path and capabilities), audit access no higher than its own, and can associate only
    auth methods on which it holds `update` under auth-method-rule.
(d) System operations (seal, mounts, leases by prefix) need the rule type sys-rule: an item
    rule on `/*` with every capability grants none of them.

Every attack: a 403, the server alive, and the protected thing unchanged (the superuser's
password, the upstream secret, the seal state, the mount table, the roles).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import hvac
import pytest

import rotlib
from seclib import (
    NO_TOKEN, Node, assert_4xx, assert_alive, body_text, free_port, make_pg_role, pg_superuser_ok, pg_target, send, uid,
)


def vault_target(node: Node, openbao) -> str:
    """A hashi-vault target over the real OpenBao (root token), created by the admin."""
    def build():
        node.ok("target-create-hashi-vault", {"name": "esc-vault", "hashi-url": openbao.addr, "vault-token": openbao.root_token})
        return "esc-vault"
    return node.once("esc-vault", build)


def ssh_target(node: Node, sshd) -> str:
    def build():
        node.ok("target-create-ssh", {"name": "esc-ssh", "host": "127.0.0.1", "port": sshd["port"], "ssh-username": "root",
                                      "private-key": sshd["admin_key"]})
        return "esc-ssh"
    return node.once("esc-ssh", build)


ROTATOR_FIELDS = ("target_name", "rotated_username", "authentication_credentials", "verify_port", "rotator_custom_cmd",
                  "password_length")


def rotator_settings(node: Node, name: str) -> dict:
    got = node.ok("rotated-secret-get", {"name": name})
    return {k: got.get(k) for k in ROTATOR_FIELDS}


def bao(bao_bin: str, addr: str, token: str, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "VAULT_ADDR": addr, "BAO_ADDR": addr,
           "VAULT_TOKEN": token, "BAO_TOKEN": token}
    return subprocess.run([bao_bin, *args], env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


# ------------------------------------------------------------------------------------------
# (a) rotated secrets: update does not retarget
# ------------------------------------------------------------------------------------------

@pytest.fixture
def pg_rotated(node, postgres):
    """An admin-created PostgreSQL rotated secret over a throwaway role (first dry-run verified)."""
    t = pg_target(node, postgres, "esc-pg")
    role, pw = make_pg_role(postgres)
    name = f"/esc/rot/{uid()}"
    node.ok("rotated-secret-create-postgresql", {"name": name, "target-name": t, "rotated-username": role, "rotated-password": pw})
    return name


RETARGETS = {
    "account-to-superuser": lambda: {"rotated-username": "postgres"},
    "credential-mode": lambda: {"authentication-credentials": "use-user-creds", "rotated-password": "guess"},
    "verify-port": lambda: {"verify-port": free_port()},
    # weaker passwords for an account the identity cannot read: the same rights as creating it
    "password-rules": lambda: {"password-length": 8, "use-lower-letters": "false", "use-capital-letters": "false",
                               "use-special-characters": "false"},
}


@pytest.mark.parametrize("change", list(RETARGETS), ids=list(RETARGETS))
def test_update_only_identity_cannot_change_what_a_rotated_secret_acts_on(node, postgres, pg_rotated, superuser_guard, change):
    before = rotator_settings(node, pg_rotated)
    attacker = node.identity([(pg_rotated, ["update"])])
    r = send(lambda: attacker.native("rotated-secret-update-postgresql", {"name": pg_rotated, **RETARGETS[change]()}))
    assert_alive(node, f"rotated-secret-update ({change}) by an update-only identity")
    # then rotate (which `update` allows): with the change refused this rotates the app's own role
    send(lambda: attacker.native("rotate-secret", {"name": pg_rotated}))
    assert_alive(node, "rotate-secret by the update-only identity")
    assert pg_superuser_ok(postgres), "the PostgreSQL superuser's password was changed by the attack"
    assert rotator_settings(node, pg_rotated) == before, "the rotated secret now acts on something else"
    assert_4xx(r, "retargeting a rotated secret", allowed=[403])


def test_update_only_identity_can_still_rotate_its_rotated_secret(node, postgres, pg_rotated, superuser_guard):
    """The control for the test above: the identity is set up right and `update` does rotate."""
    attacker = node.identity([(pg_rotated, ["update"])])
    r = attacker.native("rotate-secret", {"name": pg_rotated})
    assert r.status_code == 200, body_text(r)
    assert pg_superuser_ok(postgres)


def test_update_only_identity_cannot_set_a_custom_ssh_rotation_command(node, sshd):
    target = ssh_target(node, sshd)
    pw = "Init-" + uid()
    user = rotlib.create_linux_user(pw)
    marker = Path(f"/tmp/tessera-sec-pwned-{uid()}")
    try:
        name = f"/esc/ssh/{uid()}"
        node.ok("rotated-secret-create-ssh", {"name": name, "target-name": target, "rotated-username": user,
                                              "rotated-password": pw})
        before = rotator_settings(node, name)
        attacker = node.identity([(name, ["update"])])
        r = send(lambda: attacker.native("rotated-secret-update-ssh", {"name": name, "rotator-custom-cmd": f"touch {marker}"}))
        assert_alive(node, "setting a custom command by an update-only identity")
        send(lambda: attacker.native("rotate-secret", {"name": name}))
        assert_alive(node, "rotate-secret after the custom-command attempt")
        assert not marker.exists(), "the attacker's command ran as root on the SSH target"
        assert rotator_settings(node, name) == before
        assert_4xx(r, "setting a custom rotation command", allowed=[403])
    finally:
        rotlib.delete_linux_user(user)
        marker.unlink(missing_ok=True)


def test_custom_rotation_commands_need_a_sys_rule_even_with_create_and_use(node, sshd):
    target = ssh_target(node, sshd)
    marker = Path(f"/tmp/tessera-sec-pwned-{uid()}")
    folder = f"/esc/ssh-{uid()}"
    attacker = node.identity([(f"{folder}/*", ["create", "read", "update", "list"]),
                              (f"/{target}", ["read", "use"], "target-rule")])
    r = send(lambda: attacker.native("rotated-secret-create-ssh", {
        "name": f"{folder}/x", "target-name": target, "rotated-username": "root", "rotated-password": "x",
        "rotator-custom-cmd": f"touch {marker}", "skip-dry-run": True}))
    assert_alive(node, "creating a rotated secret with a custom command")
    send(lambda: attacker.native("rotate-secret", {"name": f"{folder}/x"}))
    assert not marker.exists(), "the non-admin's custom command ran as root"
    marker.unlink(missing_ok=True)
    assert node.native("describe-item", {"name": f"{folder}/x"}).status_code == 404, "the rotated secret was created"
    assert_4xx(r, "a custom command from a non-admin", allowed=[403])


# ------------------------------------------------------------------------------------------
# (b) read on a target is not use
# ------------------------------------------------------------------------------------------

@pytest.fixture
def target_reader(node, postgres, openbao):
    """Items of its own folder (all capabilities) and `read`+`list` on both targets."""
    pg = pg_target(node, postgres, "esc-pg")
    hv = vault_target(node, openbao)
    folder = f"/esc/b-{uid()}"
    usc = uid("escusc-")
    ident = node.identity([(f"{folder}/*", ["create", "read", "update", "delete", "list"]),
                           (f"/{usc}", ["create", "read", "update", "delete", "list"]),
                           (f"/{pg}", ["read", "list"], "target-rule"),
                           (f"/{hv}", ["read", "list"], "target-rule")])
    return {"ident": ident, "folder": folder, "usc": usc, "pg": pg, "vault": hv}


def test_target_read_is_not_enough_to_create_a_connector_over_it(node, openbao, target_reader):
    t = target_reader
    r = send(lambda: t["ident"].native("create-usc", {"name": t["usc"], "target-to-associate": t["vault"]}))
    assert_alive(node, "create-usc by a target reader")
    assert node.native("usc-list", {"usc-name": t["usc"]}).status_code == 404, "the connector was created"
    got = openbao.bao("kv", "get", "-format=json", "secret/myapp/db-password")
    assert got.rc == 0 and openbao.db_password in got.stdout, "the upstream secret changed"
    assert_4xx(r, "create-usc with only read on the target", allowed=[403])


def test_target_read_is_not_enough_to_create_a_producer_over_it(node, postgres, target_reader, superuser_guard):
    t = target_reader
    name = f"{t['folder']}/prod"
    r = send(lambda: t["ident"].native("dynamic-secret-create-postgresql", {
        "name": name, "target-name": t["pg"], "creation-statements": "ALTER ROLE postgres PASSWORD 'owned';"}))
    assert_alive(node, "producer creation by a target reader")
    if r.status_code == 200:  # show what it would have meant
        send(lambda: t["ident"].native("get-dynamic-secret-value", {"name": name}))
    assert pg_superuser_ok(postgres), "the superuser's password was changed through the target's credentials"
    assert node.native("dynamic-secret-get", {"name": name}).status_code == 404, "the producer was created"
    assert_4xx(r, "a producer with only read on the target", allowed=[403])


def test_target_read_is_not_enough_to_create_a_rotated_secret_over_it(node, postgres, target_reader, superuser_guard):
    t = target_reader
    name = f"{t['folder']}/rot"
    r = send(lambda: t["ident"].native("rotated-secret-create-postgresql", {
        "name": name, "target-name": t["pg"], "rotated-username": "postgres", "skip-dry-run": True}))
    assert_alive(node, "rotated secret creation by a target reader")
    if r.status_code == 200:
        send(lambda: t["ident"].native("rotate-secret", {"name": name}))
    assert pg_superuser_ok(postgres), "the superuser's password was rotated by a target reader"
    assert node.native("describe-item", {"name": name}).status_code == 404, "the rotated secret was created"
    assert_4xx(r, "a rotated secret with only read on the target", allowed=[403])


def test_target_use_lets_an_identity_create_a_producer_and_the_admin_has_use(node, postgres):
    """The control: with `use` on the target the same request works, and the admin holds `use`."""
    pg = pg_target(node, postgres, "esc-pg")
    folder = f"/esc/u-{uid()}"
    user = node.identity([(f"{folder}/*", ["create", "read", "list"]), (f"/{pg}", ["read", "use"], "target-rule")])
    r = user.native("dynamic-secret-create-postgresql", {"name": f"{folder}/p", "target-name": pg})
    assert r.status_code == 200, body_text(r)
    r = node.native("dynamic-secret-create-postgresql", {"name": f"{folder}/admin", "target-name": pg})
    assert r.status_code == 200, body_text(r)


# ------------------------------------------------------------------------------------------
# (c) delegated role management cannot grant more than the granter holds
# ------------------------------------------------------------------------------------------

@pytest.fixture
def manager(node):
    """A role manager for /team/*: role-rule create/read/update/list on /team/*, item read+list
    on /team/*, read+update on its own auth method, read only on a peer's auth method."""
    me = "/team/mgr-" + uid()
    peer = "/peer-" + uid()
    node.ok("create-auth-method", {"name": peer})
    ident = node.identity([("/team/*", ["create", "read", "update", "list"], "role-rule"),
                           ("/team/*", ["read", "list"]),
                           (me, ["read", "update"], "auth-method-rule"),
                           (peer, ["read"], "auth-method-rule")],
                          name=me, role="mgr-" + uid())
    secret = f"/prod/{uid()}"
    node.ok("create-secret", {"name": secret, "value": "top-secret-" + uid()})
    return {"ident": ident, "me": me, "peer": peer, "secret": secret}


def grants_of(node: Node, role: str) -> list[tuple]:
    r = node.native("get-role", {"name": role})
    if r.status_code == 404:
        return []
    assert r.status_code == 200, body_text(r)
    out = [(x["path"], tuple(sorted(x["capabilities"])), x["type"]) for x in r.json()["rules"]["path_rules"]]
    return out + [("audit", r.json()["audit_access"], "")]


def test_role_manager_cannot_grant_read_on_everything_to_a_role_it_creates(node, manager):
    m, role = manager["ident"], f"team/evil-{uid()}"
    send(lambda: m.native("create-role", {"name": role}))
    r = send(lambda: m.native("set-role-rule", {"role-name": role, "path": "/*", "capability": ["read", "list"]}))
    assert_alive(node, "granting /* read")
    send(lambda: m.native("assoc-role-am", {"role-name": role, "am-name": manager["me"]}))
    read = node.native("get-secret-value", {"names": [manager["secret"]]}, token=m.login())  # a fresh token
    assert read.status_code == 403, f"the manager can now read everything: {body_text(read)}"
    assert not any(g[0] == "/*" for g in grants_of(node, role)), grants_of(node, role)
    assert_4xx(r, "set-role-rule /* read by a /team/* manager", allowed=[403])


def test_role_manager_cannot_create_a_role_with_audit_access_all(node, manager):
    m, role = manager["ident"], f"team/aud-{uid()}"
    r = send(lambda: m.native("create-role", {"name": role, "audit-access": "all"}))
    assert_alive(node, "create-role with audit-access all")
    send(lambda: m.native("assoc-role-am", {"role-name": role, "am-name": manager["me"]}))
    token = m.login()
    events = node.native("audit-query", {"access-id": node.admin_id, "limit": 5}, token=token)
    assert events.status_code == 403 or not events.json().get("events"), "the manager reads the admin's audit events"
    assert ("audit", "all", "") not in grants_of(node, role)
    assert_4xx(r, "create-role with audit-access all", allowed=[403])


def test_role_manager_cannot_grant_capabilities_it_lacks_on_its_own_paths(node, manager):
    m, role = manager["ident"], f"team/caps-{uid()}"
    m.native("create-role", {"name": role})
    r = send(lambda: m.native("set-role-rule", {"role-name": role, "path": "/team/*", "capability": ["read", "delete"]}))
    assert_alive(node, "granting delete on /team/*")
    assert not any("delete" in g[1] for g in grants_of(node, role)), grants_of(node, role)
    assert_4xx(r, "granting a capability the manager lacks", allowed=[403])


@pytest.mark.parametrize("rule_type", ["role-rule", "auth-method-rule", "target-rule", "sys-rule"])
def test_role_manager_cannot_grant_other_rule_types_on_everything(node, manager, rule_type):
    m, role = manager["ident"], f"team/rt-{uid()}"
    m.native("create-role", {"name": role})
    r = send(lambda: m.native("set-role-rule", {"role-name": role, "path": "/*", "capability": ["create", "read", "update"],
                                                "rule-type": rule_type}))
    assert_alive(node, f"granting {rule_type} /*")
    assert not any(g[0] == "/*" for g in grants_of(node, role)), grants_of(node, role)
    assert_4xx(r, f"granting {rule_type} on /*", allowed=[403])


def test_role_manager_cannot_associate_an_auth_method_it_only_reads(node, manager):
    m, role = manager["ident"], f"team/peer-{uid()}"
    m.native("create-role", {"name": role})
    m.native("set-role-rule", {"role-name": role, "path": "/team/docs/*", "capability": ["read"]})
    r = send(lambda: m.native("assoc-role-am", {"role-name": role, "am-name": manager["peer"]}))
    assert_alive(node, "associating a peer's auth method")
    assoc = node.ok("get-auth-method", {"name": manager["peer"]})["auth_method_roles_assoc"]
    assert not any(a["role_name"] == role for a in assoc), assoc
    assert_4xx(r, "associating an auth method without update on it", allowed=[403])


def test_role_manager_can_grant_a_subset_of_what_it_holds_to_itself(node, manager):
    """The control: what the manager holds, it may grant and associate with its own method."""
    m, role = manager["ident"], f"team/ok-{uid()}"
    for verb, body in (("create-role", {"name": role}),
                       ("set-role-rule", {"role-name": role, "path": "/team/docs/*", "capability": ["read"]}),
                       ("assoc-role-am", {"role-name": role, "am-name": manager["me"]})):
        r = m.native(verb, body)
        assert r.status_code == 200, f"{verb}: {body_text(r)}"


# ------------------------------------------------------------------------------------------
# (d) system operations need sys-rule; item rules never grant them
# ------------------------------------------------------------------------------------------

@pytest.fixture
def item_god(node):
    """Every item capability on every path, and nothing else."""
    return node.identity([("/*", ["read", "create", "update", "delete", "list"])])


def test_item_rule_on_everything_cannot_seal_the_server(node, item_god, bao_bin, tmp_path):
    p = bao(bao_bin, node.url, item_god.vault_token, tmp_path, "operator", "seal")
    assert node.seal_status()["sealed"] is False, f"`bao operator seal` sealed the server: {p.stdout} {p.stderr}"
    r = send(lambda: item_god.vault("PUT", "sys/seal"))
    assert_alive(node, "PUT sys/seal by an item-rule identity")
    assert node.seal_status()["sealed"] is False
    assert p.returncode != 0, f"bao operator seal succeeded: {p.stdout}"
    assert_4xx(r, "PUT sys/seal", allowed=[403])


def test_item_rule_on_everything_cannot_enable_a_mount(node, item_god):
    before = node.mount_table()
    path = uid("escm")
    client = hvac.Client(url=node.url, token=item_god.vault_token, timeout=20)
    with pytest.raises(hvac.exceptions.VaultError):
        client.sys.enable_secrets_engine("kv", path=path, options={"version": "2"})
    r = send(lambda: item_god.vault("POST", f"sys/mounts/{path}-raw", {"type": "kv"}))
    assert_alive(node, "POST sys/mounts by an item-rule identity")
    assert node.mount_table() == before
    assert_4xx(r, "enabling a mount", allowed=[403])


def test_item_rule_on_everything_cannot_disable_the_secret_mount(node, item_god):
    before = node.mount_table()
    assert "secret/" in before
    r = send(lambda: item_god.vault("DELETE", "sys/mounts/secret"))
    assert_alive(node, "DELETE sys/mounts/secret by an item-rule identity")
    after = node.mount_table()
    if "secret/" not in after:  # put it back for the other tests
        node.ok("vault-mount-create", {"path": "secret/", "type": "kv-v2", "folder": "/secret"})
    assert after == before, "the mount table changed"
    assert_4xx(r, "disabling a mount", allowed=[403])


def test_item_rule_on_everything_cannot_manage_mounts_natively(node, item_god):
    before = node.mount_table()
    created = send(lambda: item_god.native("vault-mount-create", {"path": uid("escn") + "/", "type": "kv-v2"}))
    deleted = send(lambda: item_god.native("vault-mount-delete", {"path": "secret/"}))
    assert_alive(node, "vault-mount-create/delete by an item-rule identity")
    after = node.mount_table()
    if "secret/" not in after:
        node.ok("vault-mount-create", {"path": "secret/", "type": "kv-v2", "folder": "/secret"})
    assert after == before, "the mount table changed"
    assert_4xx(created, "native vault-mount-create", allowed=[403])
    assert_4xx(deleted, "native vault-mount-delete", allowed=[403])


def test_item_rule_on_everything_cannot_revoke_leases_by_prefix(node, item_god):
    r = send(lambda: item_god.vault("PUT", "sys/leases/revoke-prefix/esc", {}))
    assert_alive(node, "revoke-prefix by an item-rule identity")
    assert_4xx(r, "revoke-prefix", allowed=[403])


def test_the_admin_has_sys_rule_for_mounts_and_an_unauthenticated_seal_is_refused(node):
    """The control: the admin (sys-rule /* at init) manages mounts; no token cannot seal."""
    path = uid("adm")
    r = node.vault("POST", f"sys/mounts/{path}", {"type": "kv", "options": {"version": "2"}})
    assert r.status_code == 204, body_text(r)
    assert f"{path}/" in node.mount_table()
    r = node.vault("DELETE", f"sys/mounts/{path}")
    assert r.status_code == 204, body_text(r)
    r = send(lambda: node.vault("PUT", "sys/seal", token=NO_TOKEN))
    assert_alive(node, "an unauthenticated seal")
    assert_4xx(r, "an unauthenticated seal", allowed=[403])
