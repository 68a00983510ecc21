"""Shared helpers and fixtures for the Tessera end-to-end suite.

The suite drives a real `tessera` binary (server and CLI).  The binary is taken
from $TESSERA_BIN, defaulting to <repo>/.build/debug/tessera.

Only `requests`, the standard library, `akeyless` and pytest are used.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / ".build" / "debug" / "tessera"

from e2e_support import DEV_ADMIN_ID, unique  # noqa: F401  (shared with the tests)

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
CLI_TIMEOUT = 30.0


def tessera_bin_path() -> str:
    return os.environ.get("TESSERA_BIN") or str(DEFAULT_BIN)


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Poll `pred` until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class ServerStartError(RuntimeError):
    def __init__(self, message: str, returncode: int | None, log: str):
        super().__init__(message)
        self.returncode = returncode
        self.log = log


class TesseraServer:
    """A `tessera server` subprocess with its stdout+stderr in a log file."""

    def __init__(self, binary: str, workdir: Path, *, dev: bool = False,
                 data_dir: Path | None = None, log_level: str | None = None,
                 unseal_key_file: Path | None = None, config: Path | None = None,
                 dev_access_id: str | None = None, dev_access_key: str | None = None,
                 extra_args: Iterable[str] = (), name: str = "server"):
        self.binary = binary
        self.workdir = Path(workdir)
        self.dev = dev
        self.data_dir = Path(data_dir) if data_dir else None
        self.log_level = log_level
        self.unseal_key_file = unseal_key_file
        self.config = config
        self.dev_access_id = dev_access_id
        self.dev_access_key = dev_access_key
        self.extra_args = list(extra_args)
        self.name = name
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self._starts = 0
        self.session = requests.Session()

    # -- addresses -----------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v2"

    # -- process control -------------------------------------------------------------
    def command(self) -> list[str]:
        cmd = [self.binary, "server", "--listen", f"127.0.0.1:{self.port}"]
        if self.dev:
            cmd.append("--dev")
            if self.dev_access_id:
                cmd += ["--dev-access-id", self.dev_access_id]
            if self.dev_access_key:
                cmd += ["--dev-access-key", self.dev_access_key]
        if self.data_dir is not None:
            cmd += ["--data-dir", str(self.data_dir)]
        if self.log_level:
            cmd += ["--log-level", self.log_level]
        if self.unseal_key_file is not None:
            cmd += ["--unseal-key-file", str(self.unseal_key_file)]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        return cmd + self.extra_args

    def spawn(self) -> subprocess.Popen:
        """Start the process without waiting for readiness."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._starts += 1
        self.session.close()
        self.session = requests.Session()
        if self.port is None:
            self.port = free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}-{self._starts}.log"
        env = dict(os.environ)
        for var in ("TESSERA_ADDR", "TESSERA_TOKEN", "TESSERA_ACCESS_KEY"):
            env.pop(var, None)
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(
                self.command(), stdout=logf, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=str(self.workdir), env=env,
                start_new_session=True)
        return self.proc

    def start(self, timeout: float = READY_TIMEOUT) -> "TesseraServer":
        """Start and wait until /v1/sys/health answers (any HTTP status).

        If the port was grabbed by someone else in the meantime, retry on a new one.
        """
        for attempt in range(3):
            self.spawn()
            try:
                self.wait_ready(timeout)
                return self
            except ServerStartError as e:
                if "address already in use" in e.log.lower() and attempt < 2:
                    self.port = None
                    continue
                raise
        raise AssertionError("unreachable")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                log = self.read_log()
                raise ServerStartError(
                    f"tessera server exited with {rc} before becoming ready:\n{log[-4000:]}",
                    rc, log)
            try:
                requests.get(f"{self.url}/v1/sys/health", timeout=1)
                return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise ServerStartError(
                    f"tessera server not ready after {timeout}s:\n{self.read_log()[-4000:]}",
                    None, self.read_log())
            time.sleep(0.02)

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Graceful stop; returns the exit code (kills on timeout and fails)."""
        if self.proc is None:
            return 0
        self.session.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"server did not exit within {timeout}s after signal {sig}")
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def restart(self) -> "TesseraServer":
        rc = self.stop()
        assert rc == 0, f"graceful shutdown exit code {rc}\n{self.read_log()[-2000:]}"
        return self.start()

    # -- logs ------------------------------------------------------------------------------
    def log_files(self) -> list[Path]:
        return sorted(self.workdir.glob(f"{self.name}-*.log"))

    def read_log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def read_all_log_bytes(self) -> bytes:
        return b"".join(p.read_bytes() for p in self.log_files())

    # -- HTTP helpers ----------------------------------------------------------------------
    def post(self, verb: str, body: Any = None, *, raw: bytes | None = None,
             headers: dict | None = None, timeout: float = 30) -> requests.Response:
        """POST /api/v2/<verb> with a JSON object (or raw bytes)."""
        h = {"Content-Type": "application/json"}
        if headers:
            h.update(headers)
        data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
        return self.session.post(f"{self.api_url}/{verb}", data=data, headers=h, timeout=timeout)

    def call(self, verb: str, body: dict | None = None, *, expect: int = 200) -> Any:
        """POST and assert the status; return the parsed JSON (or None)."""
        r = self.post(verb, body or {})
        assert r.status_code == expect, (
            f"{verb}: expected HTTP {expect}, got {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else None

    def sys(self, method: str, path: str, body: Any = None, token: str | None = None,
            timeout: float = 30) -> requests.Response:
        h = {"X-Vault-Token": token} if token else {}
        return self.session.request(method, f"{self.url}/v1/sys/{path}",
                                    json=body, headers=h, timeout=timeout)

    def seal_status(self) -> dict:
        r = self.sys("GET", "seal-status")
        assert r.status_code == 200, r.text
        return r.json()

    def init(self, shares: int = 3, threshold: int = 2) -> dict:
        r = self.sys("PUT", "init", {"secret_shares": shares, "secret_threshold": threshold})
        assert r.status_code == 200, f"init failed: {r.status_code} {r.text}"
        return r.json()

    def login(self, access_id: str, access_key: str) -> str:
        out = self.call("auth", {"access-id": access_id, "access-key": access_key,
                                 "access-type": "access_key"})
        assert out["token"].startswith("t-"), out
        return out["token"]


class CLI:
    """Runs the tessera CLI with an isolated config home (XDG_CONFIG_HOME + HOME)."""

    def __init__(self, binary: str, home: Path, address: str | None = None):
        self.binary = binary
        self.home = Path(home)
        self.address = address
        (self.home / "config").mkdir(parents=True, exist_ok=True)

    @property
    def config_home(self) -> Path:
        return self.home / "config"

    def profile_path(self, profile: str = "default") -> Path:
        return self.config_home / "tessera" / "profiles" / f"{profile}.json"

    def env(self, extra: dict | None = None) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("TESSERA_") and k not in ("VAULT_ADDR", "VAULT_TOKEN")}
        env["XDG_CONFIG_HOME"] = str(self.config_home)
        env["HOME"] = str(self.home)
        if extra:
            env.update(extra)
        return env

    def run(self, *args: str, address: bool = True, env: dict | None = None,
            input: str | None = None, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
        argv = [self.binary, *args]
        if address and self.address:
            argv += ["--address", self.address]
        return subprocess.run(argv, env=self.env(env), input=input, capture_output=True,
                              text=True, timeout=timeout, cwd=str(self.home))

    def ok(self, *args: str, **kw) -> subprocess.CompletedProcess:
        p = self.run(*args, **kw)
        assert p.returncode == 0, (
            f"tessera {' '.join(args)} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def json(self, *args: str, **kw) -> Any:
        p = self.ok(*args, "--json", **kw)
        try:
            return json.loads(p.stdout)
        except ValueError as e:  # pragma: no cover - assertion helper
            raise AssertionError(f"--json output is not JSON: {p.stdout!r}") from e


# ------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tessera_bin() -> str:
    path = tessera_bin_path()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"tessera binary not found or not executable: {path} (set TESSERA_BIN)")
    return path


@pytest.fixture
def server_factory(tessera_bin, tmp_path):
    """Create TesseraServer objects; every one is killed at teardown."""
    created: list[TesseraServer] = []

    def make(**kw) -> TesseraServer:
        kw.setdefault("name", f"server{len(created)}")
        srv = TesseraServer(tessera_bin, tmp_path / "srv", **kw)
        created.append(srv)
        return srv

    yield make
    for srv in created:
        srv.kill()
        srv.session.close()


@pytest.fixture
def dev_admin_key() -> str:
    return "devkey-" + secrets.token_urlsafe(24)


@pytest.fixture
def dev_server(server_factory, dev_admin_key) -> TesseraServer:
    """A running dev-mode server whose admin is DEV_ADMIN_ID / dev_admin_key."""
    srv = server_factory(dev=True, dev_access_id=DEV_ADMIN_ID, dev_access_key=dev_admin_key,
                         name="dev")
    srv.start()
    srv.admin_id = DEV_ADMIN_ID
    srv.admin_key = dev_admin_key
    yield srv
    if srv.is_running():
        rc = srv.stop()
        assert rc == 0, f"dev server exit code {rc}\n{srv.read_log()[-2000:]}"


@pytest.fixture
def admin_token(dev_server) -> str:
    return dev_server.login(dev_server.admin_id, dev_server.admin_key)


@pytest.fixture
def cli_factory(tessera_bin, tmp_path):
    count = [0]

    def make(address: str | None = None) -> CLI:
        count[0] += 1
        return CLI(tessera_bin, tmp_path / f"cli{count[0]}", address)

    return make


@pytest.fixture
def cli(cli_factory, dev_server) -> CLI:
    """A CLI with its own config home, pointed at the dev server."""
    return cli_factory(dev_server.url)
