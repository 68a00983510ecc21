"""Tokens limited by use count (`num_uses`), side by side with OpenBao: `bao token create
-use-limit`, each request spends a use (a lookup-self shows what is left), the last use revokes
the token, a limited token cannot create child tokens, and the limit comes from an AppRole
role's `token_num_uses` and a token role's `token_num_uses` too.

Tessera-only: concurrent requests never spend more uses than the token has."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

import vaultlib as V
from test_vault_policies import TOKEN_NULLABLE, token_of, write_file

LOOKUP_IGNORE = ("$.data.accessor", "$.data.creation_time", "$.data.creation_ttl", "$.data.expire_time", "$.data.issue_time",
                 "$.data.ttl", "$.data.id", "$.data.display_name", "$.data.entity_id", "$.data.explicit_max_ttl")


def test_token_use_limit(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        pol = f"{pfx}-uses"
        assert t.bao("policy", "write", pol, write_file(t, "uses.hcl",
                     f'path "{t.kv2}/data/{pfx}/*" {{ capabilities = ["read"] }}\n'
                     'path "auth/token/create" { capabilities = ["update"] }\n')).rc == 0
        assert t.bao("kv", "put", f"{t.kv2}/{pfx}/a", "v=1").rc == 0
        r = tr.cli("token create -use-limit=3", t.bao("token", "create", "-use-limit=3", f"-policy={pol}", "-format=json"),
                   nullable=TOKEN_NULLABLE)
        tok = token_of(r)
        r = tr.cli("lookup-self spends one", t.bao("token", "lookup", "-format=json", token=tok), ignore=LOOKUP_IGNORE,
                   nullable=TOKEN_NULLABLE)
        assert r.json()["data"]["num_uses"] == 2, r
        r = tr.cli("a limited token makes no children", t.bao("token", "create", f"-policy={pol}", token=tok))
        assert r.rc != 0 and "restricted use token cannot generate child tokens" in r.stderr, r
        r = tr.cli("the last use is served", t.bao("kv", "get", "-format=json", f"{t.kv2}/{pfx}/a", token=tok),
                   ignore=("$.data.metadata.created_time",))
        assert r.rc == 0 and r.json()["data"]["data"] == {"v": "1"}, r
        r = tr.cli("then the token is gone", t.bao("kv", "get", f"{t.kv2}/{pfx}/a", token=tok))
        assert r.rc != 0 and "permission denied" in r.stderr, r
        r = tr.resp("its lookup by the parent", t.http("POST", "/v1/auth/token/lookup", {"token": tok}), compare_err=True)
        assert r.status in (400, 403), r

        # hvac: num_uses on create.
        c = t.hvac()
        got = V.hvac_call(tr, "hvac create_token num_uses=1", lambda: c.auth.token.create(policies=[pol], num_uses=1),
                          nullable=TOKEN_NULLABLE)
        assert got["auth"]["num_uses"] == 1, got
        r = t.http("GET", f"/v1/{t.kv2}/data/{pfx}/a", token=got["auth"]["client_token"])
        assert r.status == 200, r
        r = t.http("GET", f"/v1/{t.kv2}/data/{pfx}/a", token=got["auth"]["client_token"])
        assert r.status == 403, r
        r = tr.resp("negative num_uses", t.http("POST", "/v1/auth/token/create", {"num_uses": -1}), compare_err=True)
        assert r.status == 400, r

        # Token roles: the role's token_num_uses applies.
        role = f"{pfx}-tr"
        assert t.bao("write", f"auth/token/roles/{role}", "token_num_uses=2").rc == 0
        r = tr.cli("read the role", t.bao("read", "-format=json", f"auth/token/roles/{role}"))
        assert r.json()["data"]["token_num_uses"] == 2, r
        r = tr.resp("create from the role", t.http("POST", f"/v1/auth/token/create/{role}", {}), nullable=TOKEN_NULLABLE)
        assert r.json()["auth"]["num_uses"] == 2, r
        assert t.bao("delete", f"auth/token/roles/{role}").rc == 0

        # AppRole: token_num_uses on the role limits every login's token.
        mount = f"{pfx}ar"
        assert t.http("POST", f"/v1/sys/auth/{mount}", {"type": "approle"}).status == 204
        r = tr.cli("approle role with token_num_uses", t.bao("write", f"auth/{mount}/role/ci", f"token_policies={pol}", "token_num_uses=2"))
        assert r.rc == 0, r
        r = tr.cli("read it", t.bao("read", "-field=token_num_uses", f"auth/{mount}/role/ci"))
        assert r.stdout.strip() == "2", r
        role_id = t.bao("read", "-field=role_id", f"auth/{mount}/role/ci/role-id").stdout.strip()
        secret_id = t.bao("write", "-f", "-field=secret_id", f"auth/{mount}/role/ci/secret-id").stdout.strip()
        r = tr.resp("login", t.http("POST", f"/v1/auth/{mount}/login", {"role_id": role_id, "secret_id": secret_id}, token=None),
                    nullable=TOKEN_NULLABLE, ignore=("$.auth.metadata",))
        assert r.json()["auth"]["num_uses"] == 2, r
        login = r.json()["auth"]["client_token"]
        for i in range(2):
            assert t.http("GET", f"/v1/{t.kv2}/data/{pfx}/a", token=login).status == 200, i
        assert t.http("GET", f"/v1/{t.kv2}/data/{pfx}/a", token=login).status == 403
        assert t.http("DELETE", f"/v1/sys/auth/{mount}").status == 204
        return tr

    compared(target, "token-uses", scenario)


@pytest.fixture
def real_tessera(tessera_target):
    if tessera_target.is_bao:
        pytest.skip("tessera-only test (VAULT_E2E_SELFTEST=1 runs bao in its place)")
    return tessera_target


def test_concurrent_requests_never_spend_more_uses_than_a_token_has(real_tessera):
    t = real_tessera
    pfx = V.unique("race")
    pol = f"{pfx}-p"
    r = t.http("PUT", f"/v1/sys/policies/acl/{pol}", {"policy": f'path "{t.kv2}/data/{pfx}/*" {{ capabilities = ["read"] }}'})
    assert r.status == 204, r
    assert t.http("POST", f"/v1/{t.kv2}/data/{pfx}/a", {"data": {"v": "1"}}).status == 200
    r = t.http("POST", "/v1/auth/token/create", {"policies": [pol], "num_uses": 5})
    tok = r.json()["auth"]["client_token"]
    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(lambda _: t.http("GET", f"/v1/{t.kv2}/data/{pfx}/a", token=tok).status, range(24)))
    assert codes.count(200) == 5 and codes.count(403) == 19, codes
