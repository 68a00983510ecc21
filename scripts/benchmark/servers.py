# The servers under test: Tessera (default setup, SQLite store, auto-unseal key file), OpenBao
# (raft storage, file audit device, init + unseal) and the bare-HTTP Hummingbird server, each with
# the setup calls the scenarios need (KV v2 at secret/, a limited identity, the database engine);
# for the pg scenario, Tessera nodes on a shared PostgreSQL database and OpenBao on its
# PostgreSQL backend with ha_enabled.
import os
import shutil
import time

import requests

from common import CONFIG_DIR, BenchError, Proc, free_port, now, status_once, wait_until

KV_ONE = "/v1/secret/data/bench/one"
CREDS = "/v1/database/creds/bench"
PG_CREATION = ("CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; "
               "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";")
SECRET_ONE = {"username": "app-user", "password": "s3cr3t-0123456789abcdef"}


class Server:
    kind = "server"
    role_prefix = None   # PostgreSQL role names issued by this server start with this

    def __init__(self, name, data_dir):
        self.name = name
        self.data_dir = data_dir
        os.makedirs(data_dir, exist_ok=True)
        self.port = None
        self.proc = None
        self.starts = 0
        self.root_token = None    # Vault-API token with full rights (setup, revoke-prefix, leases)
        self.bench_token = None   # limited token used for every load
        self.http = requests.Session()
        self.db_ready = False
        self.tls = None          # (ca, cert, key) when the listener speaks HTTPS

    def use_tls(self, files):
        self.tls = files
        self.http.verify = files[0]
        self.http.trust_env = False   # REQUESTS_CA_BUNDLE would override verify

    @property
    def base(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def status(self, method, path, token=None):
        return status_once(self.port, method, path, token, tls_ca=self.tls[0] if self.tls else None)

    @property
    def pid(self):
        return self.proc.pid

    def command(self):
        raise NotImplementedError

    def spawn(self):
        """Starts the process (without waiting); returns the monotonic start time."""
        if self.port is None:
            self.port = free_port(pair=True)
        self.starts += 1
        log_path = os.path.join(self.data_dir, f"server-{self.starts}.log")
        self.proc = Proc(self.name, self.command(), log_path, env=self.proc_env(), cwd=self.data_dir)
        return self.proc.started_at

    def proc_env(self):
        """The server's environment (None: the harness's own)."""
        return None

    def wait_listener(self, timeout=120):
        def up():
            if not self.proc.alive():
                raise BenchError(f"{self.name} exited with {self.proc.popen.returncode}:\n{self.proc.log_tail()}")
            return self.status("GET", "/v1/sys/health") is not None
        return wait_until(up, timeout=timeout, interval=0.005, what=f"{self.name} listener")[1]

    def stop(self):
        if self.proc is None:
            return None
        d = self.proc.stop()
        self.proc = None
        self.http.close()
        self.http = requests.Session()
        if self.tls:
            self.http.verify = self.tls[0]
            self.http.trust_env = False
        return d

    # -- Vault API ------------------------------------------------------------------------
    def vault(self, method, path, body=None, token=None, expect=(200, 204), timeout=1800):
        tok = token if token is not None else self.root_token
        r = self.http.request(method, self.base + path, json=body, timeout=timeout,
                              headers={"X-Vault-Token": tok} if tok else {})
        if expect and r.status_code not in expect:
            raise BenchError(f"{self.name}: {method} {path} -> {r.status_code}: {r.text[:500]}")
        return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else None

    def wait_kv_ok(self, timeout=600):
        """Polls the KV read with the load token until it answers 200; returns seconds waited."""
        def ok():
            if not self.proc.alive():
                raise BenchError(f"{self.name} exited:\n{self.proc.log_tail()}")
            return self.status("GET", KV_ONE, self.bench_token) == 200
        return wait_until(ok, timeout=timeout, interval=0.002, what=f"{self.name} first KV read")[1]

    def write_secret_one(self):
        wait_until(lambda: self.http.post(self.base + KV_ONE, json={"data": SECRET_ONE}, timeout=30,
                                          headers={"X-Vault-Token": self.bench_token}).status_code == 200,
                   timeout=60, interval=0.1, what=f"{self.name}: first KV write")

    def lease_count(self, prefix):
        r = self.http.get(self.base + f"/v1/sys/leases/lookup/{prefix}?list=true", timeout=600,
                          headers={"X-Vault-Token": self.root_token})
        if r.status_code == 404:
            return 0
        if r.status_code != 200:
            raise BenchError(f"{self.name}: listing leases under {prefix} -> {r.status_code}: {r.text[:300]}")
        return len(r.json()["data"]["keys"])


class Tessera(Server):
    kind = "tessera"
    role_prefix = "tsb_"

    def __init__(self, name, data_dir, binary):
        super().__init__(name, data_dir)
        self.binary = binary
        self.store_dir = os.path.join(data_dir, "store")
        self.key_file = os.path.join(self.store_dir, "unseal.key")
        self.admin_id = self.admin_key = None
        self._admin_native = (None, 0.0)
        self.bench_access_id = None

    @property
    def db_path(self):
        return os.path.join(self.store_dir, "tessera.db")

    def command(self):
        tls = ["--tls-cert-file", self.tls[1], "--tls-key-file", self.tls[2]] if self.tls else []
        return [self.binary, "server", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.store_dir,
                "--unseal-key-file", self.key_file, *tls]

    def initialize(self):
        """First start: init (writes the auto-unseal key file), KV v2 at secret/, the limited identity."""
        self.spawn()
        self.wait_listener()
        t = now()
        js = self.vault("PUT", "/v1/sys/init", {"secret_shares": 1, "secret_threshold": 1}, token="")
        init_s = now() - t
        self.admin_id, self.admin_key = js["admin_access_id"], js["admin_access_key"]
        self.root_token = js.get("root_token") or f"{self.admin_id}..{self.admin_key}"
        st = self.vault("GET", "/v1/sys/seal-status", token="")
        if st.get("sealed"):
            self.vault("PUT", "/v1/sys/unseal", {"key": js["keys_base64"][0]}, token="")
        self.vault("POST", "/v1/sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        self.create_identity()
        self.write_secret_one()
        return {"init_call_s": round(init_s, 3)}

    def native(self, verb, body, token=None, expect=(200,)):
        body = dict(body)
        body["token"] = token or self.admin_native_token()
        r = self.http.post(f"{self.base}/api/v2/{verb}", json=body, timeout=600)
        if expect and r.status_code not in expect:
            raise BenchError(f"{self.name}: {verb} -> {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else None

    def admin_native_token(self):
        tok, at = self._admin_native
        if tok is None or now() - at > 1800:   # admin tokens live 60 min
            r = self.http.post(f"{self.base}/api/v2/auth", json={"access-id": self.admin_id, "access-key": self.admin_key},
                               timeout=60)
            if r.status_code != 200:
                raise BenchError(f"{self.name}: admin login -> {r.status_code}: {r.text[:300]}")
            self._admin_native = (r.json()["token"], now())
        return self._admin_native[0]

    def create_identity(self):
        """An API-key auth method whose role may only read/write secret/bench/* and read database/bench."""
        am = self.native("create-auth-method", {"name": "/bench-loader", "jwt-ttl": 1440})
        self.native("create-role", {"name": "bench-loader"})
        self.native("set-role-rule", {"role-name": "bench-loader", "path": "/secret/bench/*",
                                      "capability": ["read", "create", "update"]})
        self.native("set-role-rule", {"role-name": "bench-loader", "path": "/database/bench", "capability": ["read"]})
        self.native("assoc-role-am", {"role-name": "bench-loader", "am-name": "/bench-loader"})
        r = self.http.post(f"{self.base}/api/v2/auth", json={"access-id": am["access_id"], "access-key": am["access_key"]},
                           timeout=60)
        if r.status_code != 200:
            raise BenchError(f"{self.name}: login of the bench identity -> {r.status_code}: {r.text[:300]}")
        self.bench_access_id = am["access_id"]
        self.bench_token = r.json()["token"]

    def setup_db(self, pg):
        if self.db_ready:
            return
        self.native("vault-mount-create", {"path": "database/", "type": "database", "folder": "/database"})
        self.native("target-create-db", {"name": "bench-pg", "db-type": "postgres", "host": "127.0.0.1",
                                         "port": pg.port, "db-name": "postgres", "user-name": "postgres",
                                         "pwd": pg.password})
        self.native("dynamic-secret-create-postgresql", {"name": "/database/bench", "target-name": "bench-pg",
                                                         "user-ttl": "1h", "max-ttl": "24h", "username-template": "tsb",
                                                         "creation-statements": PG_CREATION})
        self.db_ready = True

    def restart(self):
        """Stops, starts and waits for the first KV read. Tessera unseals itself from its key file."""
        down = self.stop()
        t0 = self.spawn()
        self.wait_kv_ok()
        return {"shutdown_s": round(down, 3) if down is not None else None, "start_to_first_read_s": round(now() - t0, 3)}


class TesseraPG(Tessera):
    """A Tessera node on PostgreSQL storage (`--storage postgresql`, password in PGPASSWORD, never in
    the URL). The first node is initialized as usual (it writes the key file); the others get a copy
    of that key file (mode 0600) and of the first node's tokens, and auto-unseal on the same database."""

    def __init__(self, name, data_dir, binary, pg, database):
        super().__init__(name, data_dir, binary)
        self.pg = pg
        self.url = f"postgres://postgres@127.0.0.1:{pg.port}/{database}?sslmode=disable"

    def command(self):
        return [self.binary, "server", "--storage", "postgresql", "--postgresql-url", self.url,
                "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.store_dir, "--unseal-key-file", self.key_file]

    def proc_env(self):
        return dict(os.environ, PGPASSWORD=self.pg.password)

    def join(self, first):
        """Another node of `first`'s cluster: copies the key file and the tokens; start() runs it."""
        os.makedirs(self.store_dir, exist_ok=True)
        shutil.copyfile(first.key_file, self.key_file)
        os.chmod(self.key_file, 0o600)
        self.root_token, self.bench_token = first.root_token, first.bench_token
        self.admin_id, self.admin_key, self.bench_access_id = first.admin_id, first.admin_key, first.bench_access_id

    def start(self):
        """Starts the node and waits for its first KV read (it unseals itself from the key file)."""
        t0 = self.spawn()
        self.wait_kv_ok(timeout=120)
        return round(now() - t0, 3)


class OpenBao(Server):
    kind = "openbao"
    role_prefix = "v-"

    def __init__(self, name, data_dir, binary):
        super().__init__(name, data_dir)
        self.binary = binary
        self.unseal_key = None

    def command(self):
        with open(os.path.join(CONFIG_DIR, "openbao.hcl.tmpl")) as f:
            cfg = f.read()
        cfg = (cfg.replace("@DATA_DIR@", self.data_dir).replace("@PORT@", str(self.port))
               .replace("@CLUSTER_PORT@", str(self.port + 1)))
        if self.tls:
            cfg = cfg.replace("  tls_disable = true\n", f'  tls_cert_file = "{self.tls[1]}"\n  tls_key_file  = "{self.tls[2]}"\n')
            cfg = cfg.replace('api_addr     = "http://', 'api_addr     = "https://')
        os.makedirs(os.path.join(self.data_dir, "raft"), exist_ok=True)
        path = os.path.join(self.data_dir, "server.hcl")
        with open(path, "w") as f:
            f.write(cfg)
        return [self.binary, "server", f"-config={path}"]

    def unseal(self):
        js = self.vault("PUT", "/v1/sys/unseal", {"key": self.unseal_key}, token="")
        if js.get("sealed"):
            raise BenchError(f"{self.name}: still sealed after unseal: {js}")

    def wait_active(self, timeout=180):
        return wait_until(lambda: self.status("GET", "/v1/sys/health") == 200, timeout=timeout,
                          interval=0.02, what=f"{self.name} active")[1]

    def initialize(self):
        """init (1 share) + unseal, KV v2 at secret/, ACL policy "bench" and a child token with it."""
        self.spawn()
        self.wait_listener()
        t = now()
        js = self.vault("PUT", "/v1/sys/init", {"secret_shares": 1, "secret_threshold": 1}, token="")
        init_s = now() - t
        self.root_token = js["root_token"]
        self.unseal_key = js["keys_base64"][0]
        self.unseal()
        self.wait_active()
        self.vault("POST", "/v1/sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        self.vault("PUT", "/v1/sys/policies/acl/bench", {"policy": (
            'path "secret/data/bench/*"  { capabilities = ["create", "read", "update"] }\n'
            'path "database/creds/bench" { capabilities = ["read"] }\n')})
        tok = self.vault("POST", "/v1/auth/token/create", {"policies": ["bench"], "ttl": "168h", "display_name": "bench"})
        self.bench_token = tok["auth"]["client_token"]
        self.write_secret_one()
        return {"init_call_s": round(init_s, 3)}

    def setup_db(self, pg):
        if self.db_ready:
            return
        self.vault("POST", "/v1/sys/mounts/database", {"type": "database"})
        self.vault("POST", "/v1/database/config/pg", {
            "plugin_name": "postgresql-database-plugin",
            "connection_url": f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{pg.port}/postgres?sslmode=disable",
            "username": "postgres", "password": pg.password, "allowed_roles": "bench"})
        self.vault("POST", "/v1/database/roles/bench", {"db_name": "pg", "creation_statements": [PG_CREATION],
                                                        "default_ttl": "1h", "max_ttl": "24h"})
        self.db_ready = True

    def restart(self):
        """Stops, starts, unseals (part of the measured time) and waits for the first KV read."""
        down = self.stop()
        t0 = self.spawn()
        self.wait_listener()
        self.unseal()
        self.wait_kv_ok()
        return {"shutdown_s": round(down, 3) if down is not None else None, "start_to_first_read_s": round(now() - t0, 3)}

    def log_since_start(self):
        return self.proc.log_tail(1 << 22) if self.proc else ""

    def wait_lease_restore(self, timeout=300):
        """Seconds from process start until OpenBao logs 'lease restore complete' (None if not seen)."""
        t0 = now()
        while now() - t0 < timeout:
            if "lease restore complete" in self.log_since_start():
                return round(now() - self.proc.started_at, 3)
            time.sleep(0.05)
        return None


class OpenBaoPG(OpenBao):
    """OpenBao on its PostgreSQL storage backend with ha_enabled = "true" (config/openbao-pg.hcl.tmpl);
    OpenBao creates its tables itself. Init, unseal and setup are OpenBao's."""

    def __init__(self, name, data_dir, binary, pg, database):
        super().__init__(name, data_dir, binary)
        self.pg = pg
        self.database = database

    def command(self):
        with open(os.path.join(CONFIG_DIR, "openbao-pg.hcl.tmpl")) as f:
            cfg = f.read()
        for k, v in (("@DATA_DIR@", self.data_dir), ("@PORT@", str(self.port)), ("@CLUSTER_PORT@", str(self.port + 1)),
                     ("@PG_PORT@", str(self.pg.port)), ("@PG_PASSWORD@", self.pg.password),
                     ("@PG_DATABASE@", self.database)):
            cfg = cfg.replace(k, v)
        path = os.path.join(self.data_dir, "server.hcl")
        with open(path, "w") as f:
            f.write(cfg)
        os.chmod(path, 0o600)   # holds the PostgreSQL password
        return [self.binary, "server", f"-config={path}"]


class BareHTTP(Server):
    kind = "bare-http"

    def __init__(self, name, data_dir, binary):
        super().__init__(name, data_dir)
        self.binary = binary

    def command(self):
        return [self.binary, str(self.port)]

    def start(self):
        self.port = free_port()
        self.spawn()
        wait_until(lambda: status_once(self.port, "GET", KV_ONE) == 200, timeout=60, interval=0.01, what="bare-http")
