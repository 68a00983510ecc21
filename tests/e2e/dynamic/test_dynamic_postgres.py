"""Dynamic PostgreSQL credentials against a real PostgreSQL: issued credentials log in, revoke
and expiry drop the role, renew moves VALID UNTIL and is capped at max TTL, the lease quota
answers 429, and revoke-all only touches its producer's leases."""
import os
import subprocess
import time

import pytest


def psql(pg, sql, user="postgres", password=None):
    env = dict(os.environ, PGPASSWORD=password or pg["password"])
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(pg["port"]), "-U", user, "-d", "postgres", "-tAc", sql],
                          env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def producer(server, postgres, call):
    r = call(server, "target-create-db", name="dyn-pg", db_type="postgres", host="127.0.0.1", port=postgres["port"],
             user_name="postgres", pwd=postgres["password"])
    assert r.status_code in (200, 409), r.text
    for name, ttl, limit in (("/dyn/short", "2s", 0), ("/dyn/long", "1h", 0), ("/dyn/quota", "1h", 2), ("/dyn/other", "1h", 0)):
        r = call(server, "dynamic-secret-create-postgresql", name=name, target_name="dyn-pg", user_ttl=ttl, max_ttl="2h", max_leases=limit)
        assert r.status_code == 200, r.text
    return "/dyn"


def role_exists(pg, user):
    return psql(pg, f"select 1 from pg_roles where rolname = '{user}'").stdout.strip() == "1"


def test_issued_credentials_log_in_and_revoke_drops_the_role(server, postgres, producer, call):
    r = call(server, "get-dynamic-secret-value", name="/dyn/long")
    assert r.status_code == 200, r.text
    cred = r.json()
    assert set(cred) >= {"user", "password", "id", "ttl_in_minutes", "lease_id"}
    assert psql(postgres, "select current_user", user=cred["user"], password=cred["password"]).stdout.strip() == cred["user"]
    r = call(server, "dynamic-secret-tmp-creds-delete", name="/dyn/long", tmp_creds_id=cred["lease_id"])
    assert r.status_code == 200, r.text
    assert not role_exists(postgres, cred["user"])
    assert psql(postgres, "select 1", user=cred["user"], password=cred["password"]).returncode != 0
    events = call(server, "audit-query", action="get_dynamic_secret_value").json()["events"]
    assert any(e["request_parameters"].get("lease_id") == cred["lease_id"] for e in events)
    assert cred["password"] not in call(server, "audit-query", limit=10000).text


def test_expiry_revokes_within_seconds(server, postgres, producer, call):
    cred = call(server, "get-dynamic-secret-value", name="/dyn/short").json()
    assert role_exists(postgres, cred["user"])
    deadline = time.time() + 10
    while time.time() < deadline and role_exists(postgres, cred["user"]):
        time.sleep(0.2)
    assert not role_exists(postgres, cred["user"])
    leases = call(server, "lease-list", prefix="dyn/short/").json()["leases"]
    assert [l["state"] for l in leases if l["lease_id"] == cred["lease_id"]] == ["revoked"]


def test_renew_moves_valid_until_and_caps_at_max_ttl(server, postgres, producer, call):
    cred = call(server, "get-dynamic-secret-value", name="/dyn/long").json()
    before = psql(postgres, f"select extract(epoch from rolvaliduntil) from pg_roles where rolname = '{cred['user']}'").stdout.strip()
    r = call(server, "dynamic-secret-tmp-creds-update", name="/dyn/long", tmp_creds_id=cred["lease_id"], new_ttl_min=90)
    assert r.status_code == 200 and r.json()["warning"] is None, r.text
    after = psql(postgres, f"select extract(epoch from rolvaliduntil) from pg_roles where rolname = '{cred['user']}'").stdout.strip()
    assert float(after) > float(before) + 1000
    capped = call(server, "dynamic-secret-tmp-creds-update", name="/dyn/long", tmp_creds_id=cred["lease_id"], new_ttl_min=600).json()
    assert "capped" in capped["warning"]


def test_quota_answers_429(server, postgres, producer, call):
    first = [call(server, "get-dynamic-secret-value", name="/dyn/quota") for _ in range(2)]
    assert all(r.status_code == 200 for r in first)
    third = call(server, "get-dynamic-secret-value", name="/dyn/quota")
    assert third.status_code == 429 and "limit" in third.json()["message"]


def test_revoke_all_only_touches_its_producer(server, postgres, producer, call):
    mine = [call(server, "get-dynamic-secret-value", name="/dyn/other").json() for _ in range(2)]
    keep = call(server, "get-dynamic-secret-value", name="/dyn/long").json()
    r = call(server, "dynamic-secret-tmp-creds-delete", name="/dyn/other", revoke_all=True)
    assert r.status_code == 200 and r.json()["revoked"] == 2, r.text
    assert not any(role_exists(postgres, c["user"]) for c in mine)
    assert role_exists(postgres, keep["user"])
