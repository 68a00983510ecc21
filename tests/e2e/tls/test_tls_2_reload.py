"""SIGHUP reloads the TLS certificate and key from disk: new connections get the new
certificate while an HTTP keep-alive connection opened before the signal keeps serving on the
same socket with the old one; bad files (garbage certificate, garbage key, a key that does not
match) leave the old certificate in use and the log says it "was not reloaded"."""

from __future__ import annotations

import http.client
import json

import tlslib as T


def _served_fp(srv: T.TesseraTLS, pki: T.PKI) -> str:
    return T.fingerprint(T.served_certificate(srv.port, pki.root_pem))


def _reload_start(tmp_path, servers, pki, issued: T.Issued):
    live = tmp_path / "live"
    cert, key = pki.write_pair(issued, "server", live)
    srv = servers(args=["--tls-cert-file", cert, "--tls-key-file", key], ca=pki.root_pem, name="reload")
    assert _served_fp(srv, pki) == issued.fingerprint
    return srv, live


def _request(conn: http.client.HTTPSConnection, method: str, path: str, token: str | None = None, body=None):
    headers = {"X-Vault-Token": token} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    payload = r.read()
    assert not r.will_close, "the server closed the keep-alive connection"
    return r.status, payload


def test_sighup_new_connections_get_the_new_cert_open_ones_keep_working(tmp_path, servers, pki):
    srv, live = _reload_start(tmp_path, servers, pki, pki.server_a)

    # a keep-alive connection opened before the reload, with one write on it
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=T.client_context(pki.root_pem), timeout=15)
    try:
        status, _ = _request(conn, "PUT", "/v1/secret/data/reload/before", srv.vault_token, {"data": {"v": "before"}})
        assert status == 200
        sock = conn.sock
        local = sock.getsockname()
        assert T.fingerprint(sock.getpeercert(binary_form=True)) == pki.server_a.fingerprint

        T.write_file(live / "server.pem", pki.server_b.chain_pem)
        T.write_file(live / "server-key.pem", pki.server_b.key_pem, 0o600)
        srv.hup()
        T.wait_until(lambda: _served_fp(srv, pki) == pki.server_b.fingerprint, timeout=10,
                     what="new connections to get server_b's certificate")
        T.wait_until(lambda: "reloaded the TLS certificate" in srv.read_log(), timeout=5, what="the reload log line")

        # the old connection: same socket, still the old certificate, still answering
        for _ in range(3):
            status, payload = _request(conn, "GET", "/v1/secret/data/reload/before", srv.vault_token)
            assert status == 200, payload
            assert json.loads(payload)["data"]["data"] == {"v": "before"}
        status, _ = _request(conn, "PUT", "/v1/secret/data/reload/after-on-old", srv.vault_token, {"data": {"v": "old"}})
        assert status == 200
        assert conn.sock is sock and sock.getsockname() == local, "http.client reconnected: the keep-alive connection was lost"
        assert T.fingerprint(sock.getpeercert(binary_form=True)) == pki.server_a.fingerprint
    finally:
        conn.close()

    # a new client sees the write made on the old connection, over the new certificate
    p = T.probe(srv.port, T.client_context(pki.root_pem))
    assert p.ok and p.status == 200 and p.peer_fingerprint == pki.server_b.fingerprint, p
    r = srv.session.get(f"{srv.url}/v1/secret/data/reload/after-on-old", headers={"X-Vault-Token": srv.vault_token}, timeout=10)
    assert r.status_code == 200 and r.json()["data"]["data"] == {"v": "old"}, r.text


def test_sighup_with_bad_files_keeps_the_old_cert(tmp_path, servers, pki):
    srv, live = _reload_start(tmp_path, servers, pki, pki.server_a)
    cert, key = live / "server.pem", live / "server-key.pem"

    def hup_and_expect_failure(n: int) -> None:
        srv.hup()
        T.wait_until(lambda: srv.read_log().count("was not reloaded") >= n, timeout=10,
                     what=f"failed reload #{n} in the log")
        assert srv.alive()
        assert _served_fp(srv, pki) == pki.server_a.fingerprint, "a bad reload changed the served certificate"
        p = T.probe(srv.port, T.client_context(pki.root_pem))
        assert p.ok and p.status == 200, p

    # 1. the certificate file is garbage
    T.write_file(cert, b"this is not a certificate\n")
    hup_and_expect_failure(1)
    # 2. a good certificate, but the key file is garbage
    T.write_file(cert, pki.server_b.chain_pem)
    T.write_file(key, b"-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n", 0o600)
    hup_and_expect_failure(2)
    # 3. a good certificate with the key of another certificate
    T.write_file(key, pki.server_c.key_pem, 0o600)
    hup_and_expect_failure(3)
    # 4. the certificate file is missing
    cert.unlink()
    hup_and_expect_failure(4)
    log = srv.read_log()
    assert "reloaded the TLS certificate and key" not in log, log
    assert "BEGIN PRIVATE KEY" not in log and "not base64" not in log, "file contents must not be logged"

    # good files again: the next SIGHUP takes them
    T.write_file(cert, pki.server_c.chain_pem)
    T.write_file(key, pki.server_c.key_pem, 0o600)
    srv.hup()
    T.wait_until(lambda: _served_fp(srv, pki) == pki.server_c.fingerprint, timeout=10,
                 what="server_c's certificate after a good reload")
    assert srv.alive()
