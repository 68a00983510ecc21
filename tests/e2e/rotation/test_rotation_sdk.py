"""The official Akeyless Python SDK reads a rotated value with get_rotated_secret_value and
rotates with rotate_secret (POST /gateway-rotate-secret)."""
import secrets

import akeyless

from rotlib import pg_login_ok, superuser, unique


def test_sdk_reads_and_rotates(node, postgres, pg_target):
    role, pw = unique("sdk"), "Init-" + secrets.token_hex(8)
    superuser(postgres, f"CREATE ROLE {role} LOGIN PASSWORD '{pw}'")
    api = akeyless.V2Api(akeyless.ApiClient(akeyless.Configuration(host=f"{node.base}/api/v2")))
    token = api.auth(akeyless.Auth(access_id=node.admin_id, access_key=node.admin_key)).token
    created = api.rotated_secret_create_postgresql(akeyless.RotatedSecretCreatePostgresql(
        name="/rot/sdk/pg", target_name=pg_target, rotated_username=role, rotated_password=pw, token=token,
        auto_rotate="false", rotator_type="target", authentication_credentials="use-target-creds"))
    assert created.name == "/rot/sdk/pg"
    got = api.get_rotated_secret_value(akeyless.GetRotatedSecretValue(names="/rot/sdk/pg", token=token))
    assert got["value"] == {"username": role, "password": pw}
    api.rotate_secret(akeyless.RotateSecret(name="/rot/sdk/pg", token=token))
    got = api.get_rotated_secret_value(akeyless.GetRotatedSecretValue(names="/rot/sdk/pg", token=token))
    assert got["value"]["password"] != pw and pg_login_ok(postgres, role, got["value"]["password"])
    old = api.get_rotated_secret_value(akeyless.GetRotatedSecretValue(names="/rot/sdk/pg", version=1, token=token))
    assert old["value"]["password"] == pw
