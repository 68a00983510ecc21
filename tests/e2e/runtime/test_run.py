"""`tessera run`: secrets in a child's environment, from --env (whole values and #json-keys),
--env-file and --folder; the exit code and signals pass through; a failed fetch never starts the
child; --watch restarts the child with the new value after an update."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from e2e_support import unique


def setup(cli, dev_server):
    cli.ok("auth", "--access-id", dev_server.admin_id, "--access-key", dev_server.admin_key)
    env = {"TESSERA_ADDR": dev_server.url}
    return env


def test_env_values_keys_folder_and_exit_code(cli, dev_server, tmp_path):
    env = setup(cli, dev_server)
    pw, api_key, token = unique("pw"), unique("api"), unique("tok")
    cli.ok("create-secret", "--name", "/prod/db", "--value", json.dumps({"password": pw, "user": "app"}))
    cli.ok("create-secret", "--name", "/app/prod/api-key", "--value", api_key)
    cli.ok("create-secret", "--name", "/app/prod/sub/token", "--value", token)
    p = cli.run("run", "--env", "DB_PASSWORD=/prod/db#password", "--env", "DB=/prod/db", "--", "sh", "-c",
                'echo "$DB_PASSWORD"; echo "$DB"', address=False, env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == pw and json.loads(lines[1])["user"] == "app"
    p = cli.run("run", "--folder", "/app/prod", "--", "sh", "-c", 'echo "$API_KEY $SUB_TOKEN"', address=False, env=env)
    assert p.returncode == 0 and p.stdout.strip() == f"{api_key} {token}", (p.stdout, p.stderr)
    envfile = tmp_path / "secrets.env"
    envfile.write_text("# comment\nPASSWORD=/prod/db#password\n")
    p = cli.run("run", "--env-file", str(envfile), "--", "sh", "-c", 'echo "$PASSWORD"; exit 7', address=False, env=env)
    assert p.returncode == 7 and p.stdout.strip() == pw
    # nothing secret is printed by tessera itself
    assert pw not in p.stderr


def test_a_failed_fetch_never_starts_the_child(cli, dev_server, tmp_path):
    env = setup(cli, dev_server)
    marker = tmp_path / "started"
    p = cli.run("run", "--env", "X=/does/not/exist", "--", "touch", str(marker), address=False, env=env)
    assert p.returncode != 0 and "Error:" in p.stderr
    assert not marker.exists()
    p = cli.run("run", "--env", "lower-case=/x", "--", "true", address=False, env=env)
    assert p.returncode != 0 and "NAME=/path" in p.stderr
    cli.ok("create-secret", "--name", "/plain", "--value", "not json")
    p = cli.run("run", "--env", "X=/plain#key", "--", "touch", str(marker), address=False, env=env)
    assert p.returncode != 0 and "not a JSON object" in p.stderr and not marker.exists()


def test_signals_reach_the_child_and_its_status_comes_back(cli, dev_server, tmp_path):
    env = setup(cli, dev_server)
    cli.ok("create-secret", "--name", "/sig/v", "--value", "x")
    ready = tmp_path / "ready"
    script = f'trap "echo got-term; exit 42" TERM; touch {ready}; while true; do sleep 0.1; done'
    proc = subprocess.Popen([cli.binary, "run", "--env", "V=/sig/v", "--", "sh", "-c", script], env=cli.env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(cli.home))
    deadline = time.time() + 20
    while not ready.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert ready.exists(), proc.stderr.read() if proc.poll() is not None else "child never started"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 42, (out, err)
    assert "got-term" in out


def test_watch_restarts_the_child_with_the_new_value(cli, dev_server, tmp_path):
    env = setup(cli, dev_server)
    first, second = unique("v1"), unique("v2")
    cli.ok("create-secret", "--name", "/watch/v", "--value", first)
    out = tmp_path / "seen"
    proc = subprocess.Popen([cli.binary, "run", "--watch", "--watch-interval", "1", "--env", "V=/watch/v", "--", "sh", "-c",
                             f'echo "$V" >> {out}; trap "exit 0" TERM; while true; do sleep 0.1; done'],
                            env=cli.env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(cli.home))
    try:
        deadline = time.time() + 20
        while (not out.exists() or first not in out.read_text()) and time.time() < deadline:
            time.sleep(0.1)
        cli.ok("update-secret-val", "--name", "/watch/v", "--value", second)
        deadline = time.time() + 30
        while second not in (out.read_text() if out.exists() else "") and time.time() < deadline:
            time.sleep(0.2)
        assert out.read_text().split() == [first, second], out.read_text()
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
