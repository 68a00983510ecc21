"""Attacks found by reviewing the fixes as an attacker would, each proven closed.

(a) A connector secret id that names one secret for the authorizer and another upstream:
    percent-encoded letters, `?` and `#`, and characters that join the `/` before them into one
    grapheme (U+1F3FB, U+FF9E). The id is cut by bytes and percent-encoded on the way upstream.
(b) A delegated role manager removing a deny rule (on a role it is in, or by deleting a
    deny-only role, or by replacing the deny through set-role-rule) needs the rights of granting
    everything the deny takes away.
(c) The upstream mount's `config` through a connector-backed Vault mount reaches past the
    connector's prefix: changing it is a system operation.
(d) `update` on a rotated secret does not change its password rules.
"""
from __future__ import annotations

import hvac
import pytest

from seclib import Node, assert_4xx, assert_alive, body_text, send, uid


def upstream(openbao) -> hvac.Client:
    return hvac.Client(url=openbao.addr, token=openbao.root_token)


@pytest.fixture
def connector(node: Node, openbao):
    """A connector `rev-usc` (prefix app/) over the real OpenBao, a Vault mount rev/ over it, and
    an identity with read/update/list on the connector but deny on its secret `admin`."""
    def build():
        node.ok("target-create-hashi-vault", {"name": "rev-vault", "hashi-url": openbao.addr, "vault-token": openbao.root_token})
        node.ok("create-usc", {"name": "rev-usc", "target-to-associate": "rev-vault", "usc-prefix": "app/"})
        node.ok("vault-mount-create", {"path": "rev/", "type": "kv-v2", "usc-name": "rev-usc"})
        return node.identity([("/rev-usc/*", ["read", "update", "list"]), ("/rev-usc/admin", ["deny"]),
                              ("/rev-usc*", ["read", "update"])])
    ident = node.once("rev-usc", build)
    upstream(openbao).secrets.kv.v2.create_or_update_secret(path="app/admin", secret={"pw": "ADMIN-SECRET"}, mount_point="secret")
    return ident


LOOK_ALIKES = ["%61dmin", "admin?", "admin#", "admin?x=1", "\U0001F3FBadmin", "\uFF9Eadmin", "./admin", "app/../admin"]


@pytest.mark.parametrize("secret_id", LOOK_ALIKES, ids=[repr(s) for s in LOOK_ALIKES])
def test_a_connector_secret_id_reaches_upstream_only_as_the_name_that_was_authorized(node, openbao, connector, secret_id):
    r = send(lambda: connector.native("usc-get", {"usc-name": "rev-usc", "secret-id": secret_id}))
    assert_alive(node, f"usc-get {secret_id!r}")
    assert "ADMIN-SECRET" not in body_text(r), f"usc-get {secret_id!r} read the denied upstream secret"
    assert_4xx(r, f"usc-get {secret_id!r}")
    w = send(lambda: connector.native("usc-update", {"usc-name": "rev-usc", "secret-id": secret_id, "value": '{"pw":"OWNED"}'}))
    assert_alive(node, f"usc-update {secret_id!r}")
    data = upstream(openbao).secrets.kv.v2.read_secret_version(path="app/admin", mount_point="secret",
                                                               raise_on_deleted_version=False)["data"]["data"]
    assert data == {"pw": "ADMIN-SECRET"}, f"usc-update {secret_id!r} changed the denied upstream secret: {body_text(w)}"


def test_the_denied_connector_secret_is_denied_by_name(node, connector):
    r = connector.native("usc-get", {"usc-name": "rev-usc", "secret-id": "admin"})
    assert r.status_code == 403, body_text(r)


@pytest.fixture
def denied_manager(node: Node):
    """A role manager for /team/* (item read on /prod/*) that is itself in a role with a deny on
    /prod/payroll/*, and a deny-only role /team/guard-… it is also in."""
    me = "/team/rm-" + uid()
    ident = node.identity([("/team/*", ["create", "read", "update", "delete", "list"], "role-rule"),
                           ("/prod/*", ["read", "list"]), (me, ["read", "update"], "auth-method-rule")], name=me)
    dev = "team/dev-" + uid()
    node.ok("create-role", {"name": dev})
    node.ok("set-role-rule", {"role-name": dev, "path": "/prod/payroll/*", "capability": ["deny"]})
    node.ok("assoc-role-am", {"role-name": dev, "am-name": me})
    guard = "team/guard-" + uid()
    node.ok("create-role", {"name": guard})
    node.ok("set-role-rule", {"role-name": guard, "path": "/prod/hr/*", "capability": ["deny"]})
    node.ok("assoc-role-am", {"role-name": guard, "am-name": me})
    for path in ("/prod/payroll/db", "/prod/hr/salaries"):
        if node.native("get-secret-value", {"names": [path]}).status_code == 404:
            node.ok("create-secret", {"name": path, "value": "TOP-" + uid()})
    return {"ident": ident, "dev": dev, "guard": guard}


def reads(node: Node, ident, path: str) -> int:
    return node.native("get-secret-value", {"names": [path]}, token=ident.login()).status_code


def test_a_role_manager_cannot_delete_a_deny_rule_that_binds_it(node, denied_manager):
    m = denied_manager["ident"]
    assert reads(node, m, "/prod/payroll/db") == 403
    r = send(lambda: m.native("delete-role-rule", {"role-name": denied_manager["dev"], "path": "/prod/payroll/*"}))
    assert_alive(node, "delete-role-rule of a deny")
    assert reads(node, m, "/prod/payroll/db") == 403, "removing the deny gave the manager the payroll secret"
    assert_4xx(r, "delete-role-rule of a deny", allowed=[403])


def test_a_role_manager_cannot_replace_a_deny_rule_that_binds_it(node, denied_manager):
    m = denied_manager["ident"]
    r = send(lambda: m.native("set-role-rule", {"role-name": denied_manager["dev"], "path": "/prod/payroll/*",
                                                "capability": ["list"]}))
    assert_alive(node, "set-role-rule over a deny")
    assert reads(node, m, "/prod/payroll/db") == 403, "replacing the deny gave the manager the payroll secret"
    assert_4xx(r, "set-role-rule over a deny", allowed=[403])


def test_a_role_manager_cannot_delete_a_deny_only_role_that_binds_it(node, denied_manager):
    m = denied_manager["ident"]
    assert reads(node, m, "/prod/hr/salaries") == 403
    r = send(lambda: m.native("delete-role", {"name": denied_manager["guard"]}))
    assert_alive(node, "delete-role of a deny-only role")
    assert reads(node, m, "/prod/hr/salaries") == 403, "deleting the guard role gave the manager the HR secret"
    assert_4xx(r, "delete-role of a deny-only role", allowed=[403])


def test_the_admin_can_still_remove_deny_rules(node):
    role = "rm-" + uid()
    node.ok("create-role", {"name": role})
    node.ok("set-role-rule", {"role-name": role, "path": "/x/*", "capability": ["deny"]})
    node.ok("delete-role-rule", {"role-name": role, "path": "/x/*"})
    node.ok("delete-role", {"name": role})


def test_item_rights_on_a_connector_do_not_change_the_upstream_mount_config(node, openbao, connector):
    before = upstream(openbao).secrets.kv.v2.read_configuration(mount_point="secret")["data"]
    r = send(lambda: connector.vault("POST", "rev/config", {"max_versions": 1, "delete_version_after": "1s"}))
    assert_alive(node, "POST rev/config")
    after = upstream(openbao).secrets.kv.v2.read_configuration(mount_point="secret")["data"]
    assert after == before, f"the upstream mount's config changed: {before} -> {after}"
    assert_4xx(r, "POST rev/config with item update", allowed=[403])
