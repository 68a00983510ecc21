"""`tessera run --watch` with a rotated PostgreSQL password: a rotation restarts the child with
the new password, which logs in."""
import os
import subprocess
import time

from rotlib import pg_login_ok
from test_rotation_postgres import make_role

BIN = os.environ.get("TESSERA_BIN") or str(__import__("pathlib").Path(__file__).resolve().parents[3] / ".build/debug/tessera")


def test_rotation_restarts_the_watched_child_with_the_new_password(node, postgres, pg_target, tmp_path):
    role, pw = make_role(postgres)
    r = node.call("rotated-secret-create-postgresql", name="/rot/run/app", target_name=pg_target, rotated_username=role,
                  rotated_password=pw)
    assert r.status_code == 200, r.text
    seen = tmp_path / "seen"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(TESSERA_ADDR=node.base, TESSERA_TOKEN=node.token, XDG_CONFIG_HOME=str(tmp_path), HOME=str(tmp_path))
    proc = subprocess.Popen([BIN, "run", "--watch", "--watch-interval", "1", "--env", "PW=/rot/run/app#password",
                             "--env", "USER_NAME=/rot/run/app#username", "--", "sh", "-c",
                             f'echo "$USER_NAME $PW" >> {seen}; trap "exit 0" TERM; while true; do sleep 0.1; done'],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 20
        while not (seen.exists() and seen.read_text().strip()) and time.time() < deadline:
            time.sleep(0.1)
        assert seen.read_text().split() == [role, pw]
        assert node.call("gateway-rotate-secret", name="/rot/run/app").status_code == 200
        deadline = time.time() + 30
        while len(seen.read_text().splitlines()) < 2 and time.time() < deadline:
            time.sleep(0.2)
        lines = seen.read_text().splitlines()
        assert len(lines) == 2, lines
        user, new = lines[1].split()
        assert user == role and new != pw and pg_login_ok(postgres, role, new)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert proc.returncode == 0
