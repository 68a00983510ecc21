"""`tessera run` with a dynamic PostgreSQL credential: the child gets a working login, the
lease is renewed while the child runs (the credential outlives its TTL), and the role is gone
from pg_roles right after the child exits."""
import os
import subprocess
import time

from conftest import BIN
from test_vault_leases import role_exists


def test_run_injects_renews_and_revokes_a_dynamic_credential(server, postgres, call, tmp_path):
    r = call(server, "target-create-db", name="run-pg", db_type="postgres", host="127.0.0.1", port=postgres["port"],
             user_name="postgres", pwd=postgres["password"])
    assert r.status_code in (200, 409), r.text
    r = call(server, "dynamic-secret-create-postgresql", name="/rundb/short", target_name="run-pg", user_ttl="4s", max_ttl="5m")
    assert r.status_code == 200, r.text
    out = tmp_path / "user"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(TESSERA_ADDR=server["base"], TESSERA_TOKEN=server["token"], XDG_CONFIG_HOME=str(tmp_path), HOME=str(tmp_path),
               PGPASSWORD="")
    script = (f'echo "$DB_USER" > {out}; sleep 7; '
              f'PGPASSWORD="$DB_PASSWORD" psql -h 127.0.0.1 -p {postgres["port"]} -U "$DB_USER" -d postgres -tAc "select 42"')
    proc = subprocess.Popen([BIN, "run", "--env", "DB_USER=/rundb/short#username", "--env", "DB_PASSWORD=/rundb/short#password",
                             "--", "sh", "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while not (out.exists() and out.read_text().strip()) and time.time() < deadline:
        time.sleep(0.1)
    if not out.exists():
        proc.kill()
        raise AssertionError(f"the child never started: {proc.communicate()}")
    user = out.read_text().strip()
    time.sleep(5.5)  # past the 4 s TTL: only renewals keep the role
    assert role_exists(postgres, user)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, (stdout, stderr[-3000:])
    assert stdout.strip() == "42"  # the credential still logged in after 7 s
    assert not role_exists(postgres, user)
