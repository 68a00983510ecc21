"""Class 3: credential checks hold on every path.

* Bound CIDRs apply to every credential form on every request, including the Vault token
  `<access-id>..<access-key>` (not only to the native login).
* A token dies with its auth method: when the method is deleted, and when its
  `access-expires` passes; renewing (Vault `auth/token/renew-self`) never takes it past that.
* Failed logins are throttled per access id (default 10 per minute, config key
  `login_failures_per_access_id`) with a clear 429, on the native login, the AppRole login and
  the `<access-id>..<access-key>` Vault token alike; a throttled id is refused even with the
  right key; and the 429s are in the audit trail (`tessera audit --json`).
"""
from __future__ import annotations

import time

import hvac
import pytest
import requests

from seclib import NO_TOKEN, Node, assert_4xx, assert_alive, body_text, send, uid

# The documented default: at most this many failed logins per access id per window (a minute).
DEFAULT_LOGIN_FAILURES_PER_ACCESS_ID = 10
# A throttling node of this module is started with `login_failures_per_access_id` set to this.
CONFIGURED_LOGIN_FAILURES_PER_ACCESS_ID = 3


def reader(node: Node, **method_fields):
    """An identity with read+list on /secret/* and one admin-written secret it may read."""
    path = uid("cred")
    r = node.vault("POST", f"secret/data/{path}", {"data": {"v": "ok"}})
    assert r.status_code == 200, body_text(r)
    ident = node.identity([("/secret/*", ["read", "list"])], **method_fields)
    return ident, path


# ------------------------------------------------------------------------------------------
# bound CIDRs
# ------------------------------------------------------------------------------------------

def test_bound_cidr_is_enforced_on_the_vault_access_key_token(node):
    ident, path = reader(node, bound_ips=["10.0.0.0/8"])
    r = send(lambda: node.vault("GET", f"secret/data/{path}", token=ident.vault_token))
    assert_alive(node, "a Vault read with <id>..<key> from outside the bound CIDR")
    with pytest.raises(hvac.exceptions.VaultError):
        hvac.Client(url=node.url, token=ident.vault_token, timeout=20).secrets.kv.v2.read_secret_version(
            path, mount_point="secret", raise_on_deleted_version=True)
    assert_4xx(r, "KV read from 127.0.0.1 with a method bound to 10.0.0.0/8", allowed=[403])


def test_bound_cidr_is_enforced_on_the_native_login(node):
    ident, _ = reader(node, bound_ips=["10.0.0.0/8"])
    r = send(lambda: node.native("auth", {"access-id": ident.access_id, "access-key": ident.access_key}, token=NO_TOKEN))
    assert_alive(node, "a native login from outside the bound CIDR")
    assert_4xx(r, "native login from outside the bound CIDR", allowed=[401, 403])


def test_a_method_bound_to_loopback_reads_with_both_credential_forms(node):
    """The control: the same identity bound to 127.0.0.0/8 reads."""
    ident, path = reader(node, bound_ips=["127.0.0.0/8"])
    r = node.vault("GET", f"secret/data/{path}", token=ident.vault_token)
    assert r.status_code == 200, body_text(r)
    r = node.vault("GET", f"secret/data/{path}", token=ident.token)
    assert r.status_code == 200, body_text(r)


# ------------------------------------------------------------------------------------------
# tokens die with their auth method
# ------------------------------------------------------------------------------------------

def test_tokens_stop_working_when_their_auth_method_is_deleted(node):
    ident, path = reader(node)
    native_token = ident.token
    approle = hvac.Client(url=node.url, timeout=20)
    vault_token = approle.auth.approle.login(role_id=ident.access_id, secret_id=ident.access_key)["auth"]["client_token"]
    for tok in (native_token, vault_token, ident.vault_token):  # all work before
        assert node.vault("GET", f"secret/data/{path}", token=tok).status_code == 200
    node.ok("delete-auth-method", {"name": ident.name})
    for label, tok in (("native token", native_token), ("approle token", vault_token), ("<id>..<key>", ident.vault_token)):
        r = send(lambda: node.vault("GET", f"secret/data/{path}", token=tok))
        assert_alive(node, f"a read with the {label} of a deleted auth method")
        assert_4xx(r, f"Vault read with the {label} of a deleted auth method", allowed=[403])
    r = node.native("get-secret-value", {"names": [f"/secret/{path}"]}, token=native_token)
    assert_4xx(r, "native read with the token of a deleted auth method", allowed=[401, 403])
    assert node.native("validate-token", {}, token=native_token).json()["is_valid"] is False


def test_a_new_auth_method_with_the_same_name_does_not_revive_old_tokens(node):
    ident, path = reader(node)
    old = ident.token
    node.ok("delete-auth-method", {"name": ident.name})
    node.ok("create-auth-method", {"name": ident.name})
    node.ok("assoc-role-am", {"role-name": ident.role, "am-name": ident.name})
    r = send(lambda: node.vault("GET", f"secret/data/{path}", token=old))
    assert_alive(node, "a read with a token of the method's previous incarnation")
    assert_4xx(r, "old token after the method was re-created", allowed=[403])


def test_tokens_stop_working_at_access_expires_and_renew_self_does_not_extend_them(node):
    expires = int(time.time()) + 4
    ident, path = reader(node, access_expires=expires)
    token = ident.token
    client = hvac.Client(url=node.url, token=token, timeout=20)
    assert client.secrets.kv.v2.read_secret_version(path, mount_point="secret", raise_on_deleted_version=True)["data"]["data"] == {"v": "ok"}

    renewed = client.auth.token.renew_self()
    assert renewed["auth"]["lease_duration"] <= expires - time.time() + 1, f"renew-self went past access-expires: {renewed['auth']}"
    looked = client.auth.token.lookup_self()["data"]
    assert looked["ttl"] <= expires - time.time() + 1, f"the token outlives its method: {looked}"
    assert node.vault("GET", f"secret/data/{path}", token=ident.vault_token).status_code == 200  # warm any cache

    time.sleep(max(0.0, expires - time.time()) + 1.5)
    for label, tok in (("native token", token), ("<id>..<key>", ident.vault_token)):
        r = send(lambda: node.vault("GET", f"secret/data/{path}", token=tok))
        assert_alive(node, f"a read with the {label} after access-expires")
        assert_4xx(r, f"Vault read with the {label} after access-expires", allowed=[403])
    r = send(lambda: node.vault("POST", "auth/token/renew-self", {}, token=token))
    assert_alive(node, "renew-self after access-expires")
    assert_4xx(r, "renew-self after access-expires", allowed=[403])
    r = node.native("get-secret-value", {"names": [f"/secret/{path}"]}, token=token)
    assert_4xx(r, "native read after access-expires", allowed=[401, 403])
    r = node.native("auth", {"access-id": ident.access_id, "access-key": ident.access_key}, token=NO_TOKEN)
    assert_4xx(r, "a new login after access-expires", allowed=[401, 403])


def test_renew_self_never_extends_a_token_past_its_original_max(node):
    """jwt-ttl 1 minute: renewing at once does not move the expiry later than a fresh token's,
    and repeated renewals do not add up."""
    ident, _ = reader(node, jwt_ttl=1)
    token = ident.token
    client = hvac.Client(url=node.url, token=token, timeout=20)
    first = client.auth.token.lookup_self()["data"]
    for _ in range(3):
        r = send(lambda: node.vault("POST", "auth/token/renew-self", {"increment": "999999h"}, token=token))
        assert_alive(node, "renew-self with a huge increment")
        assert isinstance(r, requests.Response) and r.status_code < 500, body_text(r)
    after = client.auth.token.lookup_self()["data"]
    assert after["ttl"] <= 61, f"renewals extended the token beyond its TTL: {after}"
    assert after["ttl"] <= first["creation_ttl"] + 1, (first, after)


# ------------------------------------------------------------------------------------------
# failed-login throttling
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def throttle_node(make_node) -> Node:
    """A node with the default throttling limits (its own, so failures of other tests do not count)."""
    return make_node(name="throttle-default")


@pytest.fixture(scope="module")
def throttle3_node(make_node) -> Node:
    return make_node(name="throttle-3", config={"login_failures_per_access_id": CONFIGURED_LOGIN_FAILURES_PER_ACCESS_ID,
                                                "login_failures_per_address": 1000})


def hammer(node: Node, attempt, limit: int) -> list:
    """Up to limit+2 failed attempts; returns the statuses (stops after the first 429)."""
    statuses = []
    for i in range(limit + 2):
        r = send(attempt)
        assert_alive(node, f"failed login {i + 1}")
        assert isinstance(r, requests.Response), f"attempt {i + 1}: {r!r}"
        assert r.status_code < 500, f"attempt {i + 1}: {body_text(r)}"
        statuses.append(r.status_code)
        if r.status_code == 429:
            break
    return statuses


def assert_throttled_after(statuses: list, limit: int, what: str) -> None:
    assert 429 in statuses, f"{what}: no 429 after {len(statuses)} wrong keys: {statuses}"
    first = statuses.index(429)
    assert first <= limit, f"{what}: the first 429 came only after {first} failures (limit {limit}): {statuses}"
    assert all(400 <= s < 500 for s in statuses), statuses


def wrong_native_login(node: Node, access_id: str):
    return lambda: node.native("auth", {"access-id": access_id, "access-key": "wrong-" + uid()}, token=NO_TOKEN)


def test_repeated_wrong_keys_for_one_access_id_get_429_by_default(throttle_node):
    ident, _ = reader(throttle_node)
    statuses = hammer(throttle_node, wrong_native_login(throttle_node, ident.access_id), DEFAULT_LOGIN_FAILURES_PER_ACCESS_ID)
    assert_throttled_after(statuses, DEFAULT_LOGIN_FAILURES_PER_ACCESS_ID, "native auth")


def test_the_failed_login_limit_is_configurable(throttle3_node):
    ident, _ = reader(throttle3_node)
    statuses = hammer(throttle3_node, wrong_native_login(throttle3_node, ident.access_id),
                      CONFIGURED_LOGIN_FAILURES_PER_ACCESS_ID)
    assert_throttled_after(statuses, CONFIGURED_LOGIN_FAILURES_PER_ACCESS_ID, "native auth with a configured limit")


def test_a_throttled_access_id_is_refused_even_with_the_right_key(throttle3_node):
    ident, path = reader(throttle3_node)
    statuses = hammer(throttle3_node, wrong_native_login(throttle3_node, ident.access_id),
                      CONFIGURED_LOGIN_FAILURES_PER_ACCESS_ID)
    assert 429 in statuses, statuses
    r = send(lambda: throttle3_node.native("auth", {"access-id": ident.access_id, "access-key": ident.access_key}, token=NO_TOKEN))
    assert_alive(throttle3_node, "the right key while throttled")
    assert_4xx(r, "the right key while the access id is throttled", allowed=[429])
    r = send(lambda: throttle3_node.vault("GET", f"secret/data/{path}", token=ident.vault_token))
    assert_4xx(r, "the <id>..<key> Vault token while the access id is throttled", allowed=[429, 403])


def test_wrong_secret_ids_on_approle_login_are_throttled_too(throttle3_node):
    ident, _ = reader(throttle3_node)
    def attempt():
        return throttle3_node.vault("POST", "auth/approle/login", {"role_id": ident.access_id, "secret_id": "wrong-" + uid()},
                                    token=NO_TOKEN)
    statuses = hammer(throttle3_node, attempt, CONFIGURED_LOGIN_FAILURES_PER_ACCESS_ID)
    assert_throttled_after(statuses, CONFIGURED_LOGIN_FAILURES_PER_ACCESS_ID, "approle login")


def test_wrong_keys_in_the_vault_access_key_token_are_throttled_too(throttle3_node):
    ident, path = reader(throttle3_node)
    statuses = hammer(throttle3_node, lambda: throttle3_node.vault(
        "GET", f"secret/data/{path}", token=f"{ident.access_id}..wrong-{uid()}"), CONFIGURED_LOGIN_FAILURES_PER_ACCESS_ID)
    assert_throttled_after(statuses, CONFIGURED_LOGIN_FAILURES_PER_ACCESS_ID, "<id>..<wrong key> Vault token")


def test_throttled_logins_are_in_the_audit_trail(throttle3_node, tessera_bin, tmp_path):
    from seclib import CLI
    cli = CLI(tessera_bin, tmp_path / "cli", throttle3_node.url)
    cli.ok("auth", "--access-id", throttle3_node.admin_id, "--access-key", throttle3_node.admin_key)
    ident, _ = reader(throttle3_node)
    statuses = hammer(throttle3_node, wrong_native_login(throttle3_node, ident.access_id),
                      CONFIGURED_LOGIN_FAILURES_PER_ACCESS_ID)
    assert 429 in statuses, statuses
    events = cli.json("audit", "--actor", ident.access_id, "--since", "10m")["events"]
    statuses_audited = [e["status"] for e in events if e["action"] == "auth"]
    assert 429 in statuses_audited, f"no 429 in the audit trail for {ident.access_id}: {statuses_audited}"
    assert statuses_audited.count(401) >= 1, statuses_audited
