"""Helpers for the rotation tests: logging in to PostgreSQL and over SSH with a password,
running SQL as the superuser, and creating throwaway Linux users and PostgreSQL roles."""
import os
import secrets
import subprocess
import sys
from pathlib import Path

import paramiko

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from e2e_servers import DurableNode, free_port  # noqa: E402,F401

REPO = Path(__file__).resolve().parents[3]


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def psql_as(pg: dict, user: str, password: str, sql: str = "select 1", port: int | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="5")
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port or pg["port"]), "-U", user, "-d", "postgres", "-tAc", sql],
                          env=env, capture_output=True, text=True, timeout=30)


def pg_login_ok(pg: dict, user: str, password: str) -> bool:
    return psql_as(pg, user, password).returncode == 0


def superuser(pg: dict, sql: str) -> str:
    out = psql_as(pg, "postgres", pg["password"], sql)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def ssh_login_ok(sshd: dict, user: str, password: str) -> bool:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect("127.0.0.1", port=sshd["port"], username=user, password=password, allow_agent=False,
                       look_for_keys=False, timeout=10, auth_timeout=10, banner_timeout=10)
        return True
    except paramiko.AuthenticationException:
        return False
    finally:
        client.close()


def create_linux_user(password: str) -> str:
    name = unique("tsr")
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], check=True)
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
    return name


def delete_linux_user(name: str) -> None:
    subprocess.run(["userdel", name], check=False, capture_output=True)
