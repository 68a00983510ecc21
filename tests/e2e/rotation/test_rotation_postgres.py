"""PostgreSQL rotated secrets: manual rotation changes the role's password (the old one stops
working, the new one logs in, earlier versions stay readable); a role can rotate its own
password; a failed verification (wrong verify port, role without LOGIN) restores the previous
password, records the error and keeps the current version; bad input changes nothing."""
import secrets

import pytest

from rotlib import free_port, pg_login_ok, superuser, unique


def make_role(pg, login=True):
    role, pw = unique("rot"), "Init-" + secrets.token_hex(8)
    superuser(pg, f"CREATE ROLE {role} {'LOGIN' if login else 'NOLOGIN'} PASSWORD '{pw}'")
    return role, pw


def value(node, name, version=None):
    body = {"names": name}
    if version is not None:
        body["version"] = version
    r = node.call("get-rotated-secret-value", **body)
    assert r.status_code == 200, r.text
    return r.json()


def test_manual_rotation(node, postgres, pg_target):
    role, pw = make_role(postgres)
    r = node.call("rotated-secret-create-postgresql", name="/rot/pg/admin", target_name=pg_target, rotated_username=role,
                  rotated_password=pw, password_length=30)
    assert r.status_code == 200, r.text
    assert value(node, "/rot/pg/admin")["value"] == {"username": role, "password": pw}

    r = node.call("gateway-rotate-secret", name="/rot/pg/admin")
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    new = value(node, "/rot/pg/admin")["value"]["password"]
    assert new != pw and len(new) == 30
    assert pg_login_ok(postgres, role, new)
    assert not pg_login_ok(postgres, role, pw)
    assert value(node, "/rot/pg/admin", version=1)["value"]["password"] == pw

    d = node.call("describe-item", name="/rot/pg/admin").json()
    assert d["item_type"] == "ROTATED_SECRET" and d["rotator_status"] == "RotationSucceeded" and d["last_rotation_error"] == ""
    assert d["last_version"] == 2 and d["rotated_secret_details"]["rotated_username"] == role

    # Twice in a row: version N-1 is still readable, and no longer logs in.
    assert node.call("gateway-rotate-secret", name="/rot/pg/admin").status_code == 200
    third = value(node, "/rot/pg/admin")
    assert third["version"] == 3 and pg_login_ok(postgres, role, third["value"]["password"])
    assert value(node, "/rot/pg/admin", version=2)["value"]["password"] == new
    assert not pg_login_ok(postgres, role, new)


def test_role_rotates_its_own_password(node, postgres, pg_target):
    role, pw = make_role(postgres)
    r = node.call("rotated-secret-create-postgresql", name="/rot/pg/self", target_name=pg_target, rotated_username=role,
                  rotated_password=pw, authentication_credentials="use-user-creds")
    assert r.status_code == 200, r.text
    assert node.call("gateway-rotate-secret", name="/rot/pg/self").status_code == 200
    new = value(node, "/rot/pg/self")["value"]["password"]
    assert pg_login_ok(postgres, role, new) and not pg_login_ok(postgres, role, pw)


def test_wrong_verify_port_restores_previous_password(node, postgres, pg_target):
    role, pw = make_role(postgres)
    r = node.call("rotated-secret-create-postgresql", name="/rot/pg/badverify", target_name=pg_target, rotated_username=role,
                  rotated_password=pw, skip_dry_run=True, verify_port=free_port())
    assert r.status_code == 200, r.text
    r = node.call("gateway-rotate-secret", name="/rot/pg/badverify")
    assert r.status_code == 502, r.text
    assert "verifying the new password failed" in r.text and pw not in r.text
    got = value(node, "/rot/pg/badverify")
    assert got["version"] == 1 and got["value"]["password"] == pw
    assert pg_login_ok(postgres, role, pw)
    d = node.call("describe-item", name="/rot/pg/badverify").json()
    assert d["rotator_status"] == "RotationFailed" and "verifying" in d["last_rotation_error"]
    listed = node.call("rotated-secret-list").json()["rotated_secrets"]
    assert any(x["name"] == "/rot/pg/badverify" and x["rotator_status"] == "RotationFailed" for x in listed)


def test_role_without_login_restores_previous_password(node, postgres, pg_target):
    role, pw = make_role(postgres, login=False)
    r = node.call("rotated-secret-create-postgresql", name="/rot/pg/nologin", target_name=pg_target, rotated_username=role,
                  rotated_password=pw)
    assert r.status_code == 200, r.text
    r = node.call("gateway-rotate-secret", name="/rot/pg/nologin")
    assert r.status_code == 502, r.text
    got = value(node, "/rot/pg/nologin")
    assert got["version"] == 1 and got["value"]["password"] == pw
    # The role has its old password back: allowed to log in, it logs in with it.
    superuser(postgres, f"ALTER ROLE {role} LOGIN")
    assert pg_login_ok(postgres, role, pw)
    assert node.call("describe-item", name="/rot/pg/nologin").json()["rotator_status"] == "RotationFailed"


@pytest.mark.parametrize("fields, status", [
    ({"target_name": "rot-pg"}, 400),                                          # no rotated-username
    ({"target_name": "nope", "rotated_username": "x"}, 404),                   # unknown target
    ({"target_name": "rot-pg", "rotated_username": "x", "password_length": 3}, 400),
    ({"target_name": "rot-pg", "rotated_username": "x", "auto_rotate": "true"}, 400),   # no interval
    ({"target_name": "rot-pg", "rotated_username": "x", "rotation_interval": 900}, 400),
    ({"target_name": "rot-pg", "rotated_username": "x", "rotation_hour": 25, "rotation_interval": 1}, 400),
    ({"target_name": "rot-pg", "rotated_username": "x", "authentication_credentials": "bogus"}, 400),
    ({"target_name": "rot-pg", "rotated_username": "x", "authentication_credentials": "use-user-creds"}, 400),  # no password
    ({"target_name": "rot-pg", "rotated_username": "a:b"}, 400),
])
def test_bad_input_changes_nothing(node, pg_target, fields, status):
    r = node.call("rotated-secret-create-postgresql", name="/rot/pg/bad", **fields)
    assert r.status_code == status, r.text
    assert node.call("describe-item", name="/rot/pg/bad").status_code == 404


def test_reads_of_wrong_kinds(node, pg_target):
    assert node.call("create-secret", name="/rot/static", value="s").status_code == 200
    assert node.call("get-rotated-secret-value", names="/rot/static").status_code == 400
    assert node.call("gateway-rotate-secret", name="/rot/static").status_code == 400
    assert node.call("gateway-rotate-secret", name="/rot/missing").status_code == 404
    assert node.call("get-rotated-secret-value", names="/rot/pg/admin", version=99).status_code == 404


def test_target_in_use_cannot_be_deleted_and_delete_item_removes_the_secret(node, postgres, pg_target):
    role, pw = make_role(postgres)
    assert node.call("rotated-secret-create-postgresql", name="/rot/pg/todelete", target_name=pg_target, rotated_username=role,
                     rotated_password=pw).status_code == 200
    assert node.call("target-delete", name=pg_target).status_code == 409
    assert node.call("delete-item", name="/rot/pg/todelete").status_code == 200
    assert node.call("rotated-secret-get", name="/rot/pg/todelete").status_code == 404


def test_audited_without_passwords(node, postgres, pg_target):
    events = node.call("audit-query", path_prefix="/rot/pg/admin").json()["events"]
    actions = {e["action"] for e in events}
    assert {"create_rotated_secret", "rotate_secret", "get_rotated_secret_value"} <= actions
    text = str(events) + node.log.read_text()
    for v in (value(node, "/rot/pg/admin")["value"]["password"], value(node, "/rot/pg/admin", version=1)["value"]["password"]):
        assert v not in text
