"""TLS from Tessera to a PostgreSQL target (scripts/test-postgres: ssl=on, its own throwaway CA
whose server certificate names localhost and 127.0.0.1). verify-full with that CA works end to
end (target, dynamic secret, the issued user logs in with sslmode=require); a wrong CA is "not
signed by the trusted CA"; no ssl fields means require; an ssl-certificate alone (native, CLI,
Akeyless SDK) means verify-full. pg_stat_ssl joined with pg_stat_activity is the server-side
proof: the sessions of each target's own admin role are encrypted under require/verify-full and
plain under an explicit ssl-mode disable.

A second cluster, restarted per test, serves a certificate naming only localhost (no IP SAN):
there a wrong db-server-name is "does not name" — as it is against the script's certificate,
whose 127.0.0.1 IP entry must not satisfy a check for another name — and then runs with ssl=off, where a default (require) target fails with "does not accept TLS".

Clients: psql (libpq) for the issued credentials — psycopg is not installed in this image."""

from __future__ import annotations

import json
from pathlib import Path

import akeyless
import pytest

import tlslib as T


@pytest.fixture(scope="module")
def srv(chain_server) -> T.TesseraTLS:
    return chain_server


@pytest.fixture(scope="module")
def pg_ca(postgres) -> str:
    return (Path(postgres["dir"]) / "tls" / "ca.pem").read_text()


def _create(srv: T.TesseraTLS, pg: dict, **tls) -> tuple[object, str, str]:
    """target-create-db with a PostgreSQL admin role of its own; returns (response, target, admin user)."""
    user, password = T.create_pg_admin(pg)
    name = T.uid("pgt")
    body = {"name": name, "db-type": "postgres", "host": "127.0.0.1", "port": pg["port"], "db-name": "postgres",
            "user-name": user, "pwd": password}
    body.update({k.replace("_", "-"): v for k, v in tls.items()})
    return srv.post("target-create-db", body), name, user


def _target(srv: T.TesseraTLS, name: str) -> dict:
    return srv.call("target-get", {"name": name})


def _issue(srv: T.TesseraTLS, target: str) -> dict:
    producer = f"/tls/pg/{T.uid()}"
    srv.call("dynamic-secret-create-postgresql", {"name": producer, "target-name": target, "user-ttl": "1h"})
    cred = srv.call("get-dynamic-secret-value", {"name": producer})
    assert cred["user"] and cred["password"], cred
    return cred


def _admin_sessions(pg: dict, user: str) -> list[tuple[bool, str]]:
    """The sessions Tessera holds as the target's admin role (pooled; idle ones are kept a while)."""
    return T.wait_until(lambda: T.ssl_of_sessions(pg, user), timeout=10, what=f"a session of {user} in pg_stat_activity")


def _login_is_tls(pg: dict, cred: dict) -> None:
    out = T.psql(pg["port"], cred["user"], cred["password"], "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                 sslmode="require")
    assert out.returncode == 0 and out.stdout.strip() == "t", f"{out.stdout}\n{out.stderr}"


def _assert_error(r, needle: str) -> str:
    assert r.status_code == 400, f"HTTP {r.status_code}: {r.text[:500]}"
    message = r.json()["message"]
    assert needle in message, message
    return message


def _not_listed(srv: T.TesseraTLS, name: str) -> None:
    names = [t["target_name"] for t in srv.call("target-list")["targets"]]
    assert name not in names


# ------------------------------------------------------------------------------------------
# working targets
# ------------------------------------------------------------------------------------------

def test_verify_full_with_the_test_ca_works_end_to_end(srv, postgres, pg_ca):
    r, name, admin = _create(srv, postgres, ssl_mode="verify-full", ssl_certificate=pg_ca)
    assert r.status_code == 200, r.text
    t = _target(srv, name)
    assert t["ssl_mode"] == "verify-full" and t["ssl_certificate"] == pg_ca, t
    cred = _issue(srv, name)
    _login_is_tls(postgres, cred)
    # libpq's own verify-full against the same CA, as a cross-check of the certificate
    ca_file = Path(postgres["dir"]) / "tls" / "ca.pem"
    out = T.psql(postgres["port"], cred["user"], cred["password"], "SELECT 1", sslmode="verify-full", sslrootcert=str(ca_file))
    assert out.returncode == 0, out.stderr
    sessions = _admin_sessions(postgres, admin)
    assert all(ssl for ssl, _ in sessions), sessions
    assert all(v in ("TLSv1.2", "TLSv1.3") for _, v in sessions), sessions


def test_default_is_require_and_encrypted(srv, postgres):
    r, name, admin = _create(srv, postgres)
    assert r.status_code == 200, r.text
    t = _target(srv, name)
    assert t["ssl_mode"] == "require" and t["ssl_certificate"] == "", t
    _login_is_tls(postgres, _issue(srv, name))
    sessions = _admin_sessions(postgres, admin)
    assert all(ssl for ssl, _ in sessions), sessions


def test_explicit_disable_is_plain(srv, postgres):
    r, name, admin = _create(srv, postgres, ssl_mode="disable")
    assert r.status_code == 200, r.text
    assert _target(srv, name)["ssl_mode"] == "disable"
    cred = _issue(srv, name)
    out = T.psql(postgres["port"], cred["user"], cred["password"], "SELECT 1", sslmode="disable")
    assert out.returncode == 0, out.stderr
    sessions = _admin_sessions(postgres, admin)
    assert not any(ssl for ssl, _ in sessions), f"ssl-mode disable must connect in plain: {sessions}"


@pytest.mark.parametrize("fields, mode", [
    ({}, "verify-full"),
    ({"skip_server_name_validation": True, "db_server_name": "wrong.example.com"}, "verify-ca"),
    ({"ssl_mode": "verify-full", "db_server_name": "localhost"}, "verify-full"),
], ids=["ca-alone-is-verify-full", "skip-name-is-verify-ca", "db-server-name-localhost"])
def test_ssl_certificate_modes(srv, postgres, pg_ca, fields, mode):
    r, name, admin = _create(srv, postgres, ssl_certificate=pg_ca, **fields)
    assert r.status_code == 200, r.text
    assert _target(srv, name)["ssl_mode"] == mode
    _issue(srv, name)
    assert all(ssl for ssl, _ in _admin_sessions(postgres, admin))


# ------------------------------------------------------------------------------------------
# refused targets
# ------------------------------------------------------------------------------------------

def test_verify_full_with_a_wrong_server_name_is_refused(srv, postgres, pg_ca):
    r, name, _ = _create(srv, postgres, ssl_mode="verify-full", ssl_certificate=pg_ca, db_server_name="wrong.example.com")
    message = _assert_error(r, "does not name")
    assert "wrong.example.com" in message, message
    _not_listed(srv, name)


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_a_wrong_ca_is_refused(srv, postgres, pki, mode):
    r, name, _ = _create(srv, postgres, ssl_mode=mode, ssl_certificate=pki.other_ca.pem.decode())
    _assert_error(r, "not signed by the trusted CA")
    _not_listed(srv, name)


def test_bad_tls_fields_are_refused(srv, postgres, pg_ca):
    r, _, _ = _create(srv, postgres, ssl_mode="require", ssl_certificate=pg_ca)
    _assert_error(r, "ssl-certificate is used only with ssl-mode verify-ca or verify-full")
    r, _, _ = _create(srv, postgres, ssl_mode="prefer")
    _assert_error(r, "ssl-mode must be disable, require, verify-ca or verify-full")
    r, _, _ = _create(srv, postgres, ssl_mode="verify-full", ssl_certificate="not a pem")
    _assert_error(r, "ssl-certificate must hold PEM CA certificates")


# ------------------------------------------------------------------------------------------
# CLI and Akeyless SDK
# ------------------------------------------------------------------------------------------

def test_cli_target_create_db_with_ssl_flags(srv, postgres, tmp_path):
    home = tmp_path / "cli"
    p = T.run_cli(home, "auth", "--address", srv.url, "--access-id", srv.admin_id, "--access-key", "env:K",
                  "--ca-cert", srv.ca, env={"K": srv.admin_key})
    assert p.returncode == 0, T.show(p)
    user, password = T.create_pg_admin(postgres)
    name = T.uid("pgcli")
    ca_file = Path(postgres["dir"]) / "tls" / "ca.pem"
    p = T.run_cli(home, "target-create-db", "--name", name, "--host", "127.0.0.1", "--port", str(postgres["port"]),
                  "--user-name", user, "--pwd", "env:PGPW", "--ssl-mode", "verify-full", "--ssl-certificate", f"@{ca_file}",
                  "--db-server-name", "localhost", env={"PGPW": password})
    assert p.returncode == 0, T.show(p)
    p = T.run_cli(home, "target", "get", "--name", name, "--json")
    assert p.returncode == 0, T.show(p)
    t = json.loads(p.stdout)
    assert t["ssl_mode"] == "verify-full" and t["ssl_certificate"] == ca_file.read_text(), t
    assert password not in p.stdout


def _sdk(srv: T.TesseraTLS) -> akeyless.V2Api:
    cfg = akeyless.Configuration(host=srv.api_url)
    cfg.ssl_ca_cert = srv.ca
    return akeyless.V2Api(akeyless.ApiClient(cfg))


def _sdk_body(srv: T.TesseraTLS, pg: dict, pem: str) -> tuple[akeyless.TargetCreateDB, str, str]:
    user, password = T.create_pg_admin(pg)
    name = T.uid("pgsdk")
    return (akeyless.TargetCreateDB(name=name, db_type="postgres", host="127.0.0.1", port=str(pg["port"]), db_name="postgres",
                                    user_name=user, pwd=password, ssl_certificate=pem, token=srv.token()), name, user)


def test_akeyless_sdk_ssl_certificate_means_verify_full(srv, postgres, pg_ca):
    body, name, user = _sdk_body(srv, postgres, pg_ca)
    assert body.ssl is False, "the SDK sends ssl=false by default; it must not turn TLS off"
    raw = _sdk(srv).target_create_db(body, _preload_content=False)
    assert raw.status == 200, raw.data
    assert json.loads(raw.data)["target_name"] == name
    t = _target(srv, name)
    assert t["ssl_mode"] == "verify-full" and t["ssl_certificate"] == pg_ca, t
    _issue(srv, name)
    assert all(ssl for ssl, _ in _admin_sessions(postgres, user))


def test_akeyless_sdk_parses_the_target_create_answer(srv, postgres, pg_ca):
    body, _name, _ = _sdk_body(srv, postgres, pg_ca)
    _sdk(srv).target_create_db(body)


# ------------------------------------------------------------------------------------------
# a second PostgreSQL, restarted per test: a certificate without an IP SAN, then ssl=off
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pg2():
    yield from T.postgres_cluster("tessera-tls-pg2-")


@pytest.fixture
def pg2_dns_only(pg2, pki):
    """pg2 serving pki.server_dns_only (leaf + intermediate; SAN DNS:localhost only): the name
    check cannot be satisfied by the 127.0.0.1 address."""
    T.restart_postgres(pg2, ssl=True, cert=pki.server_dns_only)
    out = T.psql(pg2["port"], "postgres", pg2["password"], "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                 sslmode="require")
    assert out.returncode == 0 and out.stdout.strip() == "t", out.stderr
    return pg2


@pytest.fixture
def pg2_nossl(pg2):
    T.restart_postgres(pg2, ssl=False)
    out = T.psql(pg2["port"], "postgres", pg2["password"], "SELECT 1", sslmode="disable")
    assert out.returncode == 0, out.stderr
    out = T.psql(pg2["port"], "postgres", pg2["password"], "SELECT 1", sslmode="require")
    assert out.returncode != 0 and "does not support SSL" in out.stderr, out.stderr
    return pg2


def test_dns_only_certificate_name_checks(srv, pg2_dns_only, pki, tmp_path):
    pg, root = pg2_dns_only, pki.root.pem.decode()
    # verify-full checks the host (127.0.0.1) by default: not in the certificate
    r, name, _ = _create(srv, pg, ssl_mode="verify-full", ssl_certificate=root)
    message = _assert_error(r, "does not name")
    assert "127.0.0.1" in message, message
    _not_listed(srv, name)
    # a wrong db-server-name
    r, name, _ = _create(srv, pg, ssl_mode="verify-full", ssl_certificate=root, db_server_name="wrong.example.com")
    message = _assert_error(r, "does not name")
    assert "wrong.example.com" in message, message
    _not_listed(srv, name)
    # the right db-server-name
    r, name, admin = _create(srv, pg, ssl_mode="verify-full", ssl_certificate=root, db_server_name="localhost")
    assert r.status_code == 200, r.text
    _issue(srv, name)
    assert all(ssl for ssl, _ in _admin_sessions(pg, admin))
    # verify-ca does not check the name
    r, name, _ = _create(srv, pg, ssl_mode="verify-ca", ssl_certificate=root)
    assert r.status_code == 200, r.text
    assert _target(srv, name)["ssl_mode"] == "verify-ca"
    # the CLI says the same
    home = tmp_path / "cli"
    p = T.run_cli(home, "auth", "--address", srv.url, "--access-id", srv.admin_id, "--access-key", "env:K",
                  "--ca-cert", srv.ca, env={"K": srv.admin_key})
    assert p.returncode == 0, T.show(p)
    user, password = T.create_pg_admin(pg)
    root_file = str(pki.root_pem)
    p = T.run_cli(home, "target-create-db", "--name", T.uid("pgcli"), "--host", "127.0.0.1", "--port", str(pg["port"]),
                  "--user-name", user, "--pwd", "env:PGPW", "--ssl-certificate", f"@{root_file}",
                  "--db-server-name", "wrong.example.com", env={"PGPW": password})
    assert p.returncode != 0 and "does not name wrong.example.com" in p.stderr, T.show(p)
    assert password not in p.stderr + p.stdout


def test_postgres_without_ssl_refuses_a_default_target(srv, pg2_nossl, pg_ca):
    pg = pg2_nossl
    r, name, _ = _create(srv, pg)
    message = _assert_error(r, "does not accept TLS")
    assert "ssl-mode require" in message, message
    _not_listed(srv, name)
    r, _, _ = _create(srv, pg, ssl_mode="verify-full", ssl_certificate=pg_ca)
    _assert_error(r, "does not accept TLS")
    # only an explicit disable connects to it
    r, name, admin = _create(srv, pg, ssl_mode="disable")
    assert r.status_code == 200, r.text
    _issue(srv, name)
    assert not any(ssl for ssl, _ in _admin_sessions(pg, admin))
