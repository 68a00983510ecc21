"""The userpass auth method side by side with OpenBao: `bao auth enable userpass`, users written,
read (never the password), listed and deleted with the CLI and hvac, `bao login -method=userpass`,
a password change (the old one stops working), the policies endpoint, a user's token doing what
its policy says, and the same 400 for a wrong password and an unknown user.

Tessera-only: naming policies in a user is a grant of them, and a delegated user manager may not
name a policy it could not grant."""

from __future__ import annotations

import pytest

import vaultlib as V
from test_vault_policies import TOKEN_NULLABLE, write_file

LOGIN_IGNORE = ("$.auth.accessor", "$.auth.client_token")


def test_userpass(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        mount, pol = f"{pfx}up", f"{pfx}-reader"
        assert t.bao("policy", "write", pol, write_file(t, "reader.hcl",
                     f'path "{t.kv2}/data/{pfx}/*" {{ capabilities = ["read"] }}\n')).rc == 0
        assert t.bao("kv", "put", f"{t.kv2}/{pfx}/a", "v=1").rc == 0
        r = tr.cli("auth enable userpass", t.bao("auth", "enable", f"-path={mount}", "userpass"))
        assert r.rc == 0, r
        listed = t.http("GET", "/v1/sys/auth").json()["data"]
        assert listed[f"{mount}/"]["type"] == "userpass", listed
        r = tr.cli("write a user", t.bao("write", f"auth/{mount}/users/alice", "password=first-pass", f"policies={pol}", "token_ttl=1h"))
        assert r.rc == 0, r
        r = tr.cli("read the user", t.bao("read", "-format=json", f"auth/{mount}/users/alice"))
        d = r.json()["data"]
        assert "password" not in d and d["token_policies"] == [pol] and d["token_ttl"] == 3600, d
        r = tr.cli("list users", t.bao("list", "-format=json", f"auth/{mount}/users"))
        assert r.json() == ["alice"], r
        home = t.new_home()
        r = tr.cli("login -method=userpass", t.bao("login", "-format=json", f"-path={mount}", "-method=userpass", "username=alice",
                                                   "password=first-pass", token=None, home=home), nullable=TOKEN_NULLABLE, ignore=LOGIN_IGNORE)
        assert r.rc == 0, r
        auth = r.json()["auth"]
        assert auth["policies"] == ["default", pol] and auth["metadata"] == {"username": "alice"} and auth["lease_duration"] == 3600, auth
        tok = auth["client_token"]
        r = tr.cli("the user's token reads", t.bao("kv", "get", "-field=v", f"{t.kv2}/{pfx}/a", token=tok))
        assert r.stdout.strip() == "1", r
        r = tr.cli("and nothing else", t.bao("kv", "put", f"{t.kv2}/{pfx}/a", "v=2", token=tok))
        assert r.rc != 0, r
        r = tr.resp("wrong password", t.http("POST", f"/v1/auth/{mount}/login/alice", {"password": "nope"}, token=None), compare_err=True)
        assert r.status == 400 and r.json()["errors"] == ["invalid username or password"], r
        r = tr.resp("unknown user", t.http("POST", f"/v1/auth/{mount}/login/bob", {"password": "nope"}, token=None), compare_err=True)
        assert r.status == 400 and r.json()["errors"] == ["invalid username or password"], r

        r = tr.cli("change the password", t.bao("write", f"auth/{mount}/users/alice/password", "password=second-pass"))
        assert r.rc == 0, r
        r = tr.resp("old password", t.http("POST", f"/v1/auth/{mount}/login/alice", {"password": "first-pass"}, token=None))
        assert r.status == 400, r
        r = tr.resp("new password", t.http("POST", f"/v1/auth/{mount}/login/alice", {"password": "second-pass"}, token=None),
                    nullable=TOKEN_NULLABLE, ignore=LOGIN_IGNORE)
        assert r.status == 200, r
        r = tr.cli("the earlier token lives on", t.bao("kv", "get", "-field=v", f"{t.kv2}/{pfx}/a", token=tok))
        assert r.rc == 0, r
        r = tr.cli("set policies", t.bao("write", f"auth/{mount}/users/alice/policies", "policies=default"))
        assert r.rc == 0, r
        r = tr.cli("read again", t.bao("read", "-format=json", f"auth/{mount}/users/alice"))
        assert r.json()["data"]["token_policies"] == ["default"] and r.json()["data"]["token_ttl"] == 3600, r
        r = tr.resp("a user without a password", t.http("POST", f"/v1/auth/{mount}/users/carol", {"policies": "default"}), compare_err=True)
        assert r.status == 400, r

        c = t.hvac()
        V.hvac_call(tr, "hvac create_or_update_user", lambda: c.auth.userpass.create_or_update_user(
            "dave", "dave-pass", policies=[pol], mount_point=mount))
        got = V.hvac_call(tr, "hvac read_user", lambda: c.auth.userpass.read_user("dave", mount_point=mount))
        assert got["data"]["token_policies"] == [pol], got
        got = V.hvac_call(tr, "hvac list_user", lambda: c.auth.userpass.list_user(mount_point=mount))
        assert sorted(got["data"]["keys"]) == ["alice", "dave"], got
        got = V.hvac_call(tr, "hvac login", lambda: t.hvac(token=None).auth.userpass.login("dave", "dave-pass", mount_point=mount),
                          nullable=TOKEN_NULLABLE, ignore=LOGIN_IGNORE)
        assert got["auth"]["client_token"], got
        V.hvac_call(tr, "hvac update_password_on_user", lambda: c.auth.userpass.update_password_on_user("dave", "dave-next", mount_point=mount))
        V.hvac_call(tr, "hvac delete_user", lambda: c.auth.userpass.delete_user("dave", mount_point=mount))
        r = tr.resp("read a deleted user", t.http("GET", f"/v1/auth/{mount}/users/dave"))
        assert r.status == 404, r
        r = tr.cli("auth disable", t.bao("auth", "disable", f"{mount}/"))
        assert r.rc == 0, r
        r = tr.resp("login after disable", t.http("POST", f"/v1/auth/{mount}/login/alice", {"password": "second-pass"}, token=None))
        assert r.status in (400, 403, 404, 405), r
        return tr

    compared(target, "userpass", scenario)


@pytest.fixture
def real_tessera(tessera_target):
    if tessera_target.is_bao:
        pytest.skip("tessera-only test (VAULT_E2E_SELFTEST=1 runs bao in its place)")
    return tessera_target


def test_a_delegated_user_manager_cannot_name_policies_it_could_not_grant(real_tessera):
    t = real_tessera
    tok = t.native_token
    mount = V.unique("upd")
    assert t.http("POST", f"/v1/sys/auth/{mount}", {"type": "userpass"}).status == 204
    assert t.http("PUT", f"/v1/sys/policies/acl/{mount}-big", {"policy": 'path "secret/data/*" { capabilities = ["read", "update"] }'}).status == 204
    name = V.unique("umgr")
    am = t.native("create-auth-method", {"token": tok, "name": name})
    t.native("create-role", {"token": tok, "name": f"{name}-r"})
    t.native("set-role-rule", {"token": tok, "role-name": f"{name}-r", "path": f"/{mount}/users/*",
                               "capability": ["create", "update", "read", "delete"], "rule-type": "auth-method-rule"})
    t.native("assoc-role-am", {"token": tok, "role-name": f"{name}-r", "am-name": name})
    vt = f"{am['access_id']}..{am['access_key']}"
    r = t.http("POST", f"/v1/auth/{mount}/users/eve", {"password": "eve-pass", "policies": f"{mount}-big"}, token=vt)
    assert r.status == 403, r
    r = t.http("POST", f"/v1/auth/{mount}/users/eve", {"password": "eve-pass", "policies": "default"}, token=vt)
    assert r.status == 204, r
    r = t.http("POST", f"/v1/auth/{mount}/users/eve/policies", {"policies": f"{mount}-big"}, token=vt)
    assert r.status == 403, r
    # The password never shows, in answers or in the audit trail.
    r = t.http("GET", f"/v1/auth/{mount}/users/eve", token=vt)
    assert r.status == 200 and b"eve-pass" not in r.body, r
    trail = t.native("audit-query", {"token": tok, "path-prefix": f"/{mount}/users/eve"})["events"]
    assert trail and "eve-pass" not in str(trail), trail
    assert t.http("DELETE", f"/v1/sys/auth/{mount}").status == 204
