"""A rotation interrupted by SIGKILL between applying the new password and storing it leaves a
working password that Tessera knows after restart (the pending record is resolved at start-up)."""
import secrets
import signal
import threading
import time

import requests

from rotlib import DurableNode, pg_login_ok, superuser, unique


def test_kill_between_apply_and_store(postgres, tmp_path):
    node = DurableNode(tmp_path, env={"TESSERA_TEST_ROTATION_PAUSE_MS": "5000"})
    node.start()
    try:
        node.initialize()
        role, pw = unique("crash"), "Init-" + secrets.token_hex(8)
        superuser(postgres, f"CREATE ROLE {role} LOGIN PASSWORD '{pw}'")
        assert node.call("target-create-db", name="crash-pg", db_type="postgres", host="127.0.0.1", port=postgres["port"],
                         user_name="postgres", pwd=postgres["password"]).status_code == 200
        assert node.call("rotated-secret-create-postgresql", name="/crash/pg", target_name="crash-pg", rotated_username=role,
                         rotated_password=pw).status_code == 200
        before = superuser(postgres, f"select rolpassword from pg_authid where rolname = '{role}'")

        def rotate():
            try:
                node.call("gateway-rotate-secret", name="/crash/pg")
            except requests.RequestException:
                pass

        t = threading.Thread(target=rotate)
        t.start()
        deadline = time.time() + 15
        while time.time() < deadline and superuser(postgres, f"select rolpassword from pg_authid where rolname = '{role}'") == before:
            time.sleep(0.1)
        assert superuser(postgres, f"select rolpassword from pg_authid where rolname = '{role}'") != before, "the password was never applied"
        node.stop(signal.SIGKILL)
        t.join(10)
        assert not pg_login_ok(postgres, role, pw), "the new password should be in effect on the target"

        node.start()
        node.login()
        deadline = time.time() + 30
        info = {}
        while time.time() < deadline:
            info = node.call("rotated-secret-get", name="/crash/pg").json()
            if not info.get("pending"):
                break
            time.sleep(0.3)
        assert not info.get("pending"), info
        got = node.call("get-rotated-secret-value", names="/crash/pg").json()
        assert got["version"] == 2 and pg_login_ok(postgres, role, got["value"]["password"]), got
        assert info["rotator_status"] == "RotationSucceeded"
        events = node.call("audit-query", path_prefix="/crash/pg", action="recover_rotation").json()["events"]
        assert events and events[-1]["result"] == "allowed"
    finally:
        node.stop(signal.SIGKILL)
