"""The official akeyless SDK creates OAuth2/JWT and Kubernetes auth methods, associates access
roles with sub-claims, and logs in with `access-type` jwt and k8s: a GitHub-Actions-shaped token
gets the role of its own repository only."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import akeyless
import pytest
from akeyless.exceptions import ApiException

sys.path.insert(0, str(Path(__file__).resolve().parent))

import idlib  # noqa: E402


def make_api(server) -> akeyless.V2Api:
    return akeyless.V2Api(akeyless.ApiClient(akeyless.Configuration(host=f"{server.url}/api/v2")))


def read(api, token, name):
    return api.get_secret_value(akeyless.GetSecretValue(names=[name], token=token))[name]


def test_github_token_gets_its_repository_role_through_sub_claims(world, issuer):
    api = make_api(world.srv)
    admin = world.admin_token
    out = api.auth_method_create_oauth2(akeyless.AuthMethodCreateOauth2(
        name="/ci/github", jwks_uri=issuer.url + "/jwks", unique_identifier="repository", issuer=issuer.url,
        audience="tessera", jwt_ttl=15, token=admin))
    access_id = out.access_id
    assert access_id.startswith("p-")
    api.assoc_role_auth_method(akeyless.AssocRoleAuthMethod(role_name="app-reader", am_name="/ci/github",
                                                            sub_claims={"repository": "org/app", "ref": "refs/heads/main"}, token=admin))
    api.assoc_role_auth_method(akeyless.AssocRoleAuthMethod(role_name="other-reader", am_name="/ci/github",
                                                            sub_claims={"repository": "org/other"}, token=admin))
    key = issuer.keys[2]  # ECDSA P-384

    app = api.auth(akeyless.Auth(access_id=access_id, access_type="jwt", jwt=key.sign(idlib.github_claims(issuer.url, "org/app")))).token
    assert json.loads(read(api, app, "/secret/app/config"))["password"] == world.APP_SECRET
    with pytest.raises(ApiException) as e:
        read(api, app, "/secret/other/config")
    assert e.value.status == 403

    other = api.auth(akeyless.Auth(access_id=access_id, access_type="jwt", jwt=key.sign(idlib.github_claims(issuer.url, "org/other")))).token
    assert json.loads(read(api, other, "/secret/other/config"))["password"] == world.OTHER_SECRET
    with pytest.raises(ApiException):
        read(api, other, "/secret/app/config")

    # a feature branch of org/app matches no association: a token with no access
    branch = api.auth(akeyless.Auth(access_id=access_id, access_type="jwt",
                                    jwt=key.sign(idlib.github_claims(issuer.url, "org/app", ref="refs/heads/feature")))).token
    with pytest.raises(ApiException):
        read(api, branch, "/secret/app/config")

    # forged and foreign tokens never log in
    for bad in (idlib.hs256_with_public_key(key, idlib.github_claims(issuer.url, "org/app")),
                idlib.unsigned_token(idlib.github_claims(issuer.url, "org/app"), kid=key.kid),
                key.sign(idlib.github_claims("https://evil", "org/app")),
                key.sign(idlib.github_claims(issuer.url, "org/app", audience="other"))):
        with pytest.raises(ApiException) as e:
            api.auth(akeyless.Auth(access_id=access_id, access_type="jwt", jwt=bad))
        assert e.value.status == 401

    got = api.get_auth_method(akeyless.GetAuthMethod(name="/ci/github", token=admin))
    assert got.auth_method_access_id == access_id
    api.auth_method_update_oauth2(akeyless.AuthMethodUpdateOauth2(name="/ci/github", jwks_uri=issuer.url + "/jwks",
                                                                  unique_identifier="sub", audience="tessera", token=admin))
    assert api.auth(akeyless.Auth(access_id=access_id, access_type="jwt",
                                  jwt=key.sign(idlib.github_claims(issuer.url, "org/app")))).token.startswith("t-")
    api.delete_auth_method(akeyless.DeleteAuthMethod(name="/ci/github", token=admin))
    with pytest.raises(ApiException):
        api.auth(akeyless.Auth(access_id=access_id, access_type="jwt", jwt=key.sign(idlib.github_claims(issuer.url, "org/app"))))

    logins = [e for e in world.audit_events("auth") if e["access_id"] == access_id]
    assert any(e["request_parameters"].get("claim.repository") == "org/app" and e["result"] == "allowed" for e in logins)
    assert any(e["result"] == "denied" and e["request_parameters"].get("refusal_reason") for e in logins)


def test_k8s_method_gateway_config_and_login(world, issuer):
    api = make_api(world.srv)
    admin = world.admin_token
    out = api.auth_method_create_k8s(akeyless.AuthMethodCreateK8s(
        name="/k8s/apps", bound_namespaces=["apps"], bound_sa_names=["web"], token=admin))
    assert out.access_id.startswith("p-") and out.prv_key
    with pytest.raises(ApiException) as e:
        api.gateway_create_k8_s_auth_config(akeyless.GatewayCreateK8SAuthConfig(
            access_id=out.access_id, k8s_host=issuer.url, name="cluster-a",
            signing_key=base64.b64encode(b"not a key").decode(), token=admin))
    assert e.value.status == 400
    api.gateway_create_k8_s_auth_config(akeyless.GatewayCreateK8SAuthConfig(
        access_id=out.access_id, k8s_host=issuer.url, name="cluster-a", signing_key=out.prv_key,
        token_reviewer_jwt="native-reviewer", token=admin))
    issuer.reviewer_bearer = "native-reviewer"
    # every change needs the method's private key, and a new API server needs the reviewer JWT again
    world.native("gateway-update-k8s-auth-config", {"access-id": out.access_id, "k8s-host": "https://127.0.0.1:9",
                                                    "name": "cluster-a"}, expect=400)
    world.native("gateway-update-k8s-auth-config", {"access-id": out.access_id, "k8s-host": issuer.url, "name": "cluster-a",
                                                    "signing-key": out.prv_key, "token-exp": 600})
    cfg = api.gateway_get_k8_s_auth_config(akeyless.GatewayGetK8SAuthConfig(name="cluster-a", token=admin))
    assert cfg.k8s_host == issuer.url and cfg.auth_method_access_id == out.access_id
    assert "native-reviewer" not in json.dumps(cfg.to_dict())
    api.assoc_role_auth_method(akeyless.AssocRoleAuthMethod(role_name="app-reader", am_name="/k8s/apps",
                                                            sub_claims={"namespace": "apps"}, token=admin))

    token = issuer.keys[0].sign(idlib.service_account_claims("https://kubernetes.default.svc", "apps", "web", "uid-7"))
    issuer.known_tokens[token] = (True, "system:serviceaccount:apps:web", "uid-7")
    for sent in (token, base64.b64encode(token.encode()).decode()):
        t = api.auth(akeyless.Auth(access_id=out.access_id, access_type="k8s", k8s_auth_config_name="cluster-a",
                                   k8s_service_account_token=sent, gateway_url=world.srv.url)).token
        assert json.loads(read(api, t, "/secret/app/config"))["password"] == world.APP_SECRET
    assert issuer.reviews[-1]["authorization"] == "Bearer native-reviewer"

    wrong = issuer.keys[0].sign(idlib.service_account_claims("https://kubernetes.default.svc", "other", "web", "uid-8"))
    issuer.known_tokens[wrong] = (True, "system:serviceaccount:other:web", "uid-8")
    with pytest.raises(ApiException) as e:
        api.auth(akeyless.Auth(access_id=out.access_id, access_type="k8s", k8s_auth_config_name="cluster-a",
                               k8s_service_account_token=wrong))
    assert e.value.status == 401
