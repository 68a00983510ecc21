"""Kubernetes auth end to end: `bao login -method=kubernetes` and hvac's kubernetes login against
a FAKE TokenReview endpoint (a Kubernetes API server cannot run here; the fake checks each
request as the reference describes and records it), refusals for a wrong namespace, a wrong
service account and a token the cluster does not authenticate, and the JWKS mode that needs no
TokenReview endpoint at all."""

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

CLUSTER_ISSUER = "https://kubernetes.default.svc.cluster.local"


def sa_token(issuer, namespace="apps", name="web", uid="uid-1234", audience=None, key=None, authenticated=True):
    key = key or issuer.keys[0]
    token = key.sign(idlib.service_account_claims(CLUSTER_ISSUER, namespace, name, uid, audience=audience))
    issuer.known_tokens[token] = (authenticated, f"system:serviceaccount:{namespace}:{name}", uid)
    return token


def setup_kubernetes(world, issuer, *, path="kubernetes", config=None, **role):
    client = hvac.Client(url=world.srv.url, token=world.admin_vault_token)
    client.sys.enable_auth_method("kubernetes", path=path)
    client.auth.kubernetes.configure(**(config or {"kubernetes_host": issuer.url, "token_reviewer_jwt": "reviewer-jwt-secret"}),
                                     mount_point=path)
    issuer.reviewer_bearer = "reviewer-jwt-secret" if config is None else None
    fields = dict(bound_service_account_names=["web", "api-*"], bound_service_account_namespaces=["apps"],
                  policies=["app-reader"], ttl="15m", mount_point=path)
    fields.update(role)
    client.auth.kubernetes.create_role("web", **fields)
    return client


def test_hvac_and_bao_login_through_token_review(world, issuer, tmp_path):
    client = setup_kubernetes(world, issuer)
    token = sa_token(issuer)
    out = hvac.Client(url=world.srv.url).auth.kubernetes.login("web", token)
    auth = out["auth"]
    assert "app-reader" in auth["policies"]
    assert auth["metadata"]["service_account_name"] == "web" and auth["metadata"]["service_account_namespace"] == "apps"
    assert auth["metadata"]["role"] == "web" and auth["metadata"]["service_account_uid"] == "uid-1234"
    assert world.read_status(auth["client_token"]) == 200
    assert world.read_status(auth["client_token"], "secret/data/other/config") == 403

    # the TokenReview went out exactly as OpenBao sends it
    review = issuer.reviews[-1]
    assert review["authorization"] == "Bearer reviewer-jwt-secret"
    assert review["content_type"] == "application/json" and review["accept"] == "application/json"
    assert review["body"]["spec"]["token"] == token
    assert "kind" not in review["body"] and "apiVersion" not in review["body"]

    # the reviewer JWT is never read back
    cfg = client.auth.kubernetes.read_config()
    cfg = cfg.get("data", cfg)
    assert cfg["kubernetes_host"] == issuer.url and cfg["token_reviewer_jwt_set"] is True
    assert "reviewer-jwt-secret" not in json.dumps(cfg)
    role = client.auth.kubernetes.read_role("web")
    role = role.get("data", role)
    assert role["bound_service_account_names"] == ["web", "api-*"] and role["policies"] == ["app-reader"]

    bao = V.bao_binary()
    env = {"VAULT_ADDR": world.srv.url, "BAO_ADDR": world.srv.url, "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    glob_token = sa_token(issuer, name="api-gateway", uid="uid-55")
    p = subprocess.run([bao, "login", "-method=kubernetes", "-format=json", "-no-store", "role=web", f"jwt={glob_token}"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert world.read_status(json.loads(p.stdout)["auth"]["client_token"]) == 200


def test_wrong_namespace_account_or_unauthenticated_token_is_refused(world, issuer):
    setup_kubernetes(world, issuer)
    anonymous = hvac.Client(url=world.srv.url)
    cases = {
        "wrong namespace": (sa_token(issuer, namespace="kube-system"), "namespace not authorized"),
        "wrong service account": (sa_token(issuer, name="db"), "service account name not authorized"),
        "not authenticated": (sa_token(issuer, uid="uid-revoked", authenticated=False), "permission denied"),
        "forged": (idlib.tampered(sa_token(issuer), sub="system:serviceaccount:apps:web2"), "permission denied"),
    }
    before = len(issuer.reviews)
    for why, (token, text) in cases.items():
        with pytest.raises(hvac.exceptions.Forbidden, match=text) as e:
            print(why, anonymous.auth.kubernetes.login("web", token))
    # names and namespaces are checked before the cluster is asked
    assert len(issuer.reviews) - before == 2
    events = [e for e in world.audit_events("auth") if e["path"] == "/kubernetes" and e["result"] == "denied"]
    reasons = " | ".join(e["request_parameters"].get("refusal_reason", "") for e in events)
    assert "namespace kube-system not in bound namespaces" in reasons
    assert "service account db not in bound names" in reasons
    assert "service account jwt not valid" in reasons
    assert "reviewer-jwt-secret" not in json.dumps(events)


def test_jwks_mode_needs_no_token_review_endpoint(world, issuer):
    setup_kubernetes(world, issuer, path="k8s-jwks",
                     config={"kubernetes_host": "https://127.0.0.1:1"}, audience="vault")
    # hvac's configure sends only what it knows; the JWKS URL is a Tessera setting
    r = world.srv.session.post(f"{world.srv.url}/v1/auth/k8s-jwks/config",
                               json={"jwks_url": issuer.url + "/jwks", "issuer": CLUSTER_ISSUER},
                               headers={"X-Vault-Token": world.admin_vault_token})
    assert r.status_code == 204, r.text
    before = len(issuer.reviews)
    key = issuer.keys[1]
    good = key.sign(idlib.service_account_claims(CLUSTER_ISSUER, "apps", "web", "uid-9", audience="vault"))
    out = hvac.Client(url=world.srv.url).auth.kubernetes.login("web", good, mount_point="k8s-jwks")
    assert world.read_status(out["auth"]["client_token"]) == 200
    assert len(issuer.reviews) == before
    for token in (key.sign(idlib.service_account_claims(CLUSTER_ISSUER, "apps", "web", "uid-9", audience="other")),
                  idlib.Key("ec256", "ec-1").sign(idlib.service_account_claims(CLUSTER_ISSUER, "apps", "web", "uid-9", audience="vault")),
                  key.sign(idlib.service_account_claims("https://evil", "apps", "web", "uid-9", audience="vault"))):
        with pytest.raises(hvac.exceptions.Forbidden):
            hvac.Client(url=world.srv.url).auth.kubernetes.login("web", token, mount_point="k8s-jwks")
