"""The tessera CLI over HTTPS: `auth` with --ca-cert (or TESSERA_CACERT) saves the CA in the
profile, so create-secret (value from stdin) and get-secret-value round-trip without repeating
it; without the CA, or with the wrong one (which --ca-cert and TESSERA_CACERT override the
profile with), the CLI fails with "the TLS handshake failed". Each run has its own HOME."""

from __future__ import annotations

import json

import pytest

import tlslib as T

KEY_ENV = "TLS_E2E_ACCESS_KEY"


def _auth(srv: T.TesseraTLS, home, *extra: str, env: dict | None = None):
    e = {KEY_ENV: srv.admin_key, **(env or {})}
    return T.run_cli(home, "auth", "--address", srv.url, "--access-id", srv.admin_id, "--access-key", f"env:{KEY_ENV}",
                     *extra, env=e)


def _round_trip(home, name: str, value: str, env: dict | None = None) -> None:
    p = T.run_cli(home, "create-secret", "--name", name, "--value", "-", input=value, env=env)
    assert p.returncode == 0, T.show(p)
    p = T.run_cli(home, "get-secret-value", "--name", name, env=env)
    assert p.returncode == 0 and p.stdout.strip() == value, T.show(p)


@pytest.fixture(scope="module", params=["chain", "dev-tls"])
def cli_server(request, module_servers) -> T.TesseraTLS:
    if request.param == "chain":
        return request.getfixturevalue("chain_server")
    return module_servers(args=["--dev-tls"], name="cli-devtls")


def test_ca_cert_flag_is_saved_in_the_profile(cli_server, tmp_path):
    home = tmp_path / "flag"
    p = _auth(cli_server, home, "--ca-cert", cli_server.ca)
    assert p.returncode == 0, T.show(p)
    text = T.profile_file(home).read_text()
    profile = json.loads(text)
    assert profile["caCert"] == cli_server.ca and profile["address"] == cli_server.url, profile
    assert cli_server.admin_key not in text
    _round_trip(home, f"/tls/cli/{T.uid()}", T.uid("flagval"))


def test_tessera_cacert_env(cli_server, tmp_path):
    home = tmp_path / "env"
    env = {"TESSERA_CACERT": cli_server.ca}
    p = _auth(cli_server, home, env=env)
    assert p.returncode == 0, T.show(p)
    _round_trip(home, f"/tls/cli/{T.uid()}", T.uid("envval"), env=env)
    # the CA given through the environment at auth is saved in the profile too
    assert json.loads(T.profile_file(home).read_text())["caCert"] == cli_server.ca
    _round_trip(home, f"/tls/cli/{T.uid()}", T.uid("envval2"))


def test_without_the_ca_the_handshake_fails(cli_server, tmp_path):
    home = tmp_path / "none"
    p = _auth(cli_server, home)
    assert p.returncode != 0, T.show(p)
    assert "the TLS handshake failed" in p.stderr, T.show(p)
    assert not T.profile_file(home).exists(), "a failed auth must not save a profile"
    p = T.run_cli(home, "get-secret-value", "--name", "/tls/x", "--address", cli_server.url, "--token", "t-whatever")
    assert p.returncode != 0 and "the TLS handshake failed" in p.stderr, T.show(p)


def test_wrong_ca_overrides_the_profile(cli_server, pki, tmp_path):
    home = tmp_path / "override"
    assert _auth(cli_server, home, "--ca-cert", cli_server.ca).returncode == 0
    name, value = f"/tls/cli/{T.uid()}", T.uid("ov")
    _round_trip(home, name, value)
    p = T.run_cli(home, "get-secret-value", "--name", name, "--ca-cert", str(pki.other_ca_pem))
    assert p.returncode != 0 and "the TLS handshake failed" in p.stderr, T.show(p)
    assert value not in p.stdout
    p = T.run_cli(home, "get-secret-value", "--name", name, env={"TESSERA_CACERT": str(pki.other_ca_pem)})
    assert p.returncode != 0 and "the TLS handshake failed" in p.stderr, T.show(p)
    # the profile's CA still works afterwards
    p = T.run_cli(home, "get-secret-value", "--name", name)
    assert p.returncode == 0 and p.stdout.strip() == value, T.show(p)
