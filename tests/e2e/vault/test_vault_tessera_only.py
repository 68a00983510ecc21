"""Tessera-only Vault checks: access control through the Vault API with the audit trail, and
secrets shared between the native API/CLI and the Vault API/CLI.
"""

from __future__ import annotations

import json

import pytest

import vaultlib as V


@pytest.fixture(scope="module", autouse=True)
def _real_tessera(tessera_target):
    if tessera_target.is_bao:
        pytest.skip("tessera-only test (VAULT_E2E_SELFTEST=1 runs bao in its place)")


@pytest.fixture(scope="module")
def limited(tessera_target):
    """An API-key identity whose role may only read and list /secret/app/*."""
    t = tessera_target
    tok = t.native_token
    name = V.unique("vlim")
    am = t.native("create-auth-method", {"token": tok, "name": name})
    role = f"{name}-role"
    t.native("create-role", {"token": tok, "name": role})
    t.native("set-role-rule", {"token": tok, "role-name": role, "path": "/secret/app/*",
                               "capability": ["read", "list"]})
    t.native("assoc-role-am", {"token": tok, "role-name": role, "am-name": name})
    # the admin writes the secrets through the Vault API
    for path, data in (("app/x", {"app": "x"}), ("other", {"other": "y"})):
        r = t.bao("kv", "put", f"{t.kv2}/{path}", *[f"{k}={v}" for k, v in data.items()])
        assert r.rc == 0, r
    return {"access_id": am["access_id"], "vault_token": f"{am['access_id']}..{am['access_key']}"}


def test_denied_read_is_403_and_audited(tessera_target, limited):
    t = tessera_target
    lim = limited["vault_token"]

    r = t.bao("kv", "get", "-format=json", f"{t.kv2}/app/x", token=lim)
    assert r.rc == 0, r
    assert r.json()["data"]["data"] == {"app": "x"}, r

    r = t.bao("kv", "get", f"{t.kv2}/other", token=lim)
    assert r.rc == 2, r
    assert "permission denied" in r.stderr and "403" in r.stderr, r
    assert r.stdout.strip() == "", r

    # the same through raw HTTP and hvac
    resp = t.http("GET", f"/v1/{t.kv2}/data/other", token=lim)
    assert resp.status == 403 and resp.content_type == "application/json", resp
    assert any("permission denied" in e for e in resp.json()["errors"]), resp
    resp = t.http("PUT", f"/v1/{t.kv2}/data/app/x", {"data": {"no": "write"}}, token=lim)
    assert resp.status == 403, resp
    c = t.hvac(token=lim)
    assert c.is_authenticated() is True
    import hvac.exceptions as HE
    with pytest.raises(HE.Forbidden):
        c.secrets.kv.v2.read_secret_version(path="other", mount_point=t.kv2, raise_on_deleted_version=True)
    # the allowed secret is unchanged
    r = t.bao("kv", "get", "-format=json", f"{t.kv2}/app/x", token=lim)
    assert r.rc == 0 and r.json()["data"]["data"] == {"app": "x"}, r

    out = t.native("audit-query", {"token": t.native_token, "access-id": limited["access_id"],
                                   "result": "denied"})
    events = out["events"]
    mine = [e for e in events if e["access_id"] == limited["access_id"]]
    assert mine, f"no denied events for {limited['access_id']}: {json.dumps(events)[:2000]}"
    vault_other = [e for e in mine if e["interface"] == "vault" and "secret/other" in e["path"]]
    assert vault_other, f"no denied vault event on secret/other: {json.dumps(mine, indent=1)[:3000]}"
    e = vault_other[0]
    assert e["result"] == "denied" and e["status"] == 403, e
    # and the allowed read was audited as allowed, through the vault interface
    out = t.native("audit-query", {"token": t.native_token, "access-id": limited["access_id"],
                                   "result": "allowed"})
    assert any(e["interface"] == "vault" and "secret/app/x" in e["path"] for e in out["events"]), out


def test_native_secret_readable_with_bao(tessera_target):
    t = tessera_target
    t.native("create-secret", {"token": t.native_token, "name": "/secret/both/native",
                               "value": json.dumps({"k": "v"})})
    r = t.bao("kv", "get", "-format=json", f"{t.kv2}/both/native")
    assert r.rc == 0, r
    d = r.json()["data"]
    assert d["data"] == {"k": "v"}, d
    assert d["metadata"]["version"] == 1 and d["metadata"]["deletion_time"] == "", d
    r = t.bao("kv", "get", "-field=k", f"{t.kv2}/both/native")
    assert r.rc == 0 and r.stdout.strip() == "v", r
    # and it is listed next to Vault-written secrets
    r = t.bao("kv", "list", "-format=json", f"{t.kv2}/both")
    assert r.rc == 0 and "native" in r.json(), r


def test_bao_secret_readable_with_tessera_cli(tessera_target):
    t = tessera_target
    r = t.bao("kv", "put", f"{t.kv2}/both/cli", "foo=bar")
    assert r.rc == 0, r
    p = t.tessera_cli("get-secret-value", "--name", "/secret/both/cli", "--address", t.addr,
                      "--token", t.native_token)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert json.loads(p.stdout) == {"foo": "bar"}, p.stdout
    # the native API agrees
    out = t.native("get-secret-value", {"token": t.native_token, "names": ["/secret/both/cli"]})
    assert json.loads(out["/secret/both/cli"]) == {"foo": "bar"}, out
    # a new Vault version is the new native value
    r = t.bao("kv", "put", f"{t.kv2}/both/cli", "foo=baz", "n=2")
    assert r.rc == 0, r
    out = t.native("get-secret-value", {"token": t.native_token, "names": ["/secret/both/cli"]})
    assert json.loads(out["/secret/both/cli"]) == {"foo": "baz", "n": "2"}, out


def test_a_mount_over_an_existing_folder_leaves_its_items_on_disable(tessera_target):
    """A mount enabled through sys/mounts over a folder that already holds native items does not
    own them: disabling the mount leaves them (docs/vault-compatibility.md). A limited identity
    cannot make a data-owning mount's disable remove items it may not delete."""
    t = tessera_target
    folder = V.unique("nat")
    t.native("create-secret", {"token": t.native_token, "name": f"/{folder}/keep", "value": json.dumps({"k": "v"})})
    assert t.http("POST", f"/v1/sys/mounts/{folder}", {"type": "kv", "options": {"version": "2"}}).status == 204
    r = t.bao("kv", "get", "-field=k", f"{folder}/keep")
    assert r.rc == 0 and r.stdout.strip() == "v", r
    assert t.http("DELETE", f"/v1/sys/mounts/{folder}").status == 204
    got = t.native("get-secret-value", {"token": t.native_token, "names": [f"/{folder}/keep"]})
    assert json.loads(got[f"/{folder}/keep"]) == {"k": "v"}, got


def test_disabling_an_owning_mount_needs_delete_on_its_items(tessera_target):
    """Removing a mount's data is all or nothing: a caller with sys-rule delete on the mount but
    no item delete inside it gets a 403, and the mount and its items stay."""
    t = tessera_target
    tok = t.native_token
    mount = V.unique("own")
    assert t.http("POST", f"/v1/sys/mounts/{mount}", {"type": "kv", "options": {"version": "2"}}).status == 204
    assert t.http("POST", f"/v1/{mount}/data/a", {"data": {"x": "1"}}).status == 200
    name = V.unique("unmounter")
    am = t.native("create-auth-method", {"token": tok, "name": name})
    t.native("create-role", {"token": tok, "name": f"{name}-r"})
    t.native("set-role-rule", {"token": tok, "role-name": f"{name}-r", "path": f"/sys/mounts/{mount}",
                               "capability": ["delete"], "rule-type": "sys-rule"})
    t.native("assoc-role-am", {"token": tok, "role-name": f"{name}-r", "am-name": name})
    r = t.http("DELETE", f"/v1/sys/mounts/{mount}", token=f"{am['access_id']}..{am['access_key']}")
    assert r.status == 403, r
    r = t.http("GET", f"/v1/{mount}/data/a")
    assert r.status == 200 and r.json()["data"]["data"] == {"x": "1"}, r
    assert t.http("DELETE", f"/v1/sys/mounts/{mount}").status == 204
    assert t.http("GET", f"/v1/{mount}/data/a").status == 404


def test_a_delegated_approle_admin_cannot_name_roles_that_do_not_exist_or_edit_default(tessera_target):
    """A delegated manager of AppRole roles may not name a policy that does not exist yet (once
    created, its rules would reach the role's tokens unchecked), and a delegated role manager
    may not change `default` or delete `admin`, which reach every token."""
    t = tessera_target
    tok = t.native_token
    name = V.unique("deleg")
    am = t.native("create-auth-method", {"token": tok, "name": name})
    t.native("create-role", {"token": tok, "name": f"{name}-r"})
    for path, caps, typ in ((f"/approle/role/*", ["create", "update", "read"], "auth-method-rule"),
                            ("/*", ["create", "update", "read", "delete"], "role-rule")):
        t.native("set-role-rule", {"token": tok, "role-name": f"{name}-r", "path": path, "capability": caps, "rule-type": typ})
    t.native("assoc-role-am", {"token": tok, "role-name": f"{name}-r", "am-name": name})
    vt = f"{am['access_id']}..{am['access_key']}"
    r = t.http("POST", f"/v1/auth/approle/role/{name}-ci", {"token_policies": f"{name}-later"}, token=vt)
    assert r.status == 400 and "does not exist" in r.json()["errors"][0], r
    r = t.http("PUT", "/v1/sys/policies/acl/default", {"policy": 'path "kv1/*" { capabilities = ["read"] }'}, token=vt)
    assert r.status == 403, r
    login = requests_post(t, "/api/v2/auth", {"access-id": am["access_id"], "access-key": am["access_key"]})
    r = requests_post(t, "/api/v2/set-role-rule", {"token": login["token"], "role-name": "default", "path": "/kv1/*", "capability": ["read"]})
    assert r.status_code == 403, r.text
    r = requests_post(t, "/api/v2/delete-role", {"token": login["token"], "name": "admin"})
    assert r.status_code in (400, 403), r.text


def requests_post(t, path, body):
    import requests
    r = requests.post(t.addr + path, json=body, timeout=30)
    return r.json() if path.endswith("/auth") else r


def test_a_mount_enabler_who_cannot_grant_does_not_widen_waiting_policies(tessera_target):
    """A policy written before its mount exists is translated again when the mount is enabled;
    that is a grant by the enabler. An identity that may enable mounts but not grant what the
    policy would now give leaves the policy as it was, with a warning, and its tokens get nothing
    from the new mount; an administrator enabling the mount makes it apply."""
    t = tessera_target
    tok = t.native_token
    mount, policy = V.unique("waiting"), V.unique("waitpol")
    r = t.http("PUT", f"/v1/sys/policies/acl/{policy}", {"policy": f'path "{mount}/data/*" {{ capabilities = ["read"] }}'})
    assert r.status in (200, 204), r
    holder = t.http("POST", "/v1/auth/token/create", {"policies": [policy]}).json()["auth"]["client_token"]
    name = V.unique("mounter")
    am = t.native("create-auth-method", {"token": tok, "name": name})
    t.native("create-role", {"token": tok, "name": f"{name}-r"})
    t.native("set-role-rule", {"token": tok, "role-name": f"{name}-r", "path": f"/sys/mounts/{mount}",
                               "capability": ["create", "delete"], "rule-type": "sys-rule"})
    t.native("assoc-role-am", {"token": tok, "role-name": f"{name}-r", "am-name": name})
    mounter = f"{am['access_id']}..{am['access_key']}"
    r = t.http("POST", f"/v1/sys/mounts/{mount}", {"type": "kv", "options": {"version": "2"}}, token=mounter)
    assert r.status == 200 and any(policy in w for w in r.json()["warnings"]), r
    assert t.http("POST", f"/v1/{mount}/data/s", {"data": {"x": "1"}}).status == 200
    assert t.http("GET", f"/v1/{mount}/data/s", token=holder).status == 403
    # Re-enabled by an administrator, the policy applies.
    assert t.http("DELETE", f"/v1/sys/mounts/{mount}").status == 204
    assert t.http("POST", f"/v1/sys/mounts/{mount}", {"type": "kv", "options": {"version": "2"}}).status == 204
    assert t.http("POST", f"/v1/{mount}/data/s", {"data": {"x": "1"}}).status == 200
    r = t.http("GET", f"/v1/{mount}/data/s", token=holder)
    assert r.status == 200 and r.json()["data"]["data"] == {"x": "1"}, r
    assert t.http("DELETE", f"/v1/sys/mounts/{mount}").status == 204


def test_an_approle_field_endpoint_changes_that_field_only(tessera_target):
    """The right on one field's endpoint changes that field and nothing else: other fields in
    the body are ignored, and the policies endpoint needs its own right."""
    t = tessera_target
    tok = t.native_token
    role = V.unique("fieldrole")
    base = f"/v1/auth/approle/role/{role}"
    assert t.http("POST", base, {"token_policies": "default", "secret_id_num_uses": 3}).status == 204
    name = V.unique("fielder")
    am = t.native("create-auth-method", {"token": tok, "name": name})
    t.native("create-role", {"token": tok, "name": f"{name}-r"})
    t.native("set-role-rule", {"token": tok, "role-name": f"{name}-r", "path": f"/approle/role/{role}/secret-id-num-uses",
                               "capability": ["update", "read"], "rule-type": "auth-method-rule"})
    t.native("assoc-role-am", {"token": tok, "role-name": f"{name}-r", "am-name": name})
    vt = f"{am['access_id']}..{am['access_key']}"
    r = t.http("POST", f"{base}/secret-id-num-uses", {"secret_id_num_uses": 1, "token_policies": "admin", "bind_secret_id": False}, token=vt)
    assert r.status == 204, r
    d = t.http("GET", base).json()["data"]
    assert d["secret_id_num_uses"] == 1 and d["token_policies"] == ["default"] and d["bind_secret_id"] is True, d
    assert t.http("POST", f"{base}/policies", {"token_policies": "admin"}, token=vt).status == 403
    assert t.http("DELETE", f"{base}/secret-id-num-uses", token=vt).status == 403
    assert t.http("GET", f"/v1/auth/approle/role/{V.unique('nope')}/secret-id-num-uses", token=vt).status == 403
    assert t.http("DELETE", base).status == 204


def test_approle_mounts_keep_their_roles_apart(tessera_target):
    """A role on one AppRole mount logs in there only; a custom role_id cannot take the shape of
    an access id (it would name another role); disabling a mount removes its roles, so it needs
    delete on each of them."""
    t = tessera_target
    tok = t.native_token
    a, b = V.unique("apa"), V.unique("apb")
    for m in (a, b):
        assert t.http("POST", f"/v1/sys/auth/{m}", {"type": "approle"}).status == 204
    assert t.http("POST", f"/v1/auth/{a}/role/r", {"token_policies": "default"}).status == 204
    role_id = t.http("GET", f"/v1/auth/{a}/role/r/role-id").json()["data"]["role_id"]
    secret = t.http("POST", f"/v1/auth/{a}/role/r/secret-id", {}).json()["data"]["secret_id"]
    assert t.http("POST", f"/v1/auth/{b}/login", {"role_id": role_id, "secret_id": secret}, token=None).status == 400
    assert t.http("POST", "/v1/auth/approle/login", {"role_id": role_id, "secret_id": secret}, token=None).status == 400
    assert t.http("POST", f"/v1/auth/{a}/login", {"role_id": role_id, "secret_id": secret}, token=None).status == 200
    other = t.native("create-auth-method", {"token": tok, "name": V.unique("victim")})
    r = t.http("POST", f"/v1/auth/{a}/role/r/role-id", {"role_id": other["access_id"]})
    assert r.status == 400, r
    # Disabling needs delete on the roles it removes.
    name = V.unique("disabler")
    am = t.native("create-auth-method", {"token": tok, "name": name})
    t.native("create-role", {"token": tok, "name": f"{name}-r"})
    t.native("set-role-rule", {"token": tok, "role-name": f"{name}-r", "path": f"/{a}", "capability": ["delete"], "rule-type": "auth-method-rule"})
    t.native("assoc-role-am", {"token": tok, "role-name": f"{name}-r", "am-name": name})
    r = t.http("DELETE", f"/v1/sys/auth/{a}", token=f"{am['access_id']}..{am['access_key']}")
    assert r.status == 403, r
    assert t.http("GET", f"/v1/auth/{a}/role/r").status == 200
    for m in (a, b):
        assert t.http("DELETE", f"/v1/sys/auth/{m}").status == 204
    assert t.http("POST", f"/v1/auth/{a}/login", {"role_id": role_id, "secret_id": secret}, token=None).status in (400, 403, 404, 405)


def test_pending_policies_and_overlapping_auth_mounts(tessera_target):
    """Only an administrator may write a policy that grants on a mount that does not exist yet
    (its rules are never checked against the writer otherwise), and an auth mount may not sit
    above or below another one."""
    t = tessera_target
    tok = t.native_token
    name = V.unique("polwriter")
    am = t.native("create-auth-method", {"token": tok, "name": name})
    t.native("create-role", {"token": tok, "name": f"{name}-r"})
    t.native("set-role-rule", {"token": tok, "role-name": f"{name}-r", "path": f"/{name}-pol", "capability": ["create", "update", "read"],
                               "rule-type": "role-rule"})
    t.native("assoc-role-am", {"token": tok, "role-name": f"{name}-r", "am-name": name})
    vt = f"{am['access_id']}..{am['access_key']}"
    future = V.unique("futurekv")
    r = t.http("PUT", f"/v1/sys/policies/acl/{name}-pol", {"policy": f'path "{future}/data/*" {{ capabilities = ["read"] }}'}, token=vt)
    assert r.status == 403, r
    r = t.http("PUT", f"/v1/sys/policies/acl/{name}-pol", {"policy": f'path "{future}/data/*" {{ capabilities = ["deny"] }}'}, token=vt)
    assert r.status in (200, 204), r
    # Overlapping auth mounts are refused, whichever comes first.
    base = V.unique("am")
    assert t.http("POST", f"/v1/sys/auth/{base}", {"type": "approle"}).status == 204
    for path, typ in ((f"{base}/role/x", "approle"), (f"{base}/inner", "jwt"), ("approle/sub", "approle"), ("token/x", "approle")):
        r = t.http("POST", f"/v1/sys/auth/{path}", {"type": typ})
        assert r.status == 400 and "already in use" in r.json()["errors"][0], (path, r)
    jwt = V.unique("jw")
    assert t.http("POST", f"/v1/sys/auth/{jwt}/b", {"type": "jwt"}).status == 204
    r = t.http("POST", f"/v1/sys/auth/{jwt}", {"type": "approle"})
    assert r.status == 400, r
    # The native API does not delete an AppRole mount's marker alone.
    r = requests_post(t, "/api/v2/delete-auth-method", {"token": t.native_token, "name": f"/{base}"})
    assert r.status_code == 400 and "AppRole mount" in r.text, r.text
    for p in (base, f"{jwt}/b"):
        assert t.http("DELETE", f"/v1/sys/auth/{p}").status == 204
