"""Client certificates: with --tls-client-ca-file (and the default
--tls-require-and-verify-client-cert true) a client without a certificate, or with one from
another CA, is refused at the TLS layer, and a certificate from the client CA gets in (then the
token still decides). With --tls-require-and-verify-client-cert false (flag, and the config-file
keys) a client without a certificate is served anonymously, still needing a token, while a
presented certificate from the wrong CA is still refused."""

from __future__ import annotations

import json
import ssl

import pytest
import requests

import tlslib as T

VERSIONS = [pytest.param(ssl.TLSVersion.TLSv1_2, id="tls12"), pytest.param(ssl.TLSVersion.TLSv1_3, id="tls13")]


@pytest.fixture(scope="module")
def strict(module_servers, pki, server_a_pair) -> T.TesseraTLS:
    cert, key = server_a_pair
    return module_servers(args=["--tls-cert-file", cert, "--tls-key-file", key, "--tls-client-ca-file", str(pki.client_ca_pem)],
                          ca=pki.root_pem, client_cert=pki.client_pair, name="mtls-strict")


@pytest.fixture(scope="module", params=["flag", "config"])
def relaxed(request, module_servers, pki, server_a_pair, tmp_path_factory) -> T.TesseraTLS:
    cert, key = server_a_pair
    if request.param == "flag":
        args = ["--tls-cert-file", cert, "--tls-key-file", key, "--tls-client-ca-file", str(pki.client_ca_pem),
                "--tls-require-and-verify-client-cert", "false"]
    else:
        cfg = tmp_path_factory.mktemp("relaxed-cfg") / "tessera.json"
        cfg.write_text(json.dumps({"tls_cert_file": cert, "tls_key_file": key, "tls_client_ca_file": str(pki.client_ca_pem),
                                   "tls_require_and_verify_client_cert": False, "tls_min_version": "tls12"}))
        args = ["--config", str(cfg)]
    return module_servers(args=args, ca=pki.root_pem, name=f"mtls-relaxed-{request.param}")


def _refused(p: T.Probe) -> None:
    assert not p.ok and p.status is None, f"the connection was served: {p}"
    # refused by TLS (an alert such as "unknown ca" / "certificate required"), not by HTTP
    assert any(w in p.error for w in ("ALERT", "EOF", "Reset")), p


def _requests_refused(url: str, ca, cert=None) -> None:
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        with requests.Session() as s:
            s.trust_env = False
            s.get(f"{url}/v1/sys/health", verify=str(ca), cert=cert, timeout=10)


# ------------------------------------------------------------------------------------------
# required (the default with a client CA)
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_required_no_cert_is_refused(strict, pki, version):
    p = T.probe(strict.port, T.client_context(pki.root_pem, min_version=version, max_version=version))
    _refused(p)
    if version == ssl.TLSVersion.TLSv1_2:
        assert p.version is None, "TLS 1.2: the handshake itself must fail"
    _requests_refused(strict.url, pki.root_pem)


@pytest.mark.parametrize("version", VERSIONS)
def test_required_cert_from_another_ca_is_refused(strict, pki, version):
    p = T.probe(strict.port, T.client_context(pki.root_pem, min_version=version, max_version=version, cert=pki.rogue_pair))
    _refused(p)
    _requests_refused(strict.url, pki.root_pem, cert=pki.rogue_pair)


@pytest.mark.parametrize("version", VERSIONS)
def test_required_cert_from_the_client_ca_works(strict, pki, version):
    p = T.probe(strict.port, T.client_context(pki.root_pem, min_version=version, max_version=version, cert=pki.client_pair))
    assert p.ok and p.status == 200, p


def test_required_cert_then_token_decides(strict, pki):
    with requests.Session() as s:
        s.trust_env = False
        r = s.get(f"{strict.url}/v1/sys/health", verify=str(pki.root_pem), cert=pki.client_pair, timeout=10)
        assert r.status_code == 200, r.text
        # the certificate alone does not authenticate
        r = s.get(f"{strict.url}/v1/secret/data/mtls/x", verify=str(pki.root_pem), cert=pki.client_pair, timeout=10)
        assert r.status_code in (401, 403), r.text
    # with a token (our session sends the client certificate)
    name, value = f"/mtls/{T.uid()}", T.uid("v")
    strict.call("create-secret", {"name": name, "value": value})
    assert strict.call("get-secret-value", {"names": [name]}) == {name: value}


# ------------------------------------------------------------------------------------------
# optional (--tls-require-and-verify-client-cert false)
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_optional_no_cert_is_served_but_needs_a_token(relaxed, pki, version):
    p = T.probe(relaxed.port, T.client_context(pki.root_pem, min_version=version, max_version=version))
    assert p.ok and p.status == 200, p

    with requests.Session() as s:
        s.trust_env = False
        s.verify = str(pki.root_pem)
        r = s.get(f"{relaxed.url}/v1/secret/data/anon/x", timeout=10)
        assert r.status_code in (401, 403), r.text
        r = s.post(f"{relaxed.api_url}/get-secret-value", json={"names": ["/anon/x"]}, timeout=10)
        assert r.status_code in (401, 403), r.text
        # anonymous TLS + a token works
        r = s.put(f"{relaxed.url}/v1/secret/data/anon/x", headers={"X-Vault-Token": relaxed.vault_token},
                  json={"data": {"k": "v"}}, timeout=10)
        assert r.status_code == 200, r.text
        r = s.get(f"{relaxed.url}/v1/secret/data/anon/x", headers={"X-Vault-Token": relaxed.vault_token}, timeout=10)
        assert r.status_code == 200 and r.json()["data"]["data"] == {"k": "v"}, r.text


@pytest.mark.parametrize("version", VERSIONS)
def test_optional_cert_from_another_ca_is_still_refused(relaxed, pki, version):
    p = T.probe(relaxed.port, T.client_context(pki.root_pem, min_version=version, max_version=version, cert=pki.rogue_pair))
    _refused(p)
    _requests_refused(relaxed.url, pki.root_pem, cert=pki.rogue_pair)


def test_optional_cert_from_the_client_ca_works(relaxed, pki):
    p = T.probe(relaxed.port, T.client_context(pki.root_pem, cert=pki.client_pair))
    assert p.ok and p.status == 200, p
