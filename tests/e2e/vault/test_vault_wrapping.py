"""Response wrapping, side by side with OpenBao: X-Vault-Wrap-TTL on reads, writes, token
creation and AppRole secret ids; sys/wrapping/wrap, unwrap, lookup and rewrap with the bao CLI
and hvac; a wrapped answer unwraps exactly once, and not after its TTL.

Deliberate differences, named where they are ignored: Tessera's wrapping tokens are `w-…` (64 hex
digits), and using one as X-Vault-Token anywhere but sys/wrapping/unwrap and lookup is a 403 that
does not spend it (Vault spends it, so the recipient then finds it used). Tessera refuses wrap
TTLs above 30 days (Vault takes any), wraps only authenticated requests, and allows 1,000
outstanding wrapped answers per identity."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

import vaultlib as V

WRAP_NULLABLE = ("$.wrap_info.wrapped_accessor",)


def wrap_header(ttl: str) -> dict:
    return {"X-Vault-Wrap-TTL": ttl}


def test_wrapping_with_the_cli(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        assert t.bao("kv", "put", f"{t.kv2}/{pfx}/app", "password=s3cret").rc == 0

        r = tr.cli("wrapped read", t.bao("read", "-wrap-ttl=5m", "-format=json", f"{t.kv2}/data/{pfx}/app"), nullable=WRAP_NULLABLE)
        info = r.json()["wrap_info"]
        assert info["ttl"] == 300 and info["creation_path"] == f"{t.kv2}/data/{pfx}/app", info
        assert r.json()["data"] is None, r
        w = info["token"]
        r = tr.cli("lookup", t.bao("write", "-format=json", "sys/wrapping/lookup", f"token={w}"))
        d = r.json()["data"]
        assert d["creation_ttl"] == 300 and d["creation_path"] == f"{t.kv2}/data/{pfx}/app", d
        r = tr.cli("lookup without a token", t.bao("write", "-format=json", "sys/wrapping/lookup", f"token={w}", token=None))
        assert r.rc == 0, r
        r = tr.cli("unwrap as the wrapping token", t.bao("unwrap", "-format=json", token=w))
        assert r.json()["data"]["data"] == {"password": "s3cret"}, r
        r = tr.cli("unwrap again", t.bao("unwrap", "-format=json", token=w), compare_err=True)
        assert r.rc == 2 and "wrapping token is not valid or does not exist" in r.stderr, r
        r = tr.cli("lookup after unwrap", t.bao("write", "sys/wrapping/lookup", f"token={w}"), compare_err=True)
        assert r.rc == 2, r

        # The token in the body, by an authenticated caller; -field picks from the inner answer.
        w = t.bao("read", "-wrap-ttl=60", "-field=wrapping_token", f"{t.kv2}/data/{pfx}/app").stdout.strip()
        r = tr.cli("unwrap by value", t.bao("unwrap", "-format=json", w))
        assert r.json()["data"]["data"]["password"] == "s3cret", r
        r = tr.cli("unwrap by value again", t.bao("unwrap", w), compare_err=True)
        assert r.rc == 2, r

        # A wrapped write (its answer is the version metadata) and a wrapped list.
        r = tr.resp("wrapped write", t.http("POST", f"/v1/{t.kv2}/data/{pfx}/app", {"data": {"password": "v2"}}, headers=wrap_header("1m")),
                    nullable=WRAP_NULLABLE)
        r = tr.cli("unwrap the write", t.bao("unwrap", "-format=json", r.json()["wrap_info"]["token"]))
        assert r.json()["data"]["version"] == 2, r
        r = tr.cli("wrapped list", t.bao("list", "-wrap-ttl=1m", "-format=json", f"{t.kv2}/metadata/{pfx}"), nullable=WRAP_NULLABLE)
        r = tr.cli("unwrap the list", t.bao("unwrap", "-format=json", r.json()["wrap_info"]["token"]))
        assert r.json() == ["app"], r  # the CLI prints an unwrapped list as its keys

        # A wrapped token creation: the token inside works, and its accessor was named.
        r = tr.cli("wrapped token create", t.bao("token", "create", "-wrap-ttl=2m", "-policy=default", "-format=json"))
        info = r.json()["wrap_info"]
        assert info["creation_path"] == "auth/token/create" and info["wrapped_accessor"], info
        r = tr.cli("unwrap the token", t.bao("unwrap", "-format=json", info["token"]))
        auth = r.json()["auth"]
        assert auth["accessor"] == info["wrapped_accessor"] and auth["policies"] == ["default"], auth
        r = tr.cli("the unwrapped token works", t.bao("token", "lookup", "-format=json", token=auth["client_token"]),
                   nullable=("$.data.entity_id", "$.data.meta", "$.data.expire_time"))
        assert r.rc == 0, r

        # sys/wrapping/wrap: any data; without a wrap TTL it is refused.
        r = tr.cli("wrap data", t.bao("write", "-wrap-ttl=90s", "-format=json", "sys/wrapping/wrap", "k=v", "n=1"), nullable=WRAP_NULLABLE)
        info = r.json()["wrap_info"]
        assert info["ttl"] == 90 and info["creation_path"] == "sys/wrapping/wrap", info
        r = tr.cli("unwrap data", t.bao("unwrap", "-format=json", info["token"]))
        assert r.json()["data"] == {"k": "v", "n": "1"}, r
        r = tr.cli("wrap nothing", t.bao("write", "-f", "-wrap-ttl=90s", "-format=json", "sys/wrapping/wrap"), nullable=WRAP_NULLABLE)
        r = tr.cli("unwrap nothing", t.bao("unwrap", "-format=json", r.json()["wrap_info"]["token"]))
        assert r.json()["data"] == {}, r
        # (The CLI itself always sends a wrap TTL to sys/wrapping/wrap, 5m by default.)
        r = tr.cli("the CLI's default wrap TTL", t.bao("write", "-format=json", "sys/wrapping/wrap", "k=v"), nullable=WRAP_NULLABLE)
        assert r.json()["wrap_info"]["ttl"] == 300, r
        r = tr.resp("wrap without a TTL", t.http("POST", "/v1/sys/wrapping/wrap", {"k": "v"}), compare_err=True)
        assert r.status == 400 and r.json()["errors"] == ["endpoint requires response wrapping to be used"], r

        # Rewrap: a new token, the old one spent, the same TTL.
        w = t.bao("write", "-wrap-ttl=3m", "-field=wrapping_token", "sys/wrapping/wrap", "k=rewrapped").stdout.strip()
        r = tr.cli("rewrap", t.bao("write", "-format=json", "sys/wrapping/rewrap", f"token={w}"), nullable=WRAP_NULLABLE)
        info = r.json()["wrap_info"]
        assert info["ttl"] == 180 and info["token"] != w and info["creation_path"] == "sys/wrapping/wrap", info
        r = tr.cli("unwrap the old token", t.bao("unwrap", w), compare_err=True)
        assert r.rc == 2, r
        r = tr.cli("unwrap the new token", t.bao("unwrap", "-format=json", info["token"]))
        assert r.json()["data"] == {"k": "rewrapped"}, r
        return tr

    compared(target, "wrapping-cli", scenario)


def test_wrapping_edges_over_http(target, compared, pfx):
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        assert t.bao("kv", "put", f"{t.kv2}/{pfx}/edge", "a=b").rc == 0
        read = f"/v1/{t.kv2}/data/{pfx}/edge"
        for ttl in ("abc", "-5", "1.5"):
            r = tr.resp(f"wrap ttl {ttl}", t.http("GET", read, headers=wrap_header(ttl)), compare_err=True)
            assert r.status == 400, r
        r = tr.resp("wrap ttl 0 is no wrapping", t.http("GET", read, headers=wrap_header("0")))
        assert r.json()["data"]["data"] == {"a": "b"}, r
        r = tr.resp("a 404 is not wrapped", t.http("GET", f"/v1/{t.kv2}/data/{pfx}/missing", headers=wrap_header("5m")))
        assert r.status == 404, r
        r = tr.resp("a 204 is not wrapped", t.http("DELETE", f"/v1/{t.kv2}/metadata/{pfx}/gone", headers=wrap_header("5m")))
        assert r.status == 204, r
        r = tr.resp("a denied request is not wrapped", t.http("GET", read, headers=wrap_header("5m"), token="nope"))
        assert r.status == 403, r

        r = tr.resp("wrap", t.http("GET", read, headers=wrap_header("5m")), nullable=WRAP_NULLABLE)
        w = r.json()["wrap_info"]["token"]
        r = tr.resp("unwrap without any token", t.http("POST", "/v1/sys/wrapping/unwrap", {"token": w}, token=None), compare_err=True)
        assert r.status == 403, r
        r = tr.resp("unwrap with a bad token", t.http("POST", "/v1/sys/wrapping/unwrap", {"token": w}, token="nope"), compare_err=True)
        assert r.status == 403, r
        r = tr.resp("lookup by header", t.http("GET", "/v1/sys/wrapping/lookup", token=w))
        assert r.json()["data"]["creation_ttl"] == 300, r
        r = tr.resp("unwrap by header", t.http("POST", "/v1/sys/wrapping/unwrap", token=w))
        assert r.json()["data"]["data"] == {"a": "b"} and r.json()["wrap_info"] is None, r
        r = tr.resp("unwrap by header again", t.http("POST", "/v1/sys/wrapping/unwrap", token=w), compare_err=True)
        assert r.status == 400, r
        for name, body in (("unknown", {"token": "s.nonexistent"}), ("not a wrapping token", {"token": t.token}), ("empty", {})):
            r = tr.resp(f"unwrap {name}", t.http("POST", "/v1/sys/wrapping/unwrap", body), compare_err=True)
            assert r.status == 400, r
            r = tr.resp(f"lookup {name}", t.http("POST", "/v1/sys/wrapping/lookup", body), compare_err=True)
            assert r.status == 400, r
        r = tr.resp("rewrap unknown", t.http("POST", "/v1/sys/wrapping/rewrap", {"token": "s.nonexistent"}))
        assert r.status == 400, r

        # Unwrapping with a wrap TTL wraps the unwrapped answer again.
        w = t.http("GET", read, headers=wrap_header("5m")).json()["wrap_info"]["token"]
        r = tr.resp("unwrap into a new wrap", t.http("POST", "/v1/sys/wrapping/unwrap", {"token": w}, headers=wrap_header("2m")),
                    nullable=WRAP_NULLABLE)
        info = r.json()["wrap_info"]
        assert info["creation_path"] == "sys/wrapping/unwrap" and info["ttl"] == 120, info
        r = tr.resp("unwrap the new wrap", t.http("POST", "/v1/sys/wrapping/unwrap", {"token": info["token"]}))
        assert r.json()["data"]["data"] == {"a": "b"}, r

        # A wrap that expires cannot be unwrapped.
        w = t.http("GET", read, headers=wrap_header("1s")).json()["wrap_info"]["token"]
        time.sleep(2.2)
        r = tr.resp("unwrap after the TTL", t.http("POST", "/v1/sys/wrapping/unwrap", {"token": w}))
        assert r.status == 400, r
        return tr

    compared(target, "wrapping-http", scenario)


def test_a_wrapped_approle_secret_id_ci_flow(target, compared, pfx):
    """The trusted-orchestrator flow: the orchestrator asks for a wrapped secret id, the job
    unwraps it (once) and logs in."""
    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        role = f"{pfx}-job"
        r = t.bao("auth", "enable", "approle")
        assert r.rc == 0 or "path is already in use" in r.stderr, r
        assert t.bao("write", f"auth/approle/role/{role}", "token_policies=default", "secret_id_num_uses=1").rc == 0
        role_id = t.bao("read", "-field=role_id", f"auth/approle/role/{role}/role-id").stdout.strip()
        r = tr.cli("wrapped secret id", t.bao("write", "-f", "-wrap-ttl=60s", "-format=json", f"auth/approle/role/{role}/secret-id"))
        info = r.json()["wrap_info"]
        assert info["creation_path"] == f"auth/approle/role/{role}/secret-id" and info["wrapped_accessor"], info
        # The job: only the wrapping token.
        r = tr.cli("the job unwraps", t.bao("unwrap", "-field=secret_id", token=info["token"]))
        sid = r.stdout.strip()
        assert sid, r
        r = tr.cli("a second unwrap fails", t.bao("unwrap", "-field=secret_id", token=info["token"]), compare_err=True)
        assert r.rc == 2, r
        r = tr.resp("the accessor is the secret id's", t.http("POST", f"/v1/auth/approle/role/{role}/secret-id-accessor/lookup",
                                                              {"secret_id_accessor": info["wrapped_accessor"]}))
        assert r.json()["data"]["secret_id_num_uses"] == 1, r
        r = tr.cli("the job logs in", t.bao("write", "-format=json", "auth/approle/login", f"role_id={role_id}", f"secret_id={sid}", token=None),
                   nullable=("$.auth.entity_id",))
        assert r.json()["auth"]["policies"] == ["default"], r
        return tr

    compared(target, "wrapping-approle", scenario)


def test_wrapping_with_hvac(target, compared, pfx):
    import hvac.exceptions as HE

    def scenario(t: V.Target) -> V.Transcript:
        tr = V.Transcript(t, {pfx: "PFX"})
        c = t.hvac()
        c.secrets.kv.v2.create_or_update_secret(path=f"{pfx}/h", secret={"k": "v"}, mount_point=t.kv2)
        out = V.hvac_call(tr, "read wrapped", lambda: c.read(f"{t.kv2}/data/{pfx}/h", wrap_ttl="2m"), nullable=WRAP_NULLABLE)
        w = out["wrap_info"]["token"]
        out = V.hvac_call(tr, "unwrap", lambda: c.sys.unwrap(w))
        assert out["data"]["data"] == {"k": "v"}, out
        V.hvac_call(tr, "unwrap again", lambda: c.sys.unwrap(w))
        out = V.hvac_call(tr, "wrap", lambda: c.sys.wrap(payload={"x": "y"}, ttl=60), nullable=WRAP_NULLABLE)
        w = out["wrap_info"]["token"]
        out = V.hvac_call(tr, "unwrap as the wrapping token", lambda: t.hvac(token=w).sys.unwrap())
        assert out["data"] == {"x": "y"}, out
        r = t.bao("auth", "enable", "approle")
        role = f"{pfx}-h"
        c.auth.approle.create_or_update_approle(role, token_policies=["default"])
        out = V.hvac_call(tr, "generate a wrapped secret id", lambda: c.auth.approle.generate_secret_id(role, wrap_ttl="60s"),
                          nullable=WRAP_NULLABLE)
        out = V.hvac_call(tr, "unwrap the secret id", lambda: c.sys.unwrap(out["wrap_info"]["token"]))
        assert out["data"]["secret_id"], out
        e = V.hvac_call(tr, "unwrap garbage", lambda: c.sys.unwrap("s.garbage"))
        assert isinstance(e, HE.InvalidRequest), e
        return tr

    compared(target, "wrapping-hvac", scenario)


# -- Tessera only ------------------------------------------------------------------------------

@pytest.fixture
def real_tessera(tessera_target):
    if tessera_target.is_bao:
        pytest.skip("tessera-only test (VAULT_E2E_SELFTEST=1 runs bao in its place)")
    return tessera_target


def test_wrapping_is_audited_and_the_answer_is_sealed(real_tessera, pfx):
    t = real_tessera
    marker = f"plain-{pfx}-marker"
    assert t.bao("kv", "put", f"{t.kv2}/{pfx}/sealed", f"v={marker}").rc == 0
    r = t.http("GET", f"/v1/{t.kv2}/data/{pfx}/sealed", headers=wrap_header("5m"))
    info = r.json()["wrap_info"]
    w, accessor = info["token"], info["accessor"]
    assert re.fullmatch(r"w-[0-9a-f]{64}", w) and re.fullmatch(r"[0-9a-f]{24}", accessor), info

    # The store holds the wrapped answer sealed: the plaintext is nowhere in the data files.
    m = re.search(r"data: (\S+)\)", t.server.read_log())
    assert m, t.server.read_log()[-2000:]
    data_dir = Path(m.group(1))
    blobs = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert marker.encode() not in blobs

    # Used as a token anywhere else, a wrapping token is refused and not spent.
    assert t.http("GET", f"/v1/{t.kv2}/data/{pfx}/sealed", token=w).status == 403
    assert t.http("GET", "/v1/auth/token/lookup-self", token=w).status == 403
    assert t.http("POST", "/v1/sys/wrapping/rewrap", {"token": w}, token=w).status == 403
    r = t.http("POST", "/v1/sys/wrapping/unwrap", token=w)
    assert r.status == 200 and r.json()["data"]["data"] == {"v": marker}, r

    events = t.native("audit-query", {"token": t.native_token, "path-prefix": f"/{t.kv2}/{pfx}/sealed"})["events"]
    read = [e for e in events if e.get("request_parameters", {}).get("wrap_accessor") == accessor]
    assert read and read[0]["result"] == "allowed", json.dumps(events)[:3000]
    events = t.native("audit-query", {"token": t.native_token, "action": "unwrap"})["events"]
    unwraps = [e for e in events if e.get("request_parameters", {}).get("unwrapped_accessor") == accessor]
    assert len(unwraps) == 1 and unwraps[0]["request_parameters"]["creation_path"] == f"{t.kv2}/data/{pfx}/sealed", unwraps
    trail = json.dumps(t.native("audit-query", {"token": t.native_token})["events"])
    assert w not in trail and w[2:] not in trail and marker not in trail


def test_a_limited_identity_wraps_only_what_it_may_read(real_tessera, pfx):
    t = real_tessera
    tok = t.native_token
    name = V.unique("wlim")
    am = t.native("create-auth-method", {"token": tok, "name": name})
    t.native("create-role", {"token": tok, "name": name})
    t.native("set-role-rule", {"token": tok, "role-name": name, "path": f"/{t.kv2}/{pfx}/mine/*", "capability": ["read"]})
    t.native("assoc-role-am", {"token": tok, "role-name": name, "am-name": name})
    lim = f"{am['access_id']}..{am['access_key']}"
    for p in ("mine/a", "theirs"):
        assert t.bao("kv", "put", f"{t.kv2}/{pfx}/{p}", "s=1").rc == 0
    r = t.http("GET", f"/v1/{t.kv2}/data/{pfx}/theirs", headers=wrap_header("5m"), token=lim)
    assert r.status == 403 and "wrap_info" not in r.json(), r
    r = t.http("GET", f"/v1/{t.kv2}/data/{pfx}/mine/a", headers=wrap_header("5m"), token=lim)
    assert r.status == 200, r
    w = r.json()["wrap_info"]["token"]
    # Anyone holding the wrapping token unwraps it; that is the point of wrapping.
    r = t.http("POST", "/v1/sys/wrapping/unwrap", token=w)
    assert r.status == 200 and r.json()["data"]["data"] == {"s": "1"}, r
    # An anonymous request's answer is not wrapped (it could fill the store), and nothing is stored.
    r = t.http("GET", "/v1/sys/seal-status", headers=wrap_header("5m"), token=None)
    assert r.status == 200 and "wrap_info" not in r.json(), r
    r = t.http("POST", "/v1/sys/wrapping/wrap", {"k": "v"}, headers=wrap_header("5m"), token=None)
    assert r.status == 403, r
    # TTLs beyond 30 days are refused before anything runs.
    r = t.http("POST", "/v1/sys/wrapping/wrap", {"k": "v"}, headers=wrap_header("721h"), token=lim)
    assert r.status == 400 and "maximum" in r.json()["errors"][0], r


def test_wrap_info_never_shows_stored_data_and_streams_are_not_wrapped(real_tessera, pfx):
    t = real_tessera
    # A stored field that looks like a secret id's accessor stays inside the sealed answer.
    assert t.bao("kv", "put", f"{t.kv2}/{pfx}/lookalike", "secret_id_accessor=hunter2-db-password").rc == 0
    assert t.bao("kv", "put", f"{t.kv1}/{pfx}/lookalike", "secret_id_accessor=hunter2-db-password").rc == 0
    for path in (f"/v1/{t.kv2}/data/{pfx}/lookalike", f"/v1/{t.kv1}/{pfx}/lookalike"):
        r = t.http("GET", path, headers=wrap_header("5m"))
        assert r.status == 200 and "wrapped_accessor" not in r.json()["wrap_info"], r
        assert b"hunter2" not in r.body, r
    r = t.http("POST", "/v1/sys/wrapping/wrap", {"secret_id_accessor": "x" * 1000}, headers=wrap_header("5m"))
    assert r.status == 200 and "wrapped_accessor" not in r.json()["wrap_info"], r
    trail = json.dumps(t.native("audit-query", {"token": t.native_token})["events"])
    assert "hunter2" not in trail

    # A snapshot is streamed: asking for it wrapped is refused before it starts, and the next
    # (unwrapped) backup is not blocked by it.
    r = t.http("GET", "/v1/sys/storage/raft/snapshot", headers=wrap_header("1m"))
    assert r.status == 400, r
    r = t.http("GET", "/v1/sys/storage/raft/snapshot")
    assert r.status == 200, r
