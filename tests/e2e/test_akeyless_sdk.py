"""Acceptance test: the official Akeyless Python SDK against a real Tessera server."""

from __future__ import annotations

import json

import akeyless
import pytest
from akeyless.exceptions import ApiException

from e2e_support import unique


def make_api(server) -> akeyless.V2Api:
    cfg = akeyless.Configuration(host=f"{server.url}/api/v2")
    return akeyless.V2Api(akeyless.ApiClient(cfg))


def sdk_call(api: akeyless.V2Api, verb: str, body: dict):
    """Call a Tessera-only verb (e.g. audit-query) through the SDK's own transport."""
    return api.api_client.call_api(
        f"/{verb}", "POST", body=body,
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        response_type="object", auth_settings=[], _return_http_data_only=True)


def expect_api_error(fn, status: int) -> dict:
    with pytest.raises(ApiException) as ei:
        fn()
    e = ei.value
    assert e.status == status, f"expected {status}, got {e.status}: {e.body}"
    assert isinstance(e.body, str) and e.body
    body = json.loads(e.body)
    assert set(body) >= {"error", "message"}, body
    return body


def test_sdk_walkthrough(dev_server):
    api = make_api(dev_server)

    # --- admin login ------------------------------------------------------------------
    out = api.auth(akeyless.Auth(access_id=dev_server.admin_id, access_key=dev_server.admin_key))
    tok = out.token
    assert tok.startswith("t-")
    assert out.expiration
    vt = api.validate_token(akeyless.ValidateToken(token=tok))
    assert vt.is_valid is True
    assert isinstance(vt.ttl, int) and vt.ttl > 0

    # --- secrets ------------------------------------------------------------------------
    pw1, pw2 = unique("pw1"), unique("pw2")
    devx, other = unique("devx"), unique("other")
    blocked_val = unique("blocked")
    assert api.create_secret(akeyless.CreateSecret(
        name="/prod/db/password", value=pw1, description="db password", tags=["db", "prod"],
        token=tok)).name == "/prod/db/password"
    api.create_secret(akeyless.CreateSecret(name="/dev/x", value=devx, token=tok))
    api.create_secret(akeyless.CreateSecret(name="/dev/team/other", value=other, token=tok))
    api.create_secret(akeyless.CreateSecret(name="/dev/blocked/key", value=blocked_val, token=tok))

    got = api.get_secret_value(akeyless.GetSecretValue(names=["/prod/db/password"], token=tok))
    assert got == {"/prod/db/password": pw1}

    got = api.get_secret_value(akeyless.GetSecretValue(
        names=["/prod/db/password", "/dev/x", "/dev/team/other"], token=tok))
    assert got == {"/prod/db/password": pw1, "/dev/x": devx, "/dev/team/other": other}

    # update -> version 2 is current, version 1 still readable
    assert api.update_secret_val(akeyless.UpdateSecretVal(
        name="/prod/db/password", value=pw2, token=tok)).name == "/prod/db/password"
    assert api.get_secret_value(akeyless.GetSecretValue(
        names=["/prod/db/password"], token=tok)) == {"/prod/db/password": pw2}
    assert api.get_secret_value(akeyless.GetSecretValue(
        names=["/prod/db/password"], version=1, token=tok)) == {"/prod/db/password": pw1}
    assert api.get_secret_value(akeyless.GetSecretValue(
        names=["/prod/db/password"], version=2, token=tok)) == {"/prod/db/password": pw2}

    # --- list-items -------------------------------------------------------------------
    lst = api.list_items(akeyless.ListItems(path="/dev", token=tok))
    names = sorted(i.item_name for i in (lst.items or []))
    assert names == ["/dev/blocked/key", "/dev/team/other", "/dev/x"], names
    assert all(i.item_type == "STATIC_SECRET" for i in lst.items)
    assert all(isinstance(i.item_id, int) for i in lst.items)
    folders = sorted(f.rstrip("/") for f in (lst.folders or []))
    assert folders == ["/dev/blocked", "/dev/team"], lst.folders

    cur = api.list_items(akeyless.ListItems(path="/dev", current_folder=True, token=tok))
    assert sorted(i.item_name for i in cur.items or []) == ["/dev/x"]

    everything = api.list_items(akeyless.ListItems(path="/", token=tok))
    all_names = {i.item_name for i in everything.items or []}
    assert {"/prod/db/password", "/dev/x", "/dev/team/other", "/dev/blocked/key"} <= all_names

    # --- describe-item: metadata and versions, never the value ---------------------------
    item = api.describe_item(akeyless.DescribeItem(name="/prod/db/password", token=tok))
    assert item.item_name == "/prod/db/password"
    assert item.item_type == "STATIC_SECRET"
    assert item.last_version == 2
    assert sorted(v.version for v in item.item_versions) == [1, 2]
    raw = api.describe_item(akeyless.DescribeItem(name="/prod/db/password", token=tok),
                            _preload_content=False)
    assert raw.status == 200
    raw_body = raw.data.decode()
    assert json.loads(raw_body)["item_name"] == "/prod/db/password"
    assert pw1 not in raw_body and pw2 not in raw_body

    # --- a colleague with read+list on /dev/* -----------------------------------------
    am = api.create_auth_method(akeyless.CreateAuthMethod(name="/colleague", token=tok))
    assert am.access_id.startswith("p-") and am.access_key
    ams = api.list_auth_methods(akeyless.ListAuthMethods(token=tok)).auth_methods
    assert "/colleague" in {a.auth_method_name for a in ams}
    got_am = api.get_auth_method(akeyless.GetAuthMethod(name="/colleague", token=tok))
    assert got_am.auth_method_access_id == am.access_id
    assert am.access_key not in json.dumps(got_am.to_dict(), default=str)

    api.create_role(akeyless.CreateRole(name="dev-readers", token=tok))
    api.set_role_rule(akeyless.SetRoleRule(role_name="dev-readers", path="/dev/*",
                                           capability=["read", "list"], token=tok))
    assoc = api.assoc_role_auth_method(akeyless.AssocRoleAuthMethod(
        role_name="dev-readers", am_name="/colleague", token=tok))
    assert assoc.assoc_id

    role = api.get_role(akeyless.GetRole(name="dev-readers", token=tok))
    assert role.role_name == "dev-readers"
    rules = {r.path: sorted(r.capabilities) for r in role.rules.path_rules}
    assert rules.get("/dev/*") == ["list", "read"], rules
    assert "/colleague" in {a.auth_method_name for a in role.role_auth_methods_assoc}
    assert "dev-readers" in {r.role_name for r in api.list_roles(akeyless.ListRoles(token=tok)).roles}

    ctok = api.auth(akeyless.Auth(access_id=am.access_id, access_key=am.access_key)).token
    assert ctok.startswith("t-") and ctok != tok

    assert api.get_secret_value(akeyless.GetSecretValue(names=["/dev/x"], token=ctok)) == {"/dev/x": devx}
    clist = api.list_items(akeyless.ListItems(path="/dev", token=ctok))
    assert "/dev/x" in {i.item_name for i in clist.items or []}

    err = expect_api_error(lambda: api.get_secret_value(akeyless.GetSecretValue(
        names=["/prod/db/password"], token=ctok)), 403)
    assert "/prod/db/password" in err["message"], err
    assert "read" in err["message"], err
    assert pw1 not in json.dumps(err) and pw2 not in json.dumps(err)

    # no write capability either
    expect_api_error(lambda: api.create_secret(akeyless.CreateSecret(
        name="/dev/new", value="x", token=ctok)), 403)

    # --- deny wins over allow ------------------------------------------------------------
    assert api.get_secret_value(akeyless.GetSecretValue(
        names=["/dev/blocked/key"], token=ctok)) == {"/dev/blocked/key": blocked_val}
    api.set_role_rule(akeyless.SetRoleRule(role_name="dev-readers", path="/dev/blocked/*",
                                           capability=["deny"], token=tok))
    err = expect_api_error(lambda: api.get_secret_value(akeyless.GetSecretValue(
        names=["/dev/blocked/key"], token=ctok)), 403)
    assert "/dev/blocked/key" in err["message"], err
    # the rest of /dev/* is still readable
    assert api.get_secret_value(akeyless.GetSecretValue(names=["/dev/x"], token=ctok)) == {"/dev/x": devx}
    # a multi-name read containing a denied name is denied as a whole, without leaking values
    with pytest.raises(ApiException) as ei:
        api.get_secret_value(akeyless.GetSecretValue(names=["/dev/x", "/dev/blocked/key"], token=ctok))
    assert ei.value.status == 403
    assert devx not in ei.value.body and blocked_val not in ei.value.body

    # --- a failed login -------------------------------------------------------------------
    err = expect_api_error(lambda: api.auth(akeyless.Auth(
        access_id=am.access_id, access_key="wrong-" + am.access_key)), 401)
    # the colleague can't read the audit log (no audit access)
    expect_api_error(lambda: sdk_call(api, "audit-query", {"token": ctok}), 403)

    # --- audit as admin --------------------------------------------------------------------
    denied = sdk_call(api, "audit-query", {"token": tok, "result": "denied",
                                           "access-id": am.access_id})["events"]
    reads = [e for e in denied if e["action"] == "get_secret_value"
             and e["path"] == "/prod/db/password"]
    assert reads, denied
    ev = reads[-1]
    assert ev["access_id"] == am.access_id
    assert ev["result"] == "denied"
    assert ev["status"] == 403
    assert isinstance(ev["seq_num"], int) and ev["timestamp"]

    by_path = sdk_call(api, "audit-query", {"token": tok, "path-prefix": "/prod/db/",
                                            "result": "denied"})["events"]
    assert any(e["access_id"] == am.access_id for e in by_path), by_path
    assert all(e["path"].startswith("/prod/db/") for e in by_path), by_path

    logins = sdk_call(api, "audit-query", {"token": tok, "action": "auth",
                                           "result": "denied"})["events"]
    failed = [e for e in logins if e["access_id"] == am.access_id]
    assert failed, logins
    assert failed[-1]["result"] == "denied"

    # the audit trail never contains the secret values or the access keys
    dump = json.dumps(sdk_call(api, "audit-query", {"token": tok, "limit": 10000}))
    for planted in (pw1, pw2, devx, other, blocked_val, am.access_key, dev_server.admin_key):
        assert planted not in dump

    ver = sdk_call(api, "audit-verify", {"token": tok})
    assert ver["ok"] is True, ver
    assert ver["events_checked"] > 0
    assert ver["first_bad_sequence"] is None

    # --- clean up through the SDK ------------------------------------------------------------
    api.delete_item(akeyless.DeleteItem(name="/dev/team/other", token=tok))
    expect_api_error(lambda: api.get_secret_value(akeyless.GetSecretValue(
        names=["/dev/team/other"], token=tok)), 404)
    api.delete_role(akeyless.DeleteRole(name="dev-readers", token=tok))
    api.delete_auth_method(akeyless.DeleteAuthMethod(name="/colleague", token=tok))
    # deleting the auth method kills its tokens
    assert not _token_is_valid(api, ctok)


def _token_is_valid(api, token) -> bool:
    """validate-token answers 200 {is_valid:false} (or 401) for a dead token."""
    try:
        return api.validate_token(akeyless.ValidateToken(token=token)).is_valid is True
    except ApiException as e:
        assert e.status == 401, e.body
        return False


def test_sdk_aliases_and_bad_token(dev_server):
    api = make_api(dev_server)
    tok = api.auth(akeyless.Auth(access_id=dev_server.admin_id, access_key=dev_server.admin_key)).token

    out = api.auth_method_create_api_key(akeyless.AuthMethodCreateApiKey(name="/alias-am", token=tok))
    assert out.access_id.startswith("p-")
    assert "/alias-am" in {a.auth_method_name for a in
                           api.auth_method_list(akeyless.AuthMethodList(token=tok)).auth_methods}
    assert api.auth_method_get(akeyless.AuthMethodGet(name="/alias-am", token=tok)).auth_method_name == "/alias-am"
    api.auth_method_delete(akeyless.AuthMethodDelete(name="/alias-am", token=tok))
    expect_api_error(lambda: api.get_auth_method(akeyless.GetAuthMethod(name="/alias-am", token=tok)), 404)

    # forged/unknown token
    expect_api_error(lambda: api.list_items(akeyless.ListItems(path="/", token="t-" + "0" * 64)), 401)
    # unknown access id
    unknown = expect_api_error(lambda: api.auth(akeyless.Auth(access_id="p-doesnotexist", access_key="x")), 401)
    wrong = expect_api_error(lambda: api.auth(akeyless.Auth(access_id=dev_server.admin_id,
                                                            access_key="wrong")), 401)
    # no account enumeration: an unknown id and a wrong key look the same
    assert unknown == wrong
    # duplicate secret -> conflict
    api.create_secret(akeyless.CreateSecret(name="/dup", value="v", token=tok))
    expect_api_error(lambda: api.create_secret(akeyless.CreateSecret(name="/dup", value="v", token=tok)), 409)


def test_sdk_list_items_current_folder_reports_subfolders(dev_server):
    """current-folder=true lists direct items plus the direct sub-folders (fixed in c8a369f)."""
    api = make_api(dev_server)
    tok = api.auth(akeyless.Auth(access_id=dev_server.admin_id, access_key=dev_server.admin_key)).token
    for name in ("/dev/x", "/dev/team/other", "/dev/blocked/key"):
        api.create_secret(akeyless.CreateSecret(name=name, value=unique("v"), token=tok))
    cur = api.list_items(akeyless.ListItems(path="/dev", current_folder=True, token=tok))
    assert sorted(i.item_name for i in cur.items or []) == ["/dev/x"]
    assert sorted(f.rstrip("/") for f in cur.folders or []) == ["/dev/blocked", "/dev/team"]

    # a restricted caller only sees folders that hold something it may list
    api.create_secret(akeyless.CreateSecret(name="/prod/db/password", value=unique("p"), token=tok))
    am = api.create_auth_method(akeyless.CreateAuthMethod(name="/lister", token=tok))
    api.create_role(akeyless.CreateRole(name="listers", token=tok))
    api.set_role_rule(akeyless.SetRoleRule(role_name="listers", path="/dev/*",
                                           capability=["list"], token=tok))
    api.assoc_role_auth_method(akeyless.AssocRoleAuthMethod(role_name="listers", am_name="/lister",
                                                            token=tok))
    ltok = api.auth(akeyless.Auth(access_id=am.access_id, access_key=am.access_key)).token
    root = api.list_items(akeyless.ListItems(path="/", current_folder=True, token=ltok))
    assert [f.rstrip("/") for f in root.folders or []] == ["/dev"], root.folders
    everything = api.list_items(akeyless.ListItems(path="/", token=ltok))
    assert all(i.item_name.startswith("/dev/") for i in everything.items or [])
    assert not any(f.startswith("/prod") for f in everything.folders or [])
