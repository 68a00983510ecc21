"""JWT/OIDC auth end to end: hvac and the bao CLI log in to a JWT mount with tokens signed by
RSA, ECDSA and Ed25519 keys from a local JWKS / OIDC discovery server; each token reads exactly
what its role allows; a GitHub-Actions-shaped token picks its access role through sub-claims;
the signing key rotates without a restart; and every forged, expired or mismatched token is
refused with 403 without reaching a secret. The audit trail records logins and refusals with
the claims and the failed bound, and never the JWT."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vault"))

import idlib  # noqa: E402
import vaultlib as V  # noqa: E402


def admin_client(world) -> hvac.Client:
    return hvac.Client(url=world.srv.url, token=world.admin_vault_token)


def enable_jwt(world, issuer, *, path="jwt", config=None, role="ci", **role_fields):
    client = admin_client(world)
    client.sys.enable_auth_method("jwt", path=path)
    client.auth.jwt.configure(**(config or {"jwks_url": issuer.url + "/jwks", "bound_issuer": issuer.url}), path=path)
    fields = {"bound_audiences": ["tessera"], "token_policies": ["app-reader"], "token_ttl": "10m"}
    fields.update(role_fields)
    client.auth.jwt.create_role(name=role, user_claim="sub", allowed_redirect_uris=[], role_type="jwt", path=path, **fields)
    return client


def hvac_login(world, token, role="ci", path="jwt") -> dict:
    client = hvac.Client(url=world.srv.url)
    return client.auth.jwt.jwt_login(role=role, jwt=token, path=path)


def test_hvac_login_with_every_key_type_reads_only_what_the_role_allows(world, issuer):
    enable_jwt(world, issuer)
    for key in issuer.keys:
        for alg in ([key.default_alg] + (["PS256", "RS512"] if key.kind == "rsa" else [])):
            token = key.sign(idlib.claims(issuer.url))
            if alg != key.default_alg:
                token = key.sign(idlib.claims(issuer.url), alg=alg)
            out = hvac_login(world, token)
            auth = out["auth"]
            assert auth["client_token"].startswith("t-"), out
            assert "app-reader" in auth["policies"] and auth["renewable"] is True
            assert auth["metadata"]["role"] == "ci"
            assert 0 < auth["lease_duration"] <= 600
            client = hvac.Client(url=world.srv.url, token=auth["client_token"])
            got = client.secrets.kv.v2.read_secret_version(path="app/config", raise_on_deleted_version=True)
            assert got["data"]["data"]["password"] == world.APP_SECRET
            with pytest.raises(hvac.exceptions.Forbidden):
                client.secrets.kv.v2.read_secret_version(path="other/config", raise_on_deleted_version=True)
            with pytest.raises(hvac.exceptions.Forbidden):
                client.secrets.kv.v2.create_or_update_secret(path="app/config", secret={"password": "x"})
            me = client.auth.token.lookup_self()["data"]
            assert me["meta"]["role"] == "ci" and "app-reader" in me["policies"]


def test_bao_cli_write_login(world, issuer, tmp_path):
    enable_jwt(world, issuer)
    token = issuer.keys[0].sign(idlib.claims(issuer.url))
    bao = V.bao_binary()
    env = {"VAULT_ADDR": world.srv.url, "BAO_ADDR": world.srv.url, "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    p = subprocess.run([bao, "write", "-format=json", "auth/jwt/login", "role=ci", f"jwt={token}"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    client_token = json.loads(p.stdout)["auth"]["client_token"]
    assert world.read_status(client_token) == 200
    assert world.read_status(client_token, "secret/data/other/config") == 403
    # the everyday admin commands
    admin_env = dict(env, VAULT_TOKEN=world.admin_vault_token, BAO_TOKEN=world.admin_vault_token)
    for args in (["auth", "enable", "-path=ci-bao", "-description=ci tokens", "jwt"],
                 ["write", "auth/ci-bao/config", f"jwks_url={issuer.url}/jwks"],
                 ["write", "auth/ci-bao/role/deploy", "role_type=jwt", "user_claim=sub", "bound_audiences=tessera",
                  "token_policies=app-reader"]):
        p = subprocess.run([bao, *args], capture_output=True, text=True, env=admin_env, timeout=60)
        assert p.returncode == 0, (args, p.stderr)
    p = subprocess.run([bao, "auth", "list", "-format=json"], capture_output=True, text=True, env=admin_env, timeout=60)
    assert p.returncode == 0, p.stderr
    listed = json.loads(p.stdout)
    assert listed["ci-bao/"]["type"] == "jwt" and listed["ci-bao/"]["description"] == "ci tokens"
    p = subprocess.run([bao, "write", "-format=json", "auth/ci-bao/login", "role=deploy", f"jwt={token}"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([bao, "auth", "disable", "ci-bao"], capture_output=True, text=True, env=admin_env, timeout=60)
    assert p.returncode == 0, p.stderr
    # bao has no jwt login handler, exactly as the reference says
    p = subprocess.run([bao, "login", "-method=jwt", "role=ci", f"jwt={token}"], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode != 0 and "Unknown auth method" in (p.stderr + p.stdout)


def test_refused_tokens_get_403_and_reach_no_secret(world, issuer):
    enable_jwt(world, issuer, bound_claims={"repository": "org/app"})
    key = issuer.keys[0]
    good = idlib.claims(issuer.url, repository="org/app")
    assert "client_token" in hvac_login(world, key.sign(good))["auth"]
    stranger = idlib.Key("rsa", "rsa-unknown")
    cases = {
        "expired": key.sign(dict(good, exp=good["iat"] - 3600, iat=good["iat"] - 7200, nbf=good["iat"] - 7200)),
        "future nbf": key.sign(dict(good, nbf=good["iat"] + 3600)),
        "wrong iss": key.sign(dict(good, iss="https://evil.example")),
        "wrong aud": key.sign(dict(good, aud="someone-else")),
        "alg none": idlib.unsigned_token(good, kid=key.kid),
        "hs256 with the public key": idlib.hs256_with_public_key(key, good),
        "unknown key": stranger.sign(good),
        "known kid, other key": stranger.sign(good, kid=key.kid),
        "tampered payload": idlib.tampered(key.sign(good), sub="repo:org/admin:ref:refs/heads/main"),
        "claims that do not match": key.sign(dict(good, repository="org/evil")),
        "not a jwt": "not-a-jwt",
        "no time claims": key.sign({k: v for k, v in good.items() if k not in ("exp", "iat", "nbf")}),
    }
    for why, token in cases.items():
        r = world.srv.session.post(f"{world.srv.url}/v1/auth/jwt/login", json={"role": "ci", "jwt": token}, timeout=30)
        assert r.status_code == 403, f"{why}: {r.status_code} {r.text}"
        body = r.json()
        assert body.get("auth") is None and "errors" in body, (why, body)
        assert token not in r.text
        with pytest.raises(hvac.exceptions.Forbidden):
            hvac_login(world, token)
    # a wrong role name or a missing token are Vault's 400s
    r = world.srv.session.post(f"{world.srv.url}/v1/auth/jwt/login", json={"role": "nope", "jwt": key.sign(good)}, timeout=30)
    assert r.status_code == 400 and r.json()["errors"] == ['role "nope" could not be found']
    r = world.srv.session.post(f"{world.srv.url}/v1/auth/jwt/login", json={"role": "ci"}, timeout=30)
    assert r.status_code == 400 and r.json()["errors"] == ["missing token"]

    # the audit trail names each refusal's reason and never holds a token
    events = world.audit_events("auth")
    refused = [e for e in events if e["path"] == "/jwt" and e["result"] == "denied"]
    assert len(refused) >= 2 * len(cases), refused
    reasons = " | ".join(e["request_parameters"].get("refusal_reason", "") for e in refused)
    for needle in ("exp is in the past", "nbf is in the future", "iss does not equal", "aud matches none",
                   "signature", "bound_claims repository"):
        assert needle in reasons, (needle, reasons)
    allowed = [e for e in events if e["path"] == "/jwt" and e["result"] == "allowed"]
    assert allowed and allowed[0]["request_parameters"]["claim.sub"] == good["sub"]
    assert allowed[0]["request_parameters"]["login_role"] == "ci" and allowed[0]["access_type"] == "oauth2"
    dump = json.dumps(events)
    log = world.srv.read_log()
    for token in list(cases.values()):
        parts = token.split(".")
        for part in parts[1:]:
            if len(part) > 16:
                assert part not in dump and part not in log, token


def test_signing_key_rotation_without_restart(world, issuer):
    enable_jwt(world, issuer)
    old = issuer.keys[0]
    assert "client_token" in hvac_login(world, old.sign(idlib.claims(issuer.url)))["auth"]
    fresh = idlib.Key("rsa", "rsa-2")
    issuer.keys = [fresh]  # the issuer rotates: the old key is gone, a new kid appears
    out = hvac_login(world, fresh.sign(idlib.claims(issuer.url)))
    assert out["auth"]["client_token"].startswith("t-")
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac_login(world, idlib.Key("rsa", "rsa-3").sign(idlib.claims(issuer.url)))


def test_oidc_discovery_and_static_pem_keys(world, issuer):
    enable_jwt(world, issuer, path="oidc-ci", config={"oidc_discovery_url": issuer.url, "bound_issuer": issuer.url})
    key = issuer.keys[3]  # Ed25519
    assert "client_token" in hvac_login(world, key.sign(idlib.claims(issuer.url)), path="oidc-ci")["auth"]

    pem_key = idlib.Key("ec256", "unused")
    enable_jwt(world, issuer, path="pem", config={"jwt_validation_pubkeys": [pem_key.public_pem()]})
    assert "client_token" in hvac_login(world, pem_key.sign(idlib.claims(issuer.url), kid=None), path="pem")["auth"]
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac_login(world, issuer.keys[1].sign(idlib.claims(issuer.url), kid=None), path="pem")

    client = admin_client(world)
    listed = client.sys.list_auth_methods()["data"]
    assert listed["oidc-ci/"]["type"] == "jwt" and listed["pem/"]["type"] == "jwt" and "token/" in listed
    cfg = client.auth.jwt.read_config(path="oidc-ci")["data"]
    assert cfg["oidc_discovery_url"] == issuer.url and cfg["bound_issuer"] == issuer.url
    role = client.auth.jwt.read_role("ci", path="pem")["data"]
    assert role["role_type"] == "jwt" and role["bound_audiences"] == ["tessera"] and role["token_policies"] == ["app-reader"]
    assert role["token_ttl"] == 600 and role["expiration_leeway"] == 150 and role["user_claim"] == "sub"
    assert client.auth.jwt.list_roles(path="pem")["data"]["keys"] == ["ci"]
    client.auth.jwt.delete_role("ci", path="pem")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.jwt.read_role("ci", path="pem")
    client.sys.disable_auth_method("pem")
    assert "pem/" not in client.sys.list_auth_methods()["data"]


def test_role_and_config_validation_match_openbao(world, issuer):
    client = admin_client(world)
    client.sys.enable_auth_method("jwt")
    r = world.srv.session.post(f"{world.srv.url}/v1/auth/jwt/config", json={}, headers={"X-Vault-Token": world.admin_vault_token})
    assert r.status_code == 400 and "exactly one of" in r.json()["errors"][0]
    r = world.srv.session.post(f"{world.srv.url}/v1/auth/jwt/config", json={"oidc_discovery_url": issuer.url + "/.well-known/openid-configuration"},
                               headers={"X-Vault-Token": world.admin_vault_token})
    assert r.status_code == 400 and r.json()["errors"] == ["'oidc_discovery_url' contains '.well-known' component"]
    client.auth.jwt.configure(jwks_url=issuer.url + "/jwks")
    # role_type defaults to oidc, which needs redirect URIs
    r = world.srv.session.put(f"{world.srv.url}/v1/auth/jwt/role/x", json={"bound_audiences": "x", "user_claim": "sub"},
                              headers={"X-Vault-Token": world.admin_vault_token})
    assert r.status_code == 400 and r.json()["errors"] == ["'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified."]
    r = world.srv.session.put(f"{world.srv.url}/v1/auth/jwt/role/x", json={"role_type": "jwt", "user_claim": "sub"},
                              headers={"X-Vault-Token": world.admin_vault_token})
    assert r.status_code == 400 and r.json()["errors"] == ["must have at least one bound constraint when creating/updating a role"]
    r = world.srv.session.put(f"{world.srv.url}/v1/auth/jwt/role/x", json={"role_type": "jwt", "bound_audiences": "x"},
                              headers={"X-Vault-Token": world.admin_vault_token})
    assert r.status_code == 400 and r.json()["errors"] == ["a user claim must be defined on the role"]
    r = world.srv.session.put(f"{world.srv.url}/v1/auth/jwt/role/x",
                              json={"role_type": "jwt", "bound_audiences": "x", "user_claim": "sub", "token_ttl": "2h", "token_max_ttl": "1h"},
                              headers={"X-Vault-Token": world.admin_vault_token})
    assert r.status_code == 400 and r.json()["errors"] == ["'token_ttl' cannot be greater than 'token_max_ttl'"]


def test_limited_identity_cannot_escalate_through_a_login_role(world, issuer):
    """A manager of one auth method who holds only app-reader cannot write a login role that
    grants the admin role, nor touch another method; an anonymous caller can do nothing."""
    enable_jwt(world, issuer)
    manager = world.native("create-auth-method", {"name": "/jwt-manager"})
    world.native("create-role", {"name": "jwt-managers"})
    world.native("set-role-rule", {"role-name": "jwt-managers", "path": "/jwt", "capability": ["read", "update", "list"],
                                   "rule-type": "auth-method-rule"})
    world.native("set-role-rule", {"role-name": "jwt-managers", "path": "/secret/app/*", "capability": ["read"]})
    world.native("assoc-role-am", {"role-name": "jwt-managers", "am-name": "/jwt-manager"})
    world.native("assoc-role-am", {"role-name": "app-reader", "am-name": "/jwt-manager"})
    mgr = f"{manager['access_id']}..{manager['access_key']}"
    h = {"X-Vault-Token": mgr}
    base = f"{world.srv.url}/v1/auth/jwt/role/"
    ok = world.srv.session.put(base + "mine", json={"role_type": "jwt", "bound_audiences": "tessera", "user_claim": "sub",
                                                    "token_policies": "app-reader"}, headers=h)
    assert ok.status_code == 204, ok.text
    up = world.srv.session.put(base + "mine", json={"token_policies": "admin"}, headers=h)
    assert up.status_code == 403, up.text
    up = world.srv.session.put(base + "mine2", json={"role_type": "jwt", "bound_audiences": "tessera", "user_claim": "sub",
                                                     "token_policies": ["other-reader"]}, headers=h)
    assert up.status_code == 403, up.text
    up = world.srv.session.put(base + "mine3", json={"role_type": "jwt", "bound_audiences": "tessera", "user_claim": "sub",
                                                     "token_policies": ["admin2"]}, headers=h)
    assert up.status_code == 400 and "not a Tessera access role" in up.text, up.text
    # while only roles it may grant are reachable, the manager may change the keys it trusts ...
    cfg = world.srv.session.post(f"{world.srv.url}/v1/auth/jwt/config", json={"jwks_url": issuer.url + "/jwks"}, headers=h)
    assert cfg.status_code == 204, cfg.text
    # ... but not once a login role reaches a role it may not grant: its own keys would log in as it
    admin_client(world).auth.jwt.create_role(name="privileged", user_claim="sub", allowed_redirect_uris=[], role_type="jwt",
                                             bound_audiences=["tessera"], token_policies=["other-reader"])
    cfg = world.srv.session.post(f"{world.srv.url}/v1/auth/jwt/config", json={"jwks_url": "http://127.0.0.1:9/evil"}, headers=h)
    assert cfg.status_code == 403, cfg.text
    assert admin_client(world).auth.jwt.read_config()["data"]["jwks_url"] == issuer.url + "/jwks"
    assert world.srv.session.put(f"{world.srv.url}/v1/sys/auth/jwt2", json={"type": "jwt"}, headers=h).status_code == 403
    assert world.srv.session.delete(f"{world.srv.url}/v1/sys/auth/jwt", headers=h).status_code == 403
    for method, path, body in (("PUT", "auth/jwt/role/anon", {"role_type": "jwt", "bound_audiences": "x", "user_claim": "sub",
                                                              "token_policies": "admin"}),
                               ("POST", "auth/jwt/config", {"jwks_url": "http://127.0.0.1:1/jwks"}),
                               ("GET", "auth/jwt/config", None), ("POST", "sys/auth/evil", {"type": "jwt"})):
        r = world.srv.session.request(method, f"{world.srv.url}/v1/{path}", json=body, timeout=30)
        assert r.status_code == 403, (path, r.status_code, r.text)
    role = admin_client(world).auth.jwt.read_role("mine")["data"]
    assert role["token_policies"] == ["app-reader"]
