"""Token roles, side by side with OpenBao: `bao write auth/token/roles/<name>`, read, list and
delete, and `bao token create -role=<name>`: a role's allowed policies bound its tokens instead
of the creating token, disallowed policies are refused, an orphan role makes orphans without the
orphan right, the role's period and path suffix show in the token, and a role without allowed
policies keeps the parent's subset rule (one with only disallowed policies allows the rest). hvac's token-role calls are compared too.

Tessera-only: writing a role is a grant. A limited identity cannot name policies it could not
grant, a glob, root, or an orphan role without the orphan right.

Deliberate differences, named where they are ignored: the default TTL of a created token is 30
days (OpenBao: 32); `token_bound_cidrs` and `allowed_entity_aliases` on a role are refused."""

from __future__ import annotations

import pytest

import vaultlib as V
from test_vault_policies import TOKEN_NULLABLE, token_of, write_file


def test_token_roles_with_the_cli(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        app, other, creator = f"{pfx}-app", f"{pfx}-other", f"{pfx}-creator"
        assert t.bao("policy", "write", app, write_file(t, "app.hcl",
                     f'path "{t.kv2}/data/{pfx}/app/*" {{ capabilities = ["read"] }}\n')).rc == 0
        assert t.bao("policy", "write", other, write_file(t, "other.hcl",
                     f'path "{t.kv2}/data/{pfx}/other/*" {{ capabilities = ["read"] }}\n')).rc == 0
        assert t.bao("policy", "write", creator, write_file(t, "creator.hcl",
                     'path "auth/token/create/*" { capabilities = ["update"] }\n')).rc == 0
        assert t.bao("kv", "put", f"{t.kv2}/{pfx}/app/a", "v=1").rc == 0
        assert t.bao("kv", "put", f"{t.kv2}/{pfx}/other/a", "v=1").rc == 0
        ci, orph, free = f"{pfx}-ci", f"{pfx}-orph", f"{pfx}-free"

        r = tr.cli("write role", t.bao("write", f"auth/token/roles/{ci}", f"allowed_policies={app}", f"disallowed_policies={other}"))
        assert r.rc == 0, r
        r = tr.cli("read role", t.bao("read", "-format=json", f"auth/token/roles/{ci}"))
        d = r.json()["data"]
        assert d["allowed_policies"] == [app] and d["disallowed_policies"] == [other] and d["orphan"] is False, d
        r = tr.cli("update role (fields kept)", t.bao("write", f"auth/token/roles/{ci}", "token_period=1h"))
        assert r.rc == 0, r
        d = t.bao("read", "-format=json", f"auth/token/roles/{ci}").json()["data"]
        assert d["allowed_policies"] == [app] and d["token_period"] == 3600, d
        r = tr.resp("bad path suffix", t.http("POST", f"/v1/auth/token/roles/{pfx}-bad", {"path_suffix": "v1"}), compare_err=True)
        assert r.status == 400, r
        r = tr.resp("negative period", t.http("POST", f"/v1/auth/token/roles/{pfx}-bad", {"token_period": "-1"}))
        assert r.status == 400, r
        r = tr.resp("missing role", t.http("GET", f"/v1/auth/token/roles/{pfx}-nope"))
        assert r.status == 404, r
        assert t.bao("write", f"auth/token/roles/{orph}", f"allowed_policies={app}", "orphan=true", "path_suffix=v1x",
                     "renewable=false", "token_explicit_max_ttl=10h").rc == 0
        assert t.bao("write", f"auth/token/roles/{free}", "renewable=true").rc == 0
        r = tr.cli("list roles", t.bao("list", "-format=json", "auth/token/roles"))
        assert {ci, orph, free} <= set(r.json()), r

        # The creator holds only `other` and the right to create from roles.
        parent = token_of(t.bao("token", "create", f"-policy={creator}", f"-policy={other}", "-format=json"))
        r = tr.cli("create from role", t.bao("token", "create", f"-role={ci}", "-format=json", token=parent), nullable=TOKEN_NULLABLE)
        a = r.json()["auth"]
        assert sorted(a["policies"]) == sorted([app, "default"]) and a["lease_duration"] == 3600 and a["orphan"] is False, a
        tok = a["client_token"]
        r = tr.cli("role token reads app", t.bao("kv", "get", f"{t.kv2}/{pfx}/app/a", token=tok))
        assert r.rc == 0, r
        r = tr.cli("role token cannot read other", t.bao("kv", "get", f"{t.kv2}/{pfx}/other/a", token=tok))
        assert r.rc == 2, r
        r = tr.resp("lookup names the role", t.http("GET", "/v1/auth/token/lookup-self", token=tok), nullable=TOKEN_NULLABLE)
        d = r.json()["data"]
        assert d["role"] == ci and d["path"] == f"auth/token/create/{ci}", d
        r = tr.cli("policy outside the role", t.bao("token", "create", f"-role={ci}", f"-policy={other}", token=parent), compare_err=True)
        assert r.rc == 2 and "must be subset of the role's allowed policies" in r.stderr, r
        r = tr.resp("unknown role", t.http("POST", f"/v1/auth/token/create/{pfx}-nope", {}, token=parent), compare_err=True)
        assert r.status == 400, r

        r = tr.resp("orphan role", t.http("POST", f"/v1/auth/token/create/{orph}", {}, token=parent), nullable=TOKEN_NULLABLE)
        a = r.json()["auth"]
        assert a["orphan"] is True and a["renewable"] is False and sorted(a["policies"]) == sorted([app, "default"]), a
        r = tr.resp("orphan lookup", t.http("GET", "/v1/auth/token/lookup-self", token=a["client_token"]), nullable=TOKEN_NULLABLE)
        assert r.json()["data"]["path"] == f"auth/token/create/{orph}/v1x", r

        # Without allowed policies, the parent's subset rule holds; disallowed ones are refused.
        r = tr.resp("free role: parent's policies", t.http("POST", f"/v1/auth/token/create/{free}", {}, token=parent), nullable=TOKEN_NULLABLE)
        assert sorted(r.json()["auth"]["policies"]) == sorted([creator, "default", other]), r
        r = tr.resp("free role: cannot widen", t.http("POST", f"/v1/auth/token/create/{free}", {"policies": [app]}, token=parent), compare_err=True)
        assert r.status == 400, r
        r = tr.resp("disallowed policy", t.http("POST", f"/v1/auth/token/create/{ci}", {"policies": [other]}), compare_err=True)
        assert r.status == 400, r

        # Revoking the parent takes the role's child with it, not the orphan.
        assert t.bao("token", "revoke", parent).rc == 0
        r = tr.cli("child revoked with parent", t.bao("token", "lookup", token=tok))
        assert r.rc == 2, r

        r = tr.cli("delete role", t.bao("delete", f"auth/token/roles/{ci}"))
        assert r.rc == 0, r
        r = tr.cli("read deleted role", t.bao("read", f"auth/token/roles/{ci}"))
        assert r.rc == 2, r
        r = tr.cli("delete missing role", t.bao("delete", f"auth/token/roles/{ci}"))
        assert r.rc == 0, r
        for name in (orph, free):
            assert t.bao("delete", f"auth/token/roles/{name}").rc == 0
        return tr

    compared(target, "token-roles-cli", scenario)


def test_token_roles_with_hvac(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        c = t.hvac()
        app, role = f"{pfx}-hvapp", f"{pfx}-hvrole"
        assert t.bao("policy", "write", app, write_file(t, "app.hcl",
                     f'path "{t.kv2}/data/{pfx}/*" {{ capabilities = ["read"] }}\n')).rc == 0
        V.hvac_call(tr, "create_or_update_token_role", lambda: c.auth.token.create_or_update_role(
            role, allowed_policies=[app], orphan=False, renewable=True, token_period="30m"))
        got = V.hvac_call(tr, "read_role", lambda: c.auth.token.read_role(role))
        assert got["data"]["allowed_policies"] == [app] and got["data"]["token_period"] == 1800, got
        got = V.hvac_call(tr, "list_roles", lambda: c.auth.token.list_roles())
        assert role in got["data"]["keys"], got
        got = V.hvac_call(tr, "create with role", lambda: c.auth.token.create(role_name=role), nullable=TOKEN_NULLABLE)
        assert sorted(got["auth"]["policies"]) == sorted([app, "default"]) and got["auth"]["lease_duration"] == 1800, got
        V.hvac_call(tr, "delete_role", lambda: c.auth.token.delete_role(role))
        V.hvac_call(tr, "read deleted role", lambda: c.auth.token.read_role(role))
        return tr

    compared(target, "token-roles-hvac", scenario)


@pytest.fixture
def real_tessera(tessera_target):
    if tessera_target.is_bao:
        pytest.skip("tessera-only test (VAULT_E2E_SELFTEST=1 runs bao in its place)")
    return tessera_target


def test_a_limited_identity_cannot_delegate_what_it_cannot_grant(real_tessera, pfx):
    t = real_tessera
    secret, mine, roles = f"{pfx}-secret", f"{pfx}-mine", f"{pfx}-roleadmin"
    assert t.bao("policy", "write", secret, write_file(t, "s.hcl", f'path "{t.kv2}/data/{pfx}/secret/*" {{ capabilities = ["read"] }}\n')).rc == 0
    assert t.bao("policy", "write", mine, write_file(t, "m.hcl", f'path "{t.kv2}/data/{pfx}/mine/*" {{ capabilities = ["read"] }}\n')).rc == 0
    # May administer token roles and create from them, and holds `mine` only.
    assert t.bao("policy", "write", roles, write_file(t, "r.hcl",
                 'path "auth/token/roles/*" { capabilities = ["create", "read", "update", "delete", "list"] }\n'
                 'path "auth/token/create/*" { capabilities = ["update"] }\n')).rc == 0
    lim = token_of(t.bao("token", "create", f"-policy={roles}", f"-policy={mine}", "-format=json"))

    def write(name: str, body: dict) -> V.Resp:
        return t.http("POST", f"/v1/auth/token/roles/{pfx}-{name}", body, token=lim)

    r = write("steal", {"allowed_policies": [secret]})
    assert r.status == 403, r
    r = write("root", {"allowed_policies": ["root"]})
    assert r.status == 403, r
    r = write("glob", {"allowed_policies_glob": ["*"]})
    assert r.status == 403, r
    r = write("ghost", {"allowed_policies": [f"{pfx}-not-yet"]})
    assert r.status == 400, r
    r = write("orphan", {"allowed_policies": [mine], "orphan": True})
    assert r.status == 403, r
    # Only disallowed policies: everything else is allowed, so that is for an administrator.
    r = write("open", {"disallowed_policies": [mine]})
    assert r.status == 403, r
    r = write("cidr", {"token_bound_cidrs": ["10.0.0.0/8"]})
    assert r.status == 400, r
    for name in ("steal", "root", "glob", "ghost", "orphan", "open", "cidr"):
        assert t.http("GET", f"/v1/auth/token/roles/{pfx}-{name}", token=lim).status == 404, name
    # What it may grant, it may delegate; the role's tokens get that and no more.
    r = write("ok", {"allowed_policies": [mine]})
    assert r.status == 204, r
    r = t.http("POST", f"/v1/auth/token/create/{pfx}-ok", {}, token=lim)
    assert r.status == 200, r
    tok = r.json()["auth"]["client_token"]
    assert t.bao("kv", "put", f"{t.kv2}/{pfx}/secret/x", "v=1").rc == 0
    assert t.bao("kv", "put", f"{t.kv2}/{pfx}/mine/x", "v=1").rc == 0
    assert t.bao("kv", "get", f"{t.kv2}/{pfx}/mine/x", token=tok).rc == 0
    assert t.bao("kv", "get", f"{t.kv2}/{pfx}/secret/x", token=tok).rc == 2
    # Without the right on the role's create path, nothing is created; anonymous is refused.
    other = token_of(t.bao("token", "create", f"-policy={mine}", "-format=json"))
    assert t.http("POST", f"/v1/auth/token/create/{pfx}-ok", {}, token=other).status == 403
    assert t.http("POST", f"/v1/auth/token/create/{pfx}-ok", {}, token="").status == 403
    assert t.http("LIST", "/v1/auth/token/roles", token="").status == 403
    # Odd names are a clean 4xx.
    for bad in ("-x", "a%20b", "x" * 300, "..", "%00", "a%2Fb"):
        r = t.http("POST", f"/v1/auth/token/roles/{bad}", {}, token=lim)
        assert 400 <= r.status < 500, (bad, r)


def test_hvac_periodic_and_wrapped_tokens(target, compared, pfx):
    """The calls of hvac's own token tests: periodic tokens show their period, a wrapped token
    creation unwraps to a token, explicit max TTL caps the lease, lookup by accessor hides the id."""
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        c = t.hvac()
        got = V.hvac_call(tr, "create periodic", lambda: c.auth.token.create(period="30m"), nullable=TOKEN_NULLABLE)
        assert got["auth"]["lease_duration"] == 1800, got
        tok = got["auth"]["client_token"]
        got = V.hvac_call(tr, "lookup periodic", lambda: c.auth.token.lookup(tok), nullable=TOKEN_NULLABLE)
        assert got["data"]["period"] == 1800 and got["data"]["id"] == tok, got
        got = V.hvac_call(tr, "renew periodic", lambda: c.auth.token.renew(tok), nullable=TOKEN_NULLABLE + ("$.warnings",))
        assert got["auth"]["client_token"] == tok, got
        got = V.hvac_call(tr, "create wrapped", lambda: c.auth.token.create(period="30m", wrap_ttl="15m"),
                          nullable=("$.wrap_info.wrapped_accessor",))
        assert got["auth"] is None and got["wrap_info"]["ttl"] == 900, got
        got = V.hvac_call(tr, "unwrap", lambda: c.sys.unwrap(token=got["wrap_info"]["token"]), nullable=TOKEN_NULLABLE)
        assert got["auth"]["lease_duration"] == 1800, got
        got = V.hvac_call(tr, "lookup unwrapped", lambda: c.auth.token.lookup(got["auth"]["client_token"]), nullable=TOKEN_NULLABLE)
        assert got["data"]["period"] == 1800, got
        got = V.hvac_call(tr, "explicit max ttl", lambda: c.auth.token.create(ttl="30m", explicit_max_ttl="5m"),
                          nullable=TOKEN_NULLABLE + ("$.warnings",))
        assert got["auth"]["lease_duration"] == 300, got
        acc = got["auth"]["accessor"]
        got = V.hvac_call(tr, "lookup_accessor", lambda: c.auth.token.lookup_accessor(acc), nullable=TOKEN_NULLABLE)
        assert got["data"]["accessor"] == acc and not got["data"]["id"], got
        V.hvac_call(tr, "revoke_accessor", lambda: c.auth.token.revoke_accessor(acc))
        V.hvac_call(tr, "lookup_accessor after revoke", lambda: c.auth.token.lookup_accessor(acc))
        return tr

    compared(target, "hvac-periodic-wrapped-tokens", scenario)


def test_no_role_hands_out_the_administrator_role(real_tessera, pfx):
    """Roles an administrator writes in Vault's usual shapes (only disallowed policies, a glob
    of everything) still never give `admin` (Tessera's root) or `root` to a creator that does
    not hold everything, and an oversized request is refused before any work."""
    t = real_tessera
    creator = f"{pfx}-maker"
    assert t.bao("policy", "write", creator, write_file(t, "c.hcl", 'path "auth/token/create/*" { capabilities = ["update"] }\n')).rc == 0
    lim = token_of(t.bao("token", "create", f"-policy={creator}", "-format=json"))
    for name, body in ((f"{pfx}-disroot", {"disallowed_policies": "root"}), (f"{pfx}-glob", {"allowed_policies_glob": "*"}),
                       (f"{pfx}-adm", {"allowed_policies": ["admin", creator]})):
        assert t.http("POST", f"/v1/auth/token/roles/{name}", body).status == 204
        for wanted in (["admin"], ["root"], ["Admin"]):
            r = t.http("POST", f"/v1/auth/token/create/{name}", {"policies": wanted}, token=lim)
            assert r.status == 400, (name, wanted, r)
    r = t.http("POST", f"/v1/auth/token/create/{pfx}-adm", {}, token=lim)
    assert r.status == 400, r
    r = t.http("POST", f"/v1/auth/token/create/{pfx}-glob", {"policies": [f"p{i}" for i in range(20000)]}, token=lim)
    assert r.status == 400, r
    # What the glob role is for still works.
    r = t.http("POST", f"/v1/auth/token/create/{pfx}-glob", {"policies": [creator]}, token=lim)
    assert r.status == 200, r
