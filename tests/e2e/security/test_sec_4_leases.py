"""Class 4: lease operations must not cross producer boundaries.

Two producers side by side under one database mount (`database/` over the folder /db):
`/db/ro` and `/db/ro-admin`, on a real PostgreSQL. Revoking by the prefix `database/creds/ro`
(Vault `sys/leases/revoke-prefix/…`, hvac, the bao CLI, the native revoke-all) matches whole
path segments only, so the leases of `ro-admin` stay active and their PostgreSQL roles stay.
Listing leases (native `lease-list`, Vault `LIST sys/leases/lookup/…`) is authorized per
lease against its own producer, and a deny on a producer hides its leases even from an
identity that may list the folder. Every lease operation is checked against the lease's own
producer: rights on `ro` give nothing on an `ro-admin` lease.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import hvac
import pytest
import requests

from seclib import Node, assert_4xx, assert_alive, body_text, pg_role_exists, pg_target, send, wait_until


def lease_world(node: Node, pg: dict) -> None:
    def build():
        t = pg_target(node, pg, "lease-pg")
        node.ok("vault-mount-create", {"path": "database/", "type": "database", "folder": "/db"})
        for name in ("ro", "ro-admin"):
            node.ok("dynamic-secret-create-postgresql", {"name": f"/db/{name}", "target-name": t, "user-ttl": "1h",
                                                         "max-ttl": "2h"})
        return True
    node.once("lease-world", build)


def issue(node: Node, producer: str, token=None) -> dict:
    """A credential from `database/creds/<producer>` (Vault API): {lease_id, username}."""
    r = node.vault("GET", f"database/creds/{producer}", **({"token": token} if token else {}))
    assert r.status_code == 200, body_text(r)
    body = r.json()
    return {"lease_id": body["lease_id"], "username": body["data"]["username"]}


def lease_active(node: Node, lease_id: str) -> bool:
    return node.vault("PUT", "sys/leases/lookup", {"lease_id": lease_id}).status_code == 200


def assert_intact(node: Node, pg: dict, creds: list[dict], what: str) -> None:
    """Another producer's leases are still active and their PostgreSQL roles still exist."""
    for c in creds:
        assert lease_active(node, c["lease_id"]), f"{what}: lease {c['lease_id']} is no longer active"
        assert pg_role_exists(pg, c["username"]), f"{what}: role {c['username']} was dropped"


def wait_revoked(pg: dict, creds: list[dict]) -> None:
    wait_until(lambda: not any(pg_role_exists(pg, c["username"]) for c in creds), timeout=15, interval=0.2,
               what="the ro leases' roles to be dropped")


@pytest.fixture
def leases(node, postgres):
    lease_world(node, postgres)
    return {"ro": [issue(node, "ro") for _ in range(2)], "ro-admin": [issue(node, "ro-admin") for _ in range(2)]}


def bao(bao_bin: str, node: Node, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "VAULT_ADDR": node.url,
           "VAULT_TOKEN": node.vault_token}
    return subprocess.run([bao_bin, *args], env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


# ------------------------------------------------------------------------------------------
# revoke by prefix: whole segments only
# ------------------------------------------------------------------------------------------

def test_hvac_revoke_prefix_database_creds_ro_keeps_the_ro_admin_leases(node, postgres, leases):
    client = hvac.Client(url=node.url, token=node.vault_token, timeout=20)
    r = send(lambda: client.sys.revoke_prefix("database/creds/ro"))
    assert_alive(node, "revoke-prefix database/creds/ro")
    assert isinstance(r, requests.Response) and r.status_code in (202, 204), body_text(r)
    wait_revoked(postgres, leases["ro"])
    assert_intact(node, postgres, leases["ro-admin"], "revoke-prefix database/creds/ro")


def test_raw_revoke_prefix_in_the_url_keeps_the_ro_admin_leases(node, postgres, leases):
    r = send(lambda: node.vault("PUT", "sys/leases/revoke-prefix/database/creds/ro", {}))
    assert_alive(node, "PUT sys/leases/revoke-prefix/database/creds/ro")
    assert isinstance(r, requests.Response) and r.status_code in (202, 204), body_text(r)
    wait_revoked(postgres, leases["ro"])
    assert_intact(node, postgres, leases["ro-admin"], "PUT sys/leases/revoke-prefix/database/creds/ro")


def test_bao_lease_revoke_prefix_keeps_the_ro_admin_leases(node, postgres, leases, bao_bin, tmp_path):
    p = bao(bao_bin, node, tmp_path, "lease", "revoke", "-prefix", "database/creds/ro")
    assert_alive(node, "bao lease revoke -prefix database/creds/ro")
    assert p.returncode == 0, p.stderr
    wait_revoked(postgres, leases["ro"])
    assert_intact(node, postgres, leases["ro-admin"], "bao lease revoke -prefix database/creds/ro")


def test_a_prefix_that_ends_inside_a_segment_revokes_nothing(node, postgres, leases):
    r = send(lambda: node.vault("PUT", "sys/leases/revoke-prefix/database/creds/r", {}))
    assert_alive(node, "revoke-prefix database/creds/r")
    assert isinstance(r, requests.Response) and r.status_code < 500, body_text(r)
    assert_intact(node, postgres, leases["ro"] + leases["ro-admin"], "revoke-prefix database/creds/r")


def test_native_revoke_all_of_ro_keeps_the_ro_admin_leases(node, postgres, leases):
    r = send(lambda: node.native("dynamic-secret-tmp-creds-delete", {"name": "/db/ro", "revoke-all": True}))
    assert_alive(node, "dynamic-secret-tmp-creds-delete /db/ro revoke-all")
    assert r.status_code == 200, body_text(r)
    wait_revoked(postgres, leases["ro"])
    assert_intact(node, postgres, leases["ro-admin"], "native revoke-all of /db/ro")


def test_a_prefix_revoke_over_the_mount_skips_a_producer_the_caller_is_denied(node, postgres, leases):
    """An operator with the sys-rule for prefix revokes and delete on the mount's folder, but a
    deny on ro-admin: deny wins for ro-admin's leases."""
    op = node.identity([("/sys/leases/revoke-prefix/*", ["update"], "sys-rule"),
                        ("/db", ["delete", "read", "list"]), ("/db/*", ["delete", "read", "list"]),
                        ("/db/ro-admin", ["deny"]), ("/db/ro-admin/*", ["deny"])])
    r = send(lambda: op.vault("PUT", "sys/leases/revoke-prefix/database/creds", {}))
    assert_alive(node, "revoke-prefix database/creds by an identity denied on ro-admin")
    assert isinstance(r, requests.Response) and r.status_code < 500, body_text(r)
    assert_intact(node, postgres, leases["ro-admin"], "revoke-prefix over the whole mount")


def test_rights_on_ro_give_nothing_on_an_ro_admin_lease(node, postgres, leases):
    user = node.identity([("/db/ro", ["read", "update", "delete", "list"]), ("/db/ro/*", ["read", "update", "delete", "list"])])
    victim = leases["ro-admin"][0]["lease_id"]            # database/creds/ro-admin/<id>
    suffix = victim.rsplit("/", 1)[1]
    attempts = [
        ("revoke", "PUT", "sys/leases/revoke", {"lease_id": victim}),
        ("renew", "PUT", "sys/leases/renew", {"lease_id": victim, "increment": "1s"}),
        ("lookup", "PUT", "sys/leases/lookup", {"lease_id": victim}),
        ("revoke via ro/..", "PUT", "sys/leases/revoke", {"lease_id": f"database/creds/ro/../ro-admin/{suffix}"}),
        ("revoke as ro/<id>", "PUT", "sys/leases/revoke", {"lease_id": f"database/creds/ro/{suffix}"}),
        ("revoke-prefix ro-admin", "PUT", "sys/leases/revoke-prefix/database/creds/ro-admin", {}),
    ]
    for label, method, path, body in attempts:
        r = send(lambda: user.vault(method, path, body))
        assert_alive(node, f"{label} of an ro-admin lease by an ro identity")
        assert_4xx(r, f"{label} of an ro-admin lease by an identity with rights on ro only")
    native = [("dynamic-secret-tmp-creds-delete", {"name": "/db/ro", "tmp-creds-id": "db/ro-admin/" + suffix}),
              ("lease-revoke", {"lease-id": "db/ro-admin/" + suffix}),
              ("lease-revoke", {"lease-id": "db/ro/" + suffix})]
    for verb, body in native:
        r = send(lambda: user.native(verb, body))
        assert_alive(node, f"native {verb} {body}")
        assert_4xx(r, f"native {verb} of an ro-admin lease")
    assert_intact(node, postgres, leases["ro-admin"], "ro identity against ro-admin leases")


# ------------------------------------------------------------------------------------------
# listing: per lease, deny wins
# ------------------------------------------------------------------------------------------

@pytest.fixture
def lister(node):
    """list on the folder /db and below, read on ro, deny on ro-admin."""
    return node.identity([("/db", ["list"]), ("/db/*", ["list"]), ("/db/ro*", ["read"]),
                          ("/db/ro-admin", ["deny"]), ("/db/ro-admin/*", ["deny"])])


def test_native_lease_list_hides_the_leases_of_a_denied_producer(node, postgres, leases, lister):
    # `db/ro` (no trailing slash) is authorized on the folder /db and, as text, covers db/ro-admin/…
    r = send(lambda: lister.native("lease-list", {"prefix": "db/ro"}))
    assert_alive(node, "lease-list db/ro by an identity denied on ro-admin")
    assert r.status_code == 200, body_text(r)
    listed = r.json()["leases"]
    assert not [x for x in listed if x["producer"] == "/db/ro-admin"], f"ro-admin leases shown: {listed}"
    assert {c["lease_id"].rsplit("/", 1)[1] for c in leases["ro"]} <= {x["lease_id"].rsplit("/", 1)[1] for x in listed}
    r = send(lambda: lister.native("lease-list", {"prefix": "db/ro-admin/"}))
    assert_alive(node, "lease-list db/ro-admin/")
    assert r.status_code == 403 or not r.json().get("leases"), f"ro-admin leases listed: {body_text(r)}"
    assert r.status_code < 500, body_text(r)


def test_vault_list_of_lease_lookup_hides_a_denied_producer(node, postgres, leases, lister):
    client = hvac.Client(url=node.url, token=lister.vault_token, timeout=20)
    keys = client.sys.list_leases("database/creds/")["data"]["keys"]
    assert_alive(node, "LIST sys/leases/lookup/database/creds/")
    assert "ro/" in keys, keys
    assert "ro-admin/" not in keys, f"a denied producer is listed: {keys}"
    r = send(lambda: lister.vault("LIST", "sys/leases/lookup/database/creds/ro-admin/"))
    assert_alive(node, "LIST sys/leases/lookup/database/creds/ro-admin/")
    assert_4xx(r, "LIST of a denied producer's leases", allowed=[403, 404])
    for c in leases["ro-admin"]:
        assert c["lease_id"].rsplit("/", 1)[1] not in r.text, r.text
    assert_intact(node, postgres, leases["ro-admin"], "listing")


def test_vault_list_of_the_allowed_producer_shows_its_leases(node, postgres, leases, lister):
    """The control for the two tests above."""
    r = lister.vault("LIST", "sys/leases/lookup/database/creds/ro/")
    assert r.status_code == 200, body_text(r)
    assert {c["lease_id"].rsplit("/", 1)[1] for c in leases["ro"]} <= set(r.json()["data"]["keys"])
