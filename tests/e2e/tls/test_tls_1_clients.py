"""Real clients over HTTPS: the bao CLI (VAULT_CACERT), hvac (verify=CA) and the Akeyless SDK
(ssl_ca_cert) read and write through Tessera's TLS listener when given the CA, and each fails
with a certificate error without it. Two servers: one serving a certificate file that holds
leaf + intermediate (clients trust only the root, so the chain must be served), and a
`--dev-tls` server whose CA path is taken from its banner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import akeyless
import hvac
import pytest
import requests

import tlslib as T


@pytest.fixture(scope="module")
def devtls_server(module_servers) -> T.TesseraTLS:
    srv = module_servers(args=["--dev-tls"], name="clients-devtls")
    assert srv.ca and Path(srv.ca).is_file(), f"no 'CA Certificate:' path in the banner:\n{srv.read_log()}"
    return srv


@pytest.fixture(scope="module", params=["chain", "dev-tls"])
def https_server(request) -> T.TesseraTLS:
    return request.getfixturevalue("chain_server" if request.param == "chain" else "devtls_server")


def test_the_served_chain_verifies_against_the_ca_alone(https_server, pki):
    assert https_server.url.startswith("https://127.0.0.1:")
    p = T.probe(https_server.port, T.client_context(https_server.ca))
    assert p.ok and p.status == 200, p
    if https_server.name == "chain":
        # only root.pem is trusted: the handshake needed the intermediate from the server
        assert p.peer_fingerprint == pki.server_a.fingerprint
        assert Path(https_server.ca).read_bytes() == pki.root.pem
    else:
        leaf = T.x509.load_der_x509_certificate(p.peer_der)
        ca = T.load_pem_cert(https_server.ca)
        assert leaf.issuer == ca.subject
        leaf.verify_directly_issued_by(ca)


def test_bao_cli_reads_and_writes_with_vault_cacert(https_server, bao_bin, tmp_path):
    value = T.uid("baoval")
    path = f"secret/tls/bao-{T.uid()}"
    r = T.run_bao(bao_bin, https_server.url, https_server.vault_token, tmp_path / "bao", "kv", "put", path,
                  f"v={value}", cacert=https_server.ca)
    assert r.returncode == 0, T.show(r)
    r = T.run_bao(bao_bin, https_server.url, https_server.vault_token, tmp_path / "bao", "kv", "get", "-field=v", path,
                  cacert=https_server.ca)
    assert r.returncode == 0 and r.stdout.strip() == value, T.show(r)

    # without VAULT_CACERT: the system CAs do not know the test CA
    r = T.run_bao(bao_bin, https_server.url, https_server.vault_token, tmp_path / "bao", "kv", "get", "-field=v", path)
    assert r.returncode != 0, T.show(r)
    assert "x509: certificate signed by unknown authority" in r.stderr, T.show(r)
    assert value not in r.stdout


def test_hvac_reads_and_writes_with_verify_ca(https_server):
    value = T.uid("hvacval")
    path = f"tls/hvac-{T.uid()}"
    c = hvac.Client(url=https_server.url, token=https_server.vault_token, verify=https_server.ca)
    try:
        assert c.is_authenticated()
        c.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": value}, mount_point="secret")
        got = c.secrets.kv.v2.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)
        assert got["data"]["data"] == {"v": value}
    finally:
        c.adapter.close()

    bare = hvac.Client(url=https_server.url, token=https_server.vault_token)
    try:
        with pytest.raises(requests.exceptions.SSLError) as ei:
            bare.secrets.kv.v2.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)
        assert "CERTIFICATE_VERIFY_FAILED" in str(ei.value)
    finally:
        bare.adapter.close()


def _sdk(server: T.TesseraTLS, ca: str | None) -> akeyless.V2Api:
    cfg = akeyless.Configuration(host=f"{server.url}/api/v2")
    if ca:
        cfg.ssl_ca_cert = ca
    cfg.retries = 0
    return akeyless.V2Api(akeyless.ApiClient(cfg))


def test_akeyless_sdk_reads_and_writes_with_ssl_ca_cert(https_server):
    api = _sdk(https_server, https_server.ca)
    tok = api.auth(akeyless.Auth(access_id=https_server.admin_id, access_key=https_server.admin_key)).token
    assert tok.startswith("t-")
    name, value = f"/tls/sdk/{T.uid()}", T.uid("sdkval")
    assert api.create_secret(akeyless.CreateSecret(name=name, value=value, token=tok)).name == name
    assert api.get_secret_value(akeyless.GetSecretValue(names=[name], token=tok)) == {name: value}

    bare = _sdk(https_server, None)
    with pytest.raises(Exception) as ei:
        bare.get_secret_value(akeyless.GetSecretValue(names=[name], token=tok))
    assert "CERTIFICATE_VERIFY_FAILED" in str(ei.value), repr(ei.value)


def test_clients_see_each_others_writes(https_server, bao_bin, tmp_path):
    """One item, three clients over HTTPS: SDK writes, bao and hvac read."""
    api = _sdk(https_server, https_server.ca)
    tok = api.auth(akeyless.Auth(access_id=https_server.admin_id, access_key=https_server.admin_key)).token
    leaf = T.uid("x")
    value = T.uid("shared")
    api.create_secret(akeyless.CreateSecret(name=f"/secret/tls/{leaf}", value=json.dumps({"v": value}), token=tok))
    r = T.run_bao(bao_bin, https_server.url, https_server.vault_token, tmp_path / "bao", "kv", "get", "-field=v",
                  f"secret/tls/{leaf}", cacert=https_server.ca)
    assert r.returncode == 0 and r.stdout.strip() == value, T.show(r)
    c = hvac.Client(url=https_server.url, token=https_server.vault_token, verify=https_server.ca)
    try:
        got = c.secrets.kv.v2.read_secret_version(path=f"tls/{leaf}", mount_point="secret", raise_on_deleted_version=True)
        assert got["data"]["data"] == {"v": value}
    finally:
        c.adapter.close()


def test_dev_tls_banner_and_files(devtls_server):
    log = devtls_server.read_log()
    ca = devtls_server.ca
    assert re.search(r"Address:\s+https://127\.0\.0\.1:\d+", log), log
    assert f"CA Certificate: {ca}" in log
    assert f"export VAULT_CACERT='{ca}'" in log
    assert f"export TESSERA_CACERT='{ca}'" in log
    folder = Path(ca).parent
    assert (folder / "server.pem").is_file() and (folder / "server-key.pem").is_file()
    assert (folder / "server-key.pem").stat().st_mode & 0o077 == 0, "the dev key must not be readable by others"
    chain = T.x509.load_pem_x509_certificates((folder / "server.pem").read_bytes())
    assert len(chain) == 2 and chain[1] == T.load_pem_cert(ca)
    assert "BEGIN" in (folder / "server-key.pem").read_text()
    assert "PRIVATE KEY" not in log, "the banner must not print the key"
