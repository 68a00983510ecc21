"""AppRole, side by side with OpenBao: the CI flow with the bao CLI (enable, a role with
token_policies, role-id, secret-id, login, use the token), the role's secret_id_num_uses and
secret_id_ttl enforced, secret ids looked up and destroyed by value and by accessor, a role
without bind_secret_id bound to a CIDR, and hvac's AppRole calls.

On Tessera an AppRole role is an auth method (`/<mount>/role/<name>`) whose access id is the
role_id unless a custom one is set; its secret ids are credentials of that method. Deliberate
differences, named where they are ignored: generated role_ids are Tessera access ids (`p-…`),
not UUIDs; approle/ stays enabled when disabled (its roles are removed), since API keys log in
there."""

from __future__ import annotations

import time

import vaultlib as V

POLICY = 'path "{kv2}/data/{pfx}/ci/*" {{ capabilities = ["read"] }}\n'
LOGIN_NULLABLE = ("$.auth.entity_id",)


def test_approle_ci_flow_with_the_cli(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        role = f"{pfx}-ci"
        r = t.bao("auth", "enable", "approle")
        assert r.rc == 0 or "path is already in use" in r.stderr, r
        p = t.new_home() / "ci.hcl"
        p.write_text(POLICY.format(kv2=t.kv2, pfx=pfx))
        assert t.bao("policy", "write", role, str(p)).rc == 0
        assert t.bao("kv", "put", f"{t.kv2}/{pfx}/ci/db", "password=s3cret").rc == 0
        assert t.bao("kv", "put", f"{t.kv2}/{pfx}/other", "x=1").rc == 0

        r = tr.cli("write role", t.bao("write", f"auth/approle/role/{role}", f"token_policies={role}", "token_ttl=20m",
                                       "secret_id_ttl=1h", "secret_id_num_uses=2"))
        assert r.rc == 0, r
        r = tr.cli("read role", t.bao("read", "-format=json", f"auth/approle/role/{role}"))
        d = r.json()["data"]
        assert d["token_policies"] == [role] and d["secret_id_num_uses"] == 2 and d["token_ttl"] == 1200, d
        r = tr.cli("list roles", t.bao("list", "-format=json", "auth/approle/role"))
        assert role in r.json(), r
        r = tr.cli("role-id", t.bao("read", "-format=json", f"auth/approle/role/{role}/role-id"))
        role_id = r.json()["data"]["role_id"]
        r = tr.cli("secret-id", t.bao("write", "-f", "-format=json", f"auth/approle/role/{role}/secret-id", 'metadata={"job":"build"}'))
        sid = r.json()["data"]
        assert sid["secret_id_num_uses"] == 2 and sid["secret_id_ttl"] == 3600, sid
        tr.normalize[sid["secret_id_accessor"]] = "ACCESSOR"

        r = tr.cli("login 1", t.bao("write", "-format=json", "auth/approle/login", f"role_id={role_id}",
                                    f"secret_id={sid['secret_id']}", token=None), nullable=LOGIN_NULLABLE)
        auth = r.json()["auth"]
        assert sorted(auth["policies"]) == ["default", role] and auth["metadata"] == {"job": "build", "role_name": role}, auth
        assert auth["lease_duration"] == 1200 and auth["orphan"] is True, auth
        tok = auth["client_token"]
        r = tr.cli("read with the token", t.bao("kv", "get", "-field=password", f"{t.kv2}/{pfx}/ci/db", token=tok))
        assert r.rc == 0 and r.stdout.strip() == "s3cret", r
        r = tr.cli("other is denied", t.bao("kv", "get", f"{t.kv2}/{pfx}/other", token=tok))
        assert r.rc == 2 and "403" in r.stderr, r
        r = tr.cli("lookup the token", t.bao("token", "lookup", "-format=json", token=tok), nullable=("$.data.entity_id", "$.data.meta"))
        assert r.json()["data"]["path"] == "auth/approle/login", r

        r = tr.resp("lookup secret id", t.http("POST", f"/v1/auth/approle/role/{role}/secret-id/lookup", {"secret_id": sid["secret_id"]}))
        assert r.json()["data"]["secret_id_num_uses"] == 1 and r.json()["data"]["metadata"] == {"job": "build"}, r
        r = tr.cli("login 2 (last use)", t.bao("write", "-format=json", "auth/approle/login", f"role_id={role_id}",
                                               f"secret_id={sid['secret_id']}", token=None), nullable=LOGIN_NULLABLE)
        assert r.rc == 0, r
        r = tr.cli("login 3 (used up)", t.bao("write", "auth/approle/login", f"role_id={role_id}", f"secret_id={sid['secret_id']}", token=None))
        assert r.rc == 2 and "invalid role or secret ID" in r.stderr, r
        r = tr.resp("login: wrong secret id", t.http("POST", "/v1/auth/approle/login", {"role_id": role_id, "secret_id": "nope"}, token=None),
                    compare_err=True)
        assert r.status == 400, r
        r = tr.resp("login: unknown role id", t.http("POST", "/v1/auth/approle/login", {"role_id": "nope-" + pfx, "secret_id": "nope"}, token=None))
        assert r.status == 400, r
        return tr

    compared(target, "approle-cli", scenario)


def test_approle_secret_id_ttl_accessors_and_unbound_roles(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        role = f"{pfx}-short"
        t.http("POST", "/v1/sys/auth/approle", {"type": "approle"})
        r = tr.resp("write role", t.http("POST", f"/v1/auth/approle/role/{role}", {"token_policies": "default", "secret_id_ttl": "2s"}))
        assert r.status == 204, r
        role_id = t.http("GET", f"/v1/auth/approle/role/{role}/role-id").json()["data"]["role_id"]
        s1 = t.http("POST", f"/v1/auth/approle/role/{role}/secret-id", {}).json()["data"]
        r = tr.resp("secret id longer than the role's", t.http("POST", f"/v1/auth/approle/role/{role}/secret-id", {"ttl": "1h"}), compare_err=True)
        assert r.status == 400, r
        s2 = t.http("POST", f"/v1/auth/approle/role/{role}/secret-id", {"ttl": "1s"}).json()["data"]
        assert s2["secret_id_ttl"] == 1, s2
        r = tr.resp("list accessors", t.http("LIST", f"/v1/auth/approle/role/{role}/secret-id"))
        assert sorted(r.json()["data"]["keys"]) == sorted([s1["secret_id_accessor"], s2["secret_id_accessor"]]), r
        r = tr.resp("lookup by accessor", t.http("POST", f"/v1/auth/approle/role/{role}/secret-id-accessor/lookup",
                                                 {"secret_id_accessor": s2["secret_id_accessor"]}))
        assert r.json()["data"]["secret_id_accessor"] == s2["secret_id_accessor"], r
        r = tr.resp("destroy by accessor", t.http("POST", f"/v1/auth/approle/role/{role}/secret-id-accessor/destroy",
                                                  {"secret_id_accessor": s2["secret_id_accessor"]}))
        assert r.status == 204, r
        r = tr.resp("destroyed cannot log in", t.http("POST", "/v1/auth/approle/login", {"role_id": role_id, "secret_id": s2["secret_id"]}, token=None))
        assert r.status == 400, r
        time.sleep(2.5)
        r = tr.resp("expired cannot log in", t.http("POST", "/v1/auth/approle/login", {"role_id": role_id, "secret_id": s1["secret_id"]}, token=None))
        assert r.status == 400, r
        r = tr.resp("unknown role secret-id", t.http("POST", f"/v1/auth/approle/role/{role}-none/secret-id", {}))
        assert r.status == 404, r
        r = tr.resp("read unknown role", t.http("GET", f"/v1/auth/approle/role/{role}-none"))
        assert r.status == 404, r

        # A role without a secret id must be bound to addresses.
        unbound = f"{pfx}-open"
        # Deliberate difference: OpenBao answers this bad input with a 500; Tessera with a 400.
        r = t.http("POST", f"/v1/auth/approle/role/{unbound}", {"bind_secret_id": False})
        assert r.status == (500 if t.is_bao else 400), r
        assert b"at least one constraint should be enabled on the role" in r.body, r
        r = tr.resp("bound to loopback", t.http("POST", f"/v1/auth/approle/role/{unbound}",
                                                {"bind_secret_id": False, "secret_id_bound_cidrs": "127.0.0.0/8"}))
        assert r.status == 204, r
        rid = t.http("GET", f"/v1/auth/approle/role/{unbound}/role-id").json()["data"]["role_id"]
        r = tr.resp("login without secret id", t.http("POST", "/v1/auth/approle/login", {"role_id": rid}, token=None), nullable=LOGIN_NULLABLE)
        assert r.status == 200, r
        assert t.http("POST", f"/v1/auth/approle/role/{unbound}", {"secret_id_bound_cidrs": "10.9.9.0/24"}).status == 204
        r = tr.resp("login from outside the CIDR", t.http("POST", "/v1/auth/approle/login", {"role_id": rid}, token=None))
        assert r.status == 400, r
        r = tr.resp("delete role", t.http("DELETE", f"/v1/auth/approle/role/{role}"))
        assert r.status == 204, r
        r = tr.resp("deleted role's secret id", t.http("POST", "/v1/auth/approle/login", {"role_id": role_id, "secret_id": s1["secret_id"]}, token=None))
        assert r.status == 400, r
        return tr

    compared(target, "approle-ttl-accessors", scenario)


def test_hvac_approle(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        c = t.hvac()
        role = f"{pfx}-hv"
        t.http("POST", "/v1/sys/auth/approle", {"type": "approle"})
        V.hvac_call(tr, "create_or_update_approle", lambda: c.auth.approle.create_or_update_approle(
            role_name=role, token_policies=["default"], token_ttl="10m", secret_id_num_uses=1))
        got = V.hvac_call(tr, "read_role", lambda: c.auth.approle.read_role(role_name=role))
        assert got["data"]["secret_id_num_uses"] == 1, got
        got = V.hvac_call(tr, "list_roles", lambda: c.auth.approle.list_roles())
        assert role in got["data"]["keys"], got
        role_id = V.hvac_call(tr, "read_role_id", lambda: c.auth.approle.read_role_id(role_name=role))["data"]["role_id"]
        sid = V.hvac_call(tr, "generate_secret_id", lambda: c.auth.approle.generate_secret_id(role_name=role))["data"]
        tr.normalize[sid["secret_id_accessor"]] = "ACCESSOR"
        V.hvac_call(tr, "read_secret_id", lambda: c.auth.approle.read_secret_id(role_name=role, secret_id=sid["secret_id"]))
        got = V.hvac_call(tr, "login", lambda: t.hvac(None).auth.approle.login(role_id=role_id, secret_id=sid["secret_id"]),
                          nullable=LOGIN_NULLABLE)
        assert got["auth"]["lease_duration"] == 600, got
        V.hvac_call(tr, "login again (one use)", lambda: t.hvac(None).auth.approle.login(role_id=role_id, secret_id=sid["secret_id"]))
        sid2 = V.hvac_call(tr, "generate_secret_id 2", lambda: c.auth.approle.generate_secret_id(role_name=role))["data"]
        tr.normalize[sid2["secret_id_accessor"]] = "ACCESSOR2"
        V.hvac_call(tr, "destroy_secret_id", lambda: c.auth.approle.destroy_secret_id(role_name=role, secret_id=sid2["secret_id"]))
        V.hvac_call(tr, "login destroyed", lambda: t.hvac(None).auth.approle.login(role_id=role_id, secret_id=sid2["secret_id"]))
        V.hvac_call(tr, "delete_role", lambda: c.auth.approle.delete_role(role_name=role))
        return tr

    compared(target, "hvac-approle", scenario)


def test_approle_per_field_endpoints(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        r = t.bao("auth", "enable", "approle")
        assert r.rc == 0 or "path is already in use" in r.stderr, r
        role = f"{pfx}-pf"
        base = f"/v1/auth/approle/role/{role}"
        assert t.http("POST", base, {"token_policies": "default", "secret_id_num_uses": 3}).status == 204
        for endpoint in ("policies", "secret-id-num-uses", "secret-id-ttl", "token-ttl", "token-max-ttl",
                         "secret-id-bound-cidrs", "token-bound-cidrs", "period", "token-num-uses", "local-secret-ids"):
            r = tr.resp(f"read {endpoint}", t.http("GET", f"{base}/{endpoint}"))
            assert r.status == 200, (endpoint, r)
        r = tr.resp("set secret-id-num-uses", t.http("POST", f"{base}/secret-id-num-uses", {"secret_id_num_uses": 7}))
        assert r.status == 204, r
        r = tr.resp("read it", t.http("GET", f"{base}/secret-id-num-uses"))
        assert r.json()["data"] == {"secret_id_num_uses": 7}, r
        r = tr.resp("set token-ttl", t.http("POST", f"{base}/token-ttl", {"token_ttl": "10m"}))
        assert r.status == 204, r
        assert t.http("GET", base).json()["data"]["token_ttl"] == 600
        r = tr.resp("missing field", t.http("POST", f"{base}/token-ttl", {}), compare_err=True)
        assert r.status == 400 and r.json()["errors"] == ["missing token_ttl"], r
        r = tr.resp("reset secret-id-num-uses", t.http("DELETE", f"{base}/secret-id-num-uses"))
        assert r.status == 204, r
        assert t.http("GET", f"{base}/secret-id-num-uses").json()["data"] == {"secret_id_num_uses": 0}
        r = tr.resp("set period", t.http("POST", f"{base}/period", {"token_period": "2h"}))
        assert r.status == 204, r
        assert t.http("GET", f"{base}/period").json()["data"]["token_period"] == 7200
        r = tr.resp("missing role", t.http("GET", f"/v1/auth/approle/role/{pfx}-nope/token-ttl"))
        assert r.status == 404, r
        assert t.http("DELETE", base).status == 204
        return tr

    compared(target, "approle-per-field", scenario)


def test_approle_custom_secret_id(target, compared, pfx):
    """A secret id of the caller's choice logs in like a generated one. Registering the same one
    twice: OpenBao answers 500, Tessera 400 with the same text (a deliberate difference)."""
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        r = t.bao("auth", "enable", "approle")
        assert r.rc == 0 or "path is already in use" in r.stderr, r
        role = f"{pfx}-cs"
        base = f"/v1/auth/approle/role/{role}"
        assert t.http("POST", base, {"token_policies": "default", "secret_id_num_uses": 2}).status == 204
        secret = f"{pfx}-my-custom-secret"
        r = tr.resp("custom secret id", t.http("POST", f"{base}/custom-secret-id", {"secret_id": secret}))
        assert r.status == 200 and r.json()["data"]["secret_id"] == secret and r.json()["data"]["secret_id_num_uses"] == 2, r
        r = t.http("POST", f"{base}/custom-secret-id", {"secret_id": secret})
        assert r.status in (400, 500) and "SecretID is already registered" in r.json()["errors"][0], r
        r = tr.resp("missing secret id", t.http("POST", f"{base}/custom-secret-id", {}), compare_err=True)
        assert r.status == 400, r
        r = tr.resp("missing role", t.http("POST", f"/v1/auth/approle/role/{pfx}-nope/custom-secret-id", {"secret_id": "x1"}), compare_err=True)
        assert r.status == 404, r
        role_id = t.http("GET", f"{base}/role-id").json()["data"]["role_id"]
        r = tr.resp("login", t.http("POST", "/v1/auth/approle/login", {"role_id": role_id, "secret_id": secret}, token=None),
                    nullable=LOGIN_NULLABLE + ("$.auth.metadata",))
        assert r.status == 200, r
        assert t.http("DELETE", base).status == 204
        return tr

    compared(target, "approle-custom-secret-id", scenario)


def test_approle_at_another_path_with_a_custom_role_id(target, compared, pfx):
    """hvac's AppRole tests mount AppRole at their own path and set a custom role_id: enable,
    roles, role-id read and write, secret ids, login at that mount, list, and disable (which
    removes the mount's roles)."""
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        c = t.hvac()
        mount, role, role_id = f"{pfx}-approle", f"{pfx}-r", f"{pfx}-custom-role-id"
        V.hvac_call(tr, "enable approle at a path", lambda: c.sys.enable_auth_method(method_type="approle", path=mount))
        got = c.sys.list_auth_methods()
        assert got["data"][f"{mount}/"]["type"] == "approle", got
        V.hvac_call(tr, "create role", lambda: c.auth.approle.create_or_update_approle(
            role_name=role, token_policies=["default"], mount_point=mount))
        V.hvac_call(tr, "custom role id", lambda: c.auth.approle.update_role_id(role_name=role, role_id=role_id, mount_point=mount))
        got = V.hvac_call(tr, "read role id", lambda: c.auth.approle.read_role_id(role_name=role, mount_point=mount))
        assert got["data"]["role_id"] == role_id, got
        got = V.hvac_call(tr, "list roles", lambda: c.auth.approle.list_roles(mount_point=mount))
        assert got["data"]["keys"] == [role], got
        got = V.hvac_call(tr, "secret id", lambda: c.auth.approle.generate_secret_id(role_name=role, mount_point=mount))
        secret = got["data"]["secret_id"]
        got = V.hvac_call(tr, "login", lambda: t.hvac(None).auth.approle.login(role_id=role_id, secret_id=secret, mount_point=mount),
                          nullable=LOGIN_NULLABLE + ("$.auth.metadata",))
        assert got["auth"]["client_token"], got
        r = tr.resp("login at approle/ with this role id", t.http("POST", "/v1/auth/approle/login",
                    {"role_id": role_id, "secret_id": secret}, token=None), compare_err=True)
        assert r.status == 400, r
        V.hvac_call(tr, "disable", lambda: c.sys.disable_auth_method(path=mount))
        V.hvac_call(tr, "enable again", lambda: c.sys.enable_auth_method(method_type="approle", path=mount))
        r = tr.resp("the role is gone", t.http("GET", f"/v1/auth/{mount}/role/{role}"))
        assert r.status == 404, r
        V.hvac_call(tr, "disable again", lambda: c.sys.disable_auth_method(path=mount))
        return tr

    compared(target, "approle-other-path", scenario)
