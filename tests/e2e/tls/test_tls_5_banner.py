"""Start-up: a non-dev server without TLS prints "WARNING: TLS is off", a non-dev TLS server
does not (and serves https:// ready for `sys/init`); bad certificate or key files make the
server exit 1 with one clear "Error: cannot read the TLS ..." line on stderr (no crash, no stack
trace, no file content echoed); --dev-tls removes its folder (CA, certificate, key) on exit, and
its flag combinations are checked."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization

import tlslib as T

CRASH_MARKERS = ("Fatal error", "Stack dump", "Traceback", "Current stack trace", "Segmentation", "💣", "Illegal instruction")


def test_plain_non_dev_server_warns_that_tls_is_off(tmp_path):
    node = T.DurableNode(tmp_path)
    T.exec_retrying(node.start)
    try:
        T.wait_until(lambda: "listening on http://" in node.log.read_text(), timeout=10, what="the banner")
        log = node.log.read_text()
        assert "WARNING: TLS is off" in log, log
        assert "tls_cert_file" in log and "--tls-cert-file" in log, "the warning should say how to turn TLS on"
        # SIGHUP without TLS: nothing to reload, the server keeps serving
        node.initialize()
        node.proc.send_signal(signal.SIGHUP)
        T.wait_until(lambda: requests.get(node.base + "/v1/sys/health", timeout=2).status_code == 200, timeout=5,
                     what="health after SIGHUP")
        assert node.proc.poll() is None
    finally:
        node.stop()


def test_tls_non_dev_server_has_no_warning_and_serves_https(servers, pki, server_a_pair, tmp_path):
    cert, key = server_a_pair
    srv = servers(dev=False, args=["--data-dir", str(tmp_path / "data"), "--tls-cert-file", cert, "--tls-key-file", key],
                  ca=pki.root_pem, name="nondev-tls")
    log = srv.read_log()
    assert "WARNING: TLS is off" not in log, log
    assert f"listening on https://127.0.0.1:{srv.port}" in log, log
    assert "DEV MODE" not in log
    r = srv.session.get(f"{srv.url}/v1/sys/seal-status", timeout=10)
    assert r.status_code == 200 and r.json()["initialized"] is False, r.text
    r = srv.session.put(f"{srv.url}/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}, timeout=30)
    assert r.status_code == 200, r.text
    # plain HTTP on the TLS port is not served
    with requests.Session() as s:
        s.trust_env = False
        try:
            r = s.get(f"http://127.0.0.1:{srv.port}/v1/sys/health", timeout=5)
        except requests.exceptions.RequestException:
            pass
        else:
            assert r.status_code != 200, "plain HTTP was served on the TLS port"
    assert srv.alive()


def _bad_files(tmp: Path, pki: T.PKI, server_a_pair) -> dict[str, tuple[list[str], str]]:
    cert, key = server_a_pair
    garbage_key = T.write_file(tmp / "garbage-key.pem", b"-----BEGIN PRIVATE KEY-----\nSECRETMARKER-not-a-key\n-----END PRIVATE KEY-----\n", 0o600)
    garbage_cert = T.write_file(tmp / "garbage-cert.pem", b"SECRETMARKER this is no certificate\n")
    encrypted = T.write_file(tmp / "encrypted-key.pem", pki.server_a.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"a-passphrase")), 0o600)
    other_key = T.write_file(tmp / "other-key.pem", pki.server_b.key_pem, 0o600)
    missing = str(tmp / "does-not-exist.pem")
    return {
        "garbage key": (["--tls-cert-file", cert, "--tls-key-file", str(garbage_key)], f"Error: cannot read the TLS key file {garbage_key}"),
        "encrypted key": (["--tls-cert-file", cert, "--tls-key-file", str(encrypted)], f"Error: cannot read the TLS key file {encrypted}"),
        "missing key": (["--tls-cert-file", cert, "--tls-key-file", missing], f"Error: cannot read the TLS key file {missing}"),
        "garbage cert": (["--tls-cert-file", str(garbage_cert), "--tls-key-file", key],
                         f"Error: cannot read the TLS certificate file {garbage_cert}"),
        "missing cert": (["--tls-cert-file", missing, "--tls-key-file", key], f"Error: cannot read the TLS certificate file {missing}"),
        "mismatched pair": (["--tls-cert-file", cert, "--tls-key-file", str(other_key)], "do not make a usable pair"),
        "bad client CA": (["--tls-cert-file", cert, "--tls-key-file", key, "--tls-client-ca-file", str(garbage_cert)],
                          f"Error: cannot read the TLS client CA file {garbage_cert}"),
    }


CASES = ["garbage key", "encrypted key", "missing key", "garbage cert", "missing cert", "mismatched pair", "bad client CA"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", ["non-dev", "dev"])
def test_bad_tls_files_exit_1_with_a_clear_error(case, mode, pki, server_a_pair, tmp_path):
    args, message = _bad_files(tmp_path, pki, server_a_pair)[case]
    base = ["--listen", f"127.0.0.1:{T.free_port()}"]
    base += ["--dev"] if mode == "dev" else ["--data-dir", str(tmp_path / "data")]
    p = T.run_server_once(base + args, tmpdir=tmp_path / "tmpdir")
    assert p.returncode == 1, T.show(p)
    assert message in p.stderr, T.show(p)
    err_lines = [l for l in p.stderr.splitlines() if l.strip() and "info tessera" not in l and "notice tessera" not in l]
    assert len(err_lines) <= 2, f"expected one error line:\n{p.stderr}"
    for marker in CRASH_MARKERS:
        assert marker not in p.stderr, T.show(p)
    assert "SECRETMARKER" not in p.stdout + p.stderr, "file content must not be echoed"
    assert "listening on" not in p.stdout, T.show(p)


def test_dev_start_failure_leaves_no_dev_folder(pki, tmp_path):
    garbage = T.write_file(tmp_path / "garbage.pem", b"garbage\n")
    tmpdir = tmp_path / "tmpdir"
    p = T.run_server_once(["--dev", "--listen", f"127.0.0.1:{T.free_port()}", "--tls-cert-file", str(garbage),
                           "--tls-key-file", str(garbage)], tmpdir=tmpdir)
    assert p.returncode == 1, T.show(p)
    left = [x.name for x in tmpdir.iterdir()]
    assert left == [], f"left behind in TMPDIR: {left}"


def test_key_without_cert_is_rejected(server_a_pair, tmp_path):
    _cert, key = server_a_pair
    p = T.run_server_once(["--listen", f"127.0.0.1:{T.free_port()}", "--data-dir", str(tmp_path / "d"), "--tls-key-file", key])
    assert p.returncode != 0, T.show(p)
    assert "TLS needs both tls_cert_file and tls_key_file" in p.stderr, T.show(p)
    for marker in CRASH_MARKERS:
        assert marker not in p.stderr


def test_dev_tls_flag_combinations(server_a_pair, tmp_path):
    cert, key = server_a_pair
    p = T.run_server_once(["--listen", f"127.0.0.1:{T.free_port()}", "--data-dir", str(tmp_path / "d"), "--dev-tls"])
    assert p.returncode != 0 and "need --dev" in p.stderr, T.show(p)
    p = T.run_server_once(["--dev", "--dev-tls", "--listen", f"127.0.0.1:{T.free_port()}", "--tls-cert-file", cert,
                           "--tls-key-file", key])
    assert p.returncode != 0 and "leave out --tls-cert-file" in p.stderr, T.show(p)


def test_dev_tls_folder_is_removed_on_exit(servers):
    srv = servers(args=["--dev-tls"], name="devtls-exit")
    folder = Path(srv.ca).parent
    assert (folder / "server-key.pem").is_file()
    assert srv.session.get(f"{srv.url}/v1/sys/health", timeout=10).status_code == 200
    assert srv.stop() == 0, srv.read_log()[-2000:]
    assert not folder.exists(), f"{folder} left behind"
