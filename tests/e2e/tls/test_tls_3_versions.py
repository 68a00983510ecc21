"""Protocol versions: TLS 1.1 is refused at the handshake (the client's ability to offer 1.1 is
checked first against a throwaway Python server; otherwise `openssl s_client -tls1_1` is used),
TLS 1.2 and 1.3 are accepted by default, and with --tls-min-version tls13 TLS 1.2 is refused
while 1.3 works. That server uses an RSA key in the traditional PEM format. A minimum of
tls11 is rejected at start-up."""

from __future__ import annotations

import json
import ssl

import pytest

import tlslib as T

V12, V13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3


@pytest.fixture(scope="module")
def tls13_server(module_servers, pki, tmp_path_factory) -> T.TesseraTLS:
    cert, key = pki.write_pair(pki.server_rsa, "rsa", tmp_path_factory.mktemp("tls13"))
    assert "BEGIN RSA PRIVATE KEY" in open(key).read()
    return module_servers(args=["--tls-cert-file", cert, "--tls-key-file", key, "--tls-min-version", "tls13"],
                          ca=pki.root_pem, name="tls13")


@pytest.fixture(scope="module")
def python_offers_tls11(server_a_pair) -> bool:
    return T.local_tls11_handshake_works(*server_a_pair)


def _assert_tls11_refused(port: int, python_offers_tls11: bool) -> None:
    if python_offers_tls11:
        p = T.probe(port, T.tls11_client_context())
        assert not p.ok and p.version is None, f"TLS 1.1 was accepted: {p}"
        assert "PROTOCOL_VERSION" in p.error or "UNSUPPORTED_PROTOCOL" in p.error, p
        return
    out = T.openssl_s_client(port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    text = out.stdout + out.stderr
    assert out.returncode != 0, f"openssl s_client -tls1_1 connected:\n{text[-2000:]}"
    # s_client still prints "Protocol : TLSv1.1" (what it offered); the session has no cipher
    assert "Cipher is (NONE)" in text and "BEGIN CERTIFICATE" not in text, text[-2000:]


def test_tls11_is_refused(chain_server, python_offers_tls11):
    _assert_tls11_refused(chain_server.port, python_offers_tls11)
    # the refusal did not hurt the server
    p = T.probe(chain_server.port, T.client_context(chain_server.ca))
    assert p.ok and p.status == 200, p


@pytest.mark.parametrize("version, name", [(V12, "TLSv1.2"), (V13, "TLSv1.3")])
def test_tls12_and_tls13_are_accepted_by_default(chain_server, version, name):
    p = T.probe(chain_server.port, T.client_context(chain_server.ca, min_version=version, max_version=version))
    assert p.ok and p.version == name and p.status == 200, p


def test_min_version_tls13_refuses_tls12(tls13_server, pki, python_offers_tls11):
    p = T.probe(tls13_server.port, T.client_context(pki.root_pem, min_version=V12, max_version=V12))
    assert not p.ok and p.version is None, f"TLS 1.2 was accepted: {p}"
    assert "PROTOCOL_VERSION" in p.error, p
    _assert_tls11_refused(tls13_server.port, python_offers_tls11)

    p = T.probe(tls13_server.port, T.client_context(pki.root_pem, min_version=V13, max_version=V13))
    assert p.ok and p.version == "TLSv1.3" and p.status == 200, p
    assert p.peer_fingerprint == pki.server_rsa.fingerprint
    # a real client with its defaults negotiates 1.3
    r = tls13_server.session.get(f"{tls13_server.url}/v1/sys/health", timeout=10)
    assert r.status_code == 200


@pytest.mark.parametrize("how", ["flag", "config"])
def test_min_version_below_tls12_is_rejected_at_start(how, pki, server_a_pair, tmp_path):
    cert, key = server_a_pair
    args = ["--dev", "--listen", f"127.0.0.1:{T.free_port()}"]
    if how == "flag":
        args += ["--tls-cert-file", cert, "--tls-key-file", key, "--tls-min-version", "tls11"]
    else:
        cfg = tmp_path / "tessera.json"
        cfg.write_text(json.dumps({"tls_cert_file": cert, "tls_key_file": key, "tls_min_version": "1.1"}))
        args += ["--config", str(cfg)]
    p = T.run_server_once(args)
    assert p.returncode != 0, T.show(p)
    assert "tls_min_version must be tls12 or tls13" in p.stderr, T.show(p)
    assert "listening on" not in p.stdout


def test_plain_http_to_the_https_port_gets_vaults_400(chain_server):
    """A client that forgot https gets Vault's answer instead of a silent close, and the server
    keeps serving TLS."""
    import socket
    with socket.create_connection(("127.0.0.1", chain_server.port), timeout=10) as s:
        s.sendall(b"GET /v1/sys/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"Client sent an HTTP request to an HTTPS server." in answer
    assert T.probe(chain_server.port, T.client_context(chain_server.ca)).ok
