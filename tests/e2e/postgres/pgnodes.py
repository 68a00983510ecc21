# Tessera nodes on a throwaway PostgreSQL for the suites here: each node has its own data
# directory and key file path, all on one database; the first initializes, the others get a
# copy of its auto-unseal key file and unseal at start.
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import requests

from e2e_servers import clean_env, free_port, psql, tessera_binary

TIMEOUT_S = 3


class Node:
    def __init__(self, pg, tmp: Path, database: str, create: bool = False):
        if create:
            psql(pg, f"CREATE DATABASE {database}")
        tmp.mkdir(parents=True, exist_ok=True)
        self.pg = pg
        self.key = tmp / "unseal.key"
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = (f"postgres://postgres@localhost:{pg['port']}/{database}"
                    f"?sslmode=verify-full&sslrootcert={pg['dir']}/tls/ca.pem")
        self.config = tmp / "config.json"
        self.config.write_text(json.dumps({"storage": "postgresql", "postgresql_url": self.url,
                                           "postgresql_timeout_seconds": TIMEOUT_S, "postgresql_pool_size": 8}))
        self.proc = None

    def start(self):
        log = open(self.tmp / "server.log", "ab")
        self.proc = subprocess.Popen([tessera_binary(), "server", "--config", str(self.config), "--listen", f"127.0.0.1:{self.port}",
                                      "--data-dir", str(self.tmp / "data"), "--unseal-key-file", str(self.key)],
                                     stdout=log, stderr=subprocess.STDOUT, env=clean_env({"PGPASSWORD": self.pg["password"]}))
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                requests.get(self.base + "/v1/sys/health", timeout=1)
                return
            except requests.RequestException:
                assert self.proc.poll() is None, (self.tmp / "server.log").read_text()
                time.sleep(0.05)
        raise AssertionError("server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def initialize(self):
        init = requests.put(self.base + "/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}, timeout=30).json()
        self.admin_id, self.admin_key = init["admin_access_id"], init["admin_access_key"]
        self.token = self.admin_id + ".." + self.admin_key

    def join(self, first: "Node"):
        """Takes the first node's admin and a copy of its key file (before `start`)."""
        shutil.copy(first.key, self.key)
        os.chmod(self.key, 0o600)
        self.admin_id, self.admin_key, self.token = first.admin_id, first.admin_key, first.token

    def call(self, verb: str, **fields) -> requests.Response:
        if not getattr(self, "native_token", None):
            self.native_token = requests.post(self.base + "/api/v2/auth", json={"access-id": self.admin_id, "access-key": self.admin_key},
                                              timeout=30).json()["token"]
        body = {k.replace("_", "-"): v for k, v in fields.items()}
        body["token"] = self.native_token
        return requests.post(self.base + "/api/v2/" + verb, json=body, timeout=60)

