"""Certificate auth over HTTPS: with no --tls-client-ca-file the listener asks for a client
certificate without requiring one, and the cert auth method decides. `bao login -method=cert`
and hvac's cert login get tokens that read what their role allows; an expired certificate, one
from another CA and one whose SAN does not match are refused. The akeyless SDK creates a
certificate auth method and logs in with access-type cert (certificate and key in the body)."""

from __future__ import annotations

import base64
import datetime as dt
import json

import akeyless
import hvac
import hvac.exceptions
import pytest
import requests
from akeyless.exceptions import ApiException
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import tlslib as T

SECRET = "cert-auth-secret-9d2f"


def issue(ca: T.CA, cn: str, dns: list[str], *, expired: bool = False) -> T.Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    start, end = (now - dt.timedelta(days=3), now - dt.timedelta(days=1)) if expired else (now - dt.timedelta(minutes=5), now + dt.timedelta(days=1))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                                                              x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "platform")]))
            .issuer_name(ca.name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
            .sign(ca.key, hashes.SHA256()))
    return T.Issued(cert, key, ca.intermediates())


@pytest.fixture
def cert_world(servers, pki, server_a_pair, tmp_path):
    cert, key = server_a_pair
    srv = servers(args=["--tls-cert-file", cert, "--tls-key-file", key], ca=pki.root_pem, name="certauth")
    h = {"X-Vault-Token": srv.vault_token}
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override s.verify
    s.verify = str(pki.root_pem)
    assert s.post(f"{srv.url}/v1/secret/data/web/config", json={"data": {"password": SECRET}}, headers=h).status_code == 200
    srv.call("create-role", {"name": "web-reader"})
    srv.call("set-role-rule", {"role-name": "web-reader", "path": "/secret/web/*", "capability": ["read"]})
    assert s.post(f"{srv.url}/v1/sys/auth/cert", json={"type": "cert"}, headers=h).status_code == 204
    r = s.post(f"{srv.url}/v1/auth/cert/certs/web", headers=h,
               json={"certificate": pki.client_ca.pem.decode(), "allowed_dns_sans": "web.example,*.web.example",
                     "token_policies": "web-reader", "token_ttl": "20m", "display_name": ""})
    assert r.status_code == 204, r.text
    good = issue(pki.client_ca, "web-client", ["web.example"])
    pairs = {name: pki.write_pair(issued, name, tmp_path / "certs") for name, issued in {
        "good": good,
        "expired": issue(pki.client_ca, "web-client", ["web.example"], expired=True),
        "other-ca": issue(pki.other_ca, "web-client", ["web.example"]),
        "wrong-san": issue(pki.client_ca, "web-client", ["db.example"]),
    }.items()}
    return srv, s, pairs, good


def test_bao_and_hvac_cert_login(cert_world, pki, bao_bin, tmp_path):
    srv, s, pairs, _ = cert_world
    cert, key = pairs["good"]
    p = T.run_bao(bao_bin, srv.url, "", tmp_path / "bao", "login", "-method=cert", "-format=json", "-no-store",
                  f"-client-cert={cert}", f"-client-key={key}", "name=web", cacert=str(pki.root_pem))
    assert p.returncode == 0, T.show(p)
    auth = json.loads(p.stdout)["auth"]
    assert "web-reader" in auth["policies"] and auth["metadata"]["cert_name"] == "web"
    assert auth["metadata"]["common_name"] == "web-client"
    token = auth["client_token"]
    r = s.get(f"{srv.url}/v1/secret/data/web/config", headers={"X-Vault-Token": token})
    assert r.status_code == 200 and r.json()["data"]["data"]["password"] == SECRET

    client = hvac.Client(url=srv.url, verify=str(pki.root_pem), cert=(cert, key))
    out = client.auth.cert.login()
    assert out["auth"]["client_token"].startswith("t-") and 0 < out["auth"]["lease_duration"] <= 1200
    role = hvac.Client(url=srv.url, token=srv.vault_token, verify=str(pki.root_pem)).auth.cert.read_ca_certificate_role("web")
    assert role["data"]["allowed_dns_sans"] == ["web.example", "*.web.example"] and role["data"]["display_name"] == "web"


def test_expired_other_ca_and_wrong_san_are_refused(cert_world, pki):
    srv, s, pairs, _ = cert_world
    expected = {"expired": "invalid certificate or no client certificate supplied",
                "other-ca": "invalid certificate or no client certificate supplied",
                "wrong-san": "no chain matching all constraints could be found for this login certificate"}
    for name, text in expected.items():
        r = requests.post(f"{srv.url}/v1/auth/cert/login", json={"name": "web"}, verify=str(pki.root_pem), cert=pairs[name])
        assert r.status_code == 400, (name, r.status_code, r.text)
        assert r.json()["errors"] == [text], (name, r.text)
        assert "auth" not in r.json()
    # no certificate at all: the connection is still served, the login is refused
    r = requests.post(f"{srv.url}/v1/auth/cert/login", json={"name": ""}, verify=str(pki.root_pem))
    assert r.status_code == 400 and r.json()["errors"] == ["no client certificate found"]
    events = [e for e in srv.call("audit-query", {"action": "auth"})["events"] if e["path"] == "/cert"]
    reasons = " | ".join(e["request_parameters"].get("refusal_reason", "") for e in events)
    assert "no trusted certificate" in reasons and "allowed_dns_sans" in reasons
    assert all(e["request_parameters"].get("claim.common_name") == "web-client" for e in events if e["status"] != 400
               or "refusal_reason" in e["request_parameters"])


def test_akeyless_sdk_cert_method_and_login(cert_world, pki):
    srv, s, pairs, good = cert_world
    api = akeyless.V2Api(akeyless.ApiClient(_configuration(srv, pki)))
    admin = srv.token()
    out = api.auth_method_create_cert(akeyless.AuthMethodCreateCert(
        name="/certs/web", certificate_data=base64.b64encode(pki.client_ca.pem).decode(), unique_identifier="common_name",
        bound_dns_sans=["web.example"], token=admin))
    api.assoc_role_auth_method(akeyless.AssocRoleAuthMethod(role_name="web-reader", am_name="/certs/web",
                                                            sub_claims={"common_name": "web-client"}, token=admin))
    t = api.auth(akeyless.Auth(access_id=out.access_id, access_type="cert",
                               cert_data=base64.b64encode(good.cert_pem).decode(),
                               key_data=base64.b64encode(good.key_pem).decode())).token
    value = api.get_secret_value(akeyless.GetSecretValue(names=["/secret/web/config"], token=t))["/secret/web/config"]
    assert json.loads(value)["password"] == SECRET
    other_key = issue(pki.client_ca, "web-client", ["web.example"])
    with pytest.raises(ApiException) as e:
        api.auth(akeyless.Auth(access_id=out.access_id, access_type="cert", cert_data=base64.b64encode(good.cert_pem).decode(),
                               key_data=base64.b64encode(other_key.key_pem).decode()))
    assert e.value.status == 401
    rogue = issue(pki.other_ca, "web-client", ["web.example"])
    with pytest.raises(ApiException) as e:
        api.auth(akeyless.Auth(access_id=out.access_id, access_type="cert", cert_data=base64.b64encode(rogue.cert_pem).decode(),
                               key_data=base64.b64encode(rogue.key_pem).decode()))
    assert e.value.status == 401


def _configuration(srv, pki) -> akeyless.Configuration:
    cfg = akeyless.Configuration(host=srv.api_url)
    cfg.ssl_ca_cert = str(pki.root_pem)
    return cfg
