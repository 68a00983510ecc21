"""A hashi-vault target over HTTPS: against a real `bao server -dev -dev-tls`, the target
created with ca-certificate (its CA bundle) works — a USC reads the seeded secret and writes a
new one that bao reads back — while without the CA, or with another CA, creation is refused with
a 400 that says the TLS certificate was not accepted. ca-certificate needs an https URL and PEM
content; the CLI takes it as @FILE."""

from __future__ import annotations

import base64
import json

import pytest

import tlslib as T


@pytest.fixture(scope="module")
def srv(chain_server) -> T.TesseraTLS:
    return chain_server


@pytest.fixture(scope="module")
def bao_ca(openbao_tls) -> str:
    return openbao_tls.ca_file.read_text()


def _create(srv: T.TesseraTLS, bao: T.BaoTLSDevServer, **fields):
    name = T.uid("vt")
    body = {"name": name, "hashi-url": bao.addr, "vault-token": bao.root_token, "kv-mount": "secret/"}
    body.update({k.replace("_", "-"): v for k, v in fields.items()})
    return srv.post("target-create-hashi-vault", body), name


def _not_listed(srv: T.TesseraTLS, name: str) -> None:
    assert name not in [t["target_name"] for t in srv.call("target-list")["targets"]]


def test_target_with_the_ca_reads_and_writes_through_a_usc(srv, openbao_tls, bao_ca, bao_bin, tmp_path):
    r, target = _create(srv, openbao_tls, ca_certificate=bao_ca)
    assert r.status_code == 200, r.text
    t = srv.call("target-get", {"name": target})
    assert t["hashi_url"] == openbao_tls.addr and t["ca_certificate"] == bao_ca, t
    assert openbao_tls.root_token not in json.dumps(t)

    usc = T.uid("usc")
    srv.call("create-usc", {"name": usc, "target-to-associate": target})
    out = srv.call("usc-get", {"usc-name": usc, "secret-id": "myapp/tls-secret"})
    assert json.loads(base64.b64decode(out["value"])) == {"value": openbao_tls.seeded_value}, out

    value = T.uid("through-usc")
    out = srv.call("usc-create", {"usc-name": usc, "secret-name": "myapp/written-by-tessera", "value": json.dumps({"v": value})})
    assert out["secret_id"] == "myapp/written-by-tessera", out
    p = T.run_bao(bao_bin, openbao_tls.addr, openbao_tls.root_token, tmp_path / "bao", "kv", "get", "-field=v",
                  "secret/myapp/written-by-tessera", cacert=str(openbao_tls.ca_file))
    assert p.returncode == 0 and p.stdout.strip() == value, T.show(p)


@pytest.mark.parametrize("ca", ["none", "other"])
def test_target_without_the_right_ca_is_refused(srv, openbao_tls, pki, ca):
    fields = {} if ca == "none" else {"ca_certificate": pki.other_ca.pem.decode()}
    r, target = _create(srv, openbao_tls, **fields)
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert "cannot create the target" in message and "TLS certificate was not accepted" in message, message
    assert openbao_tls.root_token not in r.text
    _not_listed(srv, target)


def test_ca_certificate_checks(srv, openbao_tls, bao_ca):
    plain_url = openbao_tls.addr.replace("https://", "http://")
    r, _ = _create(srv, openbao_tls, hashi_url=plain_url, ca_certificate=bao_ca)
    assert r.status_code == 400 and "ca-certificate needs an https hashi-url" in r.json()["message"], r.text
    r, _ = _create(srv, openbao_tls, ca_certificate="-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    assert r.status_code == 400 and "ca-certificate must hold PEM CA certificates" in r.json()["message"], r.text


def test_cli_ca_certificate_from_a_file(srv, openbao_tls, tmp_path):
    home = tmp_path / "cli"
    p = T.run_cli(home, "auth", "--address", srv.url, "--access-id", srv.admin_id, "--access-key", "env:K",
                  "--ca-cert", srv.ca, env={"K": srv.admin_key})
    assert p.returncode == 0, T.show(p)
    name = T.uid("vtcli")
    p = T.run_cli(home, "target", "create", "hashi-vault", "--name", name, "--hashi-url", openbao_tls.addr,
                  "--vault-token", "env:VT", "--ca-certificate", f"@{openbao_tls.ca_file}", env={"VT": openbao_tls.root_token})
    assert p.returncode == 0, T.show(p)
    p = T.run_cli(home, "target", "get", "--name", name, "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["ca_certificate"] == openbao_tls.ca_file.read_text(), T.show(p)
    p = T.run_cli(home, "target", "create", "hashi-vault", "--name", T.uid("vtcli"), "--hashi-url", openbao_tls.addr,
                  "--vault-token", "env:VT", env={"VT": openbao_tls.root_token})
    assert p.returncode != 0 and "TLS certificate was not accepted" in p.stderr, T.show(p)
